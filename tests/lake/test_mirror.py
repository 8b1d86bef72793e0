"""Symbol-major mirrors (etl.lake.mirror): reads through them equal reads of the Parquet
files, whatever was committed since the last compaction; a damaged or foreign mirror is
never used; compaction makes the missing ones and removes the orphans."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path

import pyarrow as pa
import pytest

from etl.dataroot import DataRoot
from etl.lake import Lake
from etl.lake.mirror import Mirror
from etl.lake.reader import LakeReader, RowFilter
from etl.warehouse import Warehouse
from tests.conftest import ETL, NOW, etl_env, kline_rows

SYMBOLS = ["000001.SZ", "600000.SH", "600001.SH", "600002.SH"]
DAYS_2023 = [dt.date(2023, 12, 26) + dt.timedelta(days=i) for i in range(5)]
DAYS_2024 = [dt.date(2024, 1, 2) + dt.timedelta(days=i) for i in range(40)]

FILTERS = [
    RowFilter(),
    RowFilter(entities=("600001.SH",)),
    RowFilter(entities=("600001.SH", "000001.SZ", "NOPE.SH")),
    RowFilter(entities=()),
    RowFilter(date_column="trade_date", lo=dt.date(2024, 1, 10), hi=dt.date(2024, 1, 10)),
    RowFilter(
        entities=("600002.SH",),
        date_column="trade_date",
        lo=dt.date(2023, 12, 28),
        hi=dt.date(2024, 1, 20),
    ),
    RowFilter(entities=("600000.SH",), date_column="trade_date", hi=dt.date(2024, 1, 3)),
]


def _read(root: Path, where: RowFilter) -> pa.Table:
    reader = LakeReader(root)
    keys = reader.partition_keys("klines", freq="1d")
    table = reader.read("klines", keys, where)
    return table.sort_by([("symbol", "ascending"), ("ts", "ascending")])


def _mirrors(root: Path) -> list[Path]:
    """The yearly mirrors (one per Parquet file), not the histories across years."""
    return sorted(p for p in DataRoot(root).mirrors.rglob("part-*") if p.is_file())


def _histories(root: Path) -> list[Path]:
    return sorted(DataRoot(root).mirrors.rglob("history.arrow"))


def _parquet(root: Path) -> list[Path]:
    return sorted(DataRoot(root).dataset("klines").rglob("*.parquet"))


@pytest.fixture
def lake_root(data_root: Path) -> Path:
    lake = Lake(data_root)
    lake.write("klines", kline_rows(SYMBOLS, DAYS_2023 + DAYS_2024, close=10.0), now=NOW)
    lake.write("klines", kline_rows(SYMBOLS[:2], DAYS_2024[5:9], close=11.0), now=NOW)
    lake.write("klines", kline_rows(["600003.SH"], DAYS_2024[:3], close=12.0), now=NOW)
    return data_root


def test_mirrored_reads_equal_parquet_reads(lake_root: Path) -> None:
    before = [_read(lake_root, where) for where in FILTERS]
    assert not _mirrors(lake_root)
    results = Lake(lake_root).compact("klines", now=NOW)
    assert len(_parquet(lake_root)) == len(_mirrors(lake_root))
    assert results[0].mirrors_written == len(_mirrors(lake_root)) + len(_histories(lake_root))
    assert len(_histories(lake_root)) == 1  # freq=1d: its years in one file
    for where, expected in zip(FILTERS, before, strict=True):
        got = _read(lake_root, where)
        assert got.equals(expected), where
    assert before[4].num_rows == len(SYMBOLS)  # the day's cross-section: a bar per symbol


def test_commits_after_compaction_are_read_and_orphans_removed(lake_root: Path) -> None:
    lake = Lake(lake_root)
    lake.compact("klines", now=NOW)
    reader = LakeReader(lake_root)
    one = RowFilter(entities=("600000.SH",))
    keys = reader.partition_keys("klines", freq="1d")
    assert set(reader.read("klines", keys, one).column("close").to_pylist()) == {10.0, 11.0}
    # replace every 2024 bar of one symbol: a new file the mirrors do not know
    lake.write("klines", kline_rows(["600000.SH"], DAYS_2024, close=20.0), now=NOW)
    closes = reader.read("klines", keys, one).column("close").to_pylist()
    assert closes == [10.0] * len(DAYS_2023) + [20.0] * len(DAYS_2024)
    again = lake.compact("klines", now=NOW)[0]
    assert again.mirrors_written >= 1
    names = {p.stem for p in _parquet(lake_root)}
    assert {p.stem for p in _mirrors(lake_root)} == names  # no orphan, none missing
    assert reader.read("klines", keys, one).column("close").to_pylist() == closes


def test_a_damaged_or_foreign_mirror_is_not_used(
    lake_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    expected = [_read(lake_root, where) for where in FILTERS]
    Lake(lake_root).compact("klines", now=NOW)
    damaged, foreign = _mirrors(lake_root)[:2]
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])
    table = pa.table({"symbol": ["600000.SH"], "close": [99.0]})
    foreign.write_bytes(_ipc_bytes(table))  # right name, other columns
    assert Mirror.load(foreign, table.schema) is None  # no etl.mirror tag
    for where, want in zip(FILTERS, expected, strict=True):
        assert _read(lake_root, where).equals(want), where
    assert "unreadable" in caplog.text
    # the next compaction writes them again
    assert Lake(lake_root).compact("klines", now=NOW)[0].mirrors_written == 2


def _ipc_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def test_warehouse_reads_are_the_same_through_mirrors(lake_root: Path) -> None:
    wh = Warehouse(lake_root)
    asks = [
        (["600001.SH"], "2023-01-01", "2024-12-31"),
        (None, "2024-01-10", "2024-01-10"),
        (["600000.SH", "000001.SZ"], "2023-12-27", "2024-01-05"),
    ]
    before = [wh.bars(s, "1d", a, b) for s, a, b in asks]
    Lake(lake_root).compact("klines", now=NOW)
    after = [Warehouse(lake_root).bars(s, "1d", a, b) for s, a, b in asks]
    for want, got in zip(before, after, strict=True):
        assert got.equals(want)
    assert after[0].height == len(DAYS_2023) + len(DAYS_2024)


def test_etl_compact_reports_the_mirrors_it_wrote(lake_root: Path) -> None:
    def compact() -> dict[str, int]:
        done = subprocess.run([*ETL, "compact", "--dataset", "klines", "--json"],
                              env=etl_env(lake_root), capture_output=True, text=True,
                              timeout=120, check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr
        doc: dict[str, int] = json.loads(done.stdout)["datasets"][0]
        return doc

    first, second = compact(), compact()
    assert first["mirrors_written"] == len(_parquet(lake_root)) + 1 > 1  # and the history
    assert second["mirrors_written"] == 0


def test_a_reader_lets_go_of_mirrors_whose_file_left_the_lake(lake_root: Path) -> None:
    """A mapped file keeps its disk space: a long-running reader must not hold replaced
    mirrors (regression: they stayed mapped until the cache pushed them out)."""
    lake = Lake(lake_root)
    lake.compact("klines", now=NOW)
    reader = LakeReader(lake_root)
    keys = reader.partition_keys("klines", freq="1d")
    reader.read("klines", keys, RowFilter())  # every row: the yearly mirrors
    held = set(reader._mirrors._items)
    assert held and all(p.exists() for p in held)
    lake.write("klines", kline_rows(["600000.SH"], DAYS_2024, close=30.0), now=NOW)
    lake.compact("klines", now=NOW)  # the 2024 file is replaced, its old mirror removed
    table = reader.read("klines", keys, RowFilter())
    assert 30.0 in table.column("close").to_pylist()
    assert all(p.exists() for p in reader._mirrors._items)  # nothing deleted is held


def test_prefetch_asks_for_every_byte_a_run_of_rows_occupies(
    lake_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pages asked for ahead of a cold read are exactly where the entity's rows lie in
    every column (validity, values, string offsets and bytes), and asked for once."""
    Lake(lake_root).compact("klines", now=NOW)
    from etl import schema as schemas

    path = _mirrors(lake_root)[-1]
    mirror = Mirror.load(path, schemas.get("klines").arrow_schema)
    assert mirror is not None and mirror.mapped is not None
    assert len(mirror.layouts) == mirror.table.num_columns  # every column's layout known
    asked: list[tuple[int, int]] = []
    monkeypatch.setattr(Mirror, "_willneed", lambda self, lo, hi: asked.append((lo, hi)))
    entity = mirror.entities[1]
    runs = mirror.runs([entity, "NOPE.SH"])
    assert runs == [(int(mirror.starts[1]), int(mirror.starts[2]))]
    assert mirror.runs([entity]) == []  # once per entity per loaded mirror
    mirror.prefetch(runs)
    mirror.prefetch_strings(runs)
    base = pa.py_buffer(mirror.mapped).address
    first, last = runs[0]
    rows = mirror.table.slice(first, last - first)
    for column in rows.columns:
        chunk = column.chunk(0)
        text = pa.types.is_string(chunk.type)
        buffer = chunk.buffers()[1]  # fixed-width values, or the strings' value offsets
        width = 4 if text else chunk.type.bit_width // 8
        lo = buffer.address - base + chunk.offset * width
        hi = lo + (len(chunk) + (1 if text else 0)) * width
        assert any(a <= lo and hi <= b for a, b in asked), (column.type, lo, hi)
    texts = [c for c in rows.columns if pa.types.is_string(c.type)]
    offsets = [c.chunk(0).buffers()[1] for c in texts]
    for chunk, off in zip([c.chunk(0) for c in texts], offsets, strict=True):
        ends = pa.Array.from_buffers(pa.int32(), len(chunk) + 1, [None, off], offset=chunk.offset)
        data = chunk.buffers()[2].address - base
        lo, hi = data + ends[0].as_py(), data + ends[-1].as_py()
        assert any(a <= lo and hi <= b for a, b in asked), (lo, hi)


# -- histories: every year of a frequency in one file (etl.lake.history) ------------------


def test_history_reads_equal_parquet_reads(lake_root: Path) -> None:
    """Entity reads of every year, of one year and of a range across the two come from
    the history and equal the Parquet files' rows."""
    reader = LakeReader(lake_root)
    keys = reader.partition_keys("klines", freq="1d")
    asks = [(keys, where) for where in FILTERS if where.entities is not None]
    asks += [([key], where) for key in keys for where in FILTERS if where.entities]
    order = [("symbol", "ascending"), ("ts", "ascending")]
    before = [reader.read("klines", k, w).sort_by(order) for k, w in asks]
    Lake(lake_root).compact("klines", now=NOW)
    after = LakeReader(lake_root)
    for (k, where), want in zip(asks, before, strict=True):
        got = after.read("klines", k, where)
        if where.entities is not None and len(where.entities) > 1:
            got = got.sort_by(order)  # the closed years' rows, then the newest year's
        assert got.equals(want), (k, where)  # one entity's years follow one another
    assert list(after._histories) == _histories(lake_root)  # the history answered them
    # the history holds the closed years (2023); the newest (2024) is read from its mirror
    assert after._histories[_histories(lake_root)[0]].parts.keys() == {keys[0]}
    assert {p.parent.name for p in after._mirrors._items} == {"year=2024"}


def test_a_history_is_not_used_for_a_partition_changed_since(lake_root: Path) -> None:
    lake = Lake(lake_root)
    lake.compact("klines", now=NOW)
    (history,) = _histories(lake_root)
    reader = LakeReader(lake_root)
    keys = reader.partition_keys("klines", freq="1d")
    one = RowFilter(entities=("600000.SH",))
    assert set(reader.read("klines", keys, one).column("close").to_pylist()) == {10.0, 11.0}
    # a commit into a closed year: the history no longer holds it as it is
    lake.write("klines", kline_rows(["600000.SH"], DAYS_2023, close=30.0), now=NOW)
    want = [30.0] * len(DAYS_2023) + [10.0] * 5 + [11.0] * 4 + [10.0] * (len(DAYS_2024) - 9)
    assert reader.read("klines", keys, one).column("close").to_pylist() == want
    written_at = history.stat().st_mtime_ns
    assert lake.compact("klines", now=NOW)[0].mirrors_written == 2  # 2023's mirror, history
    assert history.stat().st_mtime_ns != written_at
    assert reader.read("klines", keys, one).column("close").to_pylist() == want
    assert reader._histories[history].parts  # the new history answered
    # a commit into the newest year: its mirror is written again, the history is not
    lake.write("klines", kline_rows(["600000.SH"], DAYS_2024, close=20.0), now=NOW)
    want = [30.0] * len(DAYS_2023) + [20.0] * len(DAYS_2024)
    assert reader.read("klines", keys, one).column("close").to_pylist() == want
    written_at = history.stat().st_mtime_ns
    assert lake.compact("klines", now=NOW)[0].mirrors_written == 1  # 2024's mirror
    assert history.stat().st_mtime_ns == written_at
    assert reader.read("klines", keys, one).column("close").to_pylist() == want
    assert lake.compact("klines", now=NOW)[0].mirrors_written == 0  # nothing changed


def test_a_damaged_history_is_not_used(lake_root: Path, caplog: pytest.LogCaptureFixture) -> None:
    wanted = [w for w in FILTERS if w.entities is not None]
    expected = [_read(lake_root, w) for w in wanted]
    Lake(lake_root).compact("klines", now=NOW)
    (history,) = _histories(lake_root)
    history.write_bytes(history.read_bytes()[: history.stat().st_size // 2])
    for where, want in zip(wanted, expected, strict=True):
        assert _read(lake_root, where).equals(want), where
    assert "unreadable" in caplog.text
    assert Lake(lake_root).compact("klines", now=NOW)[0].mirrors_written == 1  # written again
