"""The lake: verified, atomic upserts into Hive-partitioned Parquet.

A commit, per partition, under that partition's lock:

1. plan the upsert in memory (:mod:`etl.lake.merge`);
2. build the partition's next state in ``lake/.staging/<id>/``: unchanged files are hard
   links, new files are written, fsynced and read back (rows, key uniqueness, min/max time);
3. write the next manifest as the swap's journal, swap the staging folder with the partition
   (one ``renameat2(RENAME_EXCHANGE)``, or two renames where that is missing), and publish
   the manifest (:mod:`etl.lake.swap`); then delete the old state.

A process killed at any instant leaves each partition wholly old or wholly new; leftovers in
``.staging`` are swept by the next writer once their partition lock is free. The unit of
atomicity is the partition: a commit spanning two years that is killed half way leaves one
year new and one old, each consistent, and re-running it (upserts are idempotent) finishes it.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import polars as pl
import pyarrow as pa

from etl import schema as schemas
from etl.dataroot import DataRoot, PartitionKey
from etl.errors import LakeError
from etl.fsutil import fsync_dir, remove_tree
from etl.lake.history import build_history, closed_years, history_leading
from etl.lake.layout import iso, partition_frames
from etl.lake.manifest import (
    CommitRecord,
    FileEntry,
    PartitionManifest,
    coverage_of,
    drop_orphan_manifests,
    load_manifest,
    merge_coverage,
    rebuild_manifest,
)
from etl.lake.merge import (
    NewFile,
    PartitionPlan,
    bucket_of_file,
    key_columns,
    plan_compaction,
    plan_upsert,
    sort_columns,
)
from etl.lake.mirror import MIRRORED, build_mirrors
from etl.lake.parquet_io import file_digest, verify_file, write_file
from etl.lake.reader import mirror_rows
from etl.lake.swap import publish, recover, swap_in, sweep, write_journal
from etl.locks import file_lock
from etl.schema import DatasetSchema

__all__ = ["CommitResult", "Lake"]

log = logging.getLogger(__name__)

COMPACT_MIN_FILES = 8


@dataclass
class CommitResult:
    dataset: str
    rows_in: int = 0
    rows_added: int = 0
    rows_replaced: int = 0
    rows_unchanged: int = 0
    rows_refused: int = 0  # outranked by a stored row (a live bar where a REST bar is)
    partitions: int = 0
    files_added: int = 0
    files_removed: int = 0
    compacted_buckets: int = 0
    mirrors_written: int = 0  # symbol-major copies made by compaction (etl.lake.mirror)
    partitions_touched: list[str] = field(default_factory=list)

    @property
    def rows_written(self) -> int:
        return self.rows_added + self.rows_replaced

    def absorb(self, other: CommitResult) -> None:
        for name in (
            "rows_in",
            "rows_added",
            "rows_replaced",
            "rows_unchanged",
            "rows_refused",
            "partitions",
            "files_added",
            "files_removed",
            "compacted_buckets",
            "mirrors_written",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.partitions_touched += other.partitions_touched


class Lake:
    """The Parquet lake under ``<data root>/lake``. It receives its root; it reads no env."""

    def __init__(
        self,
        root: Path,
        *,
        compact_min_files: int = COMPACT_MIN_FILES,
        lock_timeout: float = 600.0,
        rename_exchange: bool = True,
    ) -> None:
        self.paths = DataRoot(Path(root))
        self.compact_min_files = compact_min_files
        # False forces the two-rename fallback (as on NFS or SMB): the crash tests use it.
        self.rename_exchange = rename_exchange
        self.lock_timeout = lock_timeout
        self._swept = False

    # -- writing ---------------------------------------------------------------------------

    def write(
        self,
        dataset: str,
        rows: pa.Table | pl.DataFrame,
        *,
        now: dt.datetime,
        task_id: int | None = None,
        tag: str | None = None,
    ) -> CommitResult:
        """Upsert ``rows`` (canonical columns; ``ingested_at`` is stamped with ``now``).

        ``tag`` names the commit in every partition manifest it changes (see
        :meth:`tagged`): a task records the tag before writing, and after a kill learns from
        the manifests which of its partitions the commit reached."""
        schema = schemas.get(dataset)
        frame = rows if isinstance(rows, pl.DataFrame) else _to_polars(rows)
        result = CommitResult(dataset=dataset, rows_in=frame.height)
        if frame.height == 0:
            return result
        self._sweep_once()
        stamp = pl.lit(now.astimezone(dt.UTC)).cast(pl.Datetime("us", "UTC"))
        frame = frame.with_columns(stamp.alias("ingested_at"))
        _check_keys_present(schema, frame)
        for key, part in partition_frames(schema, frame):
            result.absorb(self._commit_partition(schema, key, part, now, task_id, tag))
        return result

    def partition_paths(self, dataset: str, rows: pa.Table | pl.DataFrame) -> list[str]:
        """The partitions (relative paths) that writing ``rows`` would touch."""
        schema = schemas.get(dataset)
        frame = rows if isinstance(rows, pl.DataFrame) else _to_polars(rows)
        return sorted(key.relpath for key, _ in partition_frames(schema, frame))

    def tagged(self, dataset: str, tag: str, partitions: list[str]) -> dict[str, CommitRecord]:
        """The commits named ``tag`` among ``partitions`` (relative paths), by partition.
        A partition left out either was not reached, or the rows changed nothing there."""
        schema = schemas.get(dataset)
        found: dict[str, CommitRecord] = {}
        for relpath in partitions:
            try:
                key = PartitionKey.parse(schema, relpath)
            except LakeError:
                continue
            if not self.paths.partition(dataset, key).is_dir():
                continue
            for commit in load_manifest(self.paths, schema, key).commits:
                if commit.tag == tag:
                    found[relpath] = commit
        return found

    def compact(
        self,
        dataset: str | None = None,
        *,
        now: dt.datetime,
        min_files: int = 2,
        histories: bool = True,
    ) -> list[CommitResult]:
        """Merge every bucket holding ``min_files`` files or more, dataset by dataset, and
        mirror the files of mirrored datasets; ``histories``: and write their histories
        across years (etl.lake.history), which waits until the folders it records are 2 s
        old (a writer compacting between commits every few seconds may leave them out)."""
        self._sweep_once()
        names = [dataset] if dataset else sorted(schemas.schemas())
        results = []
        for name in names:
            schema = schemas.get(name)
            result = CommitResult(dataset=name)
            for key in self.partitions(name):
                with file_lock(self.paths.lock(name, key), self.lock_timeout):
                    recover(self.paths, name, key)
                    manifest = load_manifest(self.paths, schema, key, now=now)
                    folder = self.paths.partition(name, key)
                    plan = plan_compaction(schema, folder, manifest, min_files=min_files)
                    if plan.changes_anything:
                        result.absorb(self._apply(schema, key, manifest, plan, now, None))
                    if name in MIRRORED:
                        read = partial(mirror_rows, schema, key)
                        result.mirrors_written += build_mirrors(self.paths, schema, key, read)
            if name in MIRRORED and histories:
                result.mirrors_written += self._build_histories(schema)
            results.append(result)
        return results

    def _build_histories(self, schema: DatasetSchema) -> int:
        """Each frequency's history of its closed years (etl.lake.history), after its
        yearly mirrors: rewritten only where one of those partitions changed since the
        last one, so not after the commits of the year being written."""
        groups: dict[PartitionKey, list[PartitionKey]] = {}
        for key in self.partitions(schema.name):
            leading = history_leading(schema, key)
            if leading is not None:
                groups.setdefault(leading, []).append(key)

        def lock(key: PartitionKey) -> AbstractContextManager[object]:
            return file_lock(self.paths.lock(schema.name, key), self.lock_timeout)

        return sum(
            build_history(self.paths, schema, leading, closed_years(schema, keys), lock)
            for leading, keys in sorted(groups.items())
        )

    def refresh_manifest(self, dataset: str, key: PartitionKey, *, now: dt.datetime) -> None:
        """Bring a partition's manifest in step with its files (rebuilt if they differ)."""
        with file_lock(self.paths.lock(dataset, key), self.lock_timeout):
            recover(self.paths, dataset, key)
            load_manifest(self.paths, schemas.get(dataset), key, now=now)

    def quarantine(
        self, dataset: str, key: PartitionKey, names: list[str], *, now: dt.datetime
    ) -> CommitResult:
        """Take ``names`` out of the partition in one atomic commit, keeping each under
        ``DataRoot.quarantined`` (hard links: nothing is copied or lost), then recompute the
        manifest from the files that remain: their slots read as absent again, so
        detect-missing finds them and fill-missing fetches them."""
        schema = schemas.get(dataset)
        with file_lock(self.paths.lock(dataset, key), self.lock_timeout):
            recover(self.paths, dataset, key)
            folder = self.paths.partition(dataset, key)
            present = sorted(p.name for p in folder.glob("*.parquet"))
            gone = [n for n in names if n in present]
            if not gone:
                return CommitResult(dataset=dataset)
            for name in gone:
                target = self.paths.quarantined(dataset, key, name)
                target.parent.mkdir(parents=True, exist_ok=True)
                if not target.exists():
                    os.link(folder / name, target)
            fsync_dir(target.parent)
            manifest = load_manifest(self.paths, schema, key, now=now)
            known = {f.name for f in manifest.files}
            # files the manifest left out (unreadable at its last rebuild) are listed so that
            # the commit's staging links exactly the files that stay
            manifest = replace(manifest, files=[
                *manifest.files,
                *(FileEntry(n, bucket_of_file(n), 0, 0, None, None, "", "unlisted")
                  for n in present if n not in known),
            ])  # fmt: skip
            plan = PartitionPlan(keep=[n for n in present if n not in gone], removed=gone)
            result = self._apply(schema, key, manifest, plan, now, None)
            rebuild_manifest(self.paths, schema, key, previous=manifest, now=now)
        return result

    # -- reading the lake's own state ------------------------------------------------------

    def partitions(self, dataset: str) -> list[PartitionKey]:
        schema = schemas.get(dataset)
        base = self.paths.dataset(dataset)
        if not base.is_dir():
            return []
        if not schema.partitions:
            return [PartitionKey(())] if any(base.glob("*.parquet")) else []
        depth = len(schema.partitions)
        found = []
        for folder in _walk_depth(base, depth):
            rel = folder.relative_to(base).as_posix()
            try:
                found.append(PartitionKey.parse(schema, rel))
            except LakeError:
                continue
        return sorted(found)

    def manifests(self, dataset: str, *, now: dt.datetime | None = None) -> list[PartitionManifest]:
        schema = schemas.get(dataset)
        return [load_manifest(self.paths, schema, k, now=now) for k in self.partitions(dataset)]

    def rebuild_manifests(self, dataset: str, *, now: dt.datetime) -> list[PartitionManifest]:
        """Recompute every manifest of ``dataset`` from its Parquet files."""
        schema = schemas.get(dataset)
        out = []
        for key in self.partitions(dataset):
            with file_lock(self.paths.lock(dataset, key), self.lock_timeout):
                previous = None
                try:
                    previous = PartitionManifest.from_json(
                        self.paths.manifest(dataset, key).read_bytes()
                    )
                except (OSError, ValueError, KeyError, TypeError):
                    previous = None
                out.append(rebuild_manifest(self.paths, schema, key, previous=previous, now=now))
        drop_orphan_manifests(self.paths, schema, set(self.partitions(dataset)), self.lock_timeout)
        return out

    def sweep(self) -> int:
        """Settle interrupted swaps and remove what killed writers left in staging."""
        return sweep(self.paths)

    # -- internals -------------------------------------------------------------------------

    def _sweep_once(self) -> None:
        if not self._swept:
            self._swept = True
            self.sweep()

    def _commit_partition(
        self,
        schema: DatasetSchema,
        key: PartitionKey,
        part: pl.DataFrame,
        now: dt.datetime,
        task_id: int | None,
        tag: str | None = None,
    ) -> CommitResult:
        with file_lock(self.paths.lock(schema.name, key), self.lock_timeout):
            recover(self.paths, schema.name, key)
            manifest = load_manifest(self.paths, schema, key, now=now)
            folder = self.paths.partition(schema.name, key)
            plan = plan_upsert(
                schema, key, folder, manifest, part, compact_min_files=self.compact_min_files
            )
            if not plan.changes_anything:
                return CommitResult(
                    dataset=schema.name,
                    rows_unchanged=plan.rows_unchanged,
                    rows_refused=plan.rows_refused,
                    partitions=1,
                )
            return self._apply(schema, key, manifest, plan, now, task_id, tag)

    def _apply(
        self,
        schema: DatasetSchema,
        key: PartitionKey,
        manifest: PartitionManifest,
        plan: PartitionPlan,
        now: dt.datetime,
        task_id: int | None,
        tag: str | None = None,
    ) -> CommitResult:
        folder = self.paths.partition(schema.name, key)
        commit_id = uuid.uuid4().hex[:12]
        staging = self.paths.staging / f"{schema.name}~{key.flat}~{commit_id}"
        staging.mkdir(parents=True)
        pending = self.paths.manifest_pending(schema.name, key)
        try:
            entries = self._build(schema, folder, staging, manifest, plan, now, commit_id)
            after = self._next_manifest(
                schema, key, manifest, plan, entries, now, commit_id, task_id, tag
            )
            write_journal(pending, after.to_json(), staging)
        except BaseException:
            remove_tree(staging)
            pending.unlink(missing_ok=True)
            raise
        # From here on the journal settles any interruption (see etl.lake.swap).
        old = swap_in(staging, folder, exchange=self.rename_exchange)
        try:
            publish(pending, self.paths.manifest(schema.name, key))
        except OSError as exc:
            # The rows are committed; the journal stays, and the next writer or reader of
            # this partition publishes the manifest from it.
            log.warning("manifest of %s/%s not written (%s): repaired later", schema.name,
                        key.relpath, exc)  # fmt: skip
        if old is not None:
            remove_tree(old)
        return CommitResult(
            dataset=schema.name,
            rows_added=plan.rows_added,
            rows_replaced=plan.rows_replaced,
            rows_unchanged=plan.rows_unchanged,
            rows_refused=plan.rows_refused,
            partitions=1,
            files_added=len(plan.write),
            files_removed=len(plan.removed),
            compacted_buckets=int(plan.compacted),
            partitions_touched=[key.relpath or "_root"],
        )

    def _next_manifest(
        self,
        schema: DatasetSchema,
        key: PartitionKey,
        manifest: PartitionManifest,
        plan: PartitionPlan,
        entries: list[FileEntry],
        now: dt.datetime,
        commit_id: str,
        task_id: int | None,
        tag: str | None = None,
    ) -> PartitionManifest:
        coverage = manifest.coverage
        if plan.written is not None:
            coverage = merge_coverage(
                manifest.coverage,
                coverage_of(schema, plan.written, key.values),
                plan.replaced_by_entity,
            )
        record = CommitRecord(
            id=commit_id,
            at=iso(now) or "",
            task_id=task_id,
            rows_added=plan.rows_added,
            rows_replaced=plan.rows_replaced,
            rows_unchanged=plan.rows_unchanged,
            files_added=[nf.name for nf in plan.write],
            files_removed=list(plan.removed),
            compacted=plan.compacted,
            tag=tag,
        )
        return replace(
            manifest,
            files=entries,
            coverage=coverage,
            generation=manifest.generation + 1,
            updated_at=iso(now),
            commits=[*manifest.commits, record],
            rebuilt=False,
        )

    def _build(
        self,
        schema: DatasetSchema,
        folder: Path,
        staging: Path,
        manifest: PartitionManifest,
        plan: PartitionPlan,
        now: dt.datetime,
        commit_id: str,
    ) -> list[FileEntry]:
        known = {f.name: f for f in manifest.files}
        entries = []
        for name in plan.keep:
            os.link(folder / name, staging / name)
            entries.append(known[name])
        keys, order = key_columns(schema), sort_columns(schema)

        def produce(new: NewFile) -> FileEntry:
            frame = new.frame if new.is_sorted else new.frame.sort(order)
            table = frame.to_arrow().cast(schema.file_schema)
            path = staging / new.name
            size = write_file(table, path, order)
            verify_file(path, frame, keys, schema.time)
            digest = file_digest(path)  # mapped from the page cache: ~1 ms for 28 MB
            tmin = tmax = None
            if schema.time and frame.height:
                tmin, tmax = iso(frame[schema.time].min()), iso(frame[schema.time].max())
            return FileEntry(
                name=new.name,
                bucket=new.bucket,
                rows=frame.height,
                bytes=size,
                min_time=tmin,
                max_time=tmax,
                created_at=iso(now) or "",
                commit=commit_id,
                digest=digest,
            )

        if len(plan.write) > 1:
            # Encoding and compression release the GIL: several buckets write in parallel.
            with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
                entries += list(pool.map(produce, plan.write))
        else:
            entries += [produce(new) for new in plan.write]
        fsync_dir(staging)
        return entries


def _to_polars(table: pa.Table) -> pl.DataFrame:
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


def _check_keys_present(schema: DatasetSchema, frame: pl.DataFrame) -> None:
    missing = [c for c in schema.key if c not in frame.columns]
    if missing:
        raise LakeError(f"rows for {schema.name} lack key columns {missing}")
    nulls = [c for c in schema.key if frame[c].null_count()]
    if nulls:
        raise LakeError(f"rows for {schema.name} have null keys in {nulls}")


def _walk_depth(base: Path, depth: int) -> Iterator[Path]:
    level = [base]
    for _ in range(depth):
        level = [c for p in level for c in sorted(p.iterdir()) if c.is_dir() and "=" in c.name]
    yield from level
