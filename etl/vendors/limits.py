"""Rate limits as data: what a vendor allows, in the form the governor keeps to.

A :class:`Limit` is a sliding window (N requests in any W seconds) or an in-flight cap, for
every request of a vendor or for buckets of one kind only, counted as a whole or per bucket.
Buckets are strings ``"kind"`` or ``"kind:id"`` (mdapi: ``"kline:btcusdt"``, ``"list"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from etl.vendors.base import RateLimits

__all__ = ["ALL", "Limit", "kind_of", "limits_for", "rate_windows"]

ALL: Final = "*"  # the scope of a limit on every request


def kind_of(bucket: str) -> str:
    """``"kline"`` of ``"kline:btcusdt"``."""
    return bucket.split(":", 1)[0]


@dataclass(frozen=True)
class Limit:
    """One rule: either ``requests`` starts in any ``seconds`` window, or ``in_flight`` open
    requests at once; for every request (``kind=None``) or buckets of one kind only."""

    requests: int | None = None
    seconds: float = 1.0
    in_flight: int | None = None
    kind: str | None = None  # "kline" matches buckets "kline" and "kline:<id>"
    per_bucket: bool = False  # count each bucket separately (per product code)

    def __post_init__(self) -> None:
        if (self.requests is None) == (self.in_flight is None):
            raise ValueError(
                "a Limit is either a window (requests per seconds) or an in-flight cap"
            )
        if self.requests is not None and (self.requests < 1 or not self.seconds > 0):
            raise ValueError(f"bad window limit {self.requests} per {self.seconds} s")
        if self.in_flight is not None and self.in_flight < 1:
            raise ValueError(f"bad in-flight cap {self.in_flight}")

    def applies(self, bucket: str | None) -> bool:
        return self.kind is None or (bucket is not None and kind_of(bucket) == self.kind)

    def scope(self, bucket: str | None) -> str:
        if self.per_bucket and bucket is not None:
            return bucket
        return self.kind or ALL

    def counter(self, bucket: str | None) -> str:
        """The key its starts are stored under; the window rides along so any process can
        prune any counter without knowing the limits of the others."""
        return f"{self.scope(bucket)}@{self.seconds!r}"


def rate_windows(rate: float, *, kind: str | None = None, per_bucket: bool = False) -> tuple[Limit]:
    """A rate in requests per second as a window. Vendors count whole requests in a sliding
    second, so a rate ≥ 1 becomes ⌊rate⌋ per 1 s (4.5 → 4/s, erring low); a rate below 1
    becomes 1 request per 1/rate seconds (0.5 → 1 per 2 s)."""
    if not rate > 0:
        raise ValueError(f"a rate must be positive, got {rate!r}")
    if rate >= 1:
        return (Limit(requests=int(rate), seconds=1.0, kind=kind, per_bucket=per_bucket),)
    return (Limit(requests=1, seconds=1.0 / rate, kind=kind, per_bucket=per_bucket),)


def limits_for(rate: RateLimits, override: float | None = None) -> tuple[Limit, ...]:
    """The limits of a capability table's :class:`RateLimits`, with the per-second rate
    replaced by ``override`` (``ETL_<VENDOR>_RATE``) if given; a per-minute limit keeps its
    ratio to the per-second one (Infoway: ≤ 60 × rate). ``scope`` "product" or "client"
    counts each bucket on its own; vendors with mixed limits (mdapi) build their own list."""
    per_second = override or rate.per_second
    per_bucket = rate.scope != "key"
    out: list[Limit] = list(rate_windows(per_second, per_bucket=per_bucket))
    if rate.per_minute:
        per_minute = rate.per_minute * per_second / rate.per_second
        out.append(Limit(requests=max(1, int(per_minute)), seconds=60.0, per_bucket=per_bucket))
    if rate.in_flight:
        out.append(Limit(in_flight=rate.in_flight))
    return tuple(out)
