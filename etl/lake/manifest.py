"""Per-partition manifests: which files a partition holds, their stats, and per-entity coverage.

A manifest is written after its partition is swapped in, so a crash between the two leaves a
manifest that lists other files than the folder holds. :func:`load_manifest` notices that
(the file names disagree) and rebuilds the manifest from the Parquet files themselves, which
stay the truth; the catalog reads manifests only through here or as JSON views.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from etl.dataroot import DataRoot, PartitionKey
from etl.fsutil import atomic_write_bytes
from etl.lake.layout import iso
from etl.lake.parquet_io import file_digest
from etl.schema import DatasetSchema

__all__ = [
    "CommitRecord",
    "FileEntry",
    "PartitionManifest",
    "coverage_of",
    "load_manifest",
    "merge_coverage",
    "rebuild_manifest",
]

log = logging.getLogger(__name__)

FORMAT = 1
KEEP_COMMITS = 50


@dataclass
class FileEntry:
    name: str
    bucket: str
    rows: int
    bytes: int
    min_time: str | None
    max_time: str | None
    created_at: str
    commit: str
    # digest of the file's bytes when it was written ("xxh3_128:<hex>", or bare SHA-256 hex
    # in older manifests): `etl verify` compares (None in manifests from before digests)
    digest: str | None = None


COVERAGE_SCHEMA: pl.Schema = pl.Schema(
    {
        "entity": pl.String(),
        "rows": pl.Int64(),
        "first": pl.String(),
        "last": pl.String(),
        "last_ingested_at": pl.String(),
    }
)


def empty_coverage() -> pl.DataFrame:
    return pl.DataFrame(schema=COVERAGE_SCHEMA)


@dataclass
class CommitRecord:
    id: str
    at: str
    task_id: int | None
    rows_added: int
    rows_replaced: int
    rows_unchanged: int
    files_added: list[str]
    files_removed: list[str]
    compacted: bool = False
    # the writer's own name for the commit (a task's batch), so that a writer killed between
    # the commit and its own bookkeeping can find out afterwards whether the commit happened
    tag: str | None = None


@dataclass
class PartitionManifest:
    dataset: str
    path: str
    partition: dict[str, str]
    generation: int = 0
    updated_at: str | None = None
    files: list[FileEntry] = field(default_factory=list)
    # One row per entity (symbol, market...): rows, first/last time and last ingest, as
    # fixed-format ISO strings (they sort as the instants do). Kept columnar: a 1m partition
    # covers thousands of symbols and is rewritten on every commit.
    coverage: pl.DataFrame = field(default_factory=empty_coverage)
    commits: list[CommitRecord] = field(default_factory=list)
    rebuilt: bool = False

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    def to_json(self) -> bytes:
        doc = asdict(replace(self, coverage=empty_coverage()))
        doc.pop("rebuilt")
        doc["coverage"] = {c: self.coverage[c].to_list() for c in COVERAGE_SCHEMA}
        doc["format"] = FORMAT
        doc["commits"] = doc["commits"][-KEEP_COMMITS:]
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes) -> PartitionManifest:
        doc = json.loads(data)
        return cls(
            dataset=doc["dataset"],
            path=doc["path"],
            partition=doc["partition"],
            generation=doc.get("generation", 0),
            updated_at=doc.get("updated_at"),
            files=[FileEntry(**f) for f in doc.get("files", [])],
            coverage=_coverage_from_json(doc.get("coverage")),
            commits=[CommitRecord(**c) for c in doc.get("commits", [])],
        )

    def coverage_entries(self) -> list[dict[str, Any]]:
        return self.coverage.to_dicts()

    def save(self, path: Path) -> None:
        atomic_write_bytes(path, self.to_json())


def _coverage_from_json(doc: Any) -> pl.DataFrame:
    if not isinstance(doc, dict) or not doc.get("entity"):
        return empty_coverage()
    return pl.DataFrame({c: doc.get(c) for c in COVERAGE_SCHEMA}, schema=COVERAGE_SCHEMA)


def _parquet_names(folder: Path) -> set[str]:
    if not folder.is_dir():
        return set()
    return {p.name for p in folder.iterdir() if p.suffix == ".parquet" and p.is_file()}


def load_manifest(
    paths: DataRoot, schema: DatasetSchema, key: PartitionKey, *, now: dt.datetime | None = None
) -> PartitionManifest:
    """The partition's manifest, rebuilt from its files if missing or out of step."""
    folder = paths.partition(schema.name, key)
    pending = paths.manifest_pending(schema.name, key)
    if pending.exists():
        _settle(paths, schema, key)
    on_disk = _parquet_names(folder)
    mpath = paths.manifest(schema.name, key)
    manifest: PartitionManifest | None = None
    try:
        manifest = PartitionManifest.from_json(mpath.read_bytes())
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        manifest = None
    if manifest is not None and {f.name for f in manifest.files} == on_disk:
        return manifest
    try:  # a writer is between its swap and publishing the manifest it journaled
        ahead = PartitionManifest.from_json(pending.read_bytes())
        if {f.name for f in ahead.files} == on_disk:
            return ahead
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        pass
    if manifest is None and not on_disk:
        return PartitionManifest(schema.name, key.relpath, key.values)
    return rebuild_manifest(paths, schema, key, previous=manifest, now=now)


def _settle(paths: DataRoot, schema: DatasetSchema, key: PartitionKey) -> None:
    """Settle an interrupted swap if no writer holds the partition (see etl.lake.swap)."""
    from etl.lake.swap import recover
    from etl.locks import try_lock

    lock = try_lock(paths.lock(schema.name, key))
    if lock is None:
        return
    try:
        recover(paths, schema.name, key)
    finally:
        lock.release()


def drop_orphan_manifests(
    paths: DataRoot, schema: DatasetSchema, live: set[PartitionKey], lock_timeout: float
) -> None:
    """Delete manifests of partitions whose folder is gone (they would keep reporting rows
    in ``coverage`` and ``lake_partitions``)."""
    from etl.errors import LakeError
    from etl.lake.swap import recover
    from etl.locks import file_lock

    base = paths.manifests / schema.name
    if not base.is_dir():
        return
    for path in sorted(base.rglob("*.json")):
        rel = path.relative_to(base).as_posix().removesuffix(".json")
        try:
            key = PartitionKey(()) if rel == "_root" else PartitionKey.parse(schema, rel)
        except LakeError:
            continue
        if key in live:
            continue
        with file_lock(paths.lock(schema.name, key), lock_timeout):
            recover(paths, schema.name, key)  # a commit that was creating it finishes first
            if not paths.partition(schema.name, key).is_dir():
                path.unlink(missing_ok=True)


def rebuild_manifest(
    paths: DataRoot,
    schema: DatasetSchema,
    key: PartitionKey,
    *,
    previous: PartitionManifest | None = None,
    now: dt.datetime | None = None,
) -> PartitionManifest:
    """Recompute a partition's manifest from its Parquet files alone."""
    from etl.lake.merge import bucket_of_file

    folder = paths.partition(schema.name, key)
    names = sorted(_parquet_names(folder))
    known = {f.name: f for f in previous.files} if previous else {}
    files: list[FileEntry] = []
    frames: list[pl.DataFrame] = []
    cols = [c for c in (schema.entity, schema.time, "ingested_at") if c]
    for name in names:
        path = folder / name
        try:
            meta = pq.read_metadata(path)
            part = pl.from_arrow(
                pq.read_table(path, columns=[c for c in cols if c in meta.schema.names])
            )
        except (OSError, ValueError, pa.ArrowException) as exc:
            # One damaged file must not stop the rest: it stays on disk, unlisted, for
            # `etl verify` to find and quarantine.
            log.warning("skipping unreadable file %s: %s", path, exc)
            continue
        assert isinstance(part, pl.DataFrame)
        frames.append(part)
        prior = known.get(name)
        tmin = tmax = None
        if schema.time and schema.time in part.columns and part.height:
            tmin, tmax = iso(part[schema.time].min()), iso(part[schema.time].max())
        files.append(
            FileEntry(
                name=name,
                bucket=prior.bucket if prior else bucket_of_file(name),
                rows=meta.num_rows,
                bytes=path.stat().st_size,
                min_time=tmin,
                max_time=tmax,
                created_at=prior.created_at if prior else iso(_mtime(path)) or "",
                commit=prior.commit if prior else "rebuilt",
                # a file the manifest knew keeps the digest it was written with: a rebuild
                # must not bless a file damaged since
                digest=prior.digest if prior else file_digest(path),
            )
        )
    manifest = PartitionManifest(
        dataset=schema.name,
        path=key.relpath,
        partition=key.values,
        generation=(previous.generation + 1) if previous else 1,
        updated_at=iso(now) if now else None,
        files=files,
        coverage=coverage_of(
            schema, pl.concat(frames, how="diagonal_relaxed") if frames else None, key.values
        ),
        commits=list(previous.commits) if previous else [],
        rebuilt=True,
    )
    manifest.save(paths.manifest(schema.name, key))
    return manifest


def _mtime(path: Path) -> dt.datetime:
    return dt.datetime.fromtimestamp(path.stat().st_mtime, tz=dt.UTC)


def coverage_of(
    schema: DatasetSchema, frame: pl.DataFrame | None, partition: dict[str, str] | None = None
) -> pl.DataFrame:
    """Per-entity rows, first/last time and last ingest of ``frame`` (one partition's rows;
    an entity stored only in the path, like the calendar's market, comes from ``partition``)."""
    if frame is None or frame.height == 0 or not schema.entity:
        return empty_coverage()
    if schema.entity not in frame.columns and partition and schema.entity in partition:
        frame = frame.with_columns(pl.lit(partition[schema.entity]).alias(schema.entity))
    null = pl.lit(None, dtype=pl.String)
    aggs: list[pl.Expr] = [pl.len().cast(pl.Int64).alias("rows")]
    if schema.time:
        aggs += [
            _iso_expr(pl.col(schema.time).min(), frame.schema[schema.time]).alias("first"),
            _iso_expr(pl.col(schema.time).max(), frame.schema[schema.time]).alias("last"),
        ]
    else:
        aggs += [null.alias("first"), null.alias("last")]
    if "ingested_at" in frame.columns:
        aggs.append(
            _iso_expr(pl.col("ingested_at").max(), frame.schema["ingested_at"]).alias(
                "last_ingested_at"
            )
        )
    else:
        aggs.append(null.alias("last_ingested_at"))
    table = frame.group_by(pl.col(schema.entity).cast(pl.String).alias("entity")).agg(aggs)
    return table.select(list(COVERAGE_SCHEMA)).cast(COVERAGE_SCHEMA).sort("entity")


def _iso_expr(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """The same text as :func:`etl.lake.layout.iso`, computed by polars."""
    if isinstance(dtype, pl.Datetime):
        utc = expr.dt.convert_time_zone("UTC") if dtype.time_zone else expr
        return utc.dt.to_string("%Y-%m-%dT%H:%M:%S%.6fZ")
    if isinstance(dtype, pl.Date):
        return expr.dt.to_string("%Y-%m-%d")
    return expr.cast(pl.String)


def merge_coverage(
    old: pl.DataFrame, added: pl.DataFrame, replaced: dict[str, int]
) -> pl.DataFrame:
    """Fold a commit's coverage into the partition's. ``added`` counts every row the commit
    wrote (new and replacing); ``replaced`` how many of them replaced a stored key, per entity,
    so that rows stay exact without re-reading the partition."""
    if added.height == 0:
        return old
    minus = pl.DataFrame(
        {"entity": list(replaced), "rows": [-n for n in replaced.values()]},
        schema={"entity": pl.String(), "rows": pl.Int64()},
    )
    both = pl.concat([old, added], how="vertical")
    merged = both.group_by("entity").agg(
        pl.col("rows").sum(),
        pl.col("first").min(),
        pl.col("last").max(),
        pl.col("last_ingested_at").max(),
    )
    if minus.height:
        adjust = minus.group_by("entity").agg(pl.col("rows").sum().alias("minus"))
        merged = (
            merged.join(adjust, on="entity", how="left")
            .with_columns((pl.col("rows") + pl.col("minus").fill_null(0)).alias("rows"))
            .drop("minus")
        )
    return merged.select(list(COVERAGE_SCHEMA)).cast(COVERAGE_SCHEMA).sort("entity")
