"""One rate governor per vendor, shared by every process that uses the same data root.

Vendors count requests per key (or per product, or per client), not per process: two ``etl``
commands running side by side must stay under the limit *together*. So the governor keeps its
counts in a small JSON file per vendor, ``<state_dir>/<vendor>.json`` (``state/governor/``),
changed only under an exclusive ``flock`` on ``<vendor>.lock`` (:mod:`etl.locks`: the
lock dies with its process). With ``state_dir=None`` the same logic runs on an in-process dict.

What it keeps to (:class:`Limit`, any number of them):

* sliding windows: at most N requests in any W seconds, as the vendor counts them: by
  *arrival*, which falls somewhere between our send and its answer. So a request counts from
  its start until W seconds after its answer came back (or for as long as it is in flight):
  however the network delays one request and not the next, N + 1 arrivals never fit in W.
  Each window is also stretched by ``margin`` (2 %). On a loopback emulator this uses ~97 %
  of a limit; over a network the figure is W / (W + latency);
* in-flight caps: at most N requests open at once. Each open request holds a *lease* that
  records its pid and an expiry, so a process killed with SIGKILL leaks nothing: leases of
  dead pids (and expired ones) are dropped by whoever reads the file next, and their
  requests count as answered at that moment;
* scope: a limit applies to every request, or only to buckets of one *kind*; ``per_bucket``
  counts each bucket on its own. Buckets are strings ``"kind"`` or ``"kind:id"`` (mdapi:
  ``"kline:btcusdt"``, ``"quote:btcusdt"``, ``"list"``);
* bans: after a vendor's over-limit answer, :meth:`Governor.ban` closes a bucket (or the whole
  vendor) for some seconds, and every process waits it out.

*Pace* (:meth:`Governor.pace`): how many requests a process should keep open at once so that
the rate is used and no more, by Little's law: rate × the time one *lane* (a task's sequence of
requests, see :class:`Lane`) takes per request (its answer's latency plus what the lane did
before asking again), with 25 % headroom, starting at 1 until a few requests are timed. On a
loopback emulator that is 1; against a vendor 300 ms away at 10/s, 4. Why it matters: what is
in flight is what a SIGKILL loses, so a task runs no more requests at once than the rate needs.

``async with governor.slot(bucket):`` around the request (send to answer) waits with ``asyncio``
sleeps (never a busy loop) until it may start without breaking any limit, records it, and on
exit marks it answered. Waiters of a bucket queue in order, so only the head polls. The file
lock is held for a read-modify-write of a few hundred bytes, so it is taken blocking, outside
any ``await``.
Timestamps are wall-clock (``time.time``): the only clock two processes share.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import logging
import math
import os
import re
import statistics
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from etl.locks import pid_alive
from etl.vendors.limits import ALL as _ALL
from etl.vendors.limits import Limit, kind_of, limits_for, rate_windows
from etl.vendors.ratestate import FileStore, MemoryStore, State

# Limit and its helpers live in etl.vendors.limits and are re-exported for adapters.
__all__ = ["LANE", "Governor", "Lane", "Lease", "Limit", "limits_for", "rate_windows"]

log = logging.getLogger(__name__)

Clock = Callable[[], float]
OnWait = Callable[[float], None]

_VENDOR_RE: Final = re.compile(r"^[a-z0-9_-]{1,40}$")
# A waiter's ticket is dropped when its process dies, or when it has not looked for this long
# (it looks at least once a second while it waits).
TICKET_TTL: Final = 10.0
PACE_HEADROOM: Final = 1.25  # requests kept open beyond what the measured turn needs
# The pace reads the median of the last PACE_TURNS turns, once PACE_FIRST are timed: a cold
# first request (a new connection, a vendor's cold cache) does not open a run wide at its
# start, when a kill would cost the most.
PACE_TURNS: Final = 8
PACE_FIRST: Final = 3


class Lane:
    """One sequence of requests made one after another (a pipeline worker's units and the
    pages of each): the governor times a request's *turn* from the lane's previous answer
    to this answer, so the lane's own work between requests (parsing, validating, waiting
    for a commit) counts as part of what one request costs. ``pause()`` when the lane waits
    for something else (its turn to take a unit): that wait is not a request's cost."""

    __slots__ = ("answered",)

    def __init__(self) -> None:
        self.answered: float | None = None  # when the lane's last request was answered

    def pause(self) -> None:
        self.answered = None


# The lane of the running task (tasks it starts inherit it); None: each request on its own.
LANE: contextvars.ContextVar[Lane | None] = contextvars.ContextVar("etl_lane", default=None)


@dataclass(frozen=True)
class Lease:
    """A granted slot: ``started`` is the wall-clock start recorded for the limits."""

    id: str
    bucket: str | None
    started: float
    waited: float
    holds: bool = False  # recorded in the state: release it when the answer is in
    lane: Lane | None = None
    idle: float = 0.0  # the lane's own time between its previous answer and this request


def _ban_keys(bucket: str | None) -> set[str]:
    return {_ALL} if bucket is None else {_ALL, bucket, kind_of(bucket)}


def _older_waiter(queue: State, ticket: str, mine: Any, bucket: str) -> bool:
    """Whether another waiter of ``bucket`` queued before ``ticket`` (or at all, if
    ``ticket`` is not queued yet)."""
    place = (float(mine["since"]), ticket) if mine is not None else None
    for key, waiter in queue.items():
        if key == ticket or waiter.get("bucket") != bucket:
            continue
        if place is None or (float(waiter.get("since", 0)), key) < place:
            return True
    return False


def _counted_until(entry: list[Any], now: float) -> float:
    """Until when a ``[start, end, lease]`` entry counts: its answer, or now if in flight."""
    return float(entry[1]) if entry[1] is not None else now


class Governor:
    """Rate limits for one vendor, shared by every process using ``state_dir`` (see module
    docstring). ``limits`` can be replaced at any time with :meth:`update`."""

    def __init__(
        self,
        vendor: str,
        limits: Sequence[Limit],
        *,
        state_dir: Path | str | None = None,
        margin: float = 0.02,
        lease_ttl: float = 300.0,
        poll: float = 0.02,
        clock: Clock = time.time,
        on_wait: OnWait | None = None,
    ) -> None:
        if not _VENDOR_RE.match(vendor):
            raise ValueError(f"bad vendor name for a governor: {vendor!r}")
        self.vendor = vendor
        self._limits = tuple(limits)
        self.margin = margin
        self.lease_ttl = lease_ttl
        self.poll = poll
        self._clock = clock
        self.on_wait = on_wait
        self._store: MemoryStore | FileStore = (
            MemoryStore() if state_dir is None else FileStore(Path(state_dir), vendor)
        )
        self._last_grant: float | None = None  # this process's, for "waiting for how long"
        self._told_wait = False
        self._waiters: set[asyncio.Future[None]] = set()
        self._queues: dict[str | None, asyncio.Lock] = {}
        self._queues_loop: asyncio.AbstractEventLoop | None = None
        self._turns: collections.deque[float] = collections.deque(maxlen=PACE_TURNS)

    @property
    def limits(self) -> tuple[Limit, ...]:
        return self._limits

    def update(self, limits: Sequence[Limit]) -> None:
        """Replace the limits (e.g. with the rate a vendor publishes for our plan)."""
        self._limits = tuple(limits)
        self._wake()

    def pace(self, cap: int) -> int:
        """How many requests (or units of one request at a time) to keep open at once:
        ⌈rate × turn × 1.25⌉ within [1, ``cap``] and any in-flight limit on every request
        (see the module docstring), the turn being the median of the last 8; 1 until 3 are
        timed. A vendor limited per bucket only (mdapi: per product) has no rate over all
        requests: ``cap``."""
        rates = [
            lim.requests / lim.seconds
            for lim in self._limits
            if lim.requests is not None and lim.kind is None and not lim.per_bucket
        ]
        flights = [
            lim.in_flight for lim in self._limits if lim.in_flight is not None and lim.kind is None
        ]
        top = max(1, min([cap, *flights]))
        if not rates:
            return top
        if len(self._turns) < PACE_FIRST:
            return 1
        turn = statistics.median(self._turns)
        return max(1, min(top, math.ceil(min(rates) * turn * PACE_HEADROOM)))

    def _timed(self, lease: Lease, now: float) -> None:
        """Note a request's turn (its latency, plus its lane's time since its last answer)
        for :meth:`pace`."""
        self._turns.append(max(0.0, now - lease.started) + lease.idle)
        if lease.lane is not None:
            lease.lane.answered = now

    def slot(self, bucket: str | None = None) -> _Slot:
        """``async with governor.slot(bucket) as lease:`` around one request."""
        return _Slot(self, bucket)

    async def acquire(self, bucket: str | None = None) -> Lease:
        """Wait until a request in ``bucket`` may start, record it, and return its lease.

        Fair between processes: a waiter that must wait takes a ticket in the shared state,
        and a free slot goes to the oldest ticket of its bucket, so a one-symbol job sharing
        a vendor with a market-wide fill gets every other slot, not the leftovers."""
        began = self._clock()
        lane = LANE.get()
        idle = 0.0 if lane is None or lane.answered is None else max(0.0, began - lane.answered)
        ticket = uuid.uuid4().hex
        # Waiters of one bucket queue here (FIFO), so only the head of each queue polls the
        # shared state: a hundred waiting tasks cost one read per wake-up, not a hundred.
        async with self._queue(bucket):
            try:
                while True:
                    grant = self._store.transact(lambda s: self._try(s, bucket, began, ticket))
                    if isinstance(grant, Lease):
                        self._granted(grant.started)
                        return replace(grant, lane=lane, idle=idle)
                    self._waiting(began)
                    await self._sleep(grant)
            except BaseException:
                self._store.transact(lambda s: (None, s["queue"].pop(ticket, None) is not None))
                raise

    def _waiting(self, began: float) -> None:
        """Tell ``on_wait`` how long this process has sent nothing for want of a slot."""
        if self.on_wait is not None:
            since = began if self._last_grant is None else max(began, self._last_grant)
            self._told_wait = True
            self.on_wait(max(0.0, self._clock() - since))

    def _granted(self, at: float) -> None:
        self._last_grant = at
        if self._told_wait and self.on_wait is not None:
            self._told_wait = False
            self.on_wait(0.0)

    def release(self, lease: Lease) -> None:
        """Mark ``lease``'s request answered (its windows count from now) and end its in-flight
        hold. Synchronous, so it also runs during cancellation."""
        now = self._clock()
        self._timed(lease, now)
        if not lease.holds:
            return

        def end(state: State) -> tuple[None, bool]:
            held = state["leases"].pop(lease.id, None)
            for counter in held.get("counters", ()) if held else ():
                for entry in state["starts"].get(counter, ()):
                    if entry[2] == lease.id and entry[1] is None:
                        entry[1] = now
            return None, held is not None

        self._store.transact(end)
        self._wake()

    def ban(self, bucket: str | None, seconds: float) -> None:
        """Close ``bucket`` (``None``: the whole vendor; a kind: every bucket of that kind) for
        ``seconds``, in every process. A shorter ban never shortens a longer one."""
        until = self._clock() + seconds
        key = _ALL if bucket is None else bucket

        def put(state: State) -> tuple[None, bool]:
            state["bans"][key] = max(float(state["bans"].get(key, 0.0)), until)
            return None, True

        self._store.transact(put)
        log.info("%s: %s banned for %.1f s", self.vendor, bucket or "every request", seconds)

    def banned_for(self, bucket: str | None = None) -> float:
        """Seconds left on the longest ban covering ``bucket`` (0 if none)."""
        now = self._clock()

        def read(state: State) -> tuple[float, bool]:
            bans = state["bans"]
            until = max((float(bans.get(k, 0.0)) for k in _ban_keys(bucket)), default=0.0)
            return max(0.0, until - now), False

        return self._store.transact(read)

    # -- internals ---------------------------------------------------------------------------

    def _prune(self, state: State, now: float) -> bool:
        """Drop ended leases (expired, or of a dead pid: their requests count as answered now),
        starts outside their window, and ended bans (in place). True if anything changed:
        the caller must then save the state, or a dead request's end would be re-stamped
        "now" on every read and hold its window shut forever."""
        changed = False
        leases = state["leases"]
        for key, lease in list(leases.items()):
            if float(lease.get("expires", 0)) <= now or not pid_alive(int(lease.get("pid", 0))):
                del leases[key]
                changed = True
        starts = state["starts"]
        for key in list(starts):
            try:
                horizon = float(key.rsplit("@", 1)[1]) * (1 + self.margin)
            except (IndexError, ValueError):
                horizon = 0.0
            kept = []
            for entry in starts[key]:
                if entry[1] is None and entry[2] not in leases:
                    entry[1] = now  # its process died mid-request
                    changed = True
                # An end "from the future" (the wall clock stepped back) counts one window.
                if now - horizon < _counted_until(entry, now) <= now + horizon:
                    kept.append(entry)
            if len(kept) != len(starts[key]):
                changed = True
            if kept:
                starts[key] = kept
            else:
                del starts[key]
        bans = state["bans"]
        for key, until in list(bans.items()):
            if float(until) <= now:
                del bans[key]
                changed = True
        queue = state["queue"]
        for key, waiter in list(queue.items()):
            seen = float(waiter.get("seen", 0))
            if not now - TICKET_TTL < seen <= now + TICKET_TTL or not pid_alive(
                int(waiter.get("pid", 0))
            ):
                del queue[key]
                changed = True
        return changed

    def _try(
        self, state: State, bucket: str | None, began: float, ticket: str
    ) -> tuple[Lease | float, bool]:
        """Grant a lease (and record it) if no limit is at its cap and no older waiter of the
        bucket is queued, else say how long to wait (keeping the ticket's place)."""
        now = self._clock()
        self._prune(state, now)  # whatever it changed is saved: this call always writes
        bans = state["bans"]
        wait = max((float(bans.get(k, 0.0)) - now for k in _ban_keys(bucket)), default=0.0)
        applicable = [lim for lim in self._limits if lim.applies(bucket)]
        flights: list[str] = []
        counters: list[str] = []
        for lim in applicable:
            if lim.requests is not None:
                counter = lim.counter(bucket)
                counters.append(counter)
                ends = sorted(_counted_until(e, now) for e in state["starts"].get(counter, ()))
                if len(ends) >= lim.requests:  # in flight counts as "until now": recheck later
                    horizon = lim.seconds * (1 + self.margin)
                    wait = max(wait, ends[len(ends) - lim.requests] + horizon - now)
            else:
                assert lim.in_flight is not None
                scope = lim.scope(bucket)
                held = sum(scope in lease.get("scopes", ()) for lease in state["leases"].values())
                if held >= lim.in_flight:
                    wait = max(wait, self.poll)
                flights.append(scope)
        queue = state["queue"]
        mine = queue.get(ticket)
        if wait <= 0 and _older_waiter(queue, ticket, mine, _ALL if bucket is None else bucket):
            wait = self.poll  # the slot is theirs; they look again any moment
        if wait > 0:
            if mine is None:
                queue[ticket] = {
                    "pid": os.getpid(),
                    "bucket": _ALL if bucket is None else bucket,
                    "since": now,
                    "seen": now,
                }
            else:
                mine["seen"] = now
            return wait, True
        queue.pop(ticket, None)
        lease_id = uuid.uuid4().hex
        for counter in counters:
            state["starts"].setdefault(counter, []).append([now, None, lease_id])
        holds = bool(flights or counters)
        if holds:
            state["leases"][lease_id] = {
                "pid": os.getpid(),
                "expires": now + self.lease_ttl,
                "scopes": flights,
                "counters": counters,
            }
        return Lease(lease_id, bucket, now, now - began, holds=holds), True

    def _queue(self, bucket: str | None) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._queues_loop is not loop:  # asyncio locks belong to one event loop
            self._queues, self._queues_loop = {}, loop
        return self._queues.setdefault(bucket, asyncio.Lock())

    async def _sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` (at most 1 s at a time), or until a lease of this process ends."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.add(fut)
        try:
            await asyncio.wait({fut}, timeout=min(max(seconds, 0.001), 1.0))
        finally:
            self._waiters.discard(fut)

    def _wake(self) -> None:
        for fut in list(self._waiters):
            if not fut.done() and not fut.get_loop().is_closed():
                fut.set_result(None)


class _Slot:
    """The async context manager of :meth:`Governor.slot`."""

    def __init__(self, governor: Governor, bucket: str | None) -> None:
        self._governor = governor
        self._bucket = bucket
        self._lease: Lease | None = None

    async def __aenter__(self) -> Lease:
        self._lease = await self._governor.acquire(self._bucket)
        return self._lease

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._lease is not None:
            self._governor.release(self._lease)
            self._lease = None
