"""Data endpoints, answered from the lake in the platform's wire forms (only what is stored).

Multi-code answers follow the platform: one key per code the lake knows (``[]`` when it holds
no rows of it in the range), unknown codes left out, 404 when no code is known. A code is
only compared with the lake's known set and passed to a Parquet filter as a value: it never
becomes a path or SQL text.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Final

import orjson
import polars as pl
import pyarrow as pa
from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from etl.server.auth import SignedInRoute, context, read_json
from etl.server.context import ServerContext
from etl.server.envelope import ApiError
from etl.vendors.amazingdata import api
from etl.vendors.amazingdata.wire import statement_items

__all__ = ["router"]

router = APIRouter(route_class=SignedInRoute)  # every data endpoint: signed-in accounts only

FUTURE_MARKETS: Final = frozenset({"CFE", "SHF", "DCE", "CZC", "INE"})
_MARKET_ORDER: Final = {"SH": 0, "SZ": 1, "BJ": 2, "CFE": 3}


def respond(data: Any) -> Response:
    """The envelope as UTF-8 JSON bytes (orjson: bars come by the thousand; a NaN, which
    the stdlib would write as the non-JSON ``NaN``, is written ``null``)."""
    body = orjson.dumps(api.envelope(200, api.MSG_OK, data))
    return Response(body, media_type="application/json")


def _market(code: str) -> str:
    return code.rsplit(".", 1)[-1]


def _today(ctx: ServerContext) -> dt.date:
    return ctx.clock().astimezone(dt.timezone(dt.timedelta(hours=8))).date()


# -- klines ------------------------------------------------------------------------------------


def _labels(frame: pl.DataFrame, period: str) -> list[str]:
    """:func:`api.bar_label` over a frame's column at once: the session date, or for
    minute periods the bar's start at UTC+8 (China keeps no daylight saving)."""
    if period.startswith("min"):
        local = frame["ts"].dt.replace_time_zone(None) + dt.timedelta(hours=8)
        return local.dt.strftime("%Y-%m-%d %H:%M:%S").to_list()
    return frame["trade_date"].dt.strftime("%Y-%m-%d").to_list()


def encode_frame(frame: pl.DataFrame, period: str, future: bool) -> list[dict[str, Any]]:
    """One symbol's bars in the wire form as dicts, from its columns (the chart's source;
    the kline answers use :func:`frame_json`)."""
    column = frame.get_column
    return api.encode_bars(
        labels=_labels(frame, period), open=column("open").to_list(),
        high=column("high").to_list(), low=column("low").to_list(),
        close=column("close").to_list(), volume=column("volume").to_list(),
        amount=column("amount").to_list(), settle=column("settle").to_list(),
        open_interest=column("open_interest").to_list(), period=period, future=future,
    )  # fmt: skip


def frame_json(frame: pl.DataFrame | pa.Table, period: str, future: bool) -> orjson.Fragment:
    """One symbol's bars (a frame of the read path, or its Arrow table) as the JSON text of
    :func:`encode_frame`'s list, byte for byte (:func:`api.bars_json`), for the envelope to
    embed as it is: no per-bar dict, and futures' columns only read for futures."""

    def column(name: str) -> Any:
        if isinstance(frame, pa.Table):
            return frame.column(name).to_numpy()  # NaN where null, as polars' to_numpy
        return frame.get_column(name).to_numpy()

    extra = {"settle": column("settle"), "open_interest": column("open_interest")} if future else {}
    labels = api.bar_label_texts(column("ts"), column("trade_date"), period)
    return orjson.Fragment(
        api.bars_json(
            labels=labels, open=column("open"), high=column("high"), low=column("low"),
            close=column("close"), volume=column("volume"), amount=column("amount"),
            period=period, future=future, **extra,
        )
    )  # fmt: skip


def kline_data(
    ctx: ServerContext,
    query: api.KlineQuery,
    board: str,
    adjust: str | None = None,
    dicts: bool = False,
) -> dict[str, Any]:
    """``data`` of a kline answer: each known code's bars as JSON text (``dicts``: as the
    wire dicts, for the chart). One code's bars are the read path's Arrow table, encoded as
    they are: making them a polars frame first was half of the read."""
    future = board == "future"
    known = ctx.reader.known_of("klines", query.codes)
    codes = [c for c in known if (_market(c) in FUTURE_MARKETS) == future]
    if not codes:
        raise ApiError(404, api.unknown_message(query.codes))
    data: dict[str, Any] = {code: [] for code in codes}
    if len(codes) == 1 and not dicts:
        table = ctx.reader.bar_table(codes[0], query.freq, query.start, query.end, adjust=adjust)
        if table.num_rows:
            data[codes[0]] = frame_json(table, query.period, future)
        return data
    frame = ctx.reader.bars(codes, query.freq, query.start, query.end, adjust=adjust)
    if len(codes) == 1:
        parts = {codes[0]: frame} if frame.height else {}
    else:
        parts = {key[0]: part for key, part in frame.partition_by("symbol", as_dict=True).items()}
    encode = encode_frame if dicts else frame_json
    for code, part in parts.items():
        data[str(code)] = encode(part, query.period, future)
    return data


ADJUSTS: Final = {"raw": None, "qfq": "qfq", "hfq": "hfq"}


def adjust_param(params: Mapping[str, str]) -> str | None:
    """``adjust`` (not the seed's: the warehouse's own, for the chart page): ``raw`` (or
    absent), ``qfq`` (forward-adjusted, the latest bar as stored) or ``hfq``
    (backward-adjusted), as ``etl.Warehouse.bars(adjust=...)`` adjusts them."""
    value = params.get("adjust", "raw")
    if value not in ADJUSTS:
        raise ApiError(400, f"{api.param_message('adjust')} (raw, qfq or hfq)")
    return ADJUSTS[value]


def _small(query: api.KlineQuery) -> bool:
    """A read short enough to answer on the event loop: one code, daily or longer bars (a
    symbol-year takes ~1 ms), or a few days of minutes. Handing it to a worker thread cost
    more than the read (and under load the threads' turns at the GIL made the slow tail);
    larger reads still go to a thread so they never hold up the others."""
    if len(query.codes) != 1:
        return False
    return not query.period.startswith("min") or (query.end - query.start).days < 5


async def answer_klines(
    ctx: ServerContext,
    query: api.KlineQuery,
    board: str,
    adjust: str | None = None,
    dicts: bool = False,
) -> dict[str, Any]:
    if _small(query):
        return kline_data(ctx, query, board, adjust, dicts)
    return await run_in_threadpool(kline_data, ctx, query, board, adjust, dicts)


@router.get("/stock/kline")
async def stock_kline(request: Request) -> Response:
    params = request.query_params
    query = api.kline_query(dict(params), batch=False)
    return respond(await answer_klines(context(request), query, "stock", adjust_param(params)))


@router.post("/stock/kline/batch")
async def stock_kline_batch(request: Request) -> Response:
    query = api.kline_query(await read_json(request), batch=True)
    return respond(await answer_klines(context(request), query, "stock"))


@router.get("/future/kline")
async def future_kline(request: Request) -> Response:
    query = api.kline_query(dict(request.query_params), batch=False)
    return respond(await answer_klines(context(request), query, "future"))


@router.get("/stock/kline/{code}/chart")
async def stock_chart(code: str, request: Request) -> Response:
    """The platform's chart form (ECharts): dates, ``[open, close, low, high, volume]``, and
    volumes. ``period`` defaults to ``daily``; a stock's prices may be adjusted (``adjust``)."""
    params = {"period": "daily", **dict(request.query_params), "codes": code}
    query = api.kline_query(params, batch=False)
    board = "future" if _market(code) in FUTURE_MARKETS else "stock"
    adjust = adjust_param(params) if board == "stock" else None
    bars = (await answer_klines(context(request), query, board, adjust, dicts=True))[code]
    return respond(
        {
            "categoryData": [b["trade_date"] for b in bars],
            "values": [[b["open"], b["close"], b["low"], b["high"], b["volume"]] for b in bars],
            "volumes": [b["volume"] for b in bars],
        }
    )


# -- reference data ----------------------------------------------------------------------------


@router.get("/base/codes")
def base_codes(request: Request) -> Response:
    """Today's list of a security type: stored instruments listed today and not delisted."""
    ctx = context(request)
    kind, markets = api.SECURITY_TYPES[api.security_type(dict(request.query_params))]
    today = _today(ctx)
    frame = ctx.reader.instruments()
    listed = frame.filter(
        (pl.col("type") == kind)
        & pl.col("symbol").str.extract(r"\.([A-Z]+)$").is_in(list(markets))
        & (pl.col("list_date").is_null() | (pl.col("list_date") <= today))
        & (pl.col("delist_date").is_null() | (pl.col("delist_date") > today))
    )
    codes = sorted(
        set(listed["symbol"].to_list()), key=lambda c: (_MARKET_ORDER.get(_market(c), 9), c)
    )
    return respond(codes)


@router.get("/base/calendar")
def base_calendar(request: Request) -> Response:
    """Open days of ``[start_date, end_date]``, when the lake holds every day of that range
    (else 404 saying so: a day not stored is not a closed day)."""
    ctx = context(request)
    market, start, end = api.calendar_query(dict(request.query_params))
    stored = ctx.reader.calendar(market, start, end)
    if stored.height < (end - start).days + 1:
        raise ApiError(
            404,
            f"日历未缓存: {market} {api.ymd(start)}-{api.ymd(end)} is not wholly stored "
            f"({stored.height} of {(end - start).days + 1} days); run etl calendar sync",
        )
    days = stored.filter(pl.col("is_open"))["trade_date"].to_list()
    return respond([api.ymd(d) for d in days])


@router.get("/base/codes/{code}/info")
def base_info(code: str, request: Request) -> Response:
    ctx = context(request)
    rows = ctx.reader.instruments().filter(pl.col("symbol") == code)
    if rows.height == 0:
        raise ApiError(404, api.unknown_message([code]))
    preferred = rows.filter(pl.col("vendor") == "amazingdata")
    row = (preferred if preferred.height else rows).row(0, named=True)
    return respond(
        api.encode_info(
            code,
            name=row.get("name"),
            market=_market(code),
            type=row.get("type"),
            list_date=row.get("list_date"),
            delist_date=row.get("delist_date"),
        )
    )


@router.get("/cache/future-varieties")
def future_varieties(request: Request) -> Response:
    frame = context(request).reader.whole("future_varieties").sort("exchange", "variety")
    rows = frame.unique(["exchange", "variety"], keep="last", maintain_order=True)
    varieties = [
        {"variety": r["variety"], "name": r["name"], "exchange": r["exchange"]}
        for r in rows.iter_rows(named=True)
    ]
    return respond({"varieties": varieties})


@router.get("/cache/main-contracts")
def main_contracts(request: Request) -> Response:
    """The latest stored snapshot of each variety's main contract (the platform serves
    today's; the warehouse keeps every day it recorded and answers the newest)."""
    frame = context(request).reader.whole("main_contracts")
    latest = frame.sort("trade_date").unique(["exchange", "variety"], keep="last")
    mains = {r["variety"]: r["symbol"] for r in latest.sort("variety").iter_rows(named=True)}
    return respond({"main_contracts": mains})


@router.get(api.ADJ_FACTOR_PATH)
def adj_factors(request: Request) -> Response:
    """Backward factors by ex-date, from the stored ``adj_factors`` (every known code gets a
    key, ``[]`` when no ex-date of it falls in the range)."""
    ctx = context(request)
    codes, start, end = api.adj_factor_query(dict(request.query_params))
    codes_known = ctx.reader.known_of("adj_factors", codes)
    if not codes_known:
        raise ApiError(404, api.unknown_message(codes))
    frame = ctx.reader.factors(codes_known, start, end)
    data: dict[str, list[Any]] = {code: [] for code in codes_known}
    for row in frame.iter_rows(named=True):
        data[row["symbol"]].append(api.encode_factor(row["ex_date"], row["backward_factor"]))
    return respond(data)


# -- statements --------------------------------------------------------------------------------


def _finance(dataset: str) -> Any:
    def handler(request: Request) -> Response:
        ctx = context(request)
        codes, start, end = api.finance_query(dict(request.query_params))
        codes_known = ctx.reader.known_of(dataset, codes)
        if not codes_known:
            raise ApiError(404, api.unknown_message(codes))
        frame = ctx.reader.statements(dataset, codes_known, start, end)
        items = statement_items(dataset)
        data: dict[str, list[Any]] = {code: [] for code in codes_known}
        for row in frame.iter_rows(named=True):
            data[row["symbol"]].append(api.encode_statement(row["symbol"], row, items))
        return respond(data)

    return handler


for _dataset, _path in api.FINANCE_PATHS.items():
    router.add_api_route(_path, _finance(_dataset), methods=["GET"], name=_dataset)
