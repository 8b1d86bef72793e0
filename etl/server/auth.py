"""Signing in (``POST /auth/login``), ``GET /auth/me``, and the dependencies that guard every
other endpoint: a valid bearer token (401 otherwise), and the admin role where an endpoint
changes configurations or starts tasks (403 otherwise)."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, get_type_hints

from fastapi import APIRouter, Depends, Request, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from etl.server.accounts import Account
from etl.server.context import ServerContext
from etl.server.envelope import MSG_FORBIDDEN, ApiError, bad_param, ok
from etl.vendors.amazingdata import api

__all__ = ["Admin", "SignedInRoute", "User", "context", "read_json", "router"]

router = APIRouter()


def context(request: Request) -> ServerContext:
    ctx: ServerContext = request.app.state.ctx
    return ctx


async def read_json(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise bad_param("body", "not JSON") from None


async def current_user(request: Request) -> Account:
    """The signed-in account (401 otherwise). Async: it is a cached token check and one
    ``stat`` of the accounts file, cheaper than a worker thread's turn (a sync dependency
    runs in one, on every request)."""
    ctx = context(request)
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, api.MSG_TOKEN, {"WWW-Authenticate": "Bearer"})
    claims = ctx.signer.verify(token.strip())
    account = None
    if claims is not None and str(claims.get("sub", "")).isdigit():
        account = ctx.users.get(int(claims["sub"]))
    if (
        claims is None
        or account is None
        or not account.is_active
        or account.username != claims.get("name")
    ):
        raise ApiError(401, api.MSG_TOKEN, {"WWW-Authenticate": "Bearer"})
    return account


class SignedInRoute(APIRoute):
    """A route that answers signed-in accounts only (401 otherwise), checked before anything
    else of the request: ``APIRouter(route_class=SignedInRoute)`` guards every route of a
    router, as ``dependencies=[Depends(current_user)]`` would, for endpoints that do not need
    the account itself.

    Why not that dependency: the data endpoints answer a symbol-year in about a millisecond,
    of which FastAPI's solving of the dependency took ~50 us and its parameter handling of an
    endpoint that takes the request alone ~30 us more. Such an endpoint (``async``, one
    parameter, the :class:`Request`, answering a :class:`Response` it encoded itself) has
    nothing to solve or serialise: it is called as it is. Any other goes through FastAPI."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = _request_alone(self.endpoint) or super().get_route_handler()

        async def signed_in(request: Request) -> Response:
            await current_user(request)
            return await handler(request)

        return signed_in


def _request_alone(endpoint: Callable[..., Any]) -> Callable[[Request], Any] | None:
    """``endpoint`` itself if it is ``async def f(request: Request) -> Response``."""
    if not inspect.iscoroutinefunction(endpoint):
        return None
    hints = get_type_hints(endpoint)
    parameters = list(inspect.signature(endpoint).parameters.values())
    if len(parameters) != 1 or hints.get(parameters[0].name) is not Request:
        return None
    returned = hints.get("return")
    if not (isinstance(returned, type) and issubclass(returned, Response)):
        return None
    return endpoint


async def admin_user(account: Annotated[Account, Depends(current_user)]) -> Account:
    if account.role != "admin":
        raise ApiError(403, f"{MSG_FORBIDDEN}: needs the admin role (etl users add --role admin)")
    return account


User = Annotated[Account, Depends(current_user)]
Admin = Annotated[Account, Depends(admin_user)]


@router.post("/auth/login")
async def login(request: Request) -> dict[str, Any]:
    ctx = context(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise bad_param("body")
    for name in ("username", "password"):
        if not isinstance(body.get(name), str) or not body[name]:
            raise bad_param(name)
    username, password = body["username"], body["password"]
    address = request.client.host if request.client else "?"
    wait = ctx.throttle.retry_after(username, address)
    if wait > 0:
        raise ApiError(429, api.MSG_TOO_MANY, {"Retry-After": str(math.ceil(wait))})
    account = await run_in_threadpool(ctx.users.verify, username, password)
    if account is None:
        ctx.throttle.failed(username, address)
        raise ApiError(401, api.MSG_LOGIN_FAILED)
    ctx.throttle.succeeded(username, address)
    token = ctx.signer.issue(account.id, account.username)
    data = {"access_token": token, "token_type": "bearer", "expires_in": ctx.signer.ttl}
    return ok(data, api.MSG_LOGIN_OK)


@router.get("/auth/me")
def me(account: User) -> dict[str, Any]:
    return ok(account.public())
