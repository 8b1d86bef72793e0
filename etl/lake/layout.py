"""Which partition and which file bucket each row belongs to.

Where partitions live on disk is :mod:`etl.dataroot`'s business (the one owner of the data
root's layout); this module splits rows into :class:`PartitionKey` groups and labels buckets.
Only Parquet files are ever under ``lake/<dataset>/``, because polars refuses a directory
holding anything else.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from etl.dataroot import DataRoot, PartitionKey
from etl.errors import LakeError
from etl.schema import DatasetSchema
from etl.timefmt import iso_utc

__all__ = ["DataRoot", "PartitionKey", "bucket_expr", "iso", "partition_frames"]


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
        elif part.transform == "day":
            assert part.source is not None
            day = pl.col(part.source).cast(pl.Date).cast(pl.String)
            exprs.append(day.alias(f"__p_{part.name}"))
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
    if gran == "hour":  # of a timestamp column (UTC): 2024-06-28T09
        return pl.col(col).dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%dT%H")
    return pl.col(col).dt.strftime("%Y-%m")


def iso(value: object) -> str | None:
    """JSON-friendly form of a time value kept in manifests."""
    if value is None or isinstance(value, dt.date):
        # Always with microseconds, so that the strings sort as the instants do.
        return iso_utc(value, "microseconds")
    return str(value)
