"""WebSocket feeds on the emulators' HTTP ports: the socket side, shared by every vendor.

The HTTP server (:mod:`etl.emulators.server`) hands an upgrade request on the vendor's
``ws_path`` to :func:`serve_websocket`, in the connection's own thread. The WebSocket
protocol is the ``websockets`` library's sans-I/O :class:`~websockets.server.ServerProtocol`
driving the raw socket, so the faults stay socket-level: a TCP close without a close frame,
silence with the socket open, a vendor's own close, a slow server.

A vendor supplies a :class:`StreamSession` (auth is answered before it exists): what it says
on connect, how it answers a client frame, which symbols it pushes and how it encodes a
trade. The pusher walks the synthetic trade tape (:mod:`etl.emulators.tape`) on the
emulator's data clock, so ``--speed N`` replays N market seconds per second and the trades
rebuild the bars REST serves. Heartbeat deadlines run on real seconds, as a vendor's do.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from websockets.frames import Frame, Opcode
from websockets.http11 import Request as WsRequest
from websockets.server import ServerProtocol

from etl.emulators.faults import ActiveFaults
from etl.emulators.tape import Trade, trades_between
from etl.emulators.wire import Reply, Request

if TYPE_CHECKING:
    from etl.emulators.base import Emulator

__all__ = ["Close", "ConnectionCount", "StreamSession", "serve_websocket"]

log = logging.getLogger(__name__)

_TICK: Final = 0.02  # seconds between pushes and reads when idle
_MAX_BATCH: Final = 5_000  # trades taken from the tape per step (a long catch-up)


@dataclass(frozen=True)
class Close:
    """How a session ends: ``messages`` sent first, then a close frame with ``code`` (or
    none: ``frame=False`` drops the TCP connection)."""

    messages: tuple[str, ...] = ()
    code: int = 1000
    reason: str = ""
    frame: bool = True


@dataclass
class StreamSession(ABC):
    """One client connection's protocol state. Subclasses are the vendor's wire forms."""

    emulator: Emulator
    client: str
    heartbeat_timeout: float = 30.0  # real seconds without a client frame before the close
    kinds: dict[str, int] = field(default_factory=dict)  # pushes sent, by kind

    def greeting(self) -> list[str]:
        """Frames sent right after the handshake."""
        return []

    @abstractmethod
    def on_text(self, text: str) -> list[str] | Close:
        """Answer one client frame (subscribe, heartbeat...): replies, or a close."""

    @abstractmethod
    def symbols(self) -> Sequence[str]:
        """Canonical symbols whose trades this connection pushes now."""

    @abstractmethod
    def encode(self, trade: Trade) -> list[tuple[str, str]]:
        """The pushes for one trade, as (kind, frame) pairs (kind: trades, quotes...)."""

    @abstractmethod
    def idle_close(self) -> Close:
        """What the vendor does to a client silent for ``heartbeat_timeout``."""

    def fault_close(self) -> Close:
        """The vendor's own close, for the ``ws_close`` fault."""
        return self.idle_close()

    def finished(self) -> None:  # noqa: B027 - a hook; most vendors need nothing
        """The connection is gone (vendors that count connections override it)."""


def serve_websocket(
    sock: socket.socket,
    emulator: Emulator,
    request: Request,
    raw_path: str,
    raw_headers: Sequence[tuple[str, str]],
) -> None:
    """Run one WebSocket connection on ``sock`` (its upgrade request already read) until
    either side ends it."""
    faults = emulator.plan.draw(emulator.stats.ws_connection(), lambda f: f.scope == "ws")
    proto = ServerProtocol(max_size=1 << 20)
    # The HTTP server has read the upgrade request already; the protocol object parses it
    # again from these bytes, which also moves its parser on to frames.
    head = "".join(f"{name}: {value}\r\n" for name, value in raw_headers)
    proto.receive_data(f"GET {raw_path} HTTP/1.1\r\n{head}\r\n".encode("latin-1"))
    parsed = [e for e in proto.events_received() if isinstance(e, WsRequest)]
    if not parsed:
        return
    wsreq = parsed[0]
    refused: Reply | None = None
    session = None
    reject = faults.first("ws_reject")
    if reject is not None:
        faults.mark(reject)
        refused = emulator.ws_reject(request)
    else:
        opened = emulator.ws_session(request)
        if isinstance(opened, Reply):
            refused = opened
        else:
            session = opened
    for f in faults.applied:
        emulator.stats.fault(f.name)
    if refused is not None or session is None:
        reply = refused or Reply(500, b"no session", "text/plain")
        response = proto.reject(reply.status, reply.body.decode("utf-8", "replace"))
        emulator.stats.ws_refused(reply.status)
        proto.send_response(response)
        _flush(sock, proto)
        return
    response = proto.accept(wsreq)
    proto.send_response(response)
    if not _flush(sock, proto):
        return
    try:
        _Pusher(sock, proto, emulator, session, faults).run()
    finally:
        session.finished()
        emulator.stats.ws_closed({})


def _flush(sock: socket.socket, proto: ServerProtocol) -> bool:
    try:
        for data in proto.data_to_send():
            if data:
                sock.sendall(data)
        return True
    except OSError:
        return False


class _Pusher:
    """The connection's loop: read client frames, push due trades, apply the faults."""

    def __init__(
        self,
        sock: socket.socket,
        proto: ServerProtocol,
        emulator: Emulator,
        session: StreamSession,
        faults: ActiveFaults,
    ) -> None:
        self.sock, self.proto, self.emulator, self.session = sock, proto, emulator, session
        self.faults = faults
        self.sent = 0
        self.cursor_ms = _ms(emulator)
        self.last_heard = time.monotonic()
        self.held: list[tuple[str, str]] = []
        self.slow = faults.first("ws_slow")
        self.next_flush = time.monotonic() + (self.slow.seconds if self.slow else 0)
        self.stalled = False
        self.alive = True
        self.started = False  # pushing to subscribed symbols (Stats.ws_started)

    def run(self) -> None:
        for frame in self.session.greeting():
            self.proto.send_text(frame.encode())
        if not _flush(self.sock, self.proto):
            return
        self.sock.settimeout(_TICK)
        while self.alive and not self.emulator.closing:
            if not self._read():
                break
            if self.stalled:
                continue
            if time.monotonic() - self.last_heard > self.session.heartbeat_timeout:
                self._close(self.session.idle_close())
                break
            self._push()

    # -- reading --------------------------------------------------------------------------

    def _read(self) -> bool:
        """Take the client's frames, if any; False once the connection is over."""
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return True
        except OSError:
            self.alive = False
            return False
        if not data:
            self.proto.receive_eof()
            self.alive = False
            return False
        self.proto.receive_data(data)
        for event in self.proto.events_received():
            if not isinstance(event, Frame):
                continue
            if self.stalled:
                continue  # a stalled server neither answers nor closes
            if event.opcode is Opcode.TEXT:
                self.last_heard = time.monotonic()
                answer = self.session.on_text(bytes(event.data).decode("utf-8", "replace"))
                if isinstance(answer, Close):
                    self._close(answer)
                    return False
                for frame in answer:
                    self.proto.send_text(frame.encode())
            elif event.opcode is Opcode.CLOSE:
                self.alive = False  # the protocol object queued the close answer
            elif event.opcode is Opcode.PING:
                self.last_heard = time.monotonic()
        if not self.stalled and not _flush(self.sock, self.proto):
            self.alive = False
        return self.alive

    # -- pushing --------------------------------------------------------------------------

    def _push(self) -> None:
        if self.emulator.ws_paused.is_set():
            return
        now_ms = _ms(self.emulator)
        symbols = self.session.symbols()
        if now_ms <= self.cursor_ms:
            return
        if symbols and not self.started:
            self.started = True
            self.emulator.stats.ws_started(self.cursor_ms)
        trades: list[Trade] = []
        for symbol in symbols:
            trades += trades_between(symbol, self.cursor_ms, now_ms, self.emulator.seed)
        self.cursor_ms = now_ms
        trades.sort(key=lambda t: (t.t_ms, t.symbol))
        for trade in trades[:_MAX_BATCH]:
            for kind, frame in self.session.encode(trade):
                if self._fault_due():
                    return
                self.held.append((kind, frame))
                self.sent += 1
        if self.slow is not None and time.monotonic() < self.next_flush:
            return
        if self.slow is not None:
            self.next_flush = time.monotonic() + self.slow.seconds
        self._send_held()

    def _send_held(self) -> None:
        if not self.held:
            return
        counts: dict[str, int] = {}
        for kind, frame in self.held:
            self.proto.send_text(frame.encode())
            counts[kind] = counts.get(kind, 0) + 1
        self.held.clear()
        if not _flush(self.sock, self.proto):
            self.alive = False
            return  # not delivered: not counted as pushed
        for kind, n in counts.items():
            self.session.kinds[kind] = self.session.kinds.get(kind, 0) + n
            self.emulator.stats.ws_pushed(kind, n)

    def _fault_due(self) -> bool:
        """Apply the first drop/stall/close whose push count is reached; True if one was."""
        for name in ("ws_drop", "ws_stall", "ws_close"):
            fault = self.faults.first(name)
            if fault is None or self.sent < int(fault.seconds):
                continue
            self.emulator.stats.fault(name)
            self._send_held()
            if name == "ws_drop":
                self._drop()
            elif name == "ws_stall":
                self.stalled = True
            else:
                self._close(self.session.fault_close())
            return True
        return False

    def _close(self, close: Close) -> None:
        for text in close.messages:
            self.proto.send_text(text.encode())
        if close.frame:
            self.proto.send_close(close.code, close.reason)
            _flush(self.sock, self.proto)
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_WR)
            _drain(self.sock)
        else:
            _flush(self.sock, self.proto)
            self._drop()
        self.alive = False

    def _drop(self) -> None:
        """Close the TCP connection with no close frame: FIN after the data already sent,
        then read what the client still sends until it closes too. Closing with unread
        input would send a reset, and a reset discards what the client has not read yet:
        the pushes counted as sent would not all arrive."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)
        _drain(self.sock)
        self.alive = False


def _drain(sock: socket.socket, limit: float = 5.0) -> None:
    """Read and discard until the peer closes (or ``limit`` seconds)."""
    deadline = time.monotonic() + limit
    with contextlib.suppress(OSError):
        while time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            if not sock.recv(65536):
                return


def _ms(emulator: Emulator) -> int:
    return int(emulator.now().timestamp() * 1000)


class ConnectionCount:
    """Open connections per client address (mdapi allows 6 per IP)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[str, int] = {}

    def take(self, client: str, limit: int) -> bool:
        with self._lock:
            if self._open.get(client, 0) >= limit:
                return False
            self._open[client] = self._open.get(client, 0) + 1
            return True

    def give(self, client: str) -> None:
        with self._lock:
            self._open[client] = max(0, self._open.get(client, 0) - 1)
