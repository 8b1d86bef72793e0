"""What a vendor says about our plan, cached in the data root with the time it was read.

Infoway publishes the plan of a key (``/package/info``: requests per second, years of
history, expiry) and the rate governor needs it *before the first request*, in every process:
a command that guessed a slower rate until it had asked would wait on the requests of a
faster neighbour (the shared rate state holds them), and its first requests would crawl.
So the answer is kept in ``DataRoot.vendor_plan(vendor)`` as ``{"read_at": ISO, "data":
<the vendor's answer>}``; it is *fresh* for :data:`MAX_AGE` (a plan changes when someone
buys another, rarely) and never past the plan's own expiry. A stale entry still gives the
rate to ask again with; only its refresh waits for the vendor.

One process at a time refreshes (:meth:`PlanCache.refresh_lock`); the others wait for its
answer instead of asking too.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from etl.dataroot import DataRoot
from etl.fsutil import atomic_write_bytes
from etl.locks import FileLock, try_lock
from etl.timefmt import iso_utc

__all__ = ["MAX_AGE", "CachedPlan", "PlanCache"]

log = logging.getLogger(__name__)

MAX_AGE: Final = dt.timedelta(days=1)


@dataclass(frozen=True)
class CachedPlan:
    """A vendor's answer about our plan and when it was read."""

    data: Any
    read_at: dt.datetime

    def fresh(self, now: dt.datetime, expires: dt.datetime | None = None) -> bool:
        """Read less than :data:`MAX_AGE` ago (and not in the future: a clock set back), and
        the plan has not expired since."""
        if expires is not None and expires <= now:
            return False
        return dt.timedelta(0) <= now - self.read_at < MAX_AGE


@dataclass(frozen=True)
class PlanCache:
    """Where one vendor's plan is kept (``DataRoot.vendor_plan``) and the lock of its refresh."""

    path: Path
    lock_path: Path

    @classmethod
    def of(cls, root: Path, vendor: str) -> PlanCache:
        layout = DataRoot(root)
        return cls(layout.vendor_plan(vendor), layout.vendor_plan_lock(vendor))

    def read(self) -> CachedPlan | None:
        """The cached answer, or None if there is none or it cannot be read (soft state: a
        bad file means asking again, never an error)."""
        try:
            doc = json.loads(self.path.read_bytes())
            read_at = dt.datetime.fromisoformat(doc["read_at"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("plan cache %s unreadable (%s); asking the vendor again", self.path, exc)
            return None
        if read_at.tzinfo is None:
            return None
        return CachedPlan(doc.get("data"), read_at)

    def write(self, data: Any, now: dt.datetime) -> CachedPlan:
        """Keep ``data`` (the vendor's answer) as read at ``now``."""
        doc = {"read_at": iso_utc(now), "data": data}
        atomic_write_bytes(self.path, json.dumps(doc, ensure_ascii=False, sort_keys=True).encode())
        return CachedPlan(data, now)

    def refresh_lock(self) -> FileLock | None:
        """The right to ask the vendor now, or None while another process is asking."""
        return try_lock(self.lock_path)
