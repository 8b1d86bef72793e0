"""A read sees one committed state of each partition, while writers swap partitions under it."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest

from etl.dataroot import PartitionKey
from etl.lake import CommitResult, Lake
from etl.lake import reader as reader_module
from etl.lake.reader import LakeReader, RowFilter, bucket_span
from tests.conftest import NOW, kline_rows

SYMBOLS = ["600000.SH", "600001.SH", "000001.SZ"]
DAYS = [dt.date(2024, 1, 2), dt.date(2024, 1, 3), dt.date(2024, 1, 4)]
KEY = PartitionKey.of(freq="1d", year=2024)


def _closes(reader: LakeReader) -> list[float]:
    table = reader.read("klines", [KEY], RowFilter())
    return sorted(table.column("close").to_pylist())


def test_a_snapshot_keeps_reading_the_state_it_listed(data_root: Path) -> None:
    lake = Lake(data_root)
    lake.write("klines", kline_rows(SYMBOLS, DAYS, close=1.0), now=NOW)
    reader = LakeReader(data_root)
    snap = reader.snapshot("klines", KEY)
    assert snap is not None
    # A commit replaces every row: the old file is deleted once the new folder is in place.
    lake.write("klines", kline_rows(SYMBOLS, DAYS, close=2.0), now=NOW)
    assert not any((snap.folder / name).exists() for name in snap.files)
    with snap:
        import pyarrow.parquet as pq

        closes = [pq.read_table(snap.open(n)).column("close").to_pylist() for n in snap.files]
    assert sorted(c for part in closes for c in part) == [1.0] * 9
    assert _closes(reader) == [2.0] * 9


def test_a_swap_between_listing_and_check_is_detected(
    data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A real commit lands at the worst moment: after the reader listed the old folder and
    # opened its files, before it checked that the folder is still the partition.
    lake = Lake(data_root)
    lake.write("klines", kline_rows(SYMBOLS, DAYS, close=1.0), now=NOW)
    real_fstat = os.fstat
    commits: list[CommitResult] = []
    armed = [True]

    def fstat_then_commit(fd: int) -> os.stat_result:
        result = real_fstat(fd)
        if armed[0]:
            armed[0] = False  # the commit itself calls fstat too
            commits.append(lake.write("klines", kline_rows(SYMBOLS, DAYS, close=2.0), now=NOW))
        return result

    monkeypatch.setattr(reader_module.os, "fstat", fstat_then_commit)
    assert _closes(LakeReader(data_root)) == [2.0] * 9
    assert len(commits) == 1 and commits[0].rows_replaced == 9


def test_missing_partitions_and_datasets_read_as_empty(data_root: Path) -> None:
    reader = LakeReader(data_root)
    assert reader.partition_keys("klines", freq="1d") == []
    assert reader.snapshot("klines", KEY) is None
    empty = reader.read("klines", [KEY])
    assert empty.num_rows == 0 and "close" in empty.column_names


def test_buckets_outside_the_range_are_not_opened(data_root: Path) -> None:
    lake = Lake(data_root)
    one = kline_rows(["600000.SH"], [dt.date(2024, 1, 2)], freq="1m")
    two = kline_rows(["600000.SH"], [dt.date(2024, 1, 3)], freq="1m")
    lake.write("klines", one, now=NOW)
    lake.write("klines", two, now=NOW)
    reader = LakeReader(data_root)
    key = PartitionKey.of(freq="1m", year=2024)
    where = RowFilter(date_column="trade_date", lo=dt.date(2024, 1, 3), hi=dt.date(2024, 1, 3))
    table = reader.read("klines", [key], where)
    assert table.column("trade_date").to_pylist() == [dt.date(2024, 1, 3)]


@pytest.mark.parametrize(
    ("label", "span"),
    [
        ("2024", (dt.date(2024, 1, 1), dt.date(2024, 12, 31))),
        ("2024-02", (dt.date(2024, 2, 1), dt.date(2024, 2, 29))),  # leap year
        ("2023-12", (dt.date(2023, 12, 1), dt.date(2023, 12, 31))),  # year end
        ("2024-01-02", (dt.date(2024, 1, 2), dt.date(2024, 1, 2))),
        ("all", None),
        ("20x4", None),
    ],
)
def test_bucket_spans(label: str, span: tuple[dt.date, dt.date] | None) -> None:
    assert bucket_span(label) == span


WRITER = """
import datetime as dt, sys
from pathlib import Path
from etl.lake import CommitResult, Lake
from tests.conftest import kline_rows
root, symbols, days = Path(sys.argv[1]), {symbols!r}, {days!r}
lake = Lake(root, compact_min_files=3)
for g in range(1, 61):
    now = dt.datetime(2024, 6, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=g)
    # Even commits replace every row (a new file); odd ones replace half of the symbols, so
    # buckets gain files and get compacted inside the same swap.
    chosen = symbols if g % 2 == 0 else symbols[: len(symbols) // 2]
    lake.write("klines", kline_rows(chosen, [dt.date.fromisoformat(d) for d in days],
               close=float(g)), now=now)
    print(g, flush=True)
"""


@pytest.mark.slow
def test_reads_during_commits_never_see_a_mix(data_root: Path) -> None:
    symbols = [f"6000{i:02d}.SH" for i in range(20)]
    days = [d.isoformat() for d in DAYS]
    Lake(data_root).write("klines", kline_rows(symbols, DAYS, close=0.0), now=NOW)
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER.format(symbols=symbols, days=days), str(data_root)],
        stdout=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    reader = LakeReader(data_root)
    states: set[tuple[float, ...]] = set()
    reads = 0
    try:
        while writer.poll() is None:
            table = reader.read("klines", [KEY])
            reads += 1
            rows = sorted(
                zip(
                    table.column("symbol").to_pylist(),
                    table.column("close").to_pylist(),
                    strict=True,
                )
            )
            # One committed state: every key once, and the closes of one generation (even
            # commits set all symbols, odd ones the first half).
            assert [s for s, _ in rows] == sorted(s for s in symbols for _ in DAYS)
            states.add(tuple(c for _, c in rows))
        assert writer.wait(timeout=60) == 0
    finally:
        if writer.poll() is None:
            writer.kill()
    for closes in states:
        first_half, second_half = closes[: len(closes) // 2], closes[len(closes) // 2 :]
        assert len(set(first_half)) == 1 and len(set(second_half)) == 1, closes
    assert len(states) >= 5, f"only {len(states)} states seen in {reads} reads"
