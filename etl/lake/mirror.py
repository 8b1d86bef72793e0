"""Symbol-major mirrors: an uncompressed Arrow copy of each ``klines`` and ``adj_factors``
Parquet file, for reads of one symbol in well under a millisecond.

Why: a Parquet file must be decompressed and decoded a row group at a time, so one symbol's
ten years of daily bars cost ten row-group decodes (~100 ms) however well the files are
sorted. An Arrow IPC file without compression is the in-memory layout itself: memory-mapped,
a symbol's rows are a zero-copy slice, and a day's cross-section is one vectorised filter.

What it costs: about six times the disk of the zstd Parquet it copies (the page cache holds
what is read), and the time to write it. So the commit path does not write mirrors (it stays
as fast as before); ``Lake.compact`` (``etl compact``, the nightly ``compact-nightly`` job)
mirrors every file of a mirrored dataset that lacks one and removes mirrors whose file is
gone. Until then a file is read from its Parquet: results are the same either way.

Why it is safe:

- a mirror is named after its Parquet file, and a Parquet file's name is never reused
  (``part-<bucket>-<uuid>``), so a mirror found for a listed file is a copy of that file;
- it is written to a temporary name, fsynced and renamed: it exists whole or not at all;
- it records the columns it was written with: after ``schemas/`` changes, an older mirror
  is not used (and the next compaction replaces it); a mirror that does not read is not used;
- readers only read mirrors; writers create and remove them under the partition's lock.
"""

from __future__ import annotations

import base64
import bisect
import contextlib
import datetime as dt
import logging
import mmap
import struct
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import ipc

from etl.dataroot import DataRoot, PartitionKey
from etl.fsutil import atomic_target
from etl.schema import DatasetSchema

__all__ = [
    "MIRRORED",
    "Mirror",
    "MirrorCache",
    "build_mirrors",
    "columns_tag",
    "map_file",
    "sweep_mirrors",
]

log = logging.getLogger(__name__)

MIRRORED: Final = frozenset({"klines", "adj_factors"})  # read a symbol at a time
_VERSION: Final = b"2"  # 2: the index zlib-compressed (a smaller footer to fault in)
_READABLE: Final = frozenset({b"1", b"2"})
_KEY_VERSION: Final = b"etl.mirror"
_KEY_COLUMNS: Final = b"etl.columns"
_KEY_ENTITIES: Final = b"etl.entities"
_KEY_STARTS: Final = b"etl.starts"

# A Parquet file of the partition -> the rows its mirror holds: the dataset's columns, path
# columns filled in, sorted by entity then time (the lake owns that conversion).
MirrorSource = Callable[[Path], pa.Table]


# What a first read of a file faults in before it parses anything: the file's head (magic,
# schema message, the record batch's header) and its tail (the footer with the index).
_HEAD: Final = 256 * 1024
_TAIL: Final = 256 * 1024
_PAGE: Final = mmap.PAGESIZE


def columns_tag(schema: pa.Schema) -> bytes:
    return ";".join(f"{f.name}:{f.type}" for f in schema).encode()


@dataclass(frozen=True)
class _Layout:
    """Where one column's buffers lie in the mapped file, to ask the kernel for the pages a
    run of rows touches before they are touched."""

    bits: int | None  # offset of the validity bitmap
    values: int  # offset of the values (fixed width) or of the value offsets (strings)
    width: int  # bytes per value or per value offset
    data: int | None  # offset of the string bytes
    offset_type: str  # struct format of a value offset ("" for fixed width)


def _layouts(table: pa.Table, base: int) -> tuple[_Layout, ...]:
    """The buffer layout of every column whose layout is known (one chunk, no offset)."""
    out = []
    for column in table.columns:
        if column.num_chunks != 1:
            continue
        chunk = column.chunk(0)
        kind = chunk.type
        buffers = chunk.buffers()
        if chunk.offset or len(buffers) < 2 or buffers[1] is None:
            continue
        bits = None if buffers[0] is None else buffers[0].address - base
        if pa.types.is_string(kind) or pa.types.is_binary(kind):
            if len(buffers) < 3 or buffers[2] is None:
                continue
            out.append(_Layout(bits, buffers[1].address - base, 4, buffers[2].address - base, "<i"))
        elif pa.types.is_large_string(kind) or pa.types.is_large_binary(kind):
            if len(buffers) < 3 or buffers[2] is None:
                continue
            out.append(_Layout(bits, buffers[1].address - base, 8, buffers[2].address - base, "<q"))
        elif len(buffers) == 2 and kind.bit_width % 8 == 0:
            out.append(_Layout(bits, buffers[1].address - base, kind.bit_width // 8, None, ""))
    return tuple(out)


@dataclass(frozen=True)
class Mirror:
    """One mirrored file: its rows (the dataset's columns, path columns filled in, sorted by
    entity then time) and where each entity's run starts."""

    table: pa.Table
    entities: list[str]  # sorted
    starts: np.ndarray  # len(entities) + 1 row offsets
    mapped: mmap.mmap | None = None  # the file's map (kept open while the table is used)
    layouts: tuple[_Layout, ...] = ()
    # entities whose pages this process has asked for already (see prefetch)
    asked: bytearray = field(default_factory=bytearray)
    # what a reader derives from this file's rows and keeps while it is loaded (the map is
    # immutable): numpy views of an entity's rows, see etl.lake.reader.LakeReader.read_views
    derived: dict[object, object] = field(default_factory=dict, compare=False, repr=False)

    def runs(self, entities: Iterable[str]) -> list[tuple[int, int]]:
        """Row ranges of ``entities`` this process has not prefetched yet (marked asked)."""
        if self.mapped is None or not self.layouts:
            return []
        if len(self.asked) != len(self.entities):
            self.asked.extend(bytes(len(self.entities) - len(self.asked)))
        out = []
        for entity in entities:
            at = bisect.bisect_left(self.entities, entity)
            if at < len(self.entities) and self.entities[at] == entity and not self.asked[at]:
                self.asked[at] = 1
                out.append((int(self.starts[at]), int(self.starts[at + 1])))
        return out

    def prefetch(self, runs: list[tuple[int, int]]) -> None:
        """Ask the kernel for the pages the rows ``runs`` occupy in every fixed-width buffer
        and in the value offsets of strings, at once and without waiting.

        Why: the map is random-access (see _mapped), so without this each page a read
        touches is a separate, synchronous disk read: a symbol's ten yearly files touch some
        thirty buffers each. Asked for together, the reads overlap. Asked once per entity per
        loaded mirror: a symbol read again finds its pages resident, and the madvise calls
        would cost more than the read itself."""
        for first, last in runs:
            for layout in self.layouts:
                if layout.bits is not None:
                    self._willneed(layout.bits + first // 8, layout.bits + last // 8 + 1)
                extra = layout.width if layout.data is not None else 0
                self._willneed(
                    layout.values + first * layout.width,
                    layout.values + last * layout.width + extra,
                )

    def prefetch_strings(self, runs: list[tuple[int, int]]) -> None:
        """The string bytes of ``runs``, once their value offsets (asked for by
        :meth:`prefetch`) can be read: a second round, after every file's first."""
        assert self.mapped is not None or not runs
        for first, last in runs:
            for layout in self.layouts:
                if layout.data is None:
                    continue
                assert self.mapped is not None
                (lo,) = struct.unpack_from(
                    layout.offset_type, self.mapped, layout.values + first * layout.width
                )
                (hi,) = struct.unpack_from(
                    layout.offset_type, self.mapped, layout.values + last * layout.width
                )
                self._willneed(layout.data + lo, layout.data + hi)

    def _willneed(self, start: int, end: int) -> None:
        if self.mapped is None or end <= start:
            return
        start -= start % _PAGE
        end = min(end, len(self.mapped))
        if end > start:
            self.mapped.madvise(mmap.MADV_WILLNEED, start, end - start)

    def select(
        self,
        entities: Iterable[str] | None,
        date_column: str | None = None,
        lo: dt.date | None = None,
        hi: dt.date | None = None,
    ) -> pa.Table:
        """Rows of ``entities`` (every row for None) whose ``date_column`` is in ``[lo, hi]``.
        An entity's rows are a slice, cut to the range by binary search (its dates ascend
        with its times); a cross-section is one vectorised filter."""
        ranged = date_column is not None and (lo is not None or hi is not None)
        if entities is None:
            if ranged:
                assert date_column is not None
                return date_filter(self.table, date_column, lo, hi)
            return self.table
        parts = []
        for entity in sorted(set(entities)):
            at = bisect.bisect_left(self.entities, entity)
            if at >= len(self.entities) or self.entities[at] != entity:
                continue
            first, last = int(self.starts[at]), int(self.starts[at + 1])
            if ranged and date_column is not None:
                first, last = self._cut(date_column, first, last, lo, hi)
            if last > first:
                parts.append(self.table.slice(first, last - first))
        if not parts:
            return self.table.slice(0, 0)
        return parts[0] if len(parts) == 1 else pa.concat_tables(parts)

    def run(self, entity: str) -> tuple[int, int, int] | None:
        """``entity``'s place in the index and its rows ``[first, last)``; None if it has
        none here."""
        at = bisect.bisect_left(self.entities, entity)
        if at >= len(self.entities) or self.entities[at] != entity:
            return None
        return at, int(self.starts[at]), int(self.starts[at + 1])

    def cut(
        self, column: str, first: int, last: int, lo: dt.date | None, hi: dt.date | None
    ) -> tuple[int, int]:
        """``[first, last)`` (one entity's rows) narrowed to ``column`` in ``[lo, hi]``."""
        return self._cut(column, first, last, lo, hi)

    def _cut(
        self, column: str, first: int, last: int, lo: dt.date | None, hi: dt.date | None
    ) -> tuple[int, int]:
        """``[first, last)`` narrowed to the rows whose ``column`` is in ``[lo, hi]`` (an
        entity's dates ascend), reading only that entity's dates: a first read after a cold
        start touches a few pages of the file, not the whole column."""
        if last <= first:
            return first, last
        values = self.table.column(column)
        inside_lo = lo is None or values[first].as_py() >= lo
        inside_hi = hi is None or values[last - 1].as_py() <= hi
        if inside_lo and inside_hi:  # the common case: the whole run is in the range
            return first, last
        run = values.slice(first, last - first).combine_chunks()
        days = np.asarray(run.cast(pa.int32()).to_numpy(zero_copy_only=False))
        start = first + (int(np.searchsorted(days, _day_number(lo), "left")) if lo else 0)
        end = first + (int(np.searchsorted(days, _day_number(hi), "right")) if hi else len(days))
        return start, end

    @classmethod
    def load(cls, path: Path, schema: pa.Schema, mapped: mmap.mmap | None = None) -> Mirror | None:
        """The mirror at ``path`` memory-mapped (``mapped``: already, by :func:`map_file`), or
        None if it is absent, unreadable or was written for other columns."""
        try:
            mapped = mapped if mapped is not None else map_file(path)
            buffer = pa.py_buffer(mapped)
            table = ipc.open_file(pa.BufferReader(buffer)).read_all()
        except FileNotFoundError:
            return None
        except (OSError, ValueError, pa.ArrowException) as exc:
            log.warning("mirror %s unreadable (%s): reading its Parquet file", path, exc)
            return None
        meta = table.schema.metadata or {}
        version = meta.get(_KEY_VERSION)
        if version not in _READABLE or meta.get(_KEY_COLUMNS) != columns_tag(schema):
            return None
        try:
            entities, starts = _index_of(meta, packed=version != b"1")
        except (KeyError, ValueError, zlib.error) as exc:
            log.warning("mirror %s has no readable index (%s): not used", path, exc)
            return None
        if len(starts) != len(entities) + 1 or (len(starts) and starts[-1] != table.num_rows):
            return None
        table = table.replace_schema_metadata(None)
        return cls(table, entities, starts, mapped, _layouts(table, buffer.address))


def _index_of(meta: dict[bytes, bytes], *, packed: bool) -> tuple[list[str], np.ndarray]:
    names = base64.b64decode(meta[_KEY_ENTITIES]) if packed else meta[_KEY_ENTITIES]
    starts = base64.b64decode(meta[_KEY_STARTS])
    if packed:
        names, starts = zlib.decompress(names), zlib.decompress(starts)
    text = names.decode()
    return (text.split("\n") if text else []), np.frombuffer(starts, dtype="<i8")


def map_file(path: Path) -> mmap.mmap:
    """The file memory-mapped for random access, its head and tail (what parsing it reads)
    asked for without waiting.

    Random access: a page fault reads that page alone. The kernel's default read-around
    makes each fault on a cold page cache read megabytes (2-8 ms here, against 0.06 ms for
    one page), and a symbol's rows touch a few pages of each column of each file. The pages
    a read will touch are asked for ahead instead (:meth:`Mirror.prefetch`), so that the
    disk reads of every file overlap: map every file first, then load them."""
    with path.open("rb") as handle:
        mapped = mmap.mmap(handle.fileno(), 0, prot=mmap.PROT_READ)
    mapped.madvise(mmap.MADV_RANDOM)
    size = len(mapped)
    mapped.madvise(mmap.MADV_WILLNEED, 0, min(size, _HEAD))
    tail = max(0, size - _TAIL)
    tail -= tail % _PAGE
    mapped.madvise(mmap.MADV_WILLNEED, tail, size - tail)
    return mapped


def write_mirror(path: Path, table: pa.Table, schema: DatasetSchema) -> None:
    """Write ``table`` (the dataset's columns, sorted by entity) as the mirror at ``path``:
    temporary name, fsync, rename, fsync of the folder."""
    entity = schema.entity
    entities: list[str] = []
    starts = np.zeros(1, dtype="<i8")
    if entity and table.num_rows:
        codes = table.column(entity).combine_chunks().dictionary_encode()
        indices = np.asarray(codes.indices.to_numpy(zero_copy_only=False))
        first = np.flatnonzero(np.r_[True, indices[1:] != indices[:-1]])
        names = [str(v) for v in codes.dictionary.to_pylist()]
        entities = [names[i] for i in indices[first]]
        if entities != sorted(entities) or len(set(entities)) != len(entities):
            raise ValueError(f"rows of {path.name} are not sorted by {entity}")
        starts = np.r_[first, table.num_rows].astype("<i8")
    meta = {
        _KEY_VERSION: _VERSION,
        _KEY_COLUMNS: columns_tag(schema.arrow_schema),
        _KEY_ENTITIES: base64.b64encode(zlib.compress("\n".join(entities).encode(), 6)),
        _KEY_STARTS: base64.b64encode(zlib.compress(starts.tobytes(), 6)),
    }
    data = table.combine_chunks().replace_schema_metadata(meta)
    with (
        atomic_target(path, durable=True) as tmp,
        tmp.open("wb") as handle,
        ipc.new_file(handle, data.schema) as writer,
    ):
        writer.write_table(data, max_chunksize=max(1, data.num_rows))


def build_mirrors(
    paths: DataRoot, schema: DatasetSchema, key: PartitionKey, read: MirrorSource
) -> int:
    """Mirror every Parquet file of the partition that has no mirror yet; returns how many
    were written. The caller holds the partition's lock."""
    folder = paths.partition(schema.name, key)
    names = sorted(p.name for p in folder.glob("*.parquet")) if folder.is_dir() else []
    written = 0
    for name in names:
        target = paths.mirror(schema.name, key, name)
        if Mirror.load(target, schema.arrow_schema) is not None:
            continue
        write_mirror(target, read(folder / name), schema)
        written += 1
    sweep_mirrors(paths, schema, key, names)
    return written


def sweep_mirrors(
    paths: DataRoot, schema: DatasetSchema, key: PartitionKey, names: Iterable[str]
) -> int:
    """Remove the partition's mirrors (and temporary files) whose Parquet file is gone."""
    keep = {paths.mirror(schema.name, key, n).name for n in names}
    folder = paths.mirror(schema.name, key, "x.parquet").parent
    removed = 0
    if not folder.is_dir():
        return 0
    for entry in folder.iterdir():
        if entry.is_file() and entry.name not in keep:
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
                removed += 1
    return removed


class MirrorCache:
    """Loaded mirrors by path, least recently used dropped first. A mirror's content never
    changes under its name, so an entry never goes stale; a name that had no usable mirror
    is looked up again next time (compaction may have written it since)."""

    def __init__(self, capacity: int = 512) -> None:
        self.capacity = capacity
        self._items: OrderedDict[Path, Mirror] = OrderedDict()
        self._lock = threading.Lock()

    def drop(self, path: Path) -> None:
        """Forget ``path`` (its file was taken out of the lake): its map is released once no
        table read from it is still in use."""
        with self._lock:
            self._items.pop(path, None)

    def get(self, path: Path, schema: pa.Schema) -> Mirror | None:
        return self.get_many([path], schema)[0]

    def get_many(self, paths: list[Path], schema: pa.Schema) -> list[Mirror | None]:
        """The mirrors at ``paths`` (None where there is none usable). Those not loaded yet
        are all mapped, their heads and footers asked for, before any is parsed: on a cold
        page cache the disk reads of every file overlap instead of following one another.
        (Threads loading them side by side measured no faster: the GIL.)"""
        found: list[Mirror | None] = []
        with self._lock:
            for path in paths:
                item = self._items.get(path)
                if item is not None:
                    self._items.move_to_end(path)
                found.append(item)
        missing = [i for i, item in enumerate(found) if item is None]
        if not missing:
            return found
        maps: dict[int, mmap.mmap] = {}
        for i in missing:  # every file mapped (head and footer asked for) before any is parsed
            with contextlib.suppress(OSError, ValueError):
                maps[i] = map_file(paths[i])
        loaded = [Mirror.load(paths[i], schema, maps[i]) if i in maps else None for i in missing]
        with self._lock:
            for i, mirror in zip(missing, loaded, strict=True):
                if mirror is None:
                    continue
                found[i] = mirror
                self._items[paths[i]] = mirror
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return found


_EPOCH: Final = dt.date(1970, 1, 1)


def _day_number(day: dt.date) -> int:
    return (day - _EPOCH).days


def date_filter(table: pa.Table, column: str, lo: object, hi: object) -> pa.Table:
    """Rows of ``table`` whose ``column`` lies in ``[lo, hi]`` (either may be None)."""
    if lo is None and hi is None:
        return table
    values = table.column(column)
    mask = None
    if lo is not None:
        mask = pc.greater_equal(values, pa.scalar(lo, pa.date32()))
    if hi is not None:
        upper = pc.less_equal(values, pa.scalar(hi, pa.date32()))
        mask = upper if mask is None else pc.and_(mask, upper)
    return table.filter(mask)
