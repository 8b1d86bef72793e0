"""A tiny scripted HTTP/1.1 server on 127.0.0.1 for the vendor-layer tests.

Raw sockets rather than ``http.server`` so that a test can misbehave the way networks do:
reset a connection, hang, announce a Content-Length and close halfway. Each connection is
served in its own thread with keep-alive; ``handler(request) -> Reply`` decides every answer.
"""

from __future__ import annotations

import contextlib
import gzip as gzip_module
import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

Action = Literal["send", "reset", "close", "hang", "truncate"]


@dataclass
class Request:
    method: str
    target: str  # path and query, as sent
    headers: dict[str, str]  # lower-case names
    body: bytes
    at: float  # time.monotonic() at arrival
    connection: int  # which TCP connection carried it (keep-alive checks)

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(urlsplit(self.target).query).items()}

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: Any = b""  # bytes and str go as they are, anything else as JSON
    headers: dict[str, str] = field(default_factory=dict)
    action: Action = "send"
    hang: float = 5.0
    gzip: bool = False

    def payload(self) -> bytes:
        if isinstance(self.body, bytes):
            data = self.body
        elif isinstance(self.body, str):
            data = self.body.encode()
        else:
            data = json.dumps(self.body, ensure_ascii=False).encode()
        return gzip_module.compress(data) if self.gzip else data


Handler = Callable[[Request], Reply]


def script(*replies: Reply) -> Handler:
    """A handler answering with ``replies`` in turn, the last one for ever after."""
    queue = list(replies)

    def handle(_: Request) -> Reply:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return handle


class StubServer:
    """``with StubServer(handler) as server:`` serves ``server.url`` until the block ends."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[Request] = []
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._sock.settimeout(0.05)  # accept() wakes up to notice the stop
        self.port = self._sock.getsockname()[1]
        self._conns: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> StubServer:
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._threads[0].join(timeout=5)  # the accept loop: no new connections after this
        self._sock.close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout=5)

    def _accept(self) -> None:
        counter = 0
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            counter += 1
            with self._lock:
                self._conns.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn, counter), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, conn: socket.socket, number: int) -> None:
        reader = conn.makefile("rb")
        try:
            for request in self._read_requests(reader, number):
                self.requests.append(request)
                reply = self.handler(request)
                if not self._answer(conn, reply):
                    return
        except OSError:
            return
        finally:
            reader.close()
            conn.close()

    def _read_requests(self, reader: Any, number: int) -> Iterator[Request]:
        while not self._stop.is_set():
            line = reader.readline()
            if not line.strip():
                return
            method, target, _ = line.decode("latin-1").split(" ", 2)
            headers: dict[str, str] = {}
            while (raw := reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = raw.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            body = reader.read(int(headers.get("content-length", "0") or 0))
            yield Request(method, target, headers, body, time.monotonic(), number)

    def _answer(self, conn: socket.socket, reply: Reply) -> bool:
        """Send ``reply``; False when the connection is finished."""
        if reply.action == "reset":  # RST instead of FIN
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        if reply.action == "close":
            return False
        if reply.action == "hang":
            self._stop.wait(reply.hang)
            return False
        body = reply.payload()
        headers = {"Content-Type": "application/json; charset=utf-8", **reply.headers}
        if reply.gzip:
            headers["Content-Encoding"] = "gzip"
        headers["Content-Length"] = str(len(body))
        head = f"HTTP/1.1 {reply.status} X\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in headers.items()
        )
        data = head.encode("latin-1") + b"\r\n" + body
        if reply.action == "truncate":
            conn.sendall(data[: len(data) - max(1, len(body) // 2)])
            return False
        conn.sendall(data)
        return True
