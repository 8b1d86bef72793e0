"""Catalog overhead: the hot queries through the catalog's views (the `etl sql` session)
against DuckDB's raw read_parquet over the same lake files, in the same run; results
are fetched as Arrow tables on both sides.

    python -m bench query
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from pathlib import Path

import duckdb

from bench.data import best_of, klines_frame
from etl.catalog import ReadOnlySession, build_catalog
from etl.lake import Lake

NOW = dt.datetime(2024, 12, 31, tzinfo=dt.UTC)
SYMBOL = "602500.SH"
DAY = dt.date(2021, 6, 15)


def run() -> list[dict[str, object]]:
    work = Path(tempfile.mkdtemp(prefix="bench-query-"))
    try:
        lake = Lake(work)
        frame = klines_frame(5000, "1d", dt.date(2014, 1, 1), dt.date(2023, 12, 31))
        lake.write("klines", frame, now=NOW)
        minute = klines_frame(1000, "1m", dt.date(2024, 3, 1), dt.date(2024, 3, 29))
        lake.write("klines", minute, now=NOW)
        build_catalog(work, now=NOW)
        glob = f"{work}/lake/klines/*/*/*.parquet"
        raw = duckdb.connect()
        raw.execute("SET TimeZone = 'UTC'")
        cases = [
            ("one symbol, 10 years of 1d", "freq = '1d' AND symbol = ?", [SYMBOL]),
            ("one day, every symbol, 1d", "freq = '1d' AND trade_date = ?", [DAY]),
            ("one symbol, 4 weeks of 1m", "freq = '1m' AND symbol = ?", ["600500.SH"]),
            ("one day, every symbol, 1m", "freq = '1m' AND trade_date = ?", [dt.date(2024, 3, 15)]),
        ]
        results = []
        with ReadOnlySession(work) as session:
            for label, where, params in cases:
                cat_sql = f"SELECT * FROM klines WHERE {where}"
                raw_sql = (
                    f"SELECT * FROM read_parquet('{glob}', hive_partitioning=true) WHERE {where}"
                )
                n_cat = session.arrow(cat_sql, params).num_rows
                n_raw = raw.sql(raw_sql, params=params).to_arrow_table().num_rows
                assert n_cat == n_raw, (label, n_cat, n_raw)
                t_cat = best_of(lambda q=cat_sql, p=params: session.arrow(q, p), repeat=9)
                t_raw = best_of(
                    lambda q=raw_sql, p=params: raw.sql(q, params=p).to_arrow_table(), repeat=9
                )
                results.append(
                    {
                        "query": label,
                        "rows": n_cat,
                        "raw_ms": round(t_raw * 1000, 1),
                        "catalog_ms": round(t_cat * 1000, 1),
                        "catalog_vs_raw": round(t_cat / t_raw, 2),
                    }
                )
        return results
    finally:
        shutil.rmtree(work, ignore_errors=True)
