"""A writer killed with SIGKILL at random moments never leaves a lake readers cannot use."""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.dataset as ds
import pytest

from etl.lake import Lake
from tests.lake._crash_writer import commit_keys

KILLS = 24
WRITER = Path(__file__).with_name("_crash_writer.py")
ROOT_DIR = Path(__file__).resolve().parents[2]


def read_three_ways(root: Path) -> pl.DataFrame:
    """The lake through DuckDB, polars and pyarrow; all three must agree."""
    base = root / "lake" / "klines"
    via_duck = (
        duckdb.sql(
            "SELECT symbol, ts, close FROM "
            f"read_parquet('{base}/*/*/*.parquet', hive_partitioning=true)"
        )
        .pl()
        .with_columns(pl.col("ts").dt.convert_time_zone("UTC"))
        .sort(["symbol", "ts"])
    )
    via_polars = (
        pl.scan_parquet(f"{base}/**/*.parquet", hive_partitioning=True)
        .select("symbol", "ts", "close")
        .collect()
        .sort(["symbol", "ts"])
    )
    via_arrow = pl.from_arrow(
        ds.dataset(base, partitioning="hive").to_table(columns=["symbol", "ts", "close"])
    )
    assert isinstance(via_arrow, pl.DataFrame)
    via_arrow = via_arrow.sort(["symbol", "ts"])
    assert via_duck.equals(via_polars)
    assert via_duck.equals(via_arrow)
    return via_duck


@pytest.mark.slow
def test_sigkill_at_random_moments_leaves_a_clean_lake(data_root: Path) -> None:
    rng = random.Random(20241122)
    allowed: dict[tuple[str, dt.date], set[float]] = {}
    next_commit = 0
    mid_commit = 0  # kills that left a partition half built in .staging
    env = {**os.environ, "PYTHONPATH": str(ROOT_DIR)}
    for _kill in range(KILLS):
        proc = subprocess.Popen(
            [sys.executable, str(WRITER), str(data_root), str(next_commit)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT_DIR,
        )
        assert proc.stdout is not None
        ready = proc.stdout.readline()  # the event: imports done, the next line is a commit's
        assert ready == "ready\n", f"the writer did not start: {ready!r}"
        # The kill's moment, not a wait for anything: commits take ~25 ms (compactions every
        # 5th), so 0-0.6 s lands at any phase of a commit or compaction, or before the first.
        # (Regression: sleeping 0.8-2.5 s from the spawn guessed a 0.7 s start-up and spent
        # ~1 s of commits a kill: 39 s for the 24 kills.)
        time.sleep(rng.uniform(0.0, 0.6))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate()
        finished = [int(line.split()[1]) for line in out.splitlines() if line.startswith("done")]
        last_done = finished[-1] if finished else next_commit - 1
        for i in finished:
            symbols, days = commit_keys(i)
            for s in symbols:
                for d in days:
                    allowed[(s, d)] = {float(i)}
        in_flight = last_done + 1
        symbols, days = commit_keys(in_flight)
        for s in symbols:
            for d in days:
                allowed[(s, d)] = allowed.get((s, d), set()) | {float(in_flight)}

        staging = data_root / "lake" / ".staging"
        mid_commit += staging.exists() and any(staging.iterdir())
        stored = read_three_ways(data_root)
        print(f"kill {_kill}: {len(finished)} commits finished, mid-commit so far {mid_commit}")
        assert not stored.select(["symbol", "ts"]).is_duplicated().any(), "a key is stored twice"
        got = {}
        for sym, ts, close in stored.iter_rows():
            day = ts.astimezone(dt.timezone(dt.timedelta(hours=8))).date()
            got[(sym, day)] = close
        for key, values in allowed.items():
            if key in got:
                assert got[key] in values, f"{key}: {got[key]} not in {values}"
            else:  # only keys first written by the in-flight commit may be absent
                assert values == {float(in_flight)}, f"{key} lost"
        # what is stored is now the truth for the next round
        allowed = {k: {v} for k, v in got.items()}
        next_commit = in_flight + 1
    assert next_commit > KILLS  # the writer made progress between kills
    assert mid_commit >= 3, "too few kills landed inside a commit to prove anything"
    staging = data_root / "lake" / ".staging"
    Lake(data_root).sweep()
    assert not staging.exists() or not any(staging.iterdir())
