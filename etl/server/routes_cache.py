"""``/cache/*``: detect what is missing, start cache and fill tasks, follow task records.

The request body of the platform document: ``security_type`` (``stock`` or ``future``),
``period_type`` (a period, default ``daily``), ``start_date`` and ``end_date`` (``YYYYMMDD``),
``contract_type`` (futures: ``all`` or ``main``). ``fill-missing`` also takes ``dry_run``
(true: the plan and its cost, nothing started). Tasks run in worker processes through the
default upstream configuration; their records are the ones ``etl tasks`` shows.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from etl.catalog import ensure_catalog
from etl.errors import BadInputError
from etl.server.auth import Admin, User, context, read_json
from etl.server.context import ServerContext
from etl.server.envelope import ApiError, bad_param, ok
from etl.server.launch import start_worker
from etl.tasks.cache import BOARDS, CacheRequest
from etl.tasks.detect import detect
from etl.tasks.detect_task import detect_missing_all
from etl.tasks.expected import Selection, market_symbols
from etl.tasks.fill import plan_only
from etl.tasks.records import TaskRecord, TaskStore
from etl.tasks.runtime import Runtime
from etl.vendors.amazingdata import api

__all__ = ["router"]

router = APIRouter()

MAX_PAGE_SIZE = 200
_SECURITY = {
    "stock": "stock",
    "future": "future",
    "EXTRA_STOCK_A": "stock",
    "EXTRA_FUTURE": "future",
}


def _request(body: Any, action: str, vendor: str) -> CacheRequest:
    if not isinstance(body, dict):
        raise bad_param("body")
    board = _SECURITY.get(body.get("security_type", "stock"))
    if board is None:
        raise bad_param("security_type", "stock or future")
    period = body.get("period_type", "daily")
    if period not in api.PERIODS:
        raise bad_param("period_type", " ".join(api.PERIODS))
    start = api.parse_ymd_param(body.get("start_date"), "start_date")
    end = api.parse_ymd_param(body.get("end_date"), "end_date")
    assert start is not None and end is not None
    if start > end:
        raise bad_param("start_date", "after end_date")
    contract = body.get("contract_type", "all")
    if contract not in ("all", "main"):
        raise bad_param("contract_type", "all or main")
    return CacheRequest(action, vendor, board, api.PERIODS[period], start, end, contract)  # type: ignore[arg-type]


def _runtime(ctx: ServerContext) -> Runtime:
    return Runtime(settings=ctx.settings, progress=False)


def _selections(ctx: ServerContext, req: CacheRequest) -> list[Selection]:
    """The klines selections of a request: one per market of the board with instruments."""
    out = []
    for market in BOARDS[req.board]:
        sel = Selection("klines", req.start, req.end, req.freq, (), market)
        try:
            if market_symbols(ctx.root, sel):
                out.append(sel)
        except BadInputError:  # no instruments of that market: not part of the board here
            continue
    if not out:
        raise BadInputError(
            f"no {req.board} instruments in the lake: run /cache/cache-all-missing first"
        )
    return out


def _empty_detect(req: CacheRequest, note: str) -> dict[str, Any]:
    return {
        "task_id": None, "status": "completed", "dataset": "klines", "freq": req.freq,
        "start": req.start.isoformat(), "end": req.end.isoformat(), "total_count": 0,
        "complete_count": 0, "missing_count": 0, "error_count": 0, "expected_rows": 0,
        "present_rows": 0, "daily_stats": {}, "missing_codes": [], "gaps": [], "note": note,
        "states": {"missing": 0, "confirmed_empty": 0, "failed": 0, "unfillable": 0},
    }  # fmt: skip


def _upstream(ctx: ServerContext) -> tuple[str, Any]:
    config = ctx.upstreams.default()
    if config is None:
        raise BadInputError("no upstream configuration: create one with POST /configs/sdk")
    return config.vendor, ctx.upstreams.vendor_settings(config, ctx.settings.vendor(config.vendor))


@router.post("/cache/detect-all-missing")
async def detect_all(request: Request, user: Admin) -> dict[str, Any]:
    ctx = context(request)
    req = _request(await read_json(request), "fill-missing", "sim")

    def run() -> dict[str, Any]:
        rt = _runtime(ctx)
        ensure_catalog(ctx.root, now=rt.clock())
        try:
            sels = _selections(ctx, req)
        except BadInputError as exc:  # nothing known yet: an empty document that says so
            return _empty_detect(req, str(exc))
        params = {
            "dataset": "klines", "freq": req.freq, "market": None,
            "markets": [s.market for s in sels], "symbols": [], "start": req.start.isoformat(),
            "end": req.end.isoformat(), "security_type": req.board,
        }  # fmt: skip
        return detect_missing_all(rt, sels, params)[1]

    return ok(await run_in_threadpool(run))


async def _start(ctx: ServerContext, req: CacheRequest, vendor: Any) -> TaskRecord:
    task_id = await start_worker(ctx, "cache", params=req.params(), vendor=vendor)
    return ctx_store(ctx).get(task_id)


def ctx_store(ctx: ServerContext) -> TaskStore:
    return _runtime(ctx).store


@router.post("/cache/cache-all-missing")
async def cache_all(request: Request, user: Admin) -> dict[str, Any]:
    ctx = context(request)
    name, vendor = _upstream(ctx)
    req = _request(await read_json(request), "cache-all-missing", name)
    record = await _start(ctx, req, vendor)
    return ok(
        {"task_id": record.id, "status": record.status, "total_count": record.total_count,
         "progress": record.progress}
    )  # fmt: skip


@router.post("/cache/fill-missing")
async def fill(request: Request, user: Admin) -> dict[str, Any]:
    ctx = context(request)
    body = await read_json(request)
    name, vendor = _upstream(ctx)
    req = _request(body, "fill-missing", name)
    dry_run = isinstance(body, dict) and body.get("dry_run") is True

    def measure() -> dict[str, Any]:
        sels = _selections(ctx, req)
        if dry_run:
            rt = _runtime(ctx)
            plans = [plan_only(rt, name, sel) for sel in sels]
            summed = {
                key: sum(p[key] for p in plans)
                for key in ("requests", "calls", "rows_expected", "unfillable")
            }
            seconds = sum(float(p["seconds_at_rate_limit"]) for p in plans)
            return {**summed, "seconds_at_rate_limit": round(seconds, 1), "vendor": name,
                    "rate_limit_per_second": plans[0]["rate_limit_per_second"],
                    "markets": [s.market for s in sels], "dry_run": True}  # fmt: skip
        now = dt.datetime.now(dt.UTC)
        missing = sum(
            len(detect(ctx.root, sel, now).symbols_in(("missing", "failed", "unfillable")))
            for sel in sels
        )
        return {"missing_count": missing}

    measured = await run_in_threadpool(measure)
    if dry_run:
        return ok(measured)
    record = await _start(ctx, req, vendor)
    return ok(
        {"task_id": record.id, "missing_count": measured["missing_count"], "status": record.status}
    )


def _task_doc(record: TaskRecord) -> dict[str, Any]:
    return {**record.public(), "message": record.message, "updated_at": record.updated_at}


@router.get("/cache/tasks/{task_id}")
def task(task_id: int, request: Request, user: User) -> dict[str, Any]:
    store = ctx_store(context(request))
    if not store.path(task_id).exists():
        raise ApiError(404, f"任务不存在: {task_id}")
    return ok({"task": _task_doc(store.get(task_id))})


@router.get("/cache/tasks")
def tasks(request: Request, user: User) -> dict[str, Any]:
    params = request.query_params
    try:
        page = int(params.get("page", "1"))
        if page < 1:
            raise ValueError
    except ValueError:
        raise bad_param("page") from None
    try:
        size = int(params.get("page_size", "20"))
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise ValueError
    except ValueError:
        raise bad_param("page_size", f"1 to {MAX_PAGE_SIZE}") from None
    store = ctx_store(context(request))
    ids = (
        sorted((int(p.stem) for p in store.dir.glob("*.json") if p.stem.isdigit()), reverse=True)
        if store.dir.is_dir()
        else []
    )
    items = [_task_doc(store.get(i)) for i in ids[(page - 1) * size : page * size]]
    return ok({"items": items, "total": len(ids), "page": page, "page_size": size})


@router.post("/cache/tasks/{task_id}/cancel")
def cancel(task_id: int, request: Request, user: Admin) -> dict[str, Any]:
    store = ctx_store(context(request))
    if not store.path(task_id).exists():
        raise ApiError(404, f"任务不存在: {task_id}")
    record = store.get(task_id)
    if record.status != "running":
        raise bad_param("task_id", f"task {task_id} is not running ({record.status})")
    store.request_cancel(task_id)
    return ok({"task": _task_doc(record)})


@router.post("/cache/tasks/{task_id}/resume")
async def resume(task_id: int, request: Request, user: Admin) -> dict[str, Any]:
    ctx = context(request)
    store = ctx_store(ctx)
    if not store.path(task_id).exists():
        raise ApiError(404, f"任务不存在: {task_id}")
    record = store.get(task_id)
    if record.status in ("running", "pending") or (
        record.status == "completed" and not record.error_count
    ):
        raise bad_param("task_id", f"task {task_id} is {record.status}: nothing to resume")
    vendor = None
    config = ctx.upstreams.default()
    if config is not None and config.vendor == record.params.get("vendor"):
        vendor = ctx.upstreams.vendor_settings(config, ctx.settings.vendor(config.vendor))
    await start_worker(ctx, "resume", task_id=task_id, vendor=vendor)
    return ok({"task": _task_doc(store.get(task_id))})
