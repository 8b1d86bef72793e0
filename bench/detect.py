"""detect-missing on 5,000 symbols x 10 years of 1d with 1 % of the bars removed, against a
hand-written DuckDB anti-join over the raw Parquet (expected grid x symbols minus stored
keys), in the same run.

    python -m bench detect
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from bench.data import best_of, klines_frame
from etl.calendars import bar_grid
from etl.lake import Lake
from etl.tasks.detect import detect
from etl.tasks.expected import Selection

NOW = dt.datetime(2024, 6, 30, tzinfo=dt.UTC)
START, END = dt.date(2014, 1, 1), dt.date(2023, 12, 31)


def run() -> list[dict[str, object]]:
    work = Path(tempfile.mkdtemp(prefix="bench-detect-"))
    try:
        full = klines_frame(5000, "1d", START, END)
        rng = np.random.default_rng(11)
        keep = rng.random(full.height) >= 0.01
        Lake(work).write("klines", full.filter(pl.Series(keep)), now=NOW)
        removed = int((~keep).sum())
        symbols = tuple(sorted(set(full["symbol"].to_list())))
        sel = Selection("klines", START, END, "1d", symbols)

        grid = bar_grid("SH", "1d", START, END)
        con = duckdb.connect()
        con.register(
            "grid",
            pl.DataFrame({"ts": pl.Series(grid.ts).cast(pl.Datetime("us", "UTC"))}).to_arrow(),
        )
        con.register("syms", pl.DataFrame({"symbol": list(symbols)}).to_arrow())
        glob = f"{work}/lake/klines/freq=1d/*/*.parquet"
        raw_sql = (
            "SELECT count(*) FROM (SELECT s.symbol, g.ts FROM syms s CROSS JOIN grid g) e "
            f"ANTI JOIN (SELECT symbol, ts FROM read_parquet('{glob}')) p "
            "ON p.symbol = e.symbol AND p.ts = e.ts"
        )
        raw_missing = con.execute(raw_sql).fetchall()[0][0]
        report = detect(work, sel, NOW)
        assert raw_missing == removed == report.expected_rows - report.present_rows
        t_raw = best_of(lambda: con.execute(raw_sql).fetchall(), repeat=5)
        t_detect = best_of(lambda: detect(work, sel, NOW), repeat=5)
        return [
            {
                "case": "5,000 symbols x 10 years of 1d, 1 % removed",
                "expected": report.expected_rows,
                "missing": removed,
                "gap_runs": report.gaps_total,
                "raw_anti_join_s": round(t_raw, 3),
                "detect_s": round(t_detect, 3),
                "detect_vs_raw": round(t_detect / t_raw, 2),
            }
        ]
    finally:
        shutil.rmtree(work, ignore_errors=True)
