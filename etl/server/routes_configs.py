"""``/configs/sdk``: the upstream configurations the server's tasks fetch from.

Listing and reading are open to every signed-in account; creating, changing, deleting and
testing need the admin role. Secrets are accepted, stored encrypted and never answered back.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request

from etl.errors import AuthError, ConfigError, VendorError
from etl.server.auth import Admin, User, context, read_json
from etl.server.context import ServerContext
from etl.server.envelope import ApiError, bad_param, ok
from etl.tasks.runtime import Runtime
from etl.upstreams import UpstreamConfig

__all__ = ["check_upstream", "router"]

router = APIRouter()


def _get(ctx: ServerContext, config_id: int) -> UpstreamConfig:
    for config in ctx.upstreams.all():
        if config.id == config_id:
            return config
    raise ApiError(404, f"配置不存在: {config_id}")


async def _body(request: Request) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise bad_param("body")
    return body


@router.get("/configs/sdk")
def list_configs(request: Request, user: User) -> dict[str, Any]:
    items = [c.public() for c in context(request).upstreams.all()]
    return ok({"items": items, "total": len(items)})


@router.post("/configs/sdk")
async def create_config(request: Request, user: Admin) -> dict[str, Any]:
    config = context(request).upstreams.create(await _body(request))
    return ok(config.public())


@router.get("/configs/sdk/{config_id}")
def get_config(config_id: int, request: Request, user: User) -> dict[str, Any]:
    return ok(_get(context(request), config_id).public())


@router.put("/configs/sdk/{config_id}")
async def update_config(config_id: int, request: Request, user: Admin) -> dict[str, Any]:
    ctx = context(request)
    _get(ctx, config_id)
    return ok(ctx.upstreams.update(config_id, await _body(request)).public())


@router.delete("/configs/sdk/{config_id}")
def delete_config(config_id: int, request: Request, user: Admin) -> dict[str, Any]:
    ctx = context(request)
    _get(ctx, config_id)
    ctx.upstreams.delete(config_id)
    return ok({"id": config_id, "deleted": True})


async def check_upstream(ctx: ServerContext, config: UpstreamConfig) -> dict[str, Any]:
    """``etl vendors check`` for one configuration: log in once, ``success``, ``message``
    and ``response_time`` (seconds)."""
    began = time.perf_counter()
    vendors = dict(ctx.settings.vendors)
    vendors[config.vendor] = ctx.upstreams.vendor_settings(config, vendors.get(config.vendor))
    from dataclasses import replace

    rt = Runtime(settings=replace(ctx.settings, vendors=vendors), progress=False)
    try:
        adapter = rt.adapter(config.vendor)
        result = await adapter.check()
    except (ConfigError, AuthError, VendorError) as exc:
        return {"success": False, "message": str(exc), "response_time": time.perf_counter() - began}
    finally:
        await rt.aclose()
    return result.as_dict()


@router.post("/configs/sdk/{config_id}/test")
async def test_config(config_id: int, request: Request, user: Admin) -> dict[str, Any]:
    ctx = context(request)
    return ok(await check_upstream(ctx, _get(ctx, config_id)))
