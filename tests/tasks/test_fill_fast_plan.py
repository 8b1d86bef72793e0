"""fill-missing plans a selection nothing is stored for from the expectation, without detect
(no polars before its first request: issue 10, start-up). One planner, two ways in: the plan
from the expectation (:func:`~etl.tasks.plan.plan_all_absent`) must be the plan
:func:`~etl.tasks.plan.plan_fill` makes over detect's slots, and a fill that takes that way
must record what a fill through detect records."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etl.config import load_settings
from etl.emulators.testing import running
from etl.tasks import fill as fill_module
from etl.tasks.depths import Depth, learn
from etl.tasks.detect import detect
from etl.tasks.expected import Selection, bar_grids, judge
from etl.tasks.fill import fill_missing
from etl.tasks.plan import FillPlan, plan_all_absent, plan_fill
from etl.tasks.runtime import Runtime
from etl.vendors.base import Capabilities, DatasetCapability, RateLimits, Unavailable

NOW = dt.datetime(2024, 6, 28, 12, tzinfo=dt.UTC)
BASE = dt.date(2024, 1, 2)
SYMBOLS = ("600000.SH", "600036.SH", "000001.SZ", "IF2406.CFE", "T2406.CFE", "AAPL.US")


def capabilities(per_call: int, span: int | None, rows: int | None, since: int | None) -> Any:
    cap = DatasetCapability(
        "klines", frozenset({"SH", "SZ", "CFE"}), frozenset({"1d", "1h", "30m"}),
        since=BASE + dt.timedelta(days=since) if since is not None else None,
        symbols_per_call=per_call, rows_per_call=rows,
        span_days_per_call={f: span for f in ("1d", "1h", "30m")} if span else {},
    )  # fmt: skip
    return Capabilities("v", (cap,), RateLimits(per_second=5))


def calls_and_cuts(plan: FillPlan) -> tuple[list[Any], list[dict[str, Any]]]:
    rows = plan.unfillable.select("symbol", "ts", "trade_date", "state", "reason")
    return plan.calls, rows.sort("symbol", "ts").to_dicts()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    symbols=st.lists(st.sampled_from(SYMBOLS), min_size=1, max_size=4, unique=True),
    freq=st.sampled_from(["1d", "1h", "30m"]),
    first=st.integers(0, 60),
    days=st.integers(0, 60),
    per_call=st.sampled_from([1, 2, 50]),
    span=st.sampled_from([None, 7, 31]),
    rows=st.sampled_from([None, 20, 500]),
    since=st.one_of(st.none(), st.integers(0, 90)),
    depth=st.one_of(st.none(), st.tuples(st.sampled_from(SYMBOLS), st.integers(0, 120))),
)
def test_the_plan_from_the_expectation_is_the_plan_over_detects_slots(
    data_root: Path,
    symbols: list[str],
    freq: str,
    first: int,
    days: int,
    per_call: int,
    span: int | None,
    rows: int | None,
    since: int | None,
    depth: tuple[str, int] | None,
) -> None:
    start = BASE + dt.timedelta(days=first)
    sel = Selection("klines", start, start + dt.timedelta(days=days), freq, tuple(symbols))
    caps = capabilities(per_call, span, rows, since)
    depths = {}
    if depth is not None:  # a depth the vendor's answers showed
        depths[depth[0]] = Depth(BASE + dt.timedelta(days=depth[1]), "no bars before", "t")
    others = {
        "w": Capabilities(
            "w", (DatasetCapability("klines", frozenset({"US"})),), RateLimits(per_second=1)
        )
    }

    report = detect(data_root, sel, NOW, keep_slots=True)
    slow = plan_fill(sel, report.slots, "v", caps, NOW, others=others, depths=depths)
    judged, _ = judge(data_root, sel)
    grids, _ = bar_grids(data_root, sorted({j.profile for j in judged}), sel)
    fast = plan_all_absent(sel, judged, grids, "v", caps, others=others, depths=depths)

    assert calls_and_cuts(fast) == calls_and_cuts(slow)
    assert fast.summary(caps, None) == slow.summary(caps, None)


# -- a fill both ways, against the AmazingData emulator -----------------------------------

# Over AmazingData's documented start (2013-01-01): the days before are unfillable by
# documentation, a symbol's learned depth cuts more, and US stocks it does not serve at all.
SEL = Selection(
    "klines", dt.date(2012, 12, 17), dt.date(2013, 1, 31), "1d",
    ("600000.SH", "000001.SZ", "IF1302.CFE", "AAPL.US"),
)  # fmt: skip
AT = dt.datetime(2013, 2, 4, 12, tzinfo=dt.UTC)
VOLATILE = {"id", "created_at", "started_at", "finished_at", "updated_at", "pid", "message"}


def runtime(root: Path, base_url: str) -> Runtime:
    env = {
        "ETL_AMAZINGDATA_BASE_URL": base_url,
        "ETL_AMAZINGDATA_USERNAME": "analyst",
        "ETL_AMAZINGDATA_PASSWORD": "secret-pw",
    }
    return Runtime(settings=load_settings(data_dir=root, env=env), clock=lambda: AT, progress=False)


def lake_rows(root: Path, dataset: str, drop: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    files = sorted(p for p in root.rglob("*.parquet") if dataset in p.parts)
    if not files:
        return []
    frame = pl.read_parquet(files).drop(drop, strict=False)
    return frame.sort(frame.columns).to_dicts()


def fill(root: Path) -> dict[str, Any]:
    """A fill-missing of ``SEL`` on a fresh data root (with a learned depth) from an emulator
    of its own (its rate limit left untouched by the other fill): what it recorded, the gap
    ledger and the bars stored."""
    with running("amazingdata", now=AT) as server:
        return _fill(root, server.base_url)


def _fill(root: Path, base_url: str) -> dict[str, Any]:
    rt = runtime(root, base_url)
    shown = Unavailable(
        "000001.SZ", SEL.start, dt.date(2013, 1, 9), "no bars", dt.date(2013, 1, 10)
    )
    learn(root, "amazingdata", "1d", [shown], [], AT)
    done = asyncio.run(fill_missing(rt, "amazingdata", SEL))
    doc = {k: v for k, v in dataclasses.asdict(done).items() if k not in VOLATILE}
    return {
        "record": doc,
        "ledger": lake_rows(root, "gap_ledger", ("task_id",)),
        "klines": lake_rows(root, "klines"),
    }


def test_a_fill_from_the_expectation_records_what_a_fill_through_detect_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken: list[bool] = []
    fast_plan = fill_module._plan_all_absent

    def spy(*args: Any, **kw: Any) -> Any:
        found = fast_plan(*args, **kw)
        taken.append(found is not None)
        return found

    monkeypatch.setattr(fill_module, "_plan_all_absent", spy)
    fast = fill(tmp_path / "fast")
    monkeypatch.setattr(fill_module, "_plan_all_absent", lambda *a, **k: None)  # through detect
    slow = fill(tmp_path / "slow")
    assert taken == [True]  # the first fill planned from the expectation
    record = fast["record"]
    assert record["status"] == "completed" and record["result"]["planned"]["unfillable"] > 0
    assert {r["state"] for r in fast["ledger"]} >= {"unfillable"} and fast["klines"]
    assert fast == slow
