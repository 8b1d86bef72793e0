"""schemas/ is the single source: a column added there reaches the writer and the catalog."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from etl.catalog import ReadOnlySession, build_catalog
from etl.lake import Lake
from etl.schema import schema_dir, use_schema_dir
from tests.conftest import NOW, kline_rows

NEW_COLUMN = """
[[columns]]
name = "vwap"
type = "float64"
nullable = true
unit = "quote currency"
"""


def test_added_column_reaches_files_and_views(data_root: Path, tmp_path: Path) -> None:
    lake = Lake(data_root)
    old = kline_rows(["600000.SH"], [__import__("datetime").date(2024, 1, 2)])
    lake.write("klines", old, now=NOW)
    build_catalog(data_root, now=NOW)

    evolved = tmp_path / "schemas"
    shutil.copytree(schema_dir(), evolved)
    with (evolved / "klines.toml").open("a") as fh:
        fh.write(NEW_COLUMN)

    with use_schema_dir(evolved):
        new = kline_rows(["000001.SZ"], [__import__("datetime").date(2024, 1, 2)])
        new = new.with_columns(pl.lit(10.25).alias("vwap"))
        lake.write("klines", new, now=NOW)
        written = [
            p
            for p in (data_root / "lake/klines").rglob("*.parquet")
            if "vwap" in pq.read_schema(p).names
        ]
        assert len(written) == 1, "the writer did not take the new column from schemas/"
        build_catalog(data_root, now=NOW)
        with ReadOnlySession(data_root) as session:
            result = session.query("SELECT symbol, vwap FROM klines ORDER BY symbol")
    assert result.columns == ["symbol", "vwap"]
    assert result.rows == [("000001.SZ", 10.25), ("600000.SH", None)]


def test_views_work_on_an_empty_lake(data_root: Path) -> None:
    build_catalog(data_root, now=NOW)
    with ReadOnlySession(data_root) as session:
        assert session.query("SELECT count(*) FROM klines").rows == [(0,)]
        described = session.query("DESCRIBE klines")
        assert [r[0] for r in described.rows][:4] == ["symbol", "freq", "ts", "trade_date"]
        assert session.query("SELECT count(*) FROM coverage").rows == [(0,)]
        assert session.query("SELECT count(*) FROM tasks").rows == [(0,)]
