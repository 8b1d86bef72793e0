"""The plan of our Infoway key, known before the first request.

``/package/info`` says how many requests per second the key may make (and how many years of
minute history it has). The rate governor needs that from the first request, in every
process, so the answer is cached in the data root (:class:`~etl.vendors.plans.PlanCache`):
an adapter starts from the cached plan, and only when it is stale (a day old, or past the
plan's expiry) or absent does the first call of a run ask again, one process at a time.
Until a plan is known at all the rate is the slowest documented plan's (Free, 1/s).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

from etl.errors import AuthError, QuotaExhausted, SchemaError, VendorError
from etl.vendors.infoway.plan import Plan, parse_plan
from etl.vendors.plans import PlanCache

__all__ = ["PlanKeeper"]

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]
_POLL: Final = 0.05  # seconds between looks at the cache while another process asks
_PATIENCE: Final = 120.0  # then ask ourselves (the other may hang on a dead connection)


class PlanKeeper:
    """The plan as far as known (:attr:`plan`), and whether it must be asked again."""

    def __init__(self, cache: PlanCache | None, now: Clock) -> None:
        self.cache = cache
        self.now = now
        self.plan: Plan | None = None
        self.fresh = False
        self._adopt_cached()

    def _adopt_cached(self) -> bool:
        """Take the cached plan if there is a readable one; True if it is fresh."""
        cached = self.cache.read() if self.cache is not None else None
        if cached is None:
            return False
        try:
            plan = parse_plan(cached.data)
        except SchemaError:
            return False
        self.plan = plan
        self.fresh = cached.fresh(self.now(), plan.expires)
        return self.fresh

    def remember(self, data: Any) -> Plan:
        """A fresh answer of ``/package/info`` (its ``data``): parsed, kept and cached."""
        plan = parse_plan(data)
        self.plan, self.fresh = plan, True
        if self.cache is not None:
            self.cache.write(data, self.now())
        return plan

    async def ensure(self, ask: Callable[[], Awaitable[Any]]) -> bool:
        """Make the plan fresh, asking the vendor (``ask`` returns ``/package/info``'s data)
        only if no other process is asking; True if :attr:`plan` changed. A refused key or a
        spent quota is raised; any other failure keeps what is known (logged)."""
        if self.fresh:
            return False
        before = self.plan
        waited = 0.0
        while True:
            lock = self.cache.refresh_lock() if self.cache is not None else None
            if lock is not None or self.cache is None or waited >= _PATIENCE:
                try:
                    if not self._adopt_cached():  # another process may just have asked
                        await self._ask(ask)
                finally:
                    if lock is not None:
                        lock.release()
                return self.plan != before
            await asyncio.sleep(_POLL)
            waited += _POLL
            if self._adopt_cached():
                return self.plan != before

    async def _ask(self, ask: Callable[[], Awaitable[Any]]) -> None:
        try:
            self.remember(await ask())
        except (AuthError, QuotaExhausted):
            raise
        except VendorError as exc:
            self.fresh = True  # asked once this run; the next run asks again
            known = (
                f"keeping plan {self.plan.name} ({self.plan.per_second:g}/s)"
                if self.plan
                else "1 request/s until it answers"
            )
            log.warning("infoway: /package/info unreadable (%s); %s", exc.bare_message, known)
