"""Reading the lake's committed partitions, safely while writers commit.

A writer publishes a partition's next state by swapping a fully built folder in place of the
old one (:mod:`etl.lake.store`); the old folder's files are deleted right after. A reader
that lists a partition and then opens its files can therefore lose the race: a file it
listed is gone, or, worse, it listed the old folder while it was being emptied and silently
misses rows. So a read takes a :class:`PartitionSnapshot`:

1. open the partition folder (a directory descriptor: the folder's inode is pinned, and its
   number cannot be reused while we hold it);
2. list its Parquet files through that descriptor and open every one of them;
3. check that the partition's path still names the same inode.

Published folders are never modified in place (a commit builds a new one), so if the path
still names the inode we listed, nothing was swapped between 1 and 3: the listing is one
committed state, complete, and every file of it is open (an open file stays readable after
its name is deleted). Otherwise the snapshot is taken again.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import stat
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from etl import schema as schemas
from etl.dataroot import DataRoot, PartitionKey
from etl.errors import LakeError
from etl.lake.merge import bucket_of_file
from etl.schema import DatasetSchema

__all__ = ["LakeReader", "PartitionSnapshot", "RowFilter", "bucket_span"]

_FD_DIR: Final = "/proc/self/fd"
# A partition swapped again and again while we list it: give up rather than loop forever.
_SNAPSHOT_ATTEMPTS: Final = 50
# A listed partition found missing is looked for again this often, 1 ms apart: the window of a
# two-rename swap is microseconds.
_ABSENT_RETRIES: Final = 5


@dataclass(frozen=True)
class RowFilter:
    """Which rows a read wants: some entities (symbols), and an inclusive date range on one
    date column. ``None`` means no restriction."""

    entities: tuple[str, ...] | None = None
    date_column: str | None = None
    lo: dt.date | None = None
    hi: dt.date | None = None

    def expression(self, schema: DatasetSchema, present: Sequence[str]) -> pc.Expression | None:
        """The same filter as a pyarrow expression over a file's columns."""
        parts: list[pc.Expression] = []
        if self.entities is not None and schema.entity and schema.entity in present:
            parts.append(pc.field(schema.entity).isin(list(self.entities)))
        if self.date_column and self.date_column in present:
            if self.lo is not None:
                parts.append(pc.field(self.date_column) >= pa.scalar(self.lo, pa.date32()))
            if self.hi is not None:
                parts.append(pc.field(self.date_column) <= pa.scalar(self.hi, pa.date32()))
        if not parts:
            return None
        out = parts[0]
        for part in parts[1:]:
            out = out & part
        return out


def bucket_span(label: str) -> tuple[dt.date, dt.date] | None:
    """The dates a file bucket label covers (``2024``, ``2024-01``, ``2024-01-02``), or None
    for ``all`` or a label this lake does not give."""
    try:
        if len(label) == 4:
            year = int(label)
            return dt.date(year, 1, 1), dt.date(year, 12, 31)
        if len(label) == 7:
            first = dt.date.fromisoformat(f"{label}-01")
            following = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
            return first, following - dt.timedelta(days=1)
        if len(label) == 10:
            day = dt.date.fromisoformat(label)
            return day, day
    except ValueError:
        return None
    return None


@dataclass
class PartitionSnapshot:
    """One committed state of one partition: its Parquet files, every one of them open.

    Close it (or use it as a context manager) to release the descriptors.
    """

    dataset: str
    key: PartitionKey
    folder: Path
    inode: tuple[int, int]  # (st_dev, st_ino) of the folder this state was listed from
    files: dict[str, int]  # file name -> open descriptor

    def open(self, name: str) -> pa.NativeFile:
        """A memory map of one of the snapshot's files, even if its name was deleted since.

        Through ``/proc/self/fd`` the map is of the very file we opened; Arrow's own file (not a
        Python file object, which Arrow's I/O threads would call back into) reads it.
        """
        return pa.memory_map(f"{_FD_DIR}/{self.files[name]}")

    def close(self) -> None:
        for fd in self.files.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self.files = {}

    def __enter__(self) -> PartitionSnapshot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LakeReader:
    """Read-only access to ``<data root>/lake``. It never creates, writes or locks anything."""

    def __init__(self, root: Path) -> None:
        self.paths = DataRoot(Path(root))

    # -- which partitions exist ------------------------------------------------------------

    def partition_keys(self, dataset: str, **leading: object) -> list[PartitionKey]:
        """The partitions of ``dataset`` whose leading folder values are ``leading``
        (``partition_keys("klines", freq="1d")``), in order."""
        schema = schemas.get(dataset)
        names = [p.name for p in schema.partitions]
        if list(leading) != names[: len(leading)]:
            raise LakeError(f"{dataset} partitions are {names}; got {list(leading)}")
        if not names:
            base = self.paths.dataset(dataset)
            return [PartitionKey(())] if base.is_dir() else []
        start = self.paths.partition_of(dataset, **leading) if leading else None
        folder = start if start is not None else self.paths.dataset(dataset)
        prefix = PartitionKey.of(**leading).items if leading else ()
        found: list[PartitionKey] = []
        for rel in _subfolders(folder, len(names) - len(leading)):
            pairs = [*prefix, *(_pair(part) for part in rel)]
            if [k for k, _ in pairs] == names:
                try:
                    found.append(PartitionKey.of(**dict(pairs)))
                except LakeError:
                    continue  # not a folder this lake writes: ignore it, as readers do
        return sorted(found)

    # -- one committed state ---------------------------------------------------------------

    def snapshot(
        self, dataset: str, key: PartitionKey, *, listed: bool = False
    ) -> PartitionSnapshot | None:
        """The partition's current committed state, or None if it does not exist.

        ``listed``: the partition was just seen by :meth:`partition_keys`. Partitions are
        never deleted, so if it is missing now, this is the few microseconds between the two
        renames of a swap on a filesystem without ``RENAME_EXCHANGE`` (README "Atomicity"):
        look again instead of answering "no rows".
        """
        folder = self.paths.partition(dataset, key)
        absent = 0
        for _ in range(_SNAPSHOT_ATTEMPTS):
            try:
                dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
            except FileNotFoundError:
                absent += 1
                if not listed or absent > _ABSENT_RETRIES:
                    return None
                time.sleep(0.001)
                continue
            files: dict[str, int] = {}
            try:
                for name in sorted(os.listdir(dir_fd)):  # noqa: PTH208 - through the pinned fd
                    if name.endswith(".parquet"):
                        files[name] = os.open(name, os.O_RDONLY, dir_fd=dir_fd)
                pinned: os.stat_result | None = os.fstat(dir_fd)
                now_at_path: os.stat_result | None = os.stat(folder)  # noqa: PTH116
            except FileNotFoundError:
                pinned = now_at_path = None  # swapped under us: take it again
            finally:
                os.close(dir_fd)
            if (
                pinned is not None
                and now_at_path is not None
                and stat.S_ISDIR(now_at_path.st_mode)
                and (pinned.st_dev, pinned.st_ino) == (now_at_path.st_dev, now_at_path.st_ino)
            ):
                inode = (pinned.st_dev, pinned.st_ino)
                return PartitionSnapshot(dataset, key, folder, inode, files)
            for fd in files.values():
                os.close(fd)
        raise LakeError(
            "partition kept changing while being read; try again",
            dataset=dataset,
            partition=key.relpath,
        )

    # -- rows ------------------------------------------------------------------------------

    def read(
        self, dataset: str, keys: Sequence[PartitionKey], where: RowFilter | None = None
    ) -> pa.Table:
        """Rows of ``dataset`` in the partitions ``keys`` (as listed by
        :meth:`partition_keys`) matching ``where``, with the
        dataset's columns in declared order (path columns filled in; columns that older files
        lack are null). Each partition is read from one committed state."""
        schema = schemas.get(dataset)
        where = where or RowFilter()
        parts: list[pa.Table] = []
        for key in keys:
            snap = self.snapshot(dataset, key, listed=True)
            if snap is None:
                continue
            with snap:
                for name in _files_for(schema, snap, where):
                    with snap.open(name) as handle:
                        table = _read_parquet(schema, handle, where)
                    if table.num_rows:
                        parts.append(_conform(schema, key, table))
        if not parts:
            return schema.arrow_schema.empty_table()
        return pa.concat_tables(parts)


def _pair(folder_name: str) -> tuple[str, str]:
    name, _, value = folder_name.partition("=")
    return name, value


def _subfolders(folder: Path, depth: int) -> Iterator[tuple[str, ...]]:
    """Relative ``k=v`` folder chains ``depth`` levels below ``folder``."""
    if depth == 0:
        yield ()
        return
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        if "=" in entry.name and entry.is_dir():
            for rest in _subfolders(Path(entry.path), depth - 1):
                yield (entry.name, *rest)


def _files_for(schema: DatasetSchema, snap: PartitionSnapshot, where: RowFilter) -> list[str]:
    """The snapshot's files whose bucket can hold rows in ``where``'s date range."""
    names = sorted(snap.files)
    if where.date_column is None or where.date_column != schema.bucket.column:
        return names
    keep = []
    for name in names:
        span = bucket_span(bucket_of_file(name))
        if span is not None:
            first, last = span
            if (where.hi is not None and first > where.hi) or (
                where.lo is not None and last < where.lo
            ):
                continue
        keep.append(name)
    return keep


def _read_parquet(schema: DatasetSchema, handle: pa.NativeFile, where: RowFilter) -> pa.Table:
    """One file's matching rows; row groups are skipped on their statistics."""
    expression = where.expression(schema, schema.file_schema.names)
    if expression is None:
        return pq.read_table(handle)
    return pq.read_table(handle, filters=expression)


def _conform(schema: DatasetSchema, key: PartitionKey, table: pa.Table) -> pa.Table:
    """The dataset's columns in order: path columns from the key, absent columns null."""
    values = key.values
    columns = []
    for field in schema.arrow_schema:
        if field.name in table.column_names:
            column = table.column(field.name)
            columns.append(column if column.type == field.type else column.cast(field.type))
        elif field.name in values:
            columns.append(pa.array([values[field.name]] * table.num_rows, field.type))
        else:
            columns.append(pa.nulls(table.num_rows, field.type))
    return pa.Table.from_arrays(columns, schema=schema.arrow_schema)
