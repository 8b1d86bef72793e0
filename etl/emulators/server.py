"""A real HTTP/1.1 server on 127.0.0.1 in front of an :class:`~etl.emulators.base.Emulator`.

The stdlib ``ThreadingHTTPServer`` is used, not an ASGI stack, because the socket-level
faults need the raw connection: a TCP reset before any byte, a body cut after announcing its
full length, a hang. Keep-alive works (HTTP/1.1, every answer has a Content-Length), since
adapters pool connections. Each connection gets a thread; stopping the server shuts down the
open connections too, so no thread stays blocked on an idle keep-alive socket.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import socket
import socketserver
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Final, Self
from urllib.parse import parse_qsl, unquote, urlsplit

from etl.emulators.base import Emulator
from etl.emulators.wire import Outcome, Request

__all__ = ["HOST", "EmulatorServer"]

log = logging.getLogger(__name__)

HOST: Final = "127.0.0.1"
_IDLE_SECONDS: Final = 300  # an idle keep-alive connection is closed after this
_MAX_BODY: Final = 16 * 1024 * 1024


class EmulatorServer:
    """Serve ``emulator`` on 127.0.0.1:``port`` (0 = a free port, bound at construction).

    Use as a context manager, or :meth:`start` / :meth:`stop`. ``base_url`` is what an
    adapter is configured with (``ETL_<VENDOR>_BASE_URL``).
    """

    def __init__(self, emulator: Emulator, *, port: int = 0) -> None:
        self.emulator = emulator
        self._httpd = _HTTPServer((HOST, port), emulator)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def root_url(self) -> str:
        """``http://127.0.0.1:PORT``: where ``/_emulator/stats`` lives."""
        return f"http://{HOST}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.root_url + self.emulator.base_path

    @property
    def ws_url(self) -> str | None:
        path = self.emulator.ws_path
        return None if path is None else f"ws://{HOST}:{self.port}{path}"

    def ready(self) -> dict[str, Any]:
        """The ``--json`` ready document of ``etl emulate``."""
        return {"vendor": self.emulator.vendor, "base_url": self.base_url, "ws_url": self.ws_url}

    def stats(self) -> dict[str, Any]:
        return self.emulator.stats.snapshot()

    def reset(self) -> None:
        self.emulator.reset()

    def start(self) -> Self:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"emulator-{self.emulator.vendor}-{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, cut hangs short, close open connections, free the port."""
        self.emulator.close()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.close_connections()
        self._httpd.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], emulator: Emulator) -> None:
        self.emulator = emulator
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks the host name up (getfqdn): slow, and not needed.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = HOST, int(self.server_address[1])

    def track(self, conn: socket.socket, *, add: bool) -> None:
        with self._conn_lock:
            (self._connections.add if add else self._connections.discard)(conn)

    def close_connections(self) -> None:
        with self._conn_lock:
            conns = list(self._connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = _IDLE_SECONDS
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; with Nagle on, a keep-alive client's delayed
        # ACK stalls every answer by ~40 ms (25 requests/s per connection at most).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        if (self.headers.get("Upgrade") or "").lower() == "websocket":
            self._websocket()
            return
        self._serve()

    def _websocket(self) -> None:
        """Hand the connection to the vendor's WebSocket feed (etl.emulators.ws); it ends
        with the connection."""
        from etl.emulators.ws import serve_websocket

        url = urlsplit(self.path)
        emulator = self.server.emulator
        self.close_connection = True
        if emulator.ws_path is None or unquote(url.path) != emulator.ws_path:
            self.send_error(404, "no WebSocket here")
            return
        params: dict[str, str] = {}
        for key, value in parse_qsl(url.query, keep_blank_values=True):
            params.setdefault(key, value)
        request = Request(
            method="GET",
            path=unquote(url.path),
            params=params,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=b"",
            client=str(self.client_address[0]),
        )
        self.wfile.flush()
        serve_websocket(self.connection, emulator, request, self.path, list(self.headers.items()))

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        body = self._read_body()
        if body is None:
            return
        url = urlsplit(self.path)
        params: dict[str, str] = {}
        for key, value in parse_qsl(url.query, keep_blank_values=True):
            params.setdefault(key, value)
        request = Request(
            method=self.command,
            path=unquote(url.path),
            params=params,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            client=str(self.client_address[0]),
        )
        outcome = self.server.emulator.answer(request)
        try:
            self._write(outcome, request)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client went away mid-answer

    def _read_body(self) -> bytes | None:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= _MAX_BODY:
            self.send_error(400, "bad Content-Length")
            return None
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes | None:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                self.send_error(400, "bad chunk")
                return None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            total += size
            if total > _MAX_BODY:
                self.send_error(413, "body too large")
                return None
            parts.append(self.rfile.read(size))
            self.rfile.readline(8)

    def _write(self, outcome: Outcome, request: Request) -> None:
        if outcome.reset:
            self._reset()
            return
        if outcome.hang is not None:
            self.server.emulator.sleep(outcome.hang)
            self.close_connection = True
            return
        reply = outcome.reply
        assert reply is not None
        body = reply.body
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        accepts = (request.header("accept-encoding") or "").lower()
        if self.server.emulator.gzip_bodies and "gzip" in accepts:
            body = gzip.compress(body, mtime=0)  # mtime 0: the same answer, the same bytes
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if outcome.truncate:
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
        else:
            self.wfile.write(body)

    def _reset(self) -> None:
        """Close with RST (SO_LINGER 0) so the client sees a reset, not a clean EOF."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()  # the makefile holds a reference: the fd closes with the last one
        self.connection.close()
