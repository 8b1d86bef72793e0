"""Federation: one warehouse is another's upstream. A second data root fills itself from
``etl serve`` of the first through the ordinary AmazingData adapter and the ordinary CLI, and
ends with exactly the first one's rows (values; lineage columns name the new vendor)."""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
from pathlib import Path

import polars as pl
import pytest
from serve_helpers import ETL, add_user, serve_env, serving

from etl.config import load_settings
from etl.dataroot import DataRoot
from etl.tasks import engine
from etl.tasks.engine import TaskSpec
from etl.tasks.expected import Selection
from etl.tasks.runtime import Runtime
from tests.conftest import sim_stocks

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PASSWORD = "federation-pass-42"
START, END = dt.date(2024, 1, 2), dt.date(2024, 3, 29)
BARS = ["symbol", "ts", "trade_date", "open", "high", "low", "close", "volume", "amount",
        "settle", "open_interest"]  # fmt: skip


def _fill_first(root: Path, symbols: tuple[str, ...]) -> None:
    rt = Runtime(settings=load_settings(data_dir=root, env={}), progress=False)

    async def go() -> None:
        await engine.start(rt, TaskSpec.instruments("sim", "SH"))
        await engine.start(rt, TaskSpec.calendar("sim", "SH", START, END))
        await engine.start(
            rt, TaskSpec.backfill("sim", Selection("klines", START, END, "1d", symbols))
        )
        sel = Selection("income", dt.date(2022, 1, 1), dt.date(2023, 12, 31), None, symbols)
        await engine.start(rt, TaskSpec.backfill("sim", sel))
        factors = Selection("adj_factors", START, END, None, symbols)
        await engine.start(rt, TaskSpec.backfill("sim", factors))

    asyncio.run(go())


def _read(root: Path, dataset: str) -> pl.DataFrame:
    folder = DataRoot(root).dataset(dataset)
    files = sorted(folder.rglob("*.parquet"))
    return pl.scan_parquet(files, hive_partitioning=False, missing_columns="insert").collect()


def _etl(env: dict[str, str], *args: str) -> None:
    done = subprocess.run([*ETL, *args, "--json"], env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_warehouse_fills_itself_from_another_warehouse(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    symbols = tuple(sim_stocks("SH", 3, dt.date(2020, 1, 1)).split(","))
    _fill_first(first, symbols)
    env = serve_env(first, tmp_path / "config")
    add_user(env, "downstream", PASSWORD, "user")  # reading needs no admin role
    with serving(env) as server:
        downstream = serve_env(second, tmp_path / "config2",
            ETL_AMAZINGDATA_BASE_URL=server.base_url, ETL_AMAZINGDATA_USERNAME="downstream",
            ETL_AMAZINGDATA_PASSWORD=PASSWORD, ETL_AMAZINGDATA_RATE="1000")  # fmt: skip
        _etl(downstream, "instruments", "sync", "--vendor", "amazingdata", "--market", "SH")
        _etl(downstream, "calendar", "sync", "--vendor", "amazingdata", "--market", "SH",
             "--start", START.isoformat(), "--end", END.isoformat())  # fmt: skip
        _etl(downstream, "backfill", "--vendor", "amazingdata", "--dataset", "klines",
             "--freq", "1d", "--symbols", ",".join(symbols), "--start", START.isoformat(),
             "--end", END.isoformat())  # fmt: skip
        _etl(downstream, "backfill", "--vendor", "amazingdata", "--dataset", "income",
             "--symbols", ",".join(symbols), "--start", "2022-01-01",
             "--end", "2023-12-31")  # fmt: skip
        _etl(downstream, "backfill", "--vendor", "amazingdata", "--dataset", "adj_factors",
             "--symbols", ",".join(symbols), "--start", START.isoformat(),
             "--end", END.isoformat())  # fmt: skip
        _etl(downstream, "fill-missing", "--vendor", "amazingdata", "--dataset", "klines",
             "--freq", "1d", "--symbols", ",".join(symbols), "--start", START.isoformat(),
             "--end", END.isoformat())  # fmt: skip

    mine = _read(second, "klines").select(BARS).sort("symbol", "ts")
    theirs = _read(first, "klines").select(BARS).sort("symbol", "ts")
    assert mine.height == theirs.height > 150  # ~57 sessions each (sim suspends some days)
    assert mine.equals(theirs)
    assert set(_read(second, "klines")["vendor"].to_list()) == {"amazingdata"}

    key = ["symbol", "reporting_period", "statement_type", "actual_ann_date"]
    items = [c for c, t in _read(first, "income").schema.items() if t == pl.Float64]
    columns = [*key, "report_type", "ann_date", "currency", *items]
    income = _read(second, "income").select(columns).sort(key)
    assert income.height > 0 and income.equals(_read(first, "income").select(columns).sort(key))

    # adjustment factors through GET /stock/adj-factor: every ex-date since 1990, same values
    factor = ["symbol", "ex_date", "backward_factor"]
    theirs_f = _read(first, "adj_factors").select(factor).sort(factor)
    assert theirs_f.height > 3 * 5  # yearly dividends since listing
    assert _read(second, "adj_factors").select(factor).sort(factor).equals(theirs_f)

    days = ["trade_date", "is_open"]
    assert _read(second, "calendar").select(days).sort("trade_date").equals(
        _read(first, "calendar").select(days).sort("trade_date"))  # fmt: skip

    # the platform lists today's codes only: the first warehouse's delisted ones stay behind
    fields = ["symbol", "name", "type", "list_date", "delist_date"]
    today = dt.datetime.now(dt.UTC).date()
    listed = (
        _read(first, "instruments")
        .filter(pl.col("delist_date").is_null() | (pl.col("delist_date") > today))
        .select(fields)
        .sort("symbol")
    )
    assert _read(second, "instruments").select(fields).sort("symbol").equals(listed)
