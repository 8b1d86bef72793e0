"""Where rows live: Hive partition folders, file buckets and the lake's private folders.

    <root>/lake/<dataset>/<k>=<v>/.../part-<bucket>-<id>.parquet   data (only .parquet here)
    <root>/lake/.manifest/<dataset>/<k>=<v>/....json                 one manifest per partition
    <root>/lake/.staging/                                            partitions being built
    <root>/lake/.locks/                                              per-partition write locks
    <root>/lake/.schema/<dataset>/...                                zero-row schema anchors

Only Parquet files are ever under ``lake/<dataset>/``, because polars refuses a directory
holding anything else. Partition values are checked against a strict pattern before they
become folder names.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import polars as pl

from etl.errors import LakeError
from etl.schema import DatasetSchema

__all__ = ["LakePaths", "PartitionKey", "bucket_expr", "partition_frames"]

_SAFE_VALUE: Final = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True, order=True)
class PartitionKey:
    """One partition: its folder values in declaration order (empty for unpartitioned)."""

    items: tuple[tuple[str, str], ...]

    @property
    def relpath(self) -> str:
        return "/".join(f"{k}={v}" for k, v in self.items)

    @property
    def values(self) -> dict[str, str]:
        return dict(self.items)

    @property
    def flat(self) -> str:
        """A file-name-safe label (``freq=1d~year=2024``, ``_root``)."""
        return "~".join(f"{k}={v}" for k, v in self.items) or "_root"

    @classmethod
    def from_values(cls, schema: DatasetSchema, values: Mapping[str, object]) -> PartitionKey:
        items = []
        for part in schema.partitions:
            text = str(values[part.name])
            if not _SAFE_VALUE.match(text):
                raise LakeError(f"unsafe partition value {text!r} for {part.name}")
            items.append((part.name, text))
        return cls(tuple(items))

    @classmethod
    def parse(cls, schema: DatasetSchema, relpath: str) -> PartitionKey:
        parts = [p for p in relpath.split("/") if p]
        values = dict(p.split("=", 1) for p in parts)
        if list(values) != [p.name for p in schema.partitions]:
            raise LakeError(f"{relpath!r} is not a partition of {schema.name}")
        return cls.from_values(schema, values)


@dataclass(frozen=True)
class LakePaths:
    root: Path  # the data root; the lake is root/lake

    @property
    def lake(self) -> Path:
        return self.root / "lake"

    def dataset(self, name: str) -> Path:
        """``lake/<name>`` for user datasets; ``state/<name>`` for the warehouse's own."""
        from etl import schema as schemas

        area = schemas.get(name).area
        return (self.root / "state" / name) if area == "state" else (self.lake / name)

    def partition(self, dataset: str, key: PartitionKey) -> Path:
        base = self.dataset(dataset)
        return base / key.relpath if key.items else base

    def manifest(self, dataset: str, key: PartitionKey) -> Path:
        rel = key.relpath if key.items else "_root"
        return self.lake / ".manifest" / dataset / f"{rel}.json"

    @property
    def staging(self) -> Path:
        return self.lake / ".staging"

    def lock(self, dataset: str, key: PartitionKey) -> Path:
        return self.lake / ".locks" / dataset / f"{key.flat}.lock"

    @property
    def schema_anchors(self) -> Path:
        return self.lake / ".schema"


def partition_frames(
    schema: DatasetSchema, frame: pl.DataFrame
) -> list[tuple[PartitionKey, pl.DataFrame]]:
    """Split rows by partition; path-only columns are dropped from each part."""
    if not schema.partitions:
        return [(PartitionKey(()), frame)] if frame.height else []
    exprs = []
    for part in schema.partitions:
        if part.column is not None:
            exprs.append(pl.col(part.column).cast(pl.String).alias(f"__p_{part.name}"))
        elif part.transform == "year":
            assert part.source is not None
            exprs.append(pl.col(part.source).dt.year().cast(pl.String).alias(f"__p_{part.name}"))
        else:
            raise LakeError(f"unsupported partition {part.name} in {schema.name}")
    tagged = frame.with_columns(exprs)
    names = [f"__p_{p.name}" for p in schema.partitions]
    distinct = tagged.select(names).unique()
    if distinct.height == 1:  # the common case: no need to gather rows into groups
        values = distinct.row(0)
        key = PartitionKey.from_values(
            schema, {p.name: v for p, v in zip(schema.partitions, values, strict=True)}
        )
        return [(key, tagged.drop([*names, *schema.path_columns]))]
    out = []
    for values, group in tagged.group_by(names, maintain_order=False):
        key = PartitionKey.from_values(
            schema, {p.name: v for p, v in zip(schema.partitions, values, strict=True)}
        )
        out.append((key, group.drop([*names, *schema.path_columns])))
    out.sort(key=lambda kv: kv[0])
    return out


def bucket_expr(schema: DatasetSchema, key: PartitionKey) -> pl.Expr:
    """The bucket label of each row (files of one bucket are compacted together)."""
    gran = schema.bucket.granularity_for(key.values)
    col = schema.bucket.column
    if gran == "all" or col is None:
        return pl.lit("all")
    if gran == "year":
        return pl.col(col).dt.year().cast(pl.String)
    if gran == "day":
        return pl.col(col).cast(pl.Date).cast(pl.String)
    return pl.col(col).dt.strftime("%Y-%m")


def iso(value: object) -> str | None:
    """JSON-friendly form of a time value kept in manifests."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        # Always with microseconds, so that the strings sort as the instants do.
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)
