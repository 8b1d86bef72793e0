"""The platform's envelope ``{"code", "message", "data"}`` and what becomes which code.

``code`` equals the HTTP status. 400 names the bad parameter (``参数错误: <param>``), 401 is a
missing, bad or expired token, 403 a signed-in account that may not do this, 404 an unknown
path, a method a path does not answer (the document has no 405) or a code the lake does not
know, 429 too many wrong passwords, 500 anything unexpected:
its message never carries a traceback or an exception's text (the log has the traceback).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from etl.errors import BadInputError, ConfigError, EtlError, TaskConflict
from etl.vendors.amazingdata import api

__all__ = ["ApiError", "bad_param", "install_handlers", "ok"]

log = logging.getLogger("etl.server")

MSG_FORBIDDEN = "禁止访问"
MSG_NOT_FOUND = "Not Found"
MSG_INTERNAL = "服务器内部错误"


class ApiError(Exception):
    """An answer other than 200: status (= envelope code) and message."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def bad_param(param: str, detail: str | None = None) -> ApiError:
    """400 naming the parameter (and, after it, what is wrong when that helps)."""
    message = api.param_message(param)
    return ApiError(400, f"{message} ({detail})" if detail else message)


def ok(data: Any, message: str = api.MSG_OK) -> dict[str, Any]:
    return api.envelope(200, message, data)


def reply(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(api.envelope(status, message, None), status_code=status, headers=headers)


def _param_of(exc: RequestValidationError) -> str:
    for error in exc.errors():
        loc = [str(p) for p in error.get("loc", ()) if p not in ("query", "path", "body")]
        if loc:
            return loc[0]
    return "body"


def install_handlers(app: FastAPI) -> None:
    """Every error leaves as the envelope; unexpected ones as a bare 500."""

    @app.exception_handler(ApiError)
    async def _api(request: Request, exc: ApiError) -> JSONResponse:
        return reply(exc.status, exc.message, exc.headers)

    @app.exception_handler(api.ParamError)
    async def _param(request: Request, exc: api.ParamError) -> JSONResponse:
        return reply(400, api.param_message(exc.param))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return reply(400, api.param_message(_param_of(exc)))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code in (404, 405):  # the document has no 405: no such method, no resource
            allow = (exc.headers or {}).get("Allow")
            return reply(404, MSG_NOT_FOUND, {"Allow": allow} if allow else None)
        return reply(exc.status_code, str(exc.detail))

    @app.exception_handler(EtlError)
    async def _etl(request: Request, exc: EtlError) -> JSONResponse:
        if isinstance(exc, BadInputError):
            name = exc.fields.get("field")
            text = exc.bare_message
            return reply(400, f"{api.param_message(str(name))} ({text})" if name else text)
        if isinstance(exc, TaskConflict):
            return reply(400, exc.bare_message)  # the platform API has no 409: the message says why
        if isinstance(exc, ConfigError):
            return reply(500, exc.bare_message)
        log.error("request %s %s failed: %s", request.method, request.url.path, exc)
        return reply(500, MSG_INTERNAL)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("request %s %s failed", request.method, request.url.path)
        return reply(500, MSG_INTERNAL)
