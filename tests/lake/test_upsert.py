"""Upsert semantics: one row per key, latest ingest wins, re-writing the same batch is a no-op."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etl.lake import Lake
from tests.conftest import NOW, kline_rows

DAYS = [
    dt.date(2023, 12, 28),
    dt.date(2023, 12, 29),
    dt.date(2024, 1, 2),
    dt.date(2024, 1, 3),
    dt.date(2024, 1, 4),
    dt.date(2024, 1, 5),
]


def read_all(root: Path) -> pl.DataFrame:
    files = sorted((root / "lake" / "klines").glob("*/*/*.parquet"))
    if not files:
        return pl.DataFrame()
    return pl.read_parquet(files, hive_partitioning=True).sort(["symbol", "ts"])


def test_first_write_stores_every_row_and_stamps_ingest_time(data_root: Path) -> None:
    result = Lake(data_root).write("klines", kline_rows(["600000.SH"], DAYS), now=NOW)
    stored = read_all(data_root)
    assert result.rows_added == len(DAYS)
    assert stored.height == len(DAYS)
    assert set(stored["ingested_at"].to_list()) == {NOW}
    assert sorted(p.name for p in (data_root / "lake" / "klines" / "freq=1d").iterdir()) == [
        "year=2023",
        "year=2024",
    ]


def test_same_batch_twice_changes_nothing(data_root: Path) -> None:
    lake = Lake(data_root)
    lake.write("klines", kline_rows(["600000.SH", "000001.SZ"], DAYS), now=NOW)
    before = {p: p.stat().st_ino for p in (data_root / "lake").rglob("*.parquet")}
    again = lake.write(
        "klines", kline_rows(["600000.SH", "000001.SZ"], DAYS), now=NOW + dt.timedelta(hours=1)
    )
    after = {p: p.stat().st_ino for p in (data_root / "lake").rglob("*.parquet")}
    assert again.rows_written == 0
    assert again.rows_unchanged == 2 * len(DAYS)
    assert before == after  # not one file rewritten


def test_overlapping_write_keeps_one_row_per_key_latest_wins(data_root: Path) -> None:
    lake = Lake(data_root)
    lake.write("klines", kline_rows(["600000.SH"], DAYS, close=10.0), now=NOW)
    later = NOW + dt.timedelta(days=1)
    result = lake.write("klines", kline_rows(["600000.SH"], DAYS[2:5], close=20.0), now=later)
    stored = read_all(data_root)
    assert result.rows_replaced == 3 and result.rows_added == 0
    assert stored.height == len(DAYS)
    assert stored.filter(pl.col("close") == 20.0)["trade_date"].to_list() == DAYS[2:5]
    assert stored.filter(pl.col("close") == 20.0)["ingested_at"].unique().to_list() == [later]
    dupes = duckdb.sql(
        f"SELECT symbol, ts, count(*) c FROM read_parquet('{data_root}/lake/klines/*/*/*.parquet')"
        " GROUP BY ALL HAVING c > 1"
    ).fetchall()
    assert dupes == []


def test_manifest_coverage_counts_rows_exactly_after_replacements(data_root: Path) -> None:
    lake = Lake(data_root)
    lake.write("klines", kline_rows(["600000.SH"], DAYS[2:]), now=NOW)
    lake.write("klines", kline_rows(["600000.SH"], DAYS[3:], close=11.0), now=NOW)
    [m2023] = [m for m in lake.manifests("klines") if m.partition["year"] == "2023"] or [None]
    assert m2023 is None  # nothing was written to 2023 yet
    [m2024] = lake.manifests("klines")
    [cov] = m2024.coverage_entries()
    assert (cov["entity"], cov["rows"]) == ("600000.SH", 4)
    assert cov["first"] == "2024-01-01T16:00:00.000000Z"  # 2024-01-02 00:00 Asia/Shanghai


def test_compaction_merges_buckets_and_keeps_rows(data_root: Path) -> None:
    lake = Lake(data_root, compact_min_files=100)
    for i, day in enumerate(DAYS[2:]):
        lake.write("klines", kline_rows(["600000.SH"], [day], close=10.0 + i), now=NOW)
    folder = data_root / "lake" / "klines" / "freq=1d" / "year=2024"
    assert len(list(folder.glob("*.parquet"))) == 4
    before = read_all(data_root)
    [result] = [r for r in lake.compact("klines", now=NOW)]
    assert result.files_removed == 4 and result.files_added == 1
    assert len(list(folder.glob("*.parquet"))) == 1
    assert read_all(data_root).equals(before)


def test_automatic_compaction_past_threshold(data_root: Path) -> None:
    lake = Lake(data_root, compact_min_files=3)
    for i, day in enumerate(DAYS[2:]):
        lake.write("klines", kline_rows(["600000.SH"], [day], close=10.0 + i), now=NOW)
    folder = data_root / "lake" / "klines" / "freq=1d" / "year=2024"
    # the third file of the bucket triggered a merge; the fourth write added one file again
    assert len(list(folder.glob("*.parquet"))) == 2
    assert read_all(data_root).height == 4


def test_minute_bars_bucket_by_day(data_root: Path) -> None:
    rows = kline_rows(["600000.SH"], DAYS[2:4], freq="1m")
    rows = rows.with_columns(pl.col("ts") + pl.duration(minutes=90))  # 09:30 local
    Lake(data_root).write("klines", rows, now=NOW)
    names = sorted(p.name for p in (data_root / "lake/klines/freq=1m/year=2024").iterdir())
    assert [n.rsplit("-", 1)[0] for n in names] == ["part-2024-01-02", "part-2024-01-03"]


# -- property: any sequence of overlapping writes equals last-write-wins -----------------------

write_st = st.tuples(
    st.lists(
        st.sampled_from(["600000.SH", "000001.SZ", "300750.SZ"]),
        min_size=1,
        max_size=3,
        unique=True,
    ),
    st.integers(0, len(DAYS) - 1),
    st.integers(1, len(DAYS)),
    st.integers(1, 5),  # the close price: repeated values exercise "unchanged" rows
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(writes=st.lists(write_st, min_size=1, max_size=8), threshold=st.integers(2, 4))
def test_any_write_sequence_equals_last_write_wins(tmp_path_factory, writes, threshold) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("lww")
    lake = Lake(root, compact_min_files=threshold)
    reference: dict[tuple[str, dt.date], tuple[float, dt.datetime]] = {}
    for i, (symbols, first, length, close) in enumerate(writes):
        days = DAYS[first : first + length]
        at = NOW + dt.timedelta(minutes=i)
        lake.write("klines", kline_rows(symbols, days, close=float(close)), now=at)
        for sym in symbols:
            for day in days:
                prev = reference.get((sym, day))
                # a re-write with identical values keeps the earlier ingest time
                reference[(sym, day)] = prev if prev and prev[0] == close else (float(close), at)
    stored = read_all(root)
    got = {
        (r["symbol"], r["trade_date"]): (r["close"], r["ingested_at"])
        for r in stored.iter_rows(named=True)
    }
    assert stored.height == len(got)  # no key twice
    assert got == reference
    total = sum(m.rows for m in lake.manifests("klines"))
    assert total == len(reference)
    cov: dict[str, int] = {}
    for m in lake.manifests("klines"):
        for c in m.coverage_entries():
            cov[c["entity"]] = cov.get(c["entity"], 0) + c["rows"]
    assert cov == {s: sum(1 for (k, _d) in reference if k == s) for s in {k for k, _ in reference}}
