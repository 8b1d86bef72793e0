"""The whole gap cycle against a real vendor emulator on 127.0.0.1:

a backfill from an emulator that drops bars (`missing_bars`) -> detect-missing finds exactly
those holes -> fill-missing from a complete emulator closes them -> detect-missing reports
nothing missing -> a second fill makes no request at all.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from etl.config import load_settings
from etl.emulators.testing import fetch_stats, reset_stats, running
from etl.synthetic import klines as synthetic_klines
from etl.tasks.backfill import BackfillRequest, backfill
from etl.tasks.detect import detect
from etl.tasks.expected import Selection
from etl.tasks.fill import fill_missing
from etl.tasks.runtime import Runtime

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

NOW = dt.datetime(2024, 6, 28, 12, 0, tzinfo=dt.UTC)
START, END = dt.date(2024, 1, 2), dt.date(2024, 5, 31)


def runtime(root: Path, base_url: str) -> Runtime:
    env = {
        "ETL_AMAZINGDATA_BASE_URL": base_url,
        "ETL_AMAZINGDATA_USERNAME": "analyst",
        "ETL_AMAZINGDATA_PASSWORD": "secret-pw",
    }
    return Runtime(
        settings=load_settings(data_dir=root, env=env), clock=lambda: NOW, progress=False
    )


def truth(symbols: list[str]) -> pl.DataFrame:
    """The emulator's full data, straight from the generator behind it."""
    frames = []
    for symbol in symbols:
        bars = synthetic_klines(symbol, "1d", START, END, NOW)
        frames.append(pl.DataFrame({
            "symbol": symbol,
            "ts": pl.Series(bars.ts).cast(pl.Datetime("us", "UTC")),
            "close": bars.close,
        }))  # fmt: skip
    return pl.concat(frames).sort("symbol", "ts")


def stored(root: Path) -> pl.DataFrame:
    files = sorted((root / "lake" / "klines").glob("freq=1d/*/*.parquet"))
    return pl.read_parquet(files).select("symbol", "ts", "close").sort("symbol", "ts")


def test_holes_are_found_exactly_then_filled_then_nothing_is_asked(data_root: Path) -> None:
    symbols = ["600000.SH", "600036.SH", "601398.SH", "000001.SZ", "000002.SZ"]
    sel = Selection("klines", START, END, "1d", tuple(symbols))
    with running("amazingdata", now=NOW, faults="missing_bars") as holey:
        record = asyncio.run(
            backfill(
                runtime(data_root, holey.base_url),
                BackfillRequest("amazingdata", "klines", tuple(symbols), "1d", START, END),
            )
        )
        assert record.status == "completed"
        assert holey.stats()["faults_applied"] > 0

    full = truth(symbols)
    have = stored(data_root)
    holes = full.join(have, on=["symbol", "ts"], how="anti")
    assert holes.height > 0, "the fault removed nothing: the test proves nothing"

    report = detect(data_root, sel, NOW, keep_slots=True)
    found = report.slots.select("symbol", "ts")
    # Everything the fault removed is found, and the only other absent slots are the
    # generator's own suspension days (the calendar expects a bar the vendor never had).
    assert holes.select("symbol", "ts").join(found, on=["symbol", "ts"], how="anti").height == 0
    extra = found.join(holes.select("symbol", "ts"), on=["symbol", "ts"], how="anti")
    assert extra.join(full.select("symbol", "ts"), on=["symbol", "ts"], how="semi").height == 0

    with running("amazingdata", now=NOW) as complete:
        task = asyncio.run(fill_missing(runtime(data_root, complete.base_url), "amazingdata", sel))
        assert task.status == "completed" and task.error_count == 0
        assert complete.stats()["violations"] == 0
        after = detect(data_root, sel, NOW)
        assert after.state_counts()["missing"] == 0
        assert after.state_counts()["confirmed_empty"] == extra.height  # suspensions, confirmed
        assert stored(data_root).equals(full)  # exactly the emulator's data, nothing else

        reset_stats(complete.base_url)
        again = asyncio.run(fill_missing(runtime(data_root, complete.base_url), "amazingdata", sel))
        assert again.status == "completed"
        assert fetch_stats(complete.base_url)["requests"] == 0  # not even a login
