"""Upsert and compaction plans for one partition, computed in memory before anything is written.

Invariant: every key lives in exactly one file of its partition. An upsert keeps it so: rows
whose values did not change are dropped from the batch (writing the same batch twice changes
nothing), stored rows whose values changed are removed from the file that held them (that file
is rewritten under a new name) and the batch's rows go to one new file per bucket.

Where the dataset declares a precedence (``klines.source``: ``live`` < ``rest``), a batch row
never replaces a stored row of higher rank (it is refused, and counted), and a row of higher
rank replaces a stored one even when their values agree, so that the source is right.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pyarrow as pa

from etl.dataroot import PartitionKey
from etl.lake.layout import bucket_expr, iso
from etl.lake.manifest import FileEntry, PartitionManifest
from etl.schema import DatasetSchema, empty_table

__all__ = ["NewFile", "PartitionPlan", "bucket_of_file", "plan_compaction", "plan_upsert"]


@dataclass
class NewFile:
    name: str
    bucket: str
    frame: pl.DataFrame
    is_sorted: bool = False  # already in the file's sort order


@dataclass
class PartitionPlan:
    keep: list[str] = field(default_factory=list)
    write: list[NewFile] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    rows_added: int = 0
    rows_replaced: int = 0
    rows_unchanged: int = 0
    rows_refused: int = 0  # outranked by the stored row (see the module docstring)
    replaced_by_entity: dict[str, int] = field(default_factory=dict)
    written: pl.DataFrame | None = None  # the batch rows this commit stores
    compacted: bool = False

    @property
    def changes_anything(self) -> bool:
        return bool(self.write or self.removed)


def file_name(bucket: str) -> str:
    return f"part-{bucket}-{uuid.uuid4().hex[:12]}.parquet"


def bucket_of_file(name: str) -> str:
    """``part-2024-01-02-<id>.parquet`` -> ``2024-01-02``."""
    stem = name.removesuffix(".parquet")
    if stem.startswith("part-"):
        return stem[len("part-") :].rsplit("-", 1)[0]
    return "all"


def file_columns(schema: DatasetSchema) -> list[str]:
    skip = set(schema.path_columns)
    return [c.name for c in schema.columns if c.name not in skip]


def key_columns(schema: DatasetSchema) -> list[str]:
    skip = set(schema.path_columns)
    return [c for c in schema.key if c not in skip]


def sort_columns(schema: DatasetSchema) -> list[str]:
    skip = set(schema.path_columns)
    cols = [c for c in schema.sort if c not in skip]
    return cols + [c for c in key_columns(schema) if c not in cols]


def conform(schema: DatasetSchema, frame: pl.DataFrame) -> pl.DataFrame:
    """Columns of the file schema, in order, with declared types; missing nullable ones null.

    Files written before a column was added to ``schemas/`` are read through here, so a
    merge or compaction upgrades them.
    """
    target = pl.DataFrame(schema=polars_schema(schema.file_schema))
    defaults = {c.name: c.default for c in schema.columns if c.default is not None}
    exprs = []
    for name, dtype in target.schema.items():
        if name in frame.columns:
            expr = pl.col(name).cast(dtype)
        else:
            expr = pl.lit(None, dtype=dtype).alias(name)
        if name in defaults:
            expr = expr.fill_null(pl.lit(defaults[name], dtype=dtype))
        exprs.append(expr)
    return frame.select(exprs)


def polars_schema(arrow: pa.Schema) -> dict[str, pl.DataType]:
    """The polars dtypes of an Arrow schema (strings as polars strings)."""
    frame = pl.from_arrow(empty_table(arrow))
    assert isinstance(frame, pl.DataFrame)
    return dict(frame.schema)


def read_file(path: Path, schema: DatasetSchema, columns: list[str] | None = None) -> pl.DataFrame:
    frame = pl.read_parquet(path, columns=columns) if columns else pl.read_parquet(path)
    return frame if columns else conform(schema, frame)


def _values_equal(schema: DatasetSchema, left: pl.DataFrame) -> pl.Series:
    """Row-wise: every value column equals its ``_new`` twin (nulls equal nulls)."""
    skip = set(schema.path_columns)
    cols = [c for c in schema.value_columns if c not in skip]
    if not cols:
        return pl.Series([True] * left.height, dtype=pl.Boolean)
    expr = pl.all_horizontal([pl.col(c).eq_missing(pl.col(f"{c}_new")) for c in cols])
    return left.select(expr.alias("eq")).to_series()


def _ranks(schema: DatasetSchema, pairs: pl.DataFrame) -> tuple[pl.Series, pl.Series] | None:
    """(stored rank, incoming rank) per pair, or None without a precedence."""
    prec = schema.precedence
    if prec is None or prec.column not in pairs.columns:
        return None
    table = {v: i for i, v in enumerate(prec.order)}
    default = len(prec.order)

    def rank(col: str) -> pl.Series:
        expr = pl.col(col).replace_strict(table, default=default, return_dtype=pl.Int32)
        return pairs.select(expr.alias("r")).to_series()

    return rank(prec.column), rank(f"{prec.column}_new")


def _outranked(schema: DatasetSchema, pairs: pl.DataFrame) -> pl.Series | None:
    """Pairs whose incoming row ranks below the stored one: refused."""
    ranks = _ranks(schema, pairs)
    return None if ranks is None else ranks[1] < ranks[0]


def _outranks(schema: DatasetSchema, pairs: pl.DataFrame) -> pl.Series:
    """Pairs whose incoming row ranks above the stored one: replaced, values equal or not."""
    ranks = _ranks(schema, pairs)
    assert ranks is not None
    return ranks[1] > ranks[0]


def plan_upsert(
    schema: DatasetSchema,
    key: PartitionKey,
    folder: Path,
    manifest: PartitionManifest,
    incoming: pl.DataFrame,
    *,
    compact_min_files: int,
) -> PartitionPlan:
    keys = key_columns(schema)
    incoming = conform(schema, incoming).sort(sort_columns(schema), maintain_order=True)
    if has_adjacent_duplicates(incoming, keys):  # rare: the validator de-duplicates already
        incoming = incoming.unique(subset=keys, keep="last", maintain_order=True)
    incoming = incoming.with_columns(bucket_expr(schema, key).alias("__bucket"))
    plan = PartitionPlan()
    by_bucket: dict[str, list[FileEntry]] = {}
    for entry in manifest.files:
        by_bucket.setdefault(entry.bucket, []).append(entry)
    touched: set[str] = set()
    kept_batches: list[pl.DataFrame] = []

    for bucket, group in _buckets(incoming):
        batch = group.drop("__bucket")
        lo, hi = _time_range(schema, batch)
        for entry in by_bucket.get(bucket, []):
            if batch.height == 0:
                break
            if lo is not None and hi is not None and _disjoint(entry, lo, hi):
                continue  # the manifest proves this file cannot hold any of the keys
            stored_keys = read_file(folder / entry.name, schema, columns=keys)
            hits = stored_keys.join(batch.select(keys), on=keys, how="semi")
            if hits.height == 0:
                continue
            stored = read_file(folder / entry.name, schema)
            value_cols = [c for c in batch.columns if c not in keys]
            pairs = stored.join(
                batch.select([*keys, *value_cols]).rename({c: f"{c}_new" for c in value_cols}),
                on=keys,
                how="inner",
            )
            same = _values_equal(schema, pairs)
            refused = _outranked(schema, pairs)
            if refused is not None:
                plan.rows_refused += int(refused.sum())
                same = (same & ~_outranks(schema, pairs)) | refused
            unchanged = pairs.filter(same).select(keys)
            changed = pairs.filter(~same).select(keys)
            plan.rows_unchanged += unchanged.height - (0 if refused is None else int(refused.sum()))
            batch = batch.join(unchanged, on=keys, how="anti")
            if changed.height:
                plan.rows_replaced += changed.height
                _count_replaced(schema, key, changed, plan.replaced_by_entity)
                remaining = stored.join(changed, on=keys, how="anti")
                plan.removed.append(entry.name)
                touched.add(bucket)
                if remaining.height:
                    plan.write.append(NewFile(file_name(bucket), bucket, remaining))
        if batch.height:
            touched.add(bucket)
            plan.write.append(NewFile(file_name(bucket), bucket, batch, is_sorted=True))
            kept_batches.append(batch)
    plan.rows_added = sum(b.height for b in kept_batches) - plan.rows_replaced
    plan.written = pl.concat(kept_batches) if kept_batches else None
    removed = set(plan.removed)
    plan.keep = [f.name for f in manifest.files if f.name not in removed]

    # Compact buckets that this commit pushed over the threshold, in the same swap.
    counts: dict[str, int] = {}
    for entry in manifest.files:
        if entry.name not in removed:
            counts[entry.bucket] = counts.get(entry.bucket, 0) + 1
    for new in plan.write:
        counts[new.bucket] = counts.get(new.bucket, 0) + 1
    crowded = {b for b in touched if counts.get(b, 0) >= compact_min_files}
    if crowded:
        _fold_compaction(schema, folder, manifest, plan, crowded)
    return plan


def _buckets(frame: pl.DataFrame) -> list[tuple[str, pl.DataFrame]]:
    """Rows per bucket label, keeping their (sorted) order."""
    labels = frame["__bucket"].unique(maintain_order=True)
    if labels.len() == 1:
        return [(str(labels[0]), frame)]
    return [(str(v), g) for (v,), g in frame.group_by(["__bucket"], maintain_order=True)]


def has_adjacent_duplicates(frame: pl.DataFrame, keys: list[str]) -> bool:
    """Equal keys in a frame sorted by them (sort columns are key columns: see schema)."""
    if frame.height < 2 or not keys:
        return False
    same = pl.all_horizontal([pl.col(k).eq_missing(pl.col(k).shift(1)) for k in keys])
    return bool(frame.select(same.fill_null(False).any()).item())


def _time_range(schema: DatasetSchema, frame: pl.DataFrame) -> tuple[str | None, str | None]:
    if not schema.time or schema.time not in frame.columns or frame.height == 0:
        return None, None
    return iso(frame[schema.time].min()), iso(frame[schema.time].max())


def _disjoint(entry: FileEntry, lo: str, hi: str) -> bool:
    if entry.min_time is None or entry.max_time is None:
        return False
    return entry.max_time < lo or entry.min_time > hi


def _count_replaced(
    schema: DatasetSchema, key: PartitionKey, changed: pl.DataFrame, into: dict[str, int]
) -> None:
    """Replaced rows per coverage entity (which may live in the path, not the rows)."""
    if not schema.entity:
        return
    if schema.entity in changed.columns:
        for ent, n in changed.group_by(schema.entity).len().iter_rows():
            into[str(ent)] = into.get(str(ent), 0) + n
    elif schema.entity in key.values:
        ent = key.values[schema.entity]
        into[ent] = into.get(ent, 0) + changed.height


def _fold_compaction(
    schema: DatasetSchema,
    folder: Path,
    manifest: PartitionManifest,
    plan: PartitionPlan,
    buckets: Iterable[str],
) -> None:
    """Merge every file of ``buckets`` (kept and newly planned) into one file per bucket."""
    bucket_of = {f.name: f.bucket for f in manifest.files}
    for bucket in sorted(set(buckets)):
        parts = [read_file(folder / n, schema) for n in plan.keep if bucket_of.get(n) == bucket]
        parts += [nf.frame for nf in plan.write if nf.bucket == bucket]
        if len(parts) < 2:
            continue
        plan.removed += [n for n in plan.keep if bucket_of.get(n) == bucket]
        plan.keep = [n for n in plan.keep if bucket_of.get(n) != bucket]
        plan.write = [nf for nf in plan.write if nf.bucket != bucket]
        merged = pl.concat(parts, how="vertical_relaxed")
        plan.write.append(NewFile(file_name(bucket), bucket, merged))
        plan.compacted = True


def plan_compaction(
    schema: DatasetSchema,
    folder: Path,
    manifest: PartitionManifest,
    *,
    min_files: int = 2,
) -> PartitionPlan:
    """Merge each bucket holding at least ``min_files`` files into one file."""
    plan = PartitionPlan(keep=[f.name for f in manifest.files])
    counts: dict[str, int] = {}
    for entry in manifest.files:
        counts[entry.bucket] = counts.get(entry.bucket, 0) + 1
    crowded = [b for b, n in counts.items() if n >= min_files]
    if crowded:
        _fold_compaction(schema, folder, manifest, plan, crowded)
    return plan
