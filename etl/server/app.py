"""The ASGI application: ``/api/v1`` (the platform API) and ``/`` (web pages).

Request bodies are bounded (:data:`MAX_BODY`), whatever the client announces: a body that
grows past it mid-stream is cut off with 400 as well.
"""

from __future__ import annotations

import json
from typing import Any, Final

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from etl.server import auth, pages, routes_cache, routes_configs, routes_data
from etl.server.context import ServerContext
from etl.server.envelope import install_handlers
from etl.vendors.amazingdata import api

__all__ = ["MAX_BODY", "create_app"]

MAX_BODY: Final = 256 * 1024


class _TooLarge(Exception):
    pass


class BodyLimit:
    """400 ``参数错误: body`` for a request body over ``limit`` bytes."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and (not value.isdigit() or int(value) > self.limit):
                await _reject(send, self.limit)
                return
        seen = 0
        started = False

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        async def tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, tracking)
        except _TooLarge:
            if not started:
                await _reject(send, self.limit)


async def _reject(send: Send, limit: int) -> None:
    body = json.dumps(
        api.envelope(400, f"{api.param_message('body')} (over {limit // 1024} KiB)", None),
        ensure_ascii=False,
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 400,
            "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": body})


def create_app(ctx: ServerContext) -> Any:
    app = FastAPI(
        title="etl serve",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # the platform document is the API's description
    )
    app.state.ctx = ctx
    install_handlers(app)
    # the data router first: this FastAPI matches a request against every route of the
    # routers included before the one that answers it, ~10 us a route; no two routers
    # share a path, so the order decides nothing else
    routers = (routes_data.router, auth.router, routes_configs.router, routes_cache.router)
    for router in (*routers, pages.api_router):
        app.include_router(router, prefix=api.BASE_PATH)
    app.include_router(pages.page_router)
    return BodyLimit(app, MAX_BODY)
