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
from typing import Final, cast

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from etl import schema as schemas
from etl.dataroot import DataRoot, PartitionKey
from etl.errors import LakeError
from etl.lake.history import History, RowViews, folder_identity, history_leading
from etl.lake.merge import bucket_of_file
from etl.lake.mirror import MIRRORED, Mirror, MirrorCache
from etl.schema import DatasetSchema, empty_table

__all__ = ["LakeReader", "PartitionSnapshot", "RowFilter", "bucket_span", "mirror_rows"]

_FD_DIR: Final = "/proc/self/fd"
# A partition swapped again and again while we list it: give up rather than loop forever.
_SNAPSHOT_ATTEMPTS: Final = 50
# A listed partition found missing is looked for again this often, 1 ms apart: the window of a
# two-rename swap is microseconds.
_ABSENT_RETRIES: Final = 5
# Listings are cached only for folders unchanged this long (see _settled).
_SETTLE_NS: Final = 2_000_000_000
_MAX_CACHED: Final = 100_000  # mirror paths remembered before the memo is started again


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
            # typed: an empty list has no type of its own for pyarrow to match
            parts.append(pc.field(schema.entity).isin(pa.array(self.entities, pa.string())))
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
        self._mirrors = MirrorCache()
        # partition folder -> ((st_dev, st_ino, st_ctime_ns), its Parquet file names): a
        # published folder is never changed in place, so the same identity means the same
        # listing (a commit swaps in a folder with another inode, created at another time)
        self._listings: dict[Path, tuple[tuple[int, int, int], list[str]]] = {}
        self._folders: dict[tuple[str, PartitionKey], Path] = {}
        self._seen: dict[Path, list[str]] = {}  # partition folder -> the names last listed
        self._mirror_paths: dict[tuple[str, PartitionKey, str], Path] = {}
        self._history_paths: dict[tuple[str, PartitionKey], Path] = {}
        self._histories: dict[Path, History] = {}  # loaded, while the file is the same
        self._keys: dict[
            tuple[str, tuple[tuple[str, str], ...]],
            tuple[list[tuple[Path, tuple[int, int] | None]], tuple[PartitionKey, ...]],
        ] = {}

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
        cache_key = (dataset, tuple(sorted((k, str(v)) for k, v in leading.items())))
        cached = self._keys.get(cache_key)
        if cached is not None and all(_stamp(path) == stamp for path, stamp in cached[0]):
            return list(cached[1])
        start = self.paths.partition_of(dataset, **leading) if leading else None
        folder = start if start is not None else self.paths.dataset(dataset)
        prefix = PartitionKey.of(**leading).items if leading else ()
        found: list[PartitionKey] = []
        scanned: list[tuple[Path, tuple[int, int] | None]] = []
        for rel in _subfolders(folder, len(names) - len(leading), scanned):
            pairs = [*prefix, *(_pair(part) for part in rel)]
            if [k for k, _ in pairs] == names:
                try:
                    found.append(PartitionKey.of(**dict(pairs)))
                except LakeError:
                    continue  # not a folder this lake writes: ignore it, as readers do
        found.sort()
        if all(stamp is not None and _settled(stamp[1]) for _, stamp in scanned):
            # every folder listed is unchanged while its (inode, mtime) is (module notes)
            self._keys[cache_key] = (scanned, tuple(found))
        return found

    def state_token(self, dataset: str) -> tuple[object, ...] | None:
        """A value that changes whenever a commit changes ``dataset`` (its partitions and
        their folders' identities), or None when one changed too recently to tell (see
        :func:`_settled`): callers cache what they derive from a dataset under it."""
        keys = self.partition_keys(dataset)
        listed = self._keys.get((dataset, ()))
        if listed is None:
            return None  # the listing of partitions itself is not settled
        settled_before = time.time_ns() - _SETTLE_NS  # one clock read: the check runs per read
        if not all(stamp is not None and stamp[1] < settled_before for _, stamp in listed[0]):
            return None
        stamps: list[object] = [dataset]
        for key in keys:
            try:
                st = os.stat(self._folder(dataset, key))  # noqa: PTH116
            except FileNotFoundError:
                return None
            if st.st_ctime_ns >= settled_before or st.st_mtime_ns >= settled_before:
                return None
            stamps.append((key, st.st_dev, st.st_ino, st.st_ctime_ns))
        return tuple(stamps)

    def _folder(self, dataset: str, key: PartitionKey) -> Path:
        """The partition's folder, built once (a path join costs more than the stat)."""
        folder = self._folders.get((dataset, key))
        if folder is None:
            folder = self._folders[(dataset, key)] = self.paths.partition(dataset, key)
        return folder

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
        history_rows: pa.Table | None = None
        answered: frozenset[PartitionKey] = frozenset()
        mirrored: dict[PartitionKey, list[pa.Table]] = {}
        if dataset in MIRRORED and where.entities is not None and keys:
            # the closed years from one file, opened once on a cold start instead of one
            # file per year (etl.lake.history); the newest year from its own
            held = self._history(schema, keys)
            if held is not None and len(held[1]) == len(keys):
                history_rows = held[0].select(where.entities, keys, where.date_column,
                                              where.lo, where.hi)  # fmt: skip
                if history_rows is not None:
                    return history_rows
                mirrored = self._from_mirrors(schema, keys, where)
            elif held is not None:
                history, covered = held
                for entity in where.entities:  # its pages asked for, then the other files'
                    history.rows(entity)  # (their disk reads overlap on a cold start)
                rest = [k for k in keys if k not in covered]
                mirrored = self._from_mirrors(schema, rest, where)
                history_rows = history.select(where.entities, covered, where.date_column,
                                              where.lo, where.hi)  # fmt: skip
                if history_rows is None:
                    mirrored.update(self._from_mirrors(schema, covered, where))
                else:
                    answered = frozenset(covered)
            else:
                mirrored = self._from_mirrors(schema, keys, where)
        elif dataset in MIRRORED:
            mirrored = self._from_mirrors(schema, keys, where)
        parts: list[pa.Table] = []
        for key in keys:
            if key in answered:  # the history's rows of every year it answered, in place
                if history_rows is not None and history_rows.num_rows:
                    parts.append(history_rows)
                history_rows = None
                continue
            found = mirrored.get(key)
            if found is not None:
                parts += [t for t in found if t.num_rows]
                continue
            snap = self.snapshot(dataset, key, listed=True)
            if snap is None:
                continue
            with snap:
                for name in _files_for(schema, sorted(snap.files), where):
                    with snap.open(name) as handle:
                        table = _read_parquet(schema, handle, where)
                    if table.num_rows:
                        parts.append(_conform(schema, key, table))
        if not parts:
            return empty_table(schema.arrow_schema)
        return pa.concat_tables(parts)

    def read_views(
        self,
        dataset: str,
        keys: Sequence[PartitionKey],
        where: RowFilter,
        floats: tuple[str, ...],
    ) -> tuple[pa.Table, list[RowViews] | None]:
        """:meth:`read` of the one entity ``where`` names, with numpy views of its rows'
        ``where.date_column`` and float columns ``floats`` (etl.lake.history.RowViews), one
        per chunk of the table returned (its parts, in time order), when every part was read
        from a history or a yearly mirror; else None: the same rows either way.

        Why parts: a read of ten years takes the closed ones from the history and the newest
        from its mirror; a computation over the rows (the adjusted prices) then writes both
        into one new buffer as it goes, instead of combining them first and computing over
        the copy (etl.warehouse.adjust.adjust_parts)."""
        assert where.entities is not None and len(where.entities) == 1
        assert where.date_column is not None
        entity, column = where.entities[0], where.date_column
        if dataset not in MIRRORED or not keys:
            return self.read(dataset, keys, where), None
        schema = schemas.get(dataset)
        held = self._history(schema, keys)
        if held is None:
            parts = self._mirror_views(schema, keys, where, floats)
            if parts is None:
                return self.read(dataset, keys, where), None
            return _joined(schema, [p for per_key in parts for p in per_key])
        history, covered = held
        if len(covered) == len(keys):  # every year from the history: one part
            found = history.select_one(entity, keys, column, where.lo, where.hi, floats)
            if found is None:
                return self.read(dataset, keys, where), None
            table, views = found
            if not table.num_rows:
                return table, []
            return table, None if views is None else [views]
        # the years the history holds are a run of ``keys`` (the same objects): the others
        # lie before or after it (LakeReader._history)
        at = next(i for i, k in enumerate(keys) if k is covered[0])
        before, after = keys[:at], keys[at + len(covered) :]
        history.rows(entity)  # its pages asked for before the other files' (cold start)
        parts = self._mirror_views(schema, [*before, *after], where, floats)
        if parts is None:
            return self.read(dataset, keys, where), None
        found = history.select_one(entity, covered, column, where.lo, where.hi, floats)
        if found is None:
            return self.read(dataset, keys, where), None
        middle: list[tuple[pa.Table, RowViews]] = []
        if found[0].num_rows:
            if found[1] is None:
                return self.read(dataset, keys, where), None
            middle.append((found[0], found[1]))
        ordered = [p for per_key in parts[: len(before)] for p in per_key]
        ordered += middle
        ordered += [p for per_key in parts[len(before) :] for p in per_key]
        return _joined(schema, ordered)

    def _mirror_path(self, dataset: str, key: PartitionKey, name: str) -> Path:
        """Where a file's mirror is (remembered: a one-symbol read asks for it every time)."""
        path = self._mirror_paths.get((dataset, key, name))
        if path is None:
            path = self._mirror_paths[(dataset, key, name)] = self.paths.mirror(dataset, key, name)
        return path

    def _mirror_views(
        self,
        schema: DatasetSchema,
        keys: Sequence[PartitionKey],
        where: RowFilter,
        floats: tuple[str, ...],
    ) -> list[list[tuple[pa.Table, RowViews]]] | None:
        """The one entity's rows of each partition of ``keys`` (in that order, its files'
        rows in theirs) from the files' mirrors, with their views (made once per entity and
        loaded mirror, kept in ``Mirror.derived``); None when a file has no usable mirror
        or no views (the caller reads otherwise)."""
        assert where.entities is not None and where.date_column is not None
        entity, column = where.entities[0], where.date_column
        wanted: list[tuple[PartitionKey, list[Path]]] = []
        for key in keys:
            names = self._listing(schema.name, key)
            paths = []
            for name in _files_for(schema, names or [], where):  # None: no partition now
                paths.append(self._mirror_path(schema.name, key, name))
            wanted.append((key, paths))
        every = self._mirrors.get_many(
            [p for _, paths in wanted for p in paths], schema.arrow_schema
        )
        if any(m is None for m in every):
            return None
        pending = [(m, m.runs(where.entities)) for m in every if m is not None]
        for mirror, runs in pending:
            mirror.prefetch(runs)
        for mirror, runs in pending:
            mirror.prefetch_strings(runs)
        out: list[list[tuple[pa.Table, RowViews]]] = []
        at = 0
        for _, paths in wanted:
            found: list[tuple[pa.Table, RowViews]] = []
            for loaded in every[at : at + len(paths)]:
                assert loaded is not None
                part = _mirror_part(loaded, entity, column, where.lo, where.hi, floats)
                if part is None:
                    return None
                table, views = part
                if table.num_rows:
                    if views is None:
                        return None
                    found.append((table, views))
            at += len(paths)
            out.append(found)
        return out

    def _history(
        self, schema: DatasetSchema, keys: Sequence[PartitionKey]
    ) -> tuple[History, Sequence[PartitionKey]] | None:
        """The loaded history of the partitions' frequency and the partitions of ``keys``
        it holds as they are now (``keys`` itself when it holds them all), or None when it
        holds none, or when one it does not hold lies between two it does (the rows would
        not follow one another by time)."""
        leading = history_leading(schema, keys[0])
        if leading is None or any(k.items[:-1] != leading.items for k in keys):
            return None
        path = self._history_paths.get((schema.name, leading))
        if path is None:
            path = self._history_paths[(schema.name, leading)] = self.paths.history(
                schema.name, leading
            )
        try:
            st = os.stat(path)  # noqa: PTH116
        except FileNotFoundError:
            return None
        history = self._histories.get(path)
        if history is None or history.stamp != (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size):
            history = History.load(path, schema)
            if history is None:
                self._histories.pop(path, None)
                return None
            self._histories[path] = history
        missing = [
            i
            for i, key in enumerate(keys)
            if not history.covers(key, folder_identity(self._folder(schema.name, key)))
        ]
        if not missing:
            return history, keys
        if len(missing) == len(keys):
            return None
        # a year read otherwise must lie before or after every year the history answers
        covered = [k for i, k in enumerate(keys) if i not in missing]
        years = [int(k.items[-1][1]) for k in covered]  # the year is the last level
        low, high = min(years), max(years)
        if any(low < int(keys[i].items[-1][1]) < high for i in missing):
            return None
        return history, covered

    def _from_mirrors(
        self, schema: DatasetSchema, keys: Sequence[PartitionKey], where: RowFilter
    ) -> dict[PartitionKey, list[pa.Table]]:
        """Each partition's matching rows from the mirrors of its files (etl.lake.mirror);
        a partition one of whose files has no usable mirror is left out (its Parquet is
        read). Every mirror is found, and the pages an entity read will touch are asked
        for, before any row is read: on a cold page cache the disk reads overlap."""
        wanted: list[tuple[PartitionKey, list[Path]]] = []
        for key in keys:
            names = self._listing(schema.name, key)
            if names is None:
                continue
            paths = []
            for name in _files_for(schema, names, where):
                paths.append(self._mirror_path(schema.name, key, name))
            wanted.append((key, paths))
        every = self._mirrors.get_many(
            [p for _, paths in wanted for p in paths], schema.arrow_schema
        )
        entities = where.entities if schema.entity else None
        if entities is not None:
            pending = [(m, m.runs(entities)) for m in every if m is not None]
            for mirror, runs in pending:
                mirror.prefetch(runs)
            for mirror, runs in pending:
                mirror.prefetch_strings(runs)
        out: dict[PartitionKey, list[pa.Table]] = {}
        at = 0
        for key, paths in wanted:
            mirrors = every[at : at + len(paths)]
            at += len(paths)
            if all(m is not None for m in mirrors):
                out[key] = [
                    m.select(entities, where.date_column, where.lo, where.hi)
                    for m in mirrors
                    if m is not None
                ]
        return out

    def _listing(self, dataset: str, key: PartitionKey) -> list[str] | None:
        """The Parquet file names of the partition's committed state (None if it has none
        now), from the cache while the folder at its path is the one listed before."""
        folder = self._folder(dataset, key)
        try:
            st = os.stat(folder)  # noqa: PTH116
        except FileNotFoundError:
            return None
        identity = (st.st_dev, st.st_ino, st.st_ctime_ns)
        cached = self._listings.get(folder)
        if cached is not None and cached[0] == identity:
            return cached[1]
        snap = self.snapshot(dataset, key, listed=True)
        if snap is None:
            return None
        with snap:
            names = sorted(snap.files)
        self._forget_gone(dataset, key, folder, names)
        try:
            after = os.stat(folder)  # noqa: PTH116
        except FileNotFoundError:
            return names
        if (after.st_dev, after.st_ino) == snap.inode and _settled(after.st_ctime_ns):
            if len(self._mirror_paths) > _MAX_CACHED:
                self._mirror_paths.clear()
            self._listings[folder] = ((after.st_dev, after.st_ino, after.st_ctime_ns), names)
        return names

    def _forget_gone(self, dataset: str, key: PartitionKey, folder: Path, names: list[str]) -> None:
        """Drop the mirrors of files a commit took out of the partition: a mapped file keeps
        its disk space until it is unmapped, and a long-running reader (``etl serve``) would
        otherwise hold every replaced mirror until the cache pushed it out."""
        before = self._seen.get(folder)
        self._seen[folder] = names
        if before is None:
            return
        for name in set(before) - set(names):
            path = self._mirror_paths.pop((dataset, key, name), None)
            self._mirrors.drop(path or self.paths.mirror(dataset, key, name))


def _joined(
    schema: DatasetSchema, parts: list[tuple[pa.Table, RowViews]]
) -> tuple[pa.Table, list[RowViews]]:
    """The parts' rows as one table (a chunk per part) and their views."""
    if not parts:
        return empty_table(schema.arrow_schema), []
    if len(parts) == 1:
        return parts[0][0], [parts[0][1]]
    return pa.concat_tables([t for t, _ in parts]), [v for _, v in parts]


def _mirror_part(
    mirror: Mirror,
    entity: str,
    column: str,
    lo: dt.date | None,
    hi: dt.date | None,
    floats: tuple[str, ...],
) -> tuple[pa.Table, RowViews | None] | None:
    """``entity``'s rows of one mirror in ``[lo, hi]`` on ``column`` with their views (an
    empty table and None when it has none); None when the mirror's rows are not one
    record batch or the views cannot be made."""
    run = mirror.run(entity)
    if run is None:
        return mirror.table.slice(0, 0), None
    at, start, end = run
    first, last = mirror.cut(column, start, end, lo, hi)
    asked = ("views", at, column, floats)
    views = cast("RowViews | None", mirror.derived.get(asked))
    if views is None:
        if asked in mirror.derived:
            return None
        if mirror.table.num_columns == 0 or mirror.table.column(0).num_chunks != 1:
            return None
        batch = mirror.table.to_batches()[0].slice(start, end - start)
        views = RowViews.of(batch, column, floats)
        mirror.derived[asked] = views
        if views is None:
            return None
    if last <= first:
        return mirror.table.slice(0, 0), None
    return mirror.table.slice(first, last - first), views.sliced(first - start, last - start)


def _pair(folder_name: str) -> tuple[str, str]:
    name, _, value = folder_name.partition("=")
    return name, value


def _stamp(path: Path) -> tuple[int, int] | None:
    """(inode, mtime in ns) of a folder, None if it is not there."""
    try:
        st = os.stat(path)  # noqa: PTH116
    except (FileNotFoundError, NotADirectoryError):
        return None
    return st.st_ino, st.st_mtime_ns


def _settled(changed_ns: int) -> bool:
    """A folder last changed more than :data:`_SETTLE_NS` ago: a change within the same
    clock tick as the one recorded would leave its time unchanged, so a listing is cached
    only once its folder's time is safely in the past (as git does with its index)."""
    return time.time_ns() - changed_ns > _SETTLE_NS


def _subfolders(
    folder: Path, depth: int, scanned: list[tuple[Path, tuple[int, int] | None]]
) -> Iterator[tuple[str, ...]]:
    """Relative ``k=v`` folder chains ``depth`` levels below ``folder``; every folder listed
    is recorded in ``scanned`` with its stamp, taken before its listing."""
    if depth == 0:
        yield ()
        return
    scanned.append((folder, _stamp(folder)))
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        if "=" in entry.name and entry.is_dir():
            for rest in _subfolders(Path(entry.path), depth - 1, scanned):
                yield (entry.name, *rest)


def _files_for(schema: DatasetSchema, names: list[str], where: RowFilter) -> list[str]:
    """The files (of one committed state) whose bucket can hold rows in ``where``'s range."""
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


def mirror_rows(schema: DatasetSchema, key: PartitionKey, path: Path) -> pa.Table:
    """A Parquet file of the partition as its mirror holds it (etl.lake.mirror): the
    dataset's columns, path columns filled in, sorted by entity then time."""
    table = _conform(schema, key, pq.read_table(path))
    order = [c for c in (schema.entity, schema.time) if c]
    return table.sort_by([(c, "ascending") for c in order]) if order else table


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
