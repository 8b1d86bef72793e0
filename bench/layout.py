"""Which sort order and partitioning serve the two queries analysts run all day?

One symbol's 10 years of 1d bars, and one day's cross-section of every symbol, on 5,000
symbols x 10 years, for three layouts written with the same row-group size. DuckDB and polars.

    python -m bench layout
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.parquet as pq

from bench.data import best_of, klines_frame

SYMBOL = "602500.SH"
DAY = dt.date(2021, 6, 15)


def _write(frame: pl.DataFrame, root: Path, part: str, order: list[str], rg: int) -> None:
    key = (
        pl.col("trade_date").dt.year()
        if part == "year"
        else pl.col("trade_date").dt.strftime("%Y-%m")
    )
    for (value,), group in frame.with_columns(key.alias("_p")).group_by(["_p"]):
        folder = root / f"{part}={value}"
        folder.mkdir(parents=True)
        pq.write_table(
            group.drop("_p", "freq").sort(order).to_arrow(),
            folder / "data.parquet",
            compression="zstd",
            row_group_size=rg,
        )


def run() -> list[dict[str, object]]:
    frame = klines_frame(5000, "1d", dt.date(2014, 1, 1), dt.date(2023, 12, 31))
    layouts = {
        "year partitions, sorted (symbol, ts)  [chosen]": ("year", ["symbol", "ts"], 131_072),
        "year partitions, sorted (ts, symbol)": ("year", ["ts", "symbol"], 131_072),
        "month partitions, sorted (symbol, ts)": ("month", ["symbol", "ts"], 131_072),
    }
    work = Path(tempfile.mkdtemp(prefix="bench-layout-"))
    results = []
    try:
        for label, (part, order, rg) in layouts.items():
            root = work / label.split(",")[0].replace(" ", "_") / order[0]
            _write(frame, root, part, order, rg)
            glob = f"{root}/*/*.parquet"
            con = duckdb.connect()
            one_symbol = best_of(
                lambda: con.execute(
                    f"SELECT * FROM read_parquet('{glob}', hive_partitioning=true) WHERE symbol = ?",
                    [SYMBOL],
                ).fetchall()
            )
            one_day = best_of(
                lambda: con.execute(
                    f"SELECT * FROM read_parquet('{glob}', hive_partitioning=true) WHERE trade_date = ?",
                    [DAY],
                ).fetchall()
            )
            pl_symbol = best_of(
                lambda: (
                    pl.scan_parquet(glob, hive_partitioning=True)
                    .filter(pl.col("symbol") == SYMBOL)
                    .collect()
                )
            )
            pl_day = best_of(
                lambda: (
                    pl.scan_parquet(glob, hive_partitioning=True)
                    .filter(pl.col("trade_date") == DAY)
                    .collect()
                )
            )
            size = sum(p.stat().st_size for p in root.rglob("*.parquet"))
            results.append(
                {
                    "layout": label,
                    "files": len(list(root.rglob("*.parquet"))),
                    "mib": round(size / 2**20, 1),
                    "duckdb_one_symbol_ms": round(one_symbol * 1000, 1),
                    "duckdb_one_day_ms": round(one_day * 1000, 1),
                    "polars_one_symbol_ms": round(pl_symbol * 1000, 1),
                    "polars_one_day_ms": round(pl_day * 1000, 1),
                }
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return results
