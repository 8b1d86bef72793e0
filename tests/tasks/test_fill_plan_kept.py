"""A fill's calls are planned once, by its first run, and kept beside its record: a resumed
run asks for the calls of that plan which are not done, not for a plan made anew over what
the lake holds then (a kill can leave a hole that a new plan cuts into one call more)."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import polars as pl

from etl.config import load_settings
from etl.tasks.engine import TaskSpec
from etl.tasks.expected import Selection
from etl.tasks.fill import execute
from etl.tasks.runtime import Runtime
from etl.tasks.sync import sync_instruments

NOW = dt.datetime(2024, 6, 28, 12, tzinfo=dt.UTC)
SYMBOL = "600000.SH"
SEL = Selection("klines", dt.date(2024, 6, 17), dt.date(2024, 6, 21), "1d", (SYMBOL,))


def stored_days(root: Path) -> list[dt.date]:
    files = sorted((root / "lake" / "klines").rglob("*.parquet"))
    if not files:
        return []
    return sorted(pl.read_parquet(files)["trade_date"].unique().to_list())


def test_a_fill_runs_the_calls_its_first_run_planned(tmp_path: Path) -> None:
    rt = Runtime(load_settings(data_dir=tmp_path, env={}), clock=lambda: NOW, progress=False)
    asyncio.run(sync_instruments(rt, "sim", "SH"))
    spec = TaskSpec.fill("sim", SEL)

    # A first run that planned one call, for one day of the five absent, then was killed:
    record = rt.store.create(spec.kind, spec.params(), now=NOW)
    rt.store.save_plan(record.id, [[[SYMBOL], "2024-06-19", "2024-06-19"]])
    asyncio.run(execute(rt, record, "sim", SEL, False))
    assert stored_days(tmp_path) == [dt.date(2024, 6, 19)]

    # A new fill plans over what is absent now, and keeps that plan for its resumes.
    again = rt.store.create(spec.kind, spec.params(), now=NOW)
    asyncio.run(execute(rt, again, "sim", SEL, False))
    assert stored_days(tmp_path) == [dt.date(2024, 6, d) for d in range(17, 22)]
    kept = rt.store.load_plan(again.id)
    assert kept is not None and kept[0][0] == [SYMBOL]
    assert {day for _, start, end in kept for day in (start, end)} >= {"2024-06-17", "2024-06-21"}
