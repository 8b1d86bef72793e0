"""Web pages for people at ``/``: sign in, coverage at a glance, one symbol's chart, tasks.

The pages are static files of this package; they call the API with the bearer token of the
sign-in, kept in the tab's ``sessionStorage``. The chart library is plotly.js from the
``plotly`` Python package (installed from PyPI with the project), served from here: nothing is
loaded from the internet when a page runs, and no third-party file is in the repository.

One endpoint exists for the pages only: ``GET /api/v1/web/coverage``, the heatmap of symbols
by days, each cell the worst gap state of that symbol's slots that day.
"""

from __future__ import annotations

import datetime as dt
from importlib import resources
from pathlib import Path
from typing import Any, Final

import polars as pl
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from etl.names import parse_freq, parse_market
from etl.server.auth import User, context
from etl.server.envelope import bad_param, ok
from etl.tasks.detect import detect
from etl.tasks.expected import Selection, build_expectation

__all__ = ["STATES", "api_router", "page_router"]

STATIC: Final = Path(__file__).with_name("static")
# Cell values of the heatmap, in the order of its colour scale.
STATES: Final = (
    "no session", "present", "confirmed empty", "not complete yet", "unfillable", "failed",
    "missing",
)  # fmt: skip
MAX_SYMBOLS: Final = 300
MAX_DAYS: Final = 400

page_router = APIRouter()
api_router = APIRouter()


def _plotly_js() -> Path:
    found = resources.files("plotly") / "package_data" / "plotly.min.js"
    return Path(str(found))


@page_router.get("/", include_in_schema=False)
def index() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html")


@page_router.get("/static/{name}", include_in_schema=False)
def static(name: str) -> Response:
    files = {
        "app.js": (STATIC / "app.js", "text/javascript"),
        "app.css": (STATIC / "app.css", "text/css"),
        "plotly.min.js": (_plotly_js(), "text/javascript"),
    }
    if name not in files:  # a fixed table: a name never becomes a path
        return Response(status_code=404)
    path, kind = files[name]
    return FileResponse(path, media_type=kind, headers={"Cache-Control": "max-age=3600"})


def _date(value: str | None, name: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value or "")
    except ValueError:
        raise bad_param(name, "YYYY-MM-DD") from None


def _state(reason: str | None, state: str) -> str:
    if state == "unfillable" and reason and "not complete" in reason:
        return "not complete yet"
    return state.replace("_", " ")


def coverage(root: Path, sel: Selection, now: dt.datetime, offset: int) -> dict[str, Any]:
    """Symbols x days of ``sel``: each cell the worst state of that symbol's slots that day."""
    exp = build_expectation(root, sel, now)
    report = detect(root, sel, now, keep_slots=True)
    symbols = sorted(exp.judged["symbol"].to_list())
    total = len(symbols)
    symbols = symbols[offset : offset + MAX_SYMBOLS]
    days = sorted(set(exp.grids["trade_date"].to_list()))[:MAX_DAYS]
    index = {d: i for i, d in enumerate(days)}
    rank = {s: i for i, s in enumerate(STATES)}
    z = [[0] * len(days) for _ in symbols]
    row_of = {s: i for i, s in enumerate(symbols)}
    grid_days = exp.grids.select("profile", "trade_date").unique()
    for sym, profile, first, last in exp.judged.select(
        "symbol", "profile", "first_day", "last_day"
    ).iter_rows():
        row = row_of.get(sym)
        if row is None:
            continue
        for (day,) in (
            grid_days.filter(
                (pl.col("profile") == profile) & pl.col("trade_date").is_between(first, last)
            )
            .select("trade_date")
            .iter_rows()
        ):
            if day in index:
                z[row][index[day]] = rank["present"]
    counts = dict.fromkeys(STATES, 0)
    absent = report.slots.select("symbol", "trade_date", "state", "reason")
    for sym, day, state, reason in absent.iter_rows():
        row, col = row_of.get(sym), index.get(day)
        if row is None or col is None:
            continue
        value = rank[_state(reason, state)]
        z[row][col] = max(z[row][col], value)
    for line in z:
        for value in line:
            counts[STATES[value]] += 1
    return {
        "market": sel.market, "freq": sel.freq, "start": sel.start.isoformat(),
        "end": sel.end.isoformat(), "states": list(STATES), "symbols": symbols,
        "days": [d.isoformat() for d in days], "z": z, "counts": counts,
        "total_symbols": total, "offset": offset,
    }  # fmt: skip


@api_router.get("/web/coverage")
def web_coverage(request: Request, user: User) -> dict[str, Any]:
    ctx = context(request)
    params = request.query_params
    try:
        market = parse_market(params.get("market") or "")
    except ValueError:
        raise bad_param("market") from None
    except Exception:
        raise bad_param("market") from None
    try:
        freq = parse_freq(params.get("freq") or "1d").name
    except Exception:
        raise bad_param("freq") from None
    start, end = _date(params.get("start"), "start"), _date(params.get("end"), "end")
    if start > end or (end - start).days > MAX_DAYS * 2:
        raise bad_param("end", f"after start, at most {MAX_DAYS * 2} days")
    offset = params.get("offset", "0")
    if not offset.isdigit():
        raise bad_param("offset")
    sel = Selection("klines", start, end, freq, (), market)
    return ok(coverage(ctx.root, sel, ctx.clock(), int(offset)))
