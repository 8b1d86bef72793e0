"""Histories: one symbol-major file per frequency holding its closed years, for a first
read of one symbol's history that opens one file (and the newest year's) instead of one per
year.

Why: the yearly mirrors (:mod:`etl.lake.mirror`) make a warm one-symbol read a few zero-copy
slices, but a read on a cold page cache (a new process after a restart, a file evicted) pays
each yearly file's metadata before any row: its inode, its head and its footer, and then a
few pages of every column. Ten years of 1d were ten such rounds, 13-18 ms
(BENCHMARKS.md). A history holds every year of the frequency but the newest in one Arrow
IPC file with one record batch per symbol, so that symbol's rows of those years are one
contiguous byte range: one file's head and footer, then one read.

What it costs: another uncompressed copy of those bars on disk (as much as their yearly
mirrors), and compaction rewrites the whole file whenever one of its years changed. That is
why the newest year is left out (:func:`closed_years`): a day's commit changes it, and
rewriting every year after each one cost 8-27 s a night instead of 2 s. It is kept only for
frequencies whose files are yearly (1d, 1w, 1M: few bars per symbol-year); a day's
cross-section reads the yearly mirrors, where one day of every symbol is one filter, not
five thousand batches.

Why it is safe: it records the identity (device, inode, ctime) of every partition folder it
was built from, each taken under that partition's lock while listing its one file. A
published partition folder is never modified in place (a commit swaps in a new folder), so
while the folder at the partition's path has that identity, its files are the ones the
history copies. A reader takes from the history only the partitions that still have the
recorded identity, and reads the others from the yearly mirrors (or the Parquet files) as
before. The file is written to a temporary name, fsynced and renamed over the previous one.
"""

from __future__ import annotations

import base64
import bisect
import contextlib
import datetime as dt
import json
import logging
import mmap
import os
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
import pyarrow as pa
from pyarrow import ipc

from etl.dataroot import DataRoot, PartitionKey
from etl.fsutil import atomic_leftovers, atomic_target
from etl.lake.mirror import Mirror, columns_tag, map_file
from etl.schema import DatasetSchema, empty_table

__all__ = [
    "SETTLE_NS",
    "History",
    "Identity",
    "RowViews",
    "build_history",
    "closed_years",
    "folder_identity",
    "history_leading",
]

log = logging.getLogger(__name__)

_VERSION: Final = b"1"
_KEY_VERSION: Final = b"etl.history"
_KEY_COLUMNS: Final = b"etl.columns"
_KEY_ENTITIES: Final = b"etl.entities"
_KEY_PARTS: Final = b"etl.partitions"
_PAGE: Final = mmap.PAGESIZE
# A folder is recorded only once it has been unchanged this long (see _settle); the same
# rule as the reader's listing cache (etl.lake.reader).
SETTLE_NS: Final = 2_000_000_000

# (st_dev, st_ino, st_ctime_ns) of a partition folder: changes whenever a commit swaps it
Identity = tuple[int, int, int]


def folder_identity(folder: Path) -> Identity | None:
    """The folder's identity, None if it is not there."""
    try:
        st = os.stat(folder)  # noqa: PTH116
    except (FileNotFoundError, NotADirectoryError):
        return None
    return st.st_dev, st.st_ino, st.st_ctime_ns


def history_leading(schema: DatasetSchema, key: PartitionKey) -> PartitionKey | None:
    """The partition values a history of ``key`` is kept under (``freq=1d`` for
    ``freq=1d/year=2024``), None when its partition has no history: the dataset's last
    partition level is the year of its bucket column and its files are yearly."""
    parts = schema.partitions
    if len(parts) < 2 or len(key.items) != len(parts) or not schema.entity:
        return None
    last = parts[-1]
    if last.transform != "year" or last.source is None or last.source != schema.bucket.column:
        return None
    if schema.bucket.granularity_for(key.values) != "year":
        return None
    return PartitionKey(key.items[:-1])


def closed_years(schema: DatasetSchema, keys: Sequence[PartitionKey]) -> list[PartitionKey]:
    """The partitions of ``keys`` (of one history) a history holds: every year but the
    newest, which the day's commits keep changing (it is read from its yearly mirror)."""
    ordered = sorted(keys, key=lambda k: _year(schema, k))
    return ordered[:-1]


def _pair(level: str) -> tuple[str, str]:
    name, _, value = level.partition("=")
    return name, value


def _year(schema: DatasetSchema, key: PartitionKey) -> int:
    return int(key.values[schema.partitions[-1].name])


@dataclass
class History:
    """A loaded history: the file mapped, its footer parsed, which batch holds which entity,
    and the partition folders it was built from."""

    schema: DatasetSchema
    reader: ipc.RecordBatchFileReader
    entities: list[str]  # sorted; entity i is batch i
    parts: dict[PartitionKey, Identity]  # partition -> its folder's identity when built
    stamp: tuple[int, int, int, int]  # (dev, ino, mtime_ns, size) of the file when loaded
    mapped: mmap.mmap
    base: int  # address of the map's first byte
    asked: bytearray = field(default_factory=bytearray)  # entities whose pages were asked for
    lock: threading.Lock = field(default_factory=threading.Lock)
    # batch -> ((date column, float columns), their views): see select_one
    _views: dict[int, tuple[tuple[str, tuple[str, ...]], RowViews | None]] = field(
        default_factory=dict
    )

    @classmethod
    def load(cls, path: Path, schema: DatasetSchema) -> History | None:
        """The history at ``path``, None if absent, unreadable or for other columns."""
        try:
            st = os.stat(path)  # noqa: PTH116
            mapped = map_file(path)
            buffer = pa.py_buffer(mapped)
            reader = ipc.open_file(pa.BufferReader(buffer))
            meta = reader.schema.metadata or {}
            if meta.get(_KEY_VERSION) != _VERSION:
                return None
            if meta.get(_KEY_COLUMNS) != columns_tag(schema.arrow_schema):
                return None
            text = zlib.decompress(base64.b64decode(meta[_KEY_ENTITIES])).decode()
            entities = text.split("\n") if text else []
            parts = {
                PartitionKey(tuple(_pair(x) for x in p.split("/"))): (int(d), int(i), int(c))
                for p, d, i, c in json.loads(meta[_KEY_PARTS])
            }
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, zlib.error, pa.ArrowException) as exc:
            log.warning("history %s unreadable (%s): reading the yearly files", path, exc)
            return None
        if len(entities) != reader.num_record_batches:
            log.warning("history %s has %d batches for %d entities: not used", path,
                        reader.num_record_batches, len(entities))  # fmt: skip
            return None
        stamp = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
        return cls(schema, reader, entities, parts, stamp, mapped, buffer.address,
                   bytearray(len(entities)))  # fmt: skip

    def covers(self, key: PartitionKey, identity: Identity | None) -> bool:
        """The partition's folder is the one this history copied."""
        return identity is not None and self.parts.get(key) == identity

    def rows(self, entity: str) -> pa.RecordBatch | None:
        """Every row of ``entity`` (all years, sorted by time), None if it has none. A
        zero-copy batch of the map; the first time an entity is read its byte range (one
        run: the batch's buffers lie together) is asked for at once, before any is
        touched, so a cold read is one disk read rather than a fault per page."""
        at = bisect.bisect_left(self.entities, entity)
        if at >= len(self.entities) or self.entities[at] != entity:
            return None
        with self.lock:  # one reader shared by a server's threads
            batch = self.reader.get_batch(at)
        if not self.asked[at]:
            self.asked[at] = 1
            self._willneed(batch)
        return batch

    def _willneed(self, batch: pa.RecordBatch) -> None:
        low, high = len(self.mapped), 0
        for column in batch.columns:
            for buffer in column.buffers():
                if buffer is None or buffer.size == 0:
                    continue
                start = buffer.address - self.base
                low, high = min(low, start), max(high, start + buffer.size)
        if high <= low:
            return
        low -= low % _PAGE
        self.mapped.madvise(mmap.MADV_WILLNEED, low, min(high, len(self.mapped)) - low)

    def select(
        self,
        entities: Sequence[str],
        keys: Sequence[PartitionKey],
        date_column: str | None,
        lo: dt.date | None,
        hi: dt.date | None,
    ) -> pa.Table | None:
        """Rows of ``entities`` in the partitions ``keys`` (every one covered, see
        :meth:`covers`) whose ``date_column`` lies in ``[lo, hi]``; None when the years of
        ``keys`` are not a contiguous run of this history's (the caller reads them
        otherwise). Each entity's rows are a slice of its batch, cut by binary search on
        the bucket column (years are ranges of it) and on ``date_column``."""
        years = self._years(keys)
        if years is None:
            return None
        parts: list[pa.RecordBatch] = []
        for entity in sorted(set(entities)):
            found = self._run(entity, years, date_column, lo, hi)
            if found is not None:
                batch, first, last = found
                parts.append(batch.slice(first, last - first))
        if not parts:
            return empty_table(self.schema.arrow_schema)
        return pa.Table.from_batches(parts, schema=self.schema.arrow_schema)

    def select_one(
        self,
        entity: str,
        keys: Sequence[PartitionKey],
        date_column: str,
        lo: dt.date | None,
        hi: dt.date | None,
        floats: tuple[str, ...],
    ) -> tuple[pa.Table, RowViews | None] | None:
        """:meth:`select` for one entity, with :class:`RowViews` of the rows returned
        (None when it has none): ``date_column``'s day numbers and the columns ``floats``,
        numpy views of the map made once per entity and loaded history."""
        years = self._years(keys)
        if years is None:
            return None
        found = self._run(entity, years, date_column, lo, hi)
        if found is None:
            return empty_table(self.schema.arrow_schema), None
        batch, first, last = found
        table = pa.Table.from_batches(
            [batch.slice(first, last - first)], schema=self.schema.arrow_schema
        )
        at = bisect.bisect_left(self.entities, entity)
        asked = (date_column, floats)
        kept = self._views.get(at)
        if kept is None or kept[0] != asked:
            kept = self._views[at] = (asked, RowViews.of(batch, date_column, floats))
        views = kept[1]
        return table, None if views is None else views.sliced(first, last)

    def _years(self, keys: Sequence[PartitionKey]) -> tuple[dt.date | None, dt.date | None] | None:
        """The years of ``keys`` as a range of the bucket column (open where nothing is
        cut), None when they are not a contiguous run of this history's years."""
        years = sorted({int(k.items[-1][1]) for k in keys})  # the year is the last level
        held = sorted(int(k.items[-1][1]) for k in self.parts)
        if not years or any(years[0] <= y <= years[-1] and y not in years for y in held):
            return None
        y_lo = dt.date(years[0], 1, 1) if held and held[0] < years[0] else None
        y_hi = dt.date(years[-1], 12, 31) if held and held[-1] > years[-1] else None
        return y_lo, y_hi

    def _run(
        self,
        entity: str,
        years: tuple[dt.date | None, dt.date | None],
        date_column: str | None,
        lo: dt.date | None,
        hi: dt.date | None,
    ) -> tuple[pa.RecordBatch, int, int] | None:
        """``entity``'s batch and the rows ``[first, last)`` of it in ``years`` and in
        ``[lo, hi]`` on ``date_column``; None when there are none."""
        batch = self.rows(entity)
        if batch is None:
            return None
        source = self.schema.partitions[-1].source
        assert source is not None
        first, last = _cut(batch, source, 0, batch.num_rows, *years)
        if date_column is not None and (lo is not None or hi is not None):
            first, last = _cut(batch, date_column, first, last, lo, hi)
        return (batch, first, last) if last > first else None


@dataclass(frozen=True)
class RowViews:
    """Numpy views, straight on the map, of some columns of one entity's rows: the day
    numbers of a date column, and float64 columns without nulls, those laid out evenly one
    after another (as an Arrow IPC batch writes a run of same-typed columns) as one 2-D
    view, ``block``, whose rows are ``block_names``.

    Why: a read-time computation over a one-symbol read (the adjusted prices of
    :mod:`etl.warehouse.adjust`) found each column through three or four Arrow calls per
    read, and multiplied each on its own; a few microseconds each, they were a third of
    what the adjustment added to a ~0.4 ms read. The views are made once per entity and
    loaded history (its map is immutable while loaded) and sliced per read."""

    days: np.ndarray  # int32, days since 1970
    whole: np.ndarray  # the day numbers of every row of the entity (``days`` is a slice)
    block_names: tuple[str, ...]
    block: np.ndarray | None  # float64, (len(block_names), rows), read-only
    singles: dict[str, np.ndarray]  # the other float columns without nulls
    absent: frozenset[str]  # columns asked for that are null throughout, or not there
    others: tuple[str, ...]  # columns asked for that have no view (some nulls, not float)
    start: int = 0  # the first row's place among the entity's rows
    # what a reader derives from the entity's rows and keeps while this history is
    # loaded (shared by every slice): see etl.warehouse.adjust.adjust_one
    derived: dict[str, object] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(
        cls, batch: pa.RecordBatch, date_column: str, floats: tuple[str, ...]
    ) -> RowViews | None:
        """The views of every row of ``batch``; None when ``date_column`` is not a date32
        column without nulls (no day numbers to view)."""
        n = batch.num_rows
        dates = batch.column(date_column)
        if dates.null_count or not pa.types.is_date32(dates.type):
            return None
        days = np.frombuffer(dates.buffers()[1], dtype=np.int32, count=n, offset=dates.offset * 4)
        plain: list[tuple[str, pa.Array]] = []
        absent: set[str] = set()
        others: list[str] = []
        for name in floats:
            index = batch.schema.get_field_index(name)
            column = batch.column(index) if index >= 0 else None
            if column is None or column.null_count == n:
                absent.add(name)
            elif column.null_count == 0 and pa.types.is_float64(column.type):
                plain.append((name, column))
            else:
                others.append(name)
        singles = {
            name: np.frombuffer(c.buffers()[1], dtype=np.float64, count=n, offset=c.offset * 8)
            for name, c in plain
        }
        names, block = _evenly_laid(plain, n)
        for name in names:
            del singles[name]
        return cls(days, days, names, block, singles, frozenset(absent), tuple(others))

    def sliced(self, first: int, last: int) -> RowViews:
        """The views of rows ``[first, last)`` (a column null throughout the entity's rows
        is null throughout any of them; one with some nulls has no view either way)."""
        block = None if self.block is None else self.block[:, first:last]
        singles = {name: v[first:last] for name, v in self.singles.items()}
        return RowViews(self.days[first:last], self.whole, self.block_names, block, singles,
                        self.absent, self.others, first, self.derived)  # fmt: skip


def _evenly_laid(
    columns: list[tuple[str, pa.Array]], n: int
) -> tuple[tuple[str, ...], np.ndarray | None]:
    """The longest run of ``columns`` (in order) whose value buffers start at equal
    distances, as one strided (columns, n) view, and their names; (), None for none of two
    or more."""
    starts = [c.buffers()[1].address + c.offset * 8 for _, c in columns]
    best = (0, 0)
    i = 0
    while i < len(columns) - 1:
        step = starts[i + 1] - starts[i]
        j = i + 1
        while j + 1 < len(columns) and starts[j + 1] - starts[j] == step:
            j += 1
        if step >= n * 8 and j - i + 1 > best[1] - best[0]:
            best = (i, j + 1)
        i = j
    if best[1] - best[0] < 2:
        return (), None
    first, last = best
    step = starts[first + 1] - starts[first]
    owners = tuple(c.buffers()[1] for _, c in columns[first:last])  # each kept alive
    span = pa.foreign_buffer(starts[first], step * (last - first - 1) + n * 8, base=owners)
    flat = np.frombuffer(span, dtype=np.float64)
    block = np.lib.stride_tricks.as_strided(
        flat, shape=(last - first, n), strides=(step, 8), writeable=False
    )
    return tuple(name for name, _ in columns[first:last]), block


def _cut(
    batch: pa.RecordBatch, column: str, first: int, last: int, lo: dt.date | None,
    hi: dt.date | None,
) -> tuple[int, int]:  # fmt: skip
    """``[first, last)`` narrowed to rows whose ``column`` (ascending within an entity's
    batch) lies in ``[lo, hi]``."""
    if last <= first or (lo is None and hi is None):
        return first, last
    values = batch.column(column)
    inside_lo = lo is None or values[first].as_py() >= lo
    if inside_lo and (hi is None or values[last - 1].as_py() <= hi):
        return first, last  # the common case: the whole run is inside
    days = values.slice(first, last - first).cast(pa.int32()).to_numpy(zero_copy_only=False)
    epoch = dt.date(1970, 1, 1)
    start = first + (int(days.searchsorted((lo - epoch).days, "left")) if lo else 0)
    end = first + (int(days.searchsorted((hi - epoch).days, "right")) if hi else len(days))
    return start, end


def build_history(
    paths: DataRoot,
    schema: DatasetSchema,
    leading: PartitionKey,
    keys: Sequence[PartitionKey],
    lock: Callable[[PartitionKey], AbstractContextManager[object]],
) -> bool:
    """Write the history of ``leading`` from the yearly mirrors of ``keys`` (its
    partitions), unless the one on disk already copies exactly their current folders;
    returns whether one was written. A partition holding more than one file or a file
    without a usable mirror means no history (an old one is removed: it would never be
    used again and holds a full copy of the bars).

    One writer at a time (``lock(leading)``, a lock no commit takes): so what a writer
    killed mid-write left beside the file (a full copy of the bars under a temporary name)
    is known dead, and is removed here."""
    target = paths.history(schema.name, leading)
    with lock(leading):
        for leftover in atomic_leftovers(target):
            leftover.unlink(missing_ok=True)
        return _build_history(paths, schema, target, keys, lock)


def _build_history(
    paths: DataRoot,
    schema: DatasetSchema,
    target: Path,
    keys: Sequence[PartitionKey],
    lock: Callable[[PartitionKey], AbstractContextManager[object]],
) -> bool:
    parts: list[tuple[PartitionKey, Identity, Mirror]] = []
    for key in sorted(keys, key=lambda k: _year(schema, k)):
        with lock(key):  # the folder's identity and its one file, as one committed state
            folder = paths.partition(schema.name, key)
            identity = folder_identity(folder)
            names = sorted(p.name for p in folder.glob("*.parquet")) if identity else []
            mirror = (
                Mirror.load(paths.mirror(schema.name, key, names[0]), schema.arrow_schema)
                if len(names) == 1
                else None
            )
        if identity is None or mirror is None:
            with contextlib.suppress(FileNotFoundError):
                target.unlink()
            return False
        parts.append((key, identity, mirror))
    if not parts:
        return False
    if not _settle(paths, schema, parts):
        return False
    wanted = {k: ident for k, ident, _ in parts}
    current = History.load(target, schema)
    if current is not None and current.parts == wanted:
        return False
    write_history(target, schema, parts)
    return True


def _settle(
    paths: DataRoot, schema: DatasetSchema, parts: Sequence[tuple[PartitionKey, Identity, Mirror]]
) -> bool:
    """Wait until every recorded folder changed more than :data:`SETTLE_NS` ago, then check
    each is still the folder recorded; False if one was swapped meanwhile.

    Why: a file time is a clock tick, not an instant. A folder recorded long after its last
    change cannot share its identity with another folder (one reusing its inode number
    after it is deleted is made later, so its ctime differs); one recorded in the tick it
    was swapped in could, in principle. Compaction just swapped the folders it merged, so
    it waits those two seconds rather than record them unsettled."""
    newest = max(ident[2] for _, ident, _ in parts)
    wait = (newest + SETTLE_NS - time.time_ns()) / 1e9
    if wait <= 0:
        return True
    time.sleep(wait + 0.01)
    return all(
        folder_identity(paths.partition(schema.name, key)) == ident for key, ident, _ in parts
    )


def write_history(
    path: Path, schema: DatasetSchema, parts: Sequence[tuple[PartitionKey, Identity, Mirror]]
) -> None:
    """One record batch per entity (sorted), each the entity's rows of every part in
    order, with the entities and the parts' identities in the schema's metadata."""
    entities = sorted({e for _, _, m in parts for e in m.entities})
    meta = {
        _KEY_VERSION: _VERSION,
        _KEY_COLUMNS: columns_tag(schema.arrow_schema),
        _KEY_ENTITIES: base64.b64encode(zlib.compress("\n".join(entities).encode(), 6)),
        _KEY_PARTS: json.dumps([[k.relpath, *ident] for k, ident, _ in parts]).encode(),
    }
    target_schema = schema.arrow_schema.with_metadata(meta)
    with (
        atomic_target(path, durable=True) as tmp,
        tmp.open("wb") as handle,
        ipc.new_file(handle, target_schema) as writer,
    ):
        for entity in entities:
            slices = []
            for _, _, mirror in parts:
                at = bisect.bisect_left(mirror.entities, entity)
                if at < len(mirror.entities) and mirror.entities[at] == entity:
                    first, last = int(mirror.starts[at]), int(mirror.starts[at + 1])
                    slices.append(mirror.table.slice(first, last - first))
            rows = pa.concat_tables(slices).combine_chunks()
            batch = pa.RecordBatch.from_arrays(
                [c.chunk(0) if c.num_chunks else pa.array([], c.type) for c in rows.columns],
                schema=target_schema,
            )
            writer.write_batch(batch)
