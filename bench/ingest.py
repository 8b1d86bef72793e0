"""Ingest: Lake.write (upsert planning, sorted write, fsync, read-back verification, atomic
partition swap, manifest) against a bare `pyarrow.parquet.write_table` of the same rows.

    python -m bench ingest
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
import time
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from bench.data import klines_frame
from etl.lake import Lake

NOW = dt.datetime(2024, 12, 31, tzinfo=dt.UTC)
CASES = [
    (
        "1d: 5,000 symbols x 1 year, into an empty lake",
        5000,
        "1d",
        dt.date(2023, 1, 1),
        dt.date(2023, 12, 31),
    ),
    (
        "1m: 500 symbols x 10 sessions, into an empty lake",
        500,
        "1m",
        dt.date(2024, 3, 1),
        dt.date(2024, 3, 14),
    ),
]


def _raw(frame: pl.DataFrame, path: Path) -> float:
    table = frame.drop("freq").to_arrow()
    t0 = time.perf_counter()
    pq.write_table(table, path, compression="zstd", row_group_size=131_072)
    return time.perf_counter() - t0


def run() -> list[dict[str, object]]:
    results = []
    for label, n, freq, start, end in CASES:
        frame = klines_frame(n, freq, start, end)
        work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
        try:
            raw_times, lake_times = [], []
            for i in range(3):
                raw_times.append(_raw(frame, work / f"raw{i}.parquet"))
                t0 = time.perf_counter()
                Lake(work / f"lake{i}").write("klines", frame, now=NOW)
                lake_times.append(time.perf_counter() - t0)
            results.append(_row(label, frame.height, min(raw_times), min(lake_times)))
        finally:
            shutil.rmtree(work, ignore_errors=True)

    # The nightly case: one more session for 5,000 symbols into a year already stored.
    year = klines_frame(5000, "1d", dt.date(2023, 1, 1), dt.date(2023, 12, 28))
    day = klines_frame(5000, "1d", dt.date(2023, 12, 29), dt.date(2023, 12, 29), seed=9)
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    try:
        raw_times, lake_times = [], []
        for i in range(3):
            lake = Lake(work / f"lake{i}")
            lake.write("klines", year, now=NOW)
            raw_times.append(_raw(day, work / f"day{i}.parquet"))
            t0 = time.perf_counter()
            lake.write("klines", day, now=NOW)
            lake_times.append(time.perf_counter() - t0)
        results.append(
            _row(
                "1d: append 1 session x 5,000 symbols to a stored year",
                day.height,
                min(raw_times),
                min(lake_times),
            )
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return results


def _row(label: str, rows: int, raw: float, lake: float) -> dict[str, object]:
    return {
        "case": label,
        "rows": rows,
        "raw_s": round(raw, 4),
        "lake_s": round(lake, 4),
        "raw_rows_per_s": round(rows / raw),
        "lake_rows_per_s": round(rows / lake),
        "lake_vs_raw": round(lake / raw, 2),
    }
