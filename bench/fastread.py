"""Reads from Python (issue 13): `etl.Warehouse` against polars on the same Parquet files and
against ArcticDB, in one run: one symbol's 10 years of 1d among 5,000 (warm and with a cold
page cache), one symbol's 20 sessions of 1m among 1,000, a day's cross-section of 5,000,
adjusted against raw reads, and `etl sql` from a shell.

    python -m bench fastread
    FASTREAD_DATA=/tmp/fastread python -m bench fastread   # build once, reuse after

ArcticDB is not a dependency: set ARCTIC_PYTHON to a Python that has `arcticdb` (for example
`python -m venv /tmp/arcticenv && /tmp/arcticenv/bin/pip install arcticdb polars pyarrow`)
to measure it beside; without it those rows are left out. A cold page cache needs root
(`/proc/sys/vm/drop_caches`); without it the cold rows are left out too.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from bench.data import klines_frame
from etl.lake import Lake
from etl.warehouse import Warehouse

NOW = dt.datetime(2024, 12, 31, tzinfo=dt.UTC)
YEARS = range(2014, 2024)
N_DAILY, N_MINUTE = 5000, 1000
DAY = dt.date(2021, 6, 15)
M_START, M_END = dt.date(2024, 3, 1), dt.date(2024, 3, 28)  # 20 sessions
REPEAT = 200


def _p50(fn: Callable[[], Any], n: int = REPEAT) -> float:
    fn()
    times = []
    for _ in range(n):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000


def _interleaved(cases: dict[str, Callable[[], Any]], n: int = 1000) -> dict[str, float]:
    """p50 ms of each case, the cases called in turn (one call each per round): a ratio of
    two of them is then measured under the same load, which single runs are not."""
    for fn in cases.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(n):
        for name, fn in cases.items():
            began = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - began)
    return {k: statistics.median(v) * 1000 for k, v in times.items()}


def _drop_caches() -> bool:
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        return False
    return True


def _factors(symbols: list[str]) -> pl.DataFrame:
    rng = np.random.default_rng(3)
    rows = []
    for i, symbol in enumerate(symbols):
        factor = 1.0
        for year in YEARS:
            factor /= 1 - rng.uniform(0.005, 0.03)
            rows.append((symbol, dt.date(year, 6, 10 + i % 10), factor))
    frame = pl.DataFrame(
        rows,
        schema={"symbol": pl.String, "ex_date": pl.Date, "backward_factor": pl.Float64},
        orient="row",
    )
    return frame.with_columns(
        pl.lit(None, pl.Float64).alias("forward_factor"), pl.lit("bench").alias("vendor")
    )


def _build(root: Path) -> dict[str, float]:
    lake = Lake(root)
    began = time.perf_counter()
    symbols: list[str] = []
    for year in YEARS:
        frame = klines_frame(N_DAILY, "1d", dt.date(year, 1, 1), dt.date(year, 12, 31), seed=year)
        symbols = symbols or sorted(set(frame["symbol"].to_list()))
        lake.write("klines", frame, now=NOW)
    lake.write("klines", klines_frame(N_MINUTE, "1m", M_START, M_END), now=NOW)
    lake.write("adj_factors", _factors(symbols), now=NOW)
    written = time.perf_counter() - began
    began = time.perf_counter()
    lake.compact(None, now=NOW)
    return {"write_s": written, "compact_with_mirrors_s": time.perf_counter() - began}


def _mirrors_off(root: Path) -> Path:
    """The same lake without its mirrors (a hard-linked copy): what reads cost before."""
    copy = root.parent / "no-mirrors"
    if copy.is_dir():  # FASTREAD_DATA: made by an earlier run
        return copy
    shutil.copytree(root, copy, copy_function=os.link, ignore=shutil.ignore_patterns(".mirror"))
    return copy


def _arctic(root: Path, symbol: str) -> dict[str, float] | None:
    python = os.environ.get("ARCTIC_PYTHON")
    if not python:
        return None
    script = Path(__file__).with_name("_arctic_reads.py")
    done = subprocess.run(
        [python, str(script), str(root), str(root.parent / "arctic"), symbol, DAY.isoformat()],
        capture_output=True, text=True, timeout=3600, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1]}  # type: ignore[dict-item]
    doc: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return doc


def run() -> list[dict[str, object]]:
    # FASTREAD_DATA=<folder>: build the lake there once and keep it; later runs reuse it
    # (the build takes minutes), so that two versions of the code can be measured in turn
    keep = os.environ.get("FASTREAD_DATA")
    work = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="bench-fastread-"))
    try:
        root = work / "data"
        if keep and (root / "lake").is_dir():
            build: dict[str, float] = {"reused": 1.0}
        else:
            build = _build(root)
        wh = Warehouse(root)
        plain = Warehouse(_mirrors_off(root))
        symbol = "602500.SH"
        daily = root / "lake" / "klines" / "freq=1d"
        files = [str(p) for p in sorted(daily.rglob("*.parquet"))]

        def polars_one() -> pl.DataFrame:
            return (
                pl.scan_parquet(files, hive_partitioning=False)
                .filter(pl.col("symbol") == symbol)
                .collect()
            )

        def polars_day() -> pl.DataFrame:
            return (
                pl.scan_parquet(files, hive_partitioning=False)
                .filter(pl.col("trade_date") == DAY)
                .collect()
            )

        first, last = dt.date(YEARS[0], 1, 1), dt.date(YEARS[-1], 12, 31)
        rows: list[dict[str, object]] = [{"case": "build", **build}]
        one = {
            "case": "one symbol, 10 years of 1d, warm p50 ms",
            "warehouse": _p50(lambda: wh.bars([symbol], "1d", first, last)),
            "warehouse_without_mirrors": _p50(lambda: plain.bars([symbol], "1d", first, last), 20),
            "polars_scan_parquet": _p50(polars_one, 20),
            "rows": wh.bars([symbol], "1d", first, last).height,
        }
        rows.append(one)
        as_of = dt.date(2019, 3, 1)
        adjusted = _interleaved({
            "raw": lambda: wh.bars([symbol], "1d", first, last),
            "qfq": lambda: wh.bars([symbol], "1d", first, last, adjust="qfq"),
            "hfq": lambda: wh.bars([symbol], "1d", first, last, adjust="hfq"),
            "qfq_as_of": lambda: wh.bars([symbol], "1d", first, last, adjust="qfq", as_of=as_of),
            "hfq_as_of": lambda: wh.bars([symbol], "1d", first, last, adjust="hfq", as_of=as_of),
        })  # fmt: skip
        rows.append({
            "case": "one symbol adjusted vs raw, same rows, interleaved call by call, p50 ms",
            **adjusted,
            **{f"{k}_ratio": v / adjusted["raw"] for k, v in adjusted.items() if k != "raw"},
        })  # fmt: skip
        day_raw = _p50(lambda: wh.bars(None, "1d", DAY, DAY), 50)
        day_adj = _p50(lambda: wh.bars(None, "1d", DAY, DAY, adjust="hfq"), 50)
        rows.append({
            "case": "one day, 5,000 symbols, p50 ms",
            "warehouse": day_raw,
            "warehouse_hfq": day_adj,
            "warehouse_without_mirrors": _p50(lambda: plain.bars(None, "1d", DAY, DAY), 20),
            "polars_scan_parquet": _p50(polars_day, 20),
        })  # fmt: skip
        minute = "600500.SH"
        rows.append({
            "case": "one symbol, 20 sessions of 1m among 1,000, p50 ms",
            "warehouse": _p50(lambda: wh.bars([minute], "1m", M_START, M_END)),
            "warehouse_without_mirrors": _p50(
                lambda: plain.bars([minute], "1m", M_START, M_END), 20),
            "rows": wh.bars([minute], "1m", M_START, M_END).height,
        })  # fmt: skip
        if _drop_caches():
            cold = []
            for i in range(10):
                _drop_caches()
                fresh = Warehouse(root)  # nothing of an earlier read in this process either
                began = time.perf_counter()
                fresh.bars([f"{600000 + 37 * i:06d}.SH"], "1d", first, last)
                cold.append((time.perf_counter() - began) * 1000)
            rows.append({"case": "one symbol, 10 years of 1d, cold page cache and a new "
                         "Warehouse, p50 ms", "warehouse": statistics.median(cold)})  # fmt: skip
        sql = "SELECT max(close) FROM klines WHERE symbol = '602500.SH' AND freq = '1d'"
        env = {**os.environ, "ETL_DATA_DIR": str(root)}
        walls = []
        for _ in range(7):
            began = time.perf_counter()
            subprocess.run([sys.executable, "-m", "etl", "sql", sql, "--format", "csv"],
                           env=env, capture_output=True, check=True)  # fmt: skip
            walls.append(time.perf_counter() - began)
        rows.append({"case": "etl sql one-symbol query, process start to output, p50 s",
                     "etl_sql": statistics.median(walls)})  # fmt: skip
        arctic = _arctic(root, symbol)
        if arctic is not None:
            rows.append({"case": "ArcticDB (LMDB), same rows", **arctic})
        return rows
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
