"""klines.source: a REST bar replaces a live bar of the same key, a live bar never replaces a
REST bar, and rows written before the column existed read as REST."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from etl.catalog import ensure_catalog
from etl.dataroot import DataRoot
from etl.lake import Lake
from tests.conftest import NOW, kline_rows

DAYS = [dt.date(2024, 1, 2), dt.date(2024, 1, 3)]
LATER = NOW + dt.timedelta(minutes=5)


def stored(root: Path) -> pl.DataFrame:
    files = sorted((root / "lake" / "klines").glob("*/*/*.parquet"))
    return pl.read_parquet(files, hive_partitioning=True).sort(["symbol", "ts"])


def sourced(frame: pl.DataFrame, source: str | None) -> pl.DataFrame:
    return frame.with_columns(pl.lit(source, dtype=pl.String).alias("source"))


def test_rest_replaces_live_even_with_equal_values(data_root: Path) -> None:
    lake = Lake(data_root)
    lake.write("klines", sourced(kline_rows(["600000.SH"], DAYS), "live"), now=NOW)
    result = lake.write("klines", sourced(kline_rows(["600000.SH"], DAYS), "rest"), now=LATER)
    assert result.rows_replaced == 2
    assert stored(data_root)["source"].to_list() == ["rest", "rest"]


def test_live_never_replaces_rest_and_is_counted(data_root: Path) -> None:
    lake = Lake(data_root)
    lake.write("klines", sourced(kline_rows(["600000.SH"], DAYS, close=10.0), "rest"), now=NOW)
    live = sourced(kline_rows(["600000.SH"], DAYS, close=11.0), "live")
    result = lake.write("klines", live, now=LATER)
    assert (result.rows_written, result.rows_refused) == (0, 2)
    rows = stored(data_root)
    assert rows["close"].to_list() == [10.0, 10.0]
    assert rows["source"].to_list() == ["rest", "rest"]


def test_live_replaces_live_latest_wins(data_root: Path) -> None:
    lake = Lake(data_root)
    lake.write("klines", sourced(kline_rows(["600000.SH"], DAYS, close=10.0), "live"), now=NOW)
    lake.write("klines", sourced(kline_rows(["600000.SH"], DAYS, close=12.0), "live"), now=LATER)
    assert stored(data_root)["close"].to_list() == [12.0, 12.0]


def test_a_writer_without_source_stores_rest(data_root: Path) -> None:
    Lake(data_root).write("klines", kline_rows(["600000.SH"], DAYS), now=NOW)
    assert stored(data_root)["source"].to_list() == ["rest", "rest"]


def test_files_from_before_the_column_read_as_rest_and_outrank_live(data_root: Path) -> None:
    lake = Lake(data_root)
    lake.write("klines", kline_rows(["600000.SH"], DAYS), now=NOW)
    # Rewrite the stored file without the column, as a lake of an older release has it.
    (path,) = (data_root / "lake" / "klines").glob("*/*/*.parquet")
    table = pq.read_table(path)
    pq.write_table(table.drop_columns(["source"]), path)
    ensure_catalog(data_root, now=NOW)
    con = duckdb.connect(str(DataRoot(data_root).catalog), read_only=True)
    try:
        assert con.execute("SELECT DISTINCT source FROM klines").fetchall() == [("rest",)]
    finally:
        con.close()
    live = sourced(kline_rows(["600000.SH"], DAYS, close=11.0), "live")
    assert lake.write("klines", live, now=LATER).rows_refused == 2
    assert isinstance(table, pa.Table)


def test_ticks_and_quotes_partition_by_trade_date_with_hour_buckets(data_root: Path) -> None:
    ts = dt.datetime(2024, 6, 28, 1, 30, 5, tzinfo=dt.UTC)
    ticks = pl.DataFrame(
        {
            "symbol": ["600000.SH"] * 3,
            "ts": [ts, ts, ts + dt.timedelta(hours=1)],
            "trade_date": [dt.date(2024, 6, 28)] * 3,
            "seq": [0, 1, 0],
            "price": [10.0, 10.01, 10.02],
            "volume": [100.0, 200.0, 300.0],
            "amount": [None, None, None],
            "side": ["buy", None, "sell"],
            "vendor": ["infoway"] * 3,
            "recv_at": [ts] * 3,
        }
    )
    lake = Lake(data_root)
    assert lake.write("ticks", ticks, now=NOW).rows_added == 3
    assert lake.write("ticks", ticks, now=LATER).rows_written == 0
    folder = data_root / "lake" / "ticks" / "date=2024-06-28"
    names = sorted(p.name.rsplit("-", 1)[0] for p in folder.glob("*.parquet"))
    assert names == ["part-2024-06-28T01", "part-2024-06-28T02"]
    ensure_catalog(data_root, now=NOW)
    con = duckdb.connect(str(DataRoot(data_root).catalog), read_only=True)
    try:
        got = con.execute("SELECT count(*), count(DISTINCT (ts, seq)) FROM ticks").fetchone()
        assert got == (3, 3)
        cols = [r[0] for r in con.execute("DESCRIBE quotes").fetchall()]
        assert cols[:3] == ["symbol", "ts", "trade_date"]
        assert "cum_volume" in cols
    finally:
        con.close()
