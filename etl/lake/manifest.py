"""Per-partition manifests: which files a partition holds, their stats, and per-entity coverage.

A manifest is written after its partition is swapped in, so a crash between the two leaves a
manifest that lists other files than the folder holds. :func:`load_manifest` notices that
(the file names disagree) and rebuilds the manifest from the Parquet files themselves, which
stay the truth; the catalog reads manifests only through here or as JSON views.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq

from etl.lake.fsutil import atomic_write_bytes
from etl.lake.layout import LakePaths, PartitionKey, iso
from etl.schema import DatasetSchema

__all__ = ["CommitRecord", "FileEntry", "PartitionManifest", "load_manifest", "rebuild_manifest"]

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


@dataclass
class CoverageEntry:
    entity: str
    rows: int
    first: str | None
    last: str | None
    last_ingested_at: str | None


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


@dataclass
class PartitionManifest:
    dataset: str
    path: str
    partition: dict[str, str]
    generation: int = 0
    updated_at: str | None = None
    files: list[FileEntry] = field(default_factory=list)
    coverage: list[CoverageEntry] = field(default_factory=list)
    commits: list[CommitRecord] = field(default_factory=list)
    rebuilt: bool = False

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    def to_json(self) -> bytes:
        doc = asdict(self)
        doc.pop("rebuilt")
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
            coverage=[CoverageEntry(**c) for c in doc.get("coverage", [])],
            commits=[CommitRecord(**c) for c in doc.get("commits", [])],
        )

    def save(self, path: Path) -> None:
        atomic_write_bytes(path, self.to_json())


def _parquet_names(folder: Path) -> set[str]:
    if not folder.is_dir():
        return set()
    return {p.name for p in folder.iterdir() if p.suffix == ".parquet" and p.is_file()}


def load_manifest(
    paths: LakePaths, schema: DatasetSchema, key: PartitionKey, *, now: dt.datetime | None = None
) -> PartitionManifest:
    """The partition's manifest, rebuilt from its files if missing or out of step."""
    folder = paths.partition(schema.name, key)
    on_disk = _parquet_names(folder)
    mpath = paths.manifest(schema.name, key)
    manifest: PartitionManifest | None = None
    try:
        manifest = PartitionManifest.from_json(mpath.read_bytes())
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        manifest = None
    if manifest is not None and {f.name for f in manifest.files} == on_disk:
        return manifest
    if manifest is None and not on_disk:
        return PartitionManifest(schema.name, key.relpath, key.values)
    return rebuild_manifest(paths, schema, key, previous=manifest, now=now)


def rebuild_manifest(
    paths: LakePaths,
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
        meta = pq.read_metadata(path)
        part = pl.from_arrow(
            pq.read_table(path, columns=[c for c in cols if c in meta.schema.names])
        )
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
) -> list[CoverageEntry]:
    """Per-entity rows, first/last time and last ingest of ``frame`` (one partition's rows;
    an entity stored only in the path, like the calendar's market, comes from ``partition``)."""
    if frame is None or frame.height == 0 or not schema.entity:
        return []
    if schema.entity not in frame.columns and partition and schema.entity in partition:
        frame = frame.with_columns(pl.lit(partition[schema.entity]).alias(schema.entity))
    aggs: list[pl.Expr] = [pl.len().alias("rows")]
    if schema.time:
        aggs += [pl.col(schema.time).min().alias("first"), pl.col(schema.time).max().alias("last")]
    if "ingested_at" in frame.columns:
        aggs.append(pl.col("ingested_at").max().alias("last_ingested_at"))
    table = frame.group_by(schema.entity).agg(aggs).sort(schema.entity)
    out = []
    for row in table.iter_rows(named=True):
        out.append(
            CoverageEntry(
                entity=str(row[schema.entity]),
                rows=int(row["rows"]),
                first=iso(row.get("first")),
                last=iso(row.get("last")),
                last_ingested_at=iso(row.get("last_ingested_at")),
            )
        )
    return out


def merge_coverage(
    old: list[CoverageEntry], added: list[CoverageEntry], replaced: dict[str, int]
) -> list[CoverageEntry]:
    """Fold a commit's coverage into the partition's. ``added`` counts every row the commit
    wrote (new and replacing); ``replaced`` how many of them replaced a stored key, per entity,
    so that rows stay exact without re-reading the partition."""
    merged: dict[str, CoverageEntry] = {c.entity: CoverageEntry(**asdict(c)) for c in old}
    for entry in added:
        cur = merged.get(entry.entity)
        if cur is None:
            merged[entry.entity] = CoverageEntry(**asdict(entry))
            continue
        cur.rows += entry.rows - replaced.get(entry.entity, 0)
        cur.first = _pick(cur.first, entry.first, min)
        cur.last = _pick(cur.last, entry.last, max)
        cur.last_ingested_at = _pick(cur.last_ingested_at, entry.last_ingested_at, max)
    return [merged[k] for k in sorted(merged)]


def _pick(a: str | None, b: str | None, fn: Any) -> str | None:
    if a is None:
        return b
    if b is None:
        return a
    return str(fn(a, b))
