"""Running the server: a socket bound first (so ``--port 0`` can say which port it got), then
uvicorn on it until SIGTERM or Ctrl-C, either of which ends it with exit 0."""

from __future__ import annotations

import datetime as dt
import logging
import socket
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from etl.server.context import ServerContext

if TYPE_CHECKING:
    from types import FrameType

    import uvicorn

__all__ = ["bind", "serve"]

log = logging.getLogger("etl.server")


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def serve(
    ctx: ServerContext,
    sock: socket.socket,
    *,
    ready: Callable[[], None],
    access_log: bool = False,
) -> None:
    import uvicorn

    from etl.server.app import create_app

    app: Any = create_app(ctx)
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=access_log,
        lifespan="off",
        timeout_graceful_shutdown=5,
        server_header=False,
    )
    server = _stopping_server()(config)

    original = server.startup

    async def startup(sockets: list[socket.socket] | None = None) -> None:
        await original(sockets=sockets)
        ready()

    server.startup = startup  # type: ignore[method-assign]
    server.run(sockets=[sock])
    sys.stderr.flush()


def _stopping_server() -> type[uvicorn.Server]:
    import uvicorn

    class StoppingServer(uvicorn.Server):
        """A uvicorn server for which SIGTERM and SIGINT are the normal way to stop: it shuts
        down and ``etl serve`` exits 0. uvicorn re-raises a signal it caught once it has
        shut down, so the process died of SIGTERM (143) or ended in KeyboardInterrupt (130,
        "interrupted", which is for tasks left resumable; a server leaves none)."""

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            super().handle_exit(sig, frame)  # a second Ctrl-C still forces the exit
            self._captured_signals.clear()

    return StoppingServer


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
