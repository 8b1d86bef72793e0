"""A backfill with ``closed_by`` (the recorder's repair: its stream's time) stores no bar that
ends after that instant, whatever the host's clock says, and the bound survives the task
record (a resumed repair keeps it). Without it, the same day is stored to its close."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import polars as pl

from etl.config import load_settings
from etl.tasks.backfill import BackfillRequest, backfill
from etl.tasks.engine import TaskSpec
from etl.tasks.runtime import Runtime
from etl.tasks.sync import sync_instruments

DAY = dt.date(2024, 6, 27)
SYMBOL = "600000.SH"
CLOSED_BY = dt.datetime(2024, 6, 27, 2, 10, tzinfo=dt.UTC)  # 10:10 Shanghai, mid-morning


def stored(root: Path) -> pl.DataFrame:
    files = sorted((root / "lake" / "klines").rglob("*.parquet"))
    return pl.read_parquet(files, hive_partitioning=True)


def test_bars_ending_after_closed_by_are_not_stored_and_the_bound_is_in_the_record(
    tmp_path: Path,
) -> None:
    bounded, whole = tmp_path / "bounded", tmp_path / "whole"
    for root in (bounded, whole):
        root.mkdir()
        rt = Runtime(settings=load_settings(data_dir=root, env={}), progress=False)
        asyncio.run(sync_instruments(rt, "sim", "SH"))
        by = CLOSED_BY if root is bounded else None
        req = BackfillRequest("sim", "klines", (SYMBOL,), "1m", DAY, DAY, closed_by=by)
        record = asyncio.run(backfill(rt, req))
        assert record.status == "completed", record.errors
        if by is None:
            assert "closed_by" not in record.params
            continue
        assert record.params["closed_by"] == "2024-06-27T02:10:00Z"
        assert TaskSpec.from_record(record).closed_by == CLOSED_BY
        assert record.result["dropped_rows"] > 0  # the day's later bars: "still forming"

    ends = stored(bounded).select(pl.col("ts") + pl.duration(minutes=1)).to_series()
    assert ends.max() == CLOSED_BY  # the last bar kept ends exactly at the bound
    full = stored(whole)
    assert full["ts"].max() > CLOSED_BY  # type: ignore[operator]
    # what was kept is exactly the whole day's bars before the bound
    before = full.filter(pl.col("ts") < CLOSED_BY).sort("ts").select("ts", "close", "volume")
    assert stored(bounded).sort("ts").select("ts", "close", "volume").equals(before)
