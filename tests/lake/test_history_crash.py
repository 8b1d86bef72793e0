"""A history writer killed with SIGKILL at random moments leaves readers the right rows,
and the next compaction removes what it left (a full copy of the bars under a temporary
name) and writes the history again."""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest

from etl import schema as schemas
from etl.dataroot import DataRoot
from etl.lake import Lake
from etl.lake.history import History
from etl.lake.reader import LakeReader, RowFilter
from tests.conftest import kline_rows

KILLS = 8
WRITER = Path(__file__).with_name("_history_writer.py")
ROOT_DIR = Path(__file__).resolve().parents[2]
SYMBOLS = [f"6{i:05d}.SH" for i in range(300)]
FIRST = dt.date(2021, 1, 4)
DAYS = [FIRST + dt.timedelta(days=i) for i in range(4 * 365)]
DAYS = [d for d in DAYS if d.weekday() < 5 and d.year <= 2024]  # 2021-2023 closed, 2024 open
ASKED = SYMBOLS[:3] + SYMBOLS[-2:]
NOW = dt.datetime(2025, 1, 2, tzinfo=dt.UTC)
ORDER = [("ts", "ascending")]


def raw(root: Path, symbol: str) -> pa.Table:
    """The symbol's rows as the Parquet files hold them (no mirror, no history)."""
    base = DataRoot(root).dataset("klines")
    table = ds.dataset(base, partitioning="hive").to_table(filter=pc.field("symbol") == symbol)
    return table.select(["ts", "close", "volume"]).sort_by(ORDER)


def through_reader(root: Path, symbol: str) -> pa.Table:
    reader = LakeReader(root)  # a new process's reader: nothing cached
    keys = reader.partition_keys("klines", freq="1d")
    table = reader.read("klines", keys, RowFilter(entities=(symbol,)))
    return table.select(["ts", "close", "volume"]).sort_by(ORDER)


@pytest.mark.slow
def test_sigkill_while_writing_a_history_leaves_right_reads(data_root: Path) -> None:
    lake = Lake(data_root)
    for n, year in enumerate((2021, 2022, 2023, 2024)):
        days = [d for d in DAYS if d.year == year]
        lake.write("klines", kline_rows(SYMBOLS, days, close=10.0 + n), now=NOW)
    lake.compact("klines", now=NOW)
    (history,) = DataRoot(data_root).mirrors.rglob("history.arrow")
    expected = {s: raw(data_root, s) for s in ASKED}
    assert all(t.num_rows == len(DAYS) for t in expected.values())
    rng = random.Random(20261206)
    env = {**os.environ, "PYTHONPATH": str(ROOT_DIR)}
    mid_write = 0  # kills that left a history half written beside the file
    for kill in range(KILLS):
        proc = subprocess.Popen(
            [sys.executable, str(WRITER), str(data_root), str(history)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT_DIR,
        )  # fmt: skip
        assert proc.stdout is not None
        assert (line := proc.stdout.readline()).strip() == "ready", line + proc.stdout.read()
        assert proc.stdout.readline().startswith("wrote 0 "), "the writer wrote no history"
        time.sleep(rng.uniform(0.0, 0.3))  # the kill's moment within the next rounds
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        left = [p for p in history.parent.iterdir() if p.name.endswith(".tmp")]
        mid_write += bool(left)
        if history.exists():  # killed between the removal and the rename: absent
            assert History.load(history, schemas.get("klines")) is not None, f"kill {kill}"
        for symbol, want in expected.items():
            assert through_reader(data_root, symbol).equals(want), (kill, symbol)
    print(f"{mid_write} of {KILLS} kills inside a write")
    assert mid_write >= 2, f"only {mid_write} of {KILLS} kills landed inside a write"
    Lake(data_root).compact("klines", now=NOW)  # a new process's first compaction
    assert sorted(p.name for p in history.parent.iterdir() if p.is_file()) == ["history.arrow"]
    assert History.load(history, schemas.get("klines")) is not None
    for symbol, want in expected.items():
        assert through_reader(data_root, symbol).equals(want), symbol
