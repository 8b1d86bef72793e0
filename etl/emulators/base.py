"""The base class of every vendor emulator: one request's path through auth, limits and faults.

A vendor emulator subclasses :class:`Emulator`, lists its :class:`~etl.emulators.wire.Route`
table and overrides the hooks where its protocol differs: :meth:`authenticate`,
:meth:`limit`, :meth:`over_limit`, :meth:`fault_reply`, :meth:`fault_applies`,
:meth:`not_found`. The order of the pipeline, the same for every vendor, is::

    route match (404/405) -> request counted -> faults drawn
      -> network fault (reset, hang)           wins before anything is read
      -> authenticate                          the vendor's auth error
      -> limits (bucket, rates, in-flight)     the vendor's over-limit answer, a violation
      -> decide fault (first in SPEC)          the vendor's wire form of that fault
      -> route handler                         rows, with the modify faults applied

``now`` (a frozen data clock, the real one, or a replay clock: ``speed`` market seconds per
real second from ``now``) and ``seed`` decide the data; limits, token lifetimes and
WebSocket heartbeats run on real monotonic seconds. Nothing here reads the environment: the CLI
edge passes the accepted credentials in.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

from etl.emulators.faults import SHARED_FAULTS, Fault, FaultDef, FaultPlan, parse_faults
from etl.emulators.limits import Admission, Limiter, Rate
from etl.emulators.stats import Stats
from etl.emulators.wire import Call, Outcome, Principal, Reply, Request, Route, json_reply
from etl.errors import BadInputError

__all__ = ["CONTROL_PREFIX", "Emulator", "EmulatorOptions", "Limit"]

log = logging.getLogger(__name__)

CONTROL_PREFIX = "/_emulator/"


@dataclass(frozen=True)
class EmulatorOptions:
    """Options common to every emulator (docs/vendors/README.md "Emulator").

    ``api_key`` / ``username`` / ``password``: when set, the only credentials accepted;
    None = any non-empty one. ``latency`` delays every admitted answer (holding its
    in-flight place), to exercise a client's concurrency. ``extra``: vendor-specific
    options (AmazingData ``token_ttl``), checked against the class's ``extra_options``.
    """

    now: dt.datetime | None = None
    seed: int = 0
    api_key: str | None = None
    username: str | None = None
    password: str | None = None
    faults: str = ""
    latency: float = 0.0
    extra: Mapping[str, Any] = field(default_factory=dict)
    speed: float | None = None


@dataclass(frozen=True)
class Limit:
    """The limits one request is judged by: its bucket, the rates and the in-flight cap."""

    bucket: Hashable
    rates: Sequence[Rate] = ()
    in_flight: int | None = None


class Emulator(ABC):
    """A vendor's HTTP API as a pure request -> outcome function (the server owns sockets)."""

    vendor: ClassVar[str]
    base_path: ClassVar[str] = ""  # prefix of every route ("/api/v1")
    ws_path: ClassVar[str | None] = None  # WebSocket endpoint, once the vendor has one
    gzip_bodies: ClassVar[bool] = False  # gzip when the client accepts it (mdapi)
    fault_table: ClassVar[Mapping[str, FaultDef]] = SHARED_FAULTS
    extra_options: ClassVar[Mapping[str, str]] = {}  # name -> help

    def __init__(self, options: EmulatorOptions | None = None) -> None:
        self.options = opts = options or EmulatorOptions()
        unknown = sorted(set(opts.extra) - set(self.extra_options))
        if unknown:
            known = ", ".join(sorted(self.extra_options)) or "none"
            raise BadInputError(f"unknown {self.vendor} emulator option {unknown[0]!r}: {known}")
        if opts.now is not None and opts.now.tzinfo is None:
            raise BadInputError(f"now must carry a time zone, got {opts.now.isoformat()}")
        if opts.latency < 0:
            raise BadInputError(f"latency must be >= 0 seconds, got {opts.latency}")
        if opts.speed is not None and not 0 < opts.speed <= 100_000:
            raise BadInputError(f"speed must be > 0 (market seconds per second), got {opts.speed}")
        self._start = opts.now or dt.datetime.now(dt.UTC)
        self._t0 = time.monotonic()
        self.plan = FaultPlan(parse_faults(opts.faults, self.fault_table), opts.seed)
        self.stats = Stats()
        self.limiter = Limiter()
        self._routes = tuple(self.routes())
        self._closing = threading.Event()
        self.ws_paused = threading.Event()

    # -- what subclasses provide ------------------------------------------------------------

    @abstractmethod
    def routes(self) -> Sequence[Route]:
        """The vendor's endpoints, patterns below :attr:`base_path`."""

    def authenticate(self, request: Request, route: Route) -> Principal | Reply:
        """The caller, or the vendor's auth error. Default: no auth, keyed by client IP."""
        return Principal(request.client)

    def limit(self, call: Call, route: Route) -> Limit | None:
        """The limits this request counts towards (None: not limited)."""
        return None

    def over_limit(self, call: Call, reason: str) -> Reply:
        """The vendor's over-limit answer (also what ``rate_limit_burst`` sends)."""
        return Reply(429, b"Too Many Requests", "text/plain; charset=utf-8")

    def fault_applies(self, fault: Fault, route: Route) -> bool:
        """Whether ``fault`` counts this route (see faults.py: WHEN counts these only)."""
        if fault.scope == "ws":
            return False  # counted by WebSocket connections only (etl.emulators.ws)
        if fault.scope == "kline":
            return route.category == "kline"
        if fault.scope == "data":
            return route.category in ("kline", "data")
        return True

    def fault_reply(self, fault: Fault, call: Call) -> Reply:
        """The answer a decide fault sends instead of the handler's (vendors override
        with their wire forms, and must handle their own switches)."""
        if fault.name == "rate_limit_burst":
            return self.over_limit(call, "injected")
        if fault.name == "http_500":
            return Reply(500, b"Internal Server Error", "text/plain; charset=utf-8")
        if fault.name == "malformed_json":
            return Reply(200, b'{"data": [1, 2,, <html>}', "application/json")
        if fault.name == "auth_expired":
            return Reply(401, b"Unauthorized", "text/plain; charset=utf-8")
        raise NotImplementedError(f"{self.vendor} emulator has no wire form for {fault.name}")

    def not_found(self, request: Request) -> Reply:
        return json_reply(404, {"detail": "Not Found"})

    def method_not_allowed(self, request: Request) -> Reply:
        return json_reply(405, {"detail": "Method Not Allowed"})

    def ws_session(self, request: Request) -> Any:
        """A WebSocket session for ``request`` on :attr:`ws_path` (an
        :class:`etl.emulators.ws.StreamSession`), or the vendor's refusal as a
        :class:`Reply`. Vendors with a feed override it."""
        return self.not_found(request)

    def ws_reject(self, request: Request) -> Reply:
        """The handshake answer to a refused key (the ``ws_reject`` fault)."""
        return Reply(401, b"Unauthorized", "text/plain; charset=utf-8")

    def reset(self) -> None:
        """Back to the state after start (``POST /_emulator/reset``); subclasses extend."""
        self.stats.reset()
        self.plan.reset()
        self.limiter.reset()

    # -- shared machinery -------------------------------------------------------------------

    @property
    def seed(self) -> int:
        return self.options.seed

    def now(self) -> dt.datetime:
        """The data clock: frozen at ``options.now``, else the real time (UTC); with a
        ``speed``, ``now`` plus ``speed`` times the real seconds since start."""
        speed = self.options.speed
        if speed is not None:
            return self._start + dt.timedelta(seconds=(time.monotonic() - self._t0) * speed)
        return self.options.now or dt.datetime.now(dt.UTC)

    def sleep(self, seconds: float) -> bool:
        """Wait, but wake up when the server stops; True if it is stopping."""
        return self._closing.wait(seconds)

    def close(self) -> None:
        self._closing.set()

    @property
    def closing(self) -> bool:
        return self._closing.is_set()

    def answer(self, request: Request) -> Outcome:
        """Answer one request. An admitted request holds its in-flight place while it is
        processed (latency, handler) and gives it back just before the answer is written:
        a client that waits for an answer before sending another never overlaps itself."""
        if request.path.startswith(CONTROL_PREFIX):
            return Outcome(self._control(request))
        found = self._find(request)
        if isinstance(found, Reply):
            self.stats.request(request.path)
            return self._sent(Outcome(found))
        route, path_params = found
        path = self.base_path + route.pattern
        active = self.plan.draw(self.stats.request(path), lambda f: self.fault_applies(f, route))
        winner = active.winner()
        if winner is not None and winner.role == "network":
            self.stats.fault(winner.name)
            if winner.name == "connection_reset":
                return Outcome(reset=True)
            return Outcome(hang=winner.seconds)
        who = self.authenticate(request, route) if route.auth else Principal(request.client)
        if isinstance(who, Reply):
            return self._sent(Outcome(who))
        call = Call(request, route, path_params, who, active)
        lim = self.limit(call, route)
        with self.limiter.admit(lim.bucket, lim.rates, lim.in_flight) if lim else _admitted() as v:
            if not v.ok:
                self.stats.violation(path, v.reason)
                return self._sent(Outcome(self.over_limit(call, v.reason)))
            if self.options.latency:
                self.sleep(self.options.latency)
            truncate = False
            if winner is not None and winner.name != "truncated_body":
                active.mark(winner)
                reply = self.fault_reply(winner, call)
            else:
                if winner is not None:
                    active.mark(winner)
                    truncate = True
                reply = self._handle(route, call)
        for f in active.applied:
            self.stats.fault(f.name)
        return self._sent(Outcome(reply, truncate=truncate))

    def _sent(self, outcome: Outcome) -> Outcome:
        if outcome.reply is not None:
            self.stats.status(outcome.reply.status)
        return outcome

    def _handle(self, route: Route, call: Call) -> Reply:
        try:
            return route.handler(call)
        except Exception:  # a bug in the emulator must not look like a vendor answer
            log.exception("%s emulator failed on %s", self.vendor, call.request.path)
            return Reply(500, b"emulator error (see its log)", "text/plain; charset=utf-8")

    def _find(self, request: Request) -> tuple[Route, dict[str, str]] | Reply:
        if not request.path.startswith(self.base_path):
            return self.not_found(request)
        rest = request.path[len(self.base_path) :]
        other_method = False
        for route in self._routes:
            params = route.match(rest)
            if params is None:
                continue
            if route.method == request.method:
                return route, params
            other_method = True
        return self.method_not_allowed(request) if other_method else self.not_found(request)

    def _control(self, request: Request) -> Reply:
        """``GET /_emulator/stats`` and ``POST /_emulator/reset``: outside the vendor API,
        no auth, not counted."""
        name = request.path[len(CONTROL_PREFIX) :]
        if name == "stats" and request.method == "GET":
            return json_reply(200, self.stats.snapshot())
        if name in ("ws/pause", "ws/resume") and request.method == "POST":
            # Hold every WebSocket push (heartbeats still answered): a test stops a
            # recorder knowing that nothing is in flight.
            (self.ws_paused.set if name == "ws/pause" else self.ws_paused.clear)()
            return json_reply(200, {"paused": self.ws_paused.is_set()})
        if name == "reset" and request.method == "POST":
            self.reset()
            return json_reply(200, {"reset": True})
        return json_reply(
            404, {"detail": "emulator control: GET stats, POST reset, POST ws/pause|ws/resume"}
        )


@contextmanager
def _admitted() -> Iterator[Admission]:
    yield Admission(True)
