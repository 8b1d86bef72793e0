"""How transient vendor failures are retried, and how long a call may take.

Vendor specs agree: at most 3 retries, backoff 1, 2, 4, 8 s (capped), with jitter, honouring
``Retry-After``. Tests make the backoff fast through ``[vendors.<name>]`` settings.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Final

import httpx

from etl.config import VendorSettings
from etl.errors import ConfigError

__all__ = ["RetryPolicy", "retry_after", "timeouts_from"]

DEFAULT_CONNECT_TIMEOUT: Final = 10.0
DEFAULT_READ_TIMEOUT: Final = 30.0


@dataclass(frozen=True)
class RetryPolicy:
    """How transient failures are retried (vendor specs: ≤ 3 retries, backoff 1, 2, 4, 8 s)."""

    retries: int = 3
    base: float = 1.0
    cap: float = 8.0
    jitter: float = 0.1
    max_retry_after: float = 120.0  # a longer Retry-After fails now instead of stalling a task

    def delay(self, retry: int, rng: random.Random) -> float:
        """The pause before retry number ``retry`` (1-based)."""
        return min(self.cap, self.base * 2.0 ** (retry - 1)) * (1 + self.jitter * rng.random())

    @classmethod
    def from_settings(cls, settings: VendorSettings) -> RetryPolicy:
        """Defaults, overridden by ``[vendors.<name>]`` keys ``retries``, ``backoff_base``,
        ``backoff_cap`` and ``backoff_jitter`` (tests make the backoff fast this way)."""
        extra = settings.extra
        return cls(
            retries=int(_number(extra, "retries", cls.retries, settings.name)),
            base=_number(extra, "backoff_base", cls.base, settings.name),
            cap=_number(extra, "backoff_cap", cls.cap, settings.name),
            jitter=_number(extra, "backoff_jitter", cls.jitter, settings.name),
        )


def _number(extra: Mapping[str, Any], key: str, default: float, vendor: str) -> float:
    value = extra.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"[vendors.{vendor}] {key} must be a number ≥ 0, got {value!r}")
    return float(value)


def timeouts_from(settings: VendorSettings) -> httpx.Timeout:
    """Connect and read timeouts: ``connect_timeout`` / ``read_timeout`` settings, else 10 s
    and 30 s. Writes share the read timeout; waiting for a pooled connection gets twice it."""
    connect = _number(settings.extra, "connect_timeout", DEFAULT_CONNECT_TIMEOUT, settings.name)
    read = _number(settings.extra, "read_timeout", DEFAULT_READ_TIMEOUT, settings.name)
    return httpx.Timeout(connect=connect, read=read, write=read, pool=2 * read)


def retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (a number, or an HTTP date), or None."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
