"""Validation between the vendor and the lake: nothing bad is ever stored silently.

Every row an adapter returns passes through here. Rows are coerced to the dataset's declared
types; then each problem is either *repaired* (an exact duplicate dropped, rows re-sorted: the
stored data is still exactly the vendor's), *dropped* (a bar still forming, stored on a later
run) or *rejected* (impossible prices, conflicting duplicates, bars outside the range asked
for, a trade date that does not match its timestamp). Rejected rows are never written; every
issue is counted per symbol and reason, and rejections make the command exit 1.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

import polars as pl
import pyarrow as pa

from etl import schema as schemas
from etl.calendars.markets import MARKET_SPECS
from etl.errors import SchemaError
from etl.lake.merge import polars_schema
from etl.schema import DatasetSchema

__all__ = ["Issue", "Validated", "conform", "validate", "validate_klines"]

Severity = Literal["repaired", "dropped", "rejected"]
PRICE_COLUMNS = ("open", "high", "low", "close")


@dataclass(frozen=True)
class Issue:
    symbol: str | None
    reason: str
    count: int
    severity: Severity
    example: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "symbol": self.symbol,
            "reason": self.reason,
            "count": self.count,
            "severity": self.severity,
            "example": self.example,
        }


@dataclass
class Validated:
    frame: pl.DataFrame
    issues: list[Issue] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return sum(i.count for i in self.issues if i.severity == "rejected")

    @property
    def rejections(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "rejected"]


def conform(dataset: str, rows: pa.Table | pl.DataFrame) -> pl.DataFrame:
    """Coerce vendor rows to the declared columns and types (extra columns are ignored).

    A missing non-nullable column means the payload changed shape: :class:`SchemaError`.
    """
    schema = schemas.get(dataset)
    frame = rows if isinstance(rows, pl.DataFrame) else pl.from_arrow(rows)
    assert isinstance(frame, pl.DataFrame)
    missing = [
        c.name
        for c in schema.columns
        if not c.nullable and c.name not in frame.columns and c.name != "ingested_at"
    ]
    if missing:
        raise SchemaError(f"{dataset} rows lack required columns {missing}", dataset=dataset)
    full = pl.DataFrame(schema=polars_schema(schema.arrow_schema))
    exprs = []
    for name, dtype in full.schema.items():
        if name in frame.columns:
            try:
                exprs.append(pl.col(name).cast(dtype, strict=True))
            except Exception as exc:  # pragma: no cover - polars raises lazily below
                raise SchemaError(f"column {name} has the wrong type: {exc}") from exc
        else:
            exprs.append(pl.lit(None, dtype=dtype).alias(name))
    try:
        return frame.select(exprs)
    except pl.exceptions.PolarsError as exc:
        raise SchemaError(f"{dataset} rows do not fit the declared types: {exc}") from exc


def _issues(
    frame: pl.DataFrame, mask: pl.Series, reason: str, severity: Severity, entity: str | None
) -> list[Issue]:
    bad = frame.filter(mask)
    if bad.height == 0:
        return []
    if entity is None or entity not in bad.columns:
        return [Issue(None, reason, bad.height, severity)]
    out = []
    for (ent,), group in bad.group_by([entity], maintain_order=True):
        example = None
        for col in ("ts", "trade_date", "reporting_period"):
            if col in group.columns:
                example = str(group[col][0])
                break
        out.append(Issue(str(ent), reason, group.height, severity, example))
    return out


def _dedupe(
    frame: pl.DataFrame, schema: DatasetSchema, entity: str | None
) -> tuple[pl.DataFrame, list[Issue]]:
    """Exact duplicates: keep one (repaired). Same key, other values: reject every copy."""
    keys = list(schema.key)
    values = [c for c in frame.columns if c not in keys and c not in schema.lineage_columns]
    issues: list[Issue] = []
    dup_key = frame.select(pl.struct(keys).is_duplicated()).to_series()
    if not dup_key.any():
        return frame, issues
    distinct = frame.unique(subset=[*keys, *values], keep="first", maintain_order=True)
    exact = frame.height - distinct.height
    if exact:
        marker = frame.select(pl.struct([*keys, *values]).is_first_distinct()).to_series()
        issues += _issues(
            frame, ~marker, "duplicate bar (identical copy dropped)", "repaired", entity
        )
    conflict = distinct.select(pl.struct(keys).is_duplicated()).to_series()
    issues += _issues(
        distinct, conflict, "conflicting duplicates (same key, other values)", "rejected", entity
    )
    return distinct.filter(~conflict), issues


def validate(dataset: str, rows: pa.Table | pl.DataFrame) -> Validated:
    """Generic checks for any dataset: types, required values, duplicate keys."""
    schema = schemas.get(dataset)
    frame = conform(dataset, rows)
    entity = schema.entity
    issues: list[Issue] = []
    required = [c.name for c in schema.columns if not c.nullable and c.name != "ingested_at"]
    null_mask = frame.select(pl.any_horizontal([pl.col(c).is_null() for c in required])).to_series()
    issues += _issues(frame, null_mask, "missing required value", "rejected", entity)
    frame = frame.filter(~null_mask)
    frame, dup_issues = _dedupe(frame, schema, entity)
    issues += dup_issues
    return Validated(frame.sort(list(schema.sort)), issues)


def validate_klines(
    rows: pa.Table | pl.DataFrame,
    *,
    freq: str,
    start: dt.date,
    end: dt.date,
    now: dt.datetime,
) -> Validated:
    """Kline checks on top of :func:`validate` (docs/vendors/README.md "Rows")."""
    schema = schemas.get("klines")
    frame = conform("klines", rows)
    issues: list[Issue] = []

    def reject(mask: pl.Series, reason: str, severity: Severity = "rejected") -> None:
        nonlocal frame
        issues.extend(_issues(frame, mask, reason, severity, "symbol"))
        frame = frame.filter(~mask)

    required = [c.name for c in schema.columns if not c.nullable and c.name != "ingested_at"]
    reject(
        frame.select(pl.any_horizontal([pl.col(c).is_null() for c in required])).to_series(),
        "missing required value",
    )
    reject(frame["freq"] != freq, f"frequency is not {freq}")
    prices = [pl.col(c) for c in PRICE_COLUMNS]
    reject(frame.select(pl.any_horizontal([p.is_nan() for p in prices])).to_series(), "NaN price")
    reject(
        frame.select(pl.any_horizontal([p <= 0 for p in prices])).to_series(),
        "price zero or negative",
    )
    reject((frame["high"] < frame["low"]), "high below low")
    enclose = frame.select(
        (pl.col("high") < pl.max_horizontal("open", "close"))
        | (pl.col("low") > pl.min_horizontal("open", "close"))
    ).to_series()
    reject(enclose, "high/low do not enclose open and close")
    for col in ("volume", "amount", "open_interest"):
        bad = frame.select((pl.col(col) < 0) | pl.col(col).is_nan()).to_series().fill_null(False)
        reject(bad, f"{col} negative or NaN")
    outside = (frame["trade_date"] < start) | (frame["trade_date"] > end)
    reject(outside, "outside the requested range")
    reject(_trade_date_mismatch(frame, freq), "trade_date does not match ts")
    reject(_forming(frame, freq, now), "bar still forming", "dropped")

    unsorted = frame.select(
        (pl.col("ts").diff().over("symbol") < pl.duration(microseconds=0)).fill_null(False)
    ).to_series()
    if unsorted.any():
        issues.extend(_issues(frame, unsorted, "out of order (re-sorted)", "repaired", "symbol"))
    frame, dup_issues = _dedupe(frame, schema, "symbol")
    issues += dup_issues
    return Validated(frame.sort(["symbol", "ts"]), issues)


def _local_date(frame: pl.DataFrame) -> pl.Series:
    """Each row's exchange-local date of ``ts`` (Asia/Shanghai for vendor-only products)."""
    zones = frame.select(
        pl.col("symbol")
        .str.extract(r"\.([A-Z]+)$")
        .replace_strict({m: s.tz for m, s in MARKET_SPECS.items()}, default="Asia/Shanghai")
        .alias("tz")
    ).to_series()
    out = pl.Series("d", [None] * frame.height, dtype=pl.Date)
    for tz in zones.unique().to_list():
        mask = zones == tz
        local = (
            frame.filter(mask).select(pl.col("ts").dt.convert_time_zone(tz).dt.date()).to_series()
        )
        out = out.scatter(mask.arg_true(), local)
    return out


def _trade_date_mismatch(frame: pl.DataFrame, freq: str) -> pl.Series:
    if frame.height == 0:
        return pl.Series([], dtype=pl.Boolean)
    local = _local_date(frame)
    if freq in ("1d", "1w", "1M"):
        # ts must be 00:00 local of trade_date.
        midnight = frame.select(pl.col("ts")).to_series()
        return (local != frame["trade_date"]) | _not_midnight(frame, midnight)
    return local != frame["trade_date"]


def _not_midnight(frame: pl.DataFrame, ts: pl.Series) -> pl.Series:
    zones = frame.select(
        pl.col("symbol")
        .str.extract(r"\.([A-Z]+)$")
        .replace_strict({m: s.tz for m, s in MARKET_SPECS.items()}, default="Asia/Shanghai")
        .alias("tz")
    ).to_series()
    out = pl.Series("m", [False] * frame.height)
    for tz in zones.unique().to_list():
        mask = zones == tz
        local = frame.filter(mask).select(pl.col("ts").dt.convert_time_zone(tz)).to_series()
        off = (local.dt.hour() != 0) | (local.dt.minute() != 0) | (local.dt.second() != 0)
        out = out.scatter(mask.arg_true(), off)
    return out


def _forming(frame: pl.DataFrame, freq: str, now: dt.datetime) -> pl.Series:
    """Bars whose period has not ended at ``now``: the vendor may still change them."""
    if frame.height == 0:
        return pl.Series([], dtype=pl.Boolean)
    from etl.normalize.bar_end import bar_end

    ends = bar_end(frame.select("symbol", "ts", "trade_date"), freq, now)
    return ends > now.astimezone(dt.UTC)
