"""Running the server: a socket bound first (so ``--port 0`` can say which port it got), then
uvicorn on it until SIGTERM or Ctrl-C."""

from __future__ import annotations

import datetime as dt
import logging
import socket
import sys
from collections.abc import Callable
from typing import Any

from etl.server.context import ServerContext

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
    server = uvicorn.Server(config)

    original = server.startup

    async def startup(sockets: list[socket.socket] | None = None) -> None:
        await original(sockets=sockets)
        ready()

    server.startup = startup  # type: ignore[method-assign]
    server.run(sockets=[sock])
    sys.stderr.flush()


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
