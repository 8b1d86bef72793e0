"""One rate governor per vendor, shared by every process that uses the same data root.

Vendors count requests per key (or per product, or per client), not per process: two ``etl``
commands running side by side must stay under the limit *together*. So the governor keeps its
counts in a small JSON file per vendor, ``<state_dir>/governor/<vendor>.json``, changed only
under an exclusive ``flock`` on ``<vendor>.lock`` (the etl/lake/locks.py idea: the lock dies
with its process). With ``state_dir=None`` the same logic runs on an in-process dict.

What it keeps to (:class:`Limit`, any number of them):

* sliding windows: at most N request *starts* in any W seconds. Emulators and vendors count
  by arrival time, which trails our start by a network delay that varies, so each window is
  stretched by ``margin`` (1 s is treated as 1.05 s): about 95 % of a limit is used, never 101 %;
* in-flight caps: at most N requests open at once. Each open request holds a *lease* that
  records its pid and an expiry, so a process killed with SIGKILL leaks nothing: leases of
  dead pids (and expired ones) are dropped by whoever reads the file next;
* scope: a limit applies to every request, or only to buckets of one *kind*; ``per_bucket``
  counts each bucket on its own. Buckets are strings ``"kind"`` or ``"kind:id"`` (mdapi:
  ``"kline:btcusdt"``, ``"quote:btcusdt"``, ``"list"``);
* bans: after a vendor's over-limit answer, :meth:`Governor.ban` closes a bucket (or the whole
  vendor) for some seconds, and every process waits it out.

``async with governor.slot(bucket):`` waits with ``asyncio`` sleeps (never a busy loop) until a
request may start without breaking any limit, then records it. The file lock is held only for
a read-modify-write of a few hundred bytes, so it is taken blocking, outside any ``await``.
Timestamps are wall-clock (``time.time``): the only clock two processes share.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, TypeVar

if TYPE_CHECKING:
    from etl.vendors.base import RateLimits

__all__ = ["Governor", "Lease", "Limit", "limits_for", "rate_windows"]

log = logging.getLogger(__name__)

T = TypeVar("T")
State = dict[str, Any]  # {"starts": {counter: [t, ...]}, "leases": {id: {...}}, "bans": {key: t}}
Clock = Callable[[], float]

_VENDOR_RE: Final = re.compile(r"^[a-z0-9_-]{1,40}$")
_ALL: Final = "*"


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
        return self.kind is None or (bucket is not None and _kind(bucket) == self.kind)

    def scope(self, bucket: str | None) -> str:
        if self.per_bucket and bucket is not None:
            return bucket
        return self.kind or _ALL

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


@dataclass(frozen=True)
class Lease:
    """A granted slot: ``started`` is the wall-clock start recorded for the limits."""

    id: str
    bucket: str | None
    started: float
    waited: float
    holds: bool = False  # an in-flight hold to release


def _kind(bucket: str) -> str:
    return bucket.split(":", 1)[0]


def _ban_keys(bucket: str | None) -> set[str]:
    return {_ALL} if bucket is None else {_ALL, bucket, _kind(bucket)}


def _empty() -> State:
    return {"starts": {}, "leases": {}, "bans": {}}


def _pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, killed but not yet reaped, counts as dead)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[:1] != ["Z"]


class _MemoryStore:
    """State for one process only."""

    def __init__(self) -> None:
        self._state = _empty()

    def transact(self, fn: Callable[[State], tuple[T, bool]]) -> T:
        return fn(self._state)[0]


class _FileStore:
    """State shared through ``<directory>/<vendor>.json`` under ``flock(<vendor>.lock)``."""

    def __init__(self, directory: Path, vendor: str) -> None:
        self.directory = directory
        self.path = directory / f"{vendor}.json"
        self.lock_path = directory / f"{vendor}.lock"

    def transact(self, fn: Callable[[State], tuple[T, bool]]) -> T:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # held for microseconds by whoever has it
            state = self._read()
            result, changed = fn(state)
            if changed:
                tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
                tmp.write_text(json.dumps(state, separators=(",", ":")), encoding="utf-8")
                tmp.replace(self.path)
            return result
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def _read(self) -> State:
        try:
            state = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return _empty()
        except (OSError, ValueError) as exc:  # soft state: start afresh rather than stop
            log.warning("governor state %s unreadable (%s); starting afresh", self.path, exc)
            return _empty()
        if not isinstance(state, dict):
            return _empty()
        for part in ("starts", "leases", "bans"):
            if not isinstance(state.get(part), dict):
                state[part] = {}
        return state


class Governor:
    """Rate limits for one vendor, shared by every process using ``state_dir`` (see module
    docstring). ``limits`` can be replaced at any time with :meth:`update`."""

    def __init__(
        self,
        vendor: str,
        limits: Sequence[Limit],
        *,
        state_dir: Path | str | None = None,
        margin: float = 0.05,
        lease_ttl: float = 300.0,
        poll: float = 0.01,
        clock: Clock = time.time,
    ) -> None:
        if not _VENDOR_RE.match(vendor):
            raise ValueError(f"bad vendor name for a governor: {vendor!r}")
        self.vendor = vendor
        self._limits = tuple(limits)
        self.margin = margin
        self.lease_ttl = lease_ttl
        self.poll = poll
        self._clock = clock
        self._store: _MemoryStore | _FileStore = (
            _MemoryStore()
            if state_dir is None
            else _FileStore(Path(state_dir) / "governor", vendor)
        )
        self._waiters: set[asyncio.Future[None]] = set()

    @property
    def limits(self) -> tuple[Limit, ...]:
        return self._limits

    def update(self, limits: Sequence[Limit]) -> None:
        """Replace the limits (e.g. with the rate a vendor publishes for our plan)."""
        self._limits = tuple(limits)
        self._wake()

    def slot(self, bucket: str | None = None) -> _Slot:
        """``async with governor.slot(bucket) as lease:`` around one request."""
        return _Slot(self, bucket)

    async def acquire(self, bucket: str | None = None) -> Lease:
        """Wait until a request in ``bucket`` may start, record it, and return its lease."""
        began = self._clock()
        while True:
            grant = self._store.transact(lambda s: self._try(s, bucket, began))
            if isinstance(grant, Lease):
                return grant
            await self._sleep(grant)

    def release(self, lease: Lease) -> None:
        """End ``lease``'s in-flight hold (synchronous, so it also runs during cancellation)."""
        if not lease.holds:
            return

        def drop(state: State) -> tuple[None, bool]:
            return None, state["leases"].pop(lease.id, None) is not None

        self._store.transact(drop)
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

    def _prune(self, state: State, now: float) -> None:
        """Forget starts outside their window, ended leases and bans (in place)."""
        starts = state["starts"]
        for key in list(starts):
            try:
                horizon = float(key.rsplit("@", 1)[1]) * (1 + self.margin)
            except (IndexError, ValueError):
                horizon = 0.0
            # Starts "from the future" (the wall clock stepped back) count for one window only.
            kept = [t for t in starts[key] if now - horizon < t <= now + horizon]
            if kept:
                starts[key] = kept
            else:
                del starts[key]
        leases = state["leases"]
        for key, lease in list(leases.items()):
            if float(lease.get("expires", 0)) <= now or not _pid_alive(int(lease.get("pid", 0))):
                del leases[key]
        bans = state["bans"]
        for key, until in list(bans.items()):
            if float(until) <= now:
                del bans[key]

    def _try(self, state: State, bucket: str | None, began: float) -> tuple[Lease | float, bool]:
        """Grant a lease (and record it) if no limit is at its cap, else say how long to wait."""
        now = self._clock()
        self._prune(state, now)
        bans = state["bans"]
        wait = max((float(bans.get(k, 0.0)) - now for k in _ban_keys(bucket)), default=0.0)
        applicable = [lim for lim in self._limits if lim.applies(bucket)]
        flights: list[str] = []
        for lim in applicable:
            if lim.requests is not None:
                horizon = lim.seconds * (1 + self.margin)
                recent = sorted(state["starts"].get(lim.counter(bucket), []))
                if len(recent) >= lim.requests:
                    wait = max(wait, recent[len(recent) - lim.requests] + horizon - now)
            else:
                assert lim.in_flight is not None
                scope = lim.scope(bucket)
                held = sum(scope in lease.get("scopes", ()) for lease in state["leases"].values())
                if held >= lim.in_flight:
                    wait = max(wait, self.poll)
                flights.append(scope)
        if wait > 0:
            return wait, False
        for lim in applicable:
            if lim.requests is not None:
                state["starts"].setdefault(lim.counter(bucket), []).append(now)
        lease_id = uuid.uuid4().hex
        if flights:
            state["leases"][lease_id] = {
                "pid": os.getpid(),
                "expires": now + self.lease_ttl,
                "scopes": flights,
                "bucket": bucket,
            }
        return Lease(lease_id, bucket, now, now - began, holds=bool(flights)), True

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
