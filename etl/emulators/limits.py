"""Rate limits as the vendors enforce them: sliding windows, in-flight caps and bans.

A request is judged at its arrival, against the arrivals of the same bucket (a user, a key,
an IP, or mdapi's (endpoint, product) pair) within each window. Every vendor spec says how
it behaves over the limit; the pieces here cover all of them:

- :class:`Rate` ``limit`` requests per ``window`` seconds, sliding; ``count_refused`` says
  whether a refused request still takes a place in the window (Infoway and StockTV: no);
- ``ban`` seconds: after a refusal the whole bucket is refused until the ban ends, and
  requests during the ban neither count nor extend it (mdapi);
- an in-flight cap: requests of the bucket being handled at once (AmazingData: 2).

Windows use a monotonic clock, never the emulator's data clock: ``now`` may be frozen at a
date, while limits are about real seconds between real requests.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

__all__ = ["Admission", "Limiter", "Rate"]


@dataclass(frozen=True)
class Rate:
    """At most ``limit`` requests in any ``window`` seconds (sliding)."""

    limit: int
    window: float = 1.0
    count_refused: bool = False
    ban: float = 0.0  # seconds the bucket stays refused after going over this rate


@dataclass(frozen=True)
class Admission:
    """The verdict on one request: admitted, or refused with the reason (``rate``,
    ``in_flight`` or ``banned``)."""

    ok: bool
    reason: str = ""


@dataclass
class _Bucket:
    arrivals: dict[Rate, deque[float]] = field(default_factory=dict)
    in_flight: int = 0
    banned_until: float = 0.0


class Limiter:
    """All buckets of one emulator. Thread-safe; ``clock`` is injectable for unit tests."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[Hashable, _Bucket] = {}
        self._lock = threading.Lock()

    @contextmanager
    def admit(
        self, bucket: Hashable, rates: Sequence[Rate] = (), in_flight: int | None = None
    ) -> Iterator[Admission]:
        """Judge one arrival; an admitted request holds its in-flight place until the
        ``with`` block ends (its answer is ready to be written)."""
        verdict = self._judge(bucket, rates, in_flight)
        try:
            yield verdict
        finally:
            if verdict.ok and in_flight is not None:
                with self._lock:
                    self._buckets[bucket].in_flight -= 1

    def _judge(self, key: Hashable, rates: Sequence[Rate], cap: int | None) -> Admission:
        with self._lock:
            now = self._clock()
            b = self._buckets.setdefault(key, _Bucket())
            if now < b.banned_until:
                return Admission(False, "banned")
            over = []
            for rate in rates:
                q = b.arrivals.setdefault(rate, deque())
                while q and q[0] <= now - rate.window:
                    q.popleft()
                if len(q) + 1 > rate.limit:
                    over.append(rate)
            busy = cap is not None and b.in_flight >= cap
            if over or busy:
                for rate in rates:
                    if rate.count_refused:
                        b.arrivals[rate].append(now)
                ban = max((r.ban for r in over), default=0.0)
                if ban:
                    b.banned_until = now + ban
                return Admission(False, "rate" if over else "in_flight")
            for rate in rates:
                b.arrivals[rate].append(now)
            if cap is not None:
                b.in_flight += 1
            return Admission(True)

    def ban(self, bucket: Hashable, seconds: float) -> None:
        """Refuse ``bucket`` for ``seconds`` from now (an injected mdapi burst)."""
        with self._lock:
            b = self._buckets.setdefault(bucket, _Bucket())
            b.banned_until = max(b.banned_until, self._clock() + seconds)

    def reset(self) -> None:
        """Forget every window and ban (requests still in flight keep their place)."""
        with self._lock:
            for b in self._buckets.values():
                b.arrivals.clear()
                b.banned_until = 0.0
