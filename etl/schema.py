"""Dataset declarations from ``schemas/*.toml``: the single source of every column.

Writers build their Arrow schemas here, validation coerces to them, and the catalog builds
its views from them, so a column added to a TOML file reaches all three at once.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

from etl.errors import BadInputError, ConfigError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "Column",
    "DatasetSchema",
    "Partition",
    "Precedence",
    "empty_table",
    "load_schemas",
    "schema_dir",
    "schemas",
    "use_schema_dir",
]

ColumnType = Literal["string", "int32", "int64", "float64", "bool", "date", "timestamp"]


@cache
def _arrow_types() -> Mapping[str, pa.DataType]:
    """The column types as Arrow types, made on first use: pyarrow is 65 ms of an
    ``etl sql`` start-up that never needs it (the catalog reads the schemas for SQL)."""
    import pyarrow as pa

    return {
        "string": pa.string(),
        "int32": pa.int32(),
        "int64": pa.int64(),
        "float64": pa.float64(),
        "bool": pa.bool_(),
        "date": pa.date32(),
        "timestamp": pa.timestamp("us", tz="UTC"),
    }


def empty_table(arrow: pa.Schema) -> pa.Table:
    """A table of no rows with the ``arrow`` schema. Not ``Schema.empty_table()``: pyarrow
    builds that through pandas, and importing pandas costs 0.16-0.18 s (issue 10, start-up:
    an adapter makes its empty batch before its first request)."""
    import pyarrow as pa  # first use only (see _arrow_types)

    return pa.Table.from_batches([], schema=arrow)


_DUCKDB: Final[Mapping[str, str]] = {
    "string": "VARCHAR",
    "int32": "INTEGER",
    "int64": "BIGINT",
    "float64": "DOUBLE",
    "bool": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMPTZ",
}
Granularity = Literal["hour", "day", "month", "year", "all"]


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    nullable: bool
    unit: str | None = None
    description: str | None = None
    lineage: bool = False
    # What a row written before the column existed holds (files lacking it read as this,
    # and a writer's null becomes it): ``klines.source`` of old bars is ``rest``.
    default: str | None = None

    @property
    def arrow_type(self) -> pa.DataType:
        return _arrow_types()[self.type]

    @property
    def duckdb_type(self) -> str:
        return _DUCKDB[self.type]


@dataclass(frozen=True)
class Partition:
    """One Hive folder level: either a column moved into the path, or derived (``year``)."""

    name: str
    type: ColumnType
    column: str | None = None  # the column whose value is the folder (and is not in files)
    source: str | None = None  # the column a transform derives the folder from
    transform: Literal["year", "day"] | None = None

    def value_of(self, row_value: object) -> str:
        """The folder value for the row value of ``column`` or ``source``."""
        if self.transform == "year":
            assert isinstance(row_value, dt.date)
            return str(row_value.year)
        if self.transform == "day":
            assert isinstance(row_value, dt.date)
            return row_value.isoformat()
        return str(row_value)


@dataclass(frozen=True)
class Bucket:
    """How rows of one partition are grouped into files (compaction merges one bucket)."""

    column: str | None = None
    by_partition: str | None = None
    default: Granularity = "all"
    granularity: Mapping[str, Granularity] = field(default_factory=dict)

    def granularity_for(self, partition: Mapping[str, str]) -> Granularity:
        if self.by_partition is not None:
            return self.granularity.get(partition[self.by_partition], self.default)
        return self.default


@dataclass(frozen=True)
class Precedence:
    """Which stored rows an upsert may replace: a row never replaces a stored row of the
    same key whose ``column`` ranks higher in ``order`` (lowest first). Equal ranks: the
    latest ingest wins, as everywhere else. ``klines``: a REST bar replaces a live bar,
    a live bar never replaces a REST bar."""

    column: str
    order: tuple[str, ...]

    def rank(self, value: str | None) -> int:
        return self.order.index(value) if value in self.order else len(self.order)


@dataclass(frozen=True)
class DatasetSchema:
    name: str
    description: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    sort: tuple[str, ...]
    partitions: tuple[Partition, ...]
    bucket: Bucket
    time: str | None
    entity: str | None
    asof: str | None
    fingerprint: str
    area: Literal["lake", "state"] = "lake"  # "state": the warehouse's own (gap ledger...)
    precedence: Precedence | None = None

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def path_columns(self) -> tuple[str, ...]:
        """Columns stored only in the Hive path, not inside the Parquet files."""
        return tuple(p.column for p in self.partitions if p.column is not None)

    @functools.cached_property
    def arrow_schema(self) -> pa.Schema:
        """The full logical schema (what a reader of the dataset sees, minus derived folders)."""
        import pyarrow as pa  # first use only (see _arrow_types)

        return pa.schema([pa.field(c.name, c.arrow_type, c.nullable) for c in self.columns])

    @property
    def file_schema(self) -> pa.Schema:
        """The schema of each Parquet file: path-only columns removed."""
        import pyarrow as pa  # first use only (see _arrow_types)

        skip = set(self.path_columns)
        return pa.schema(
            [pa.field(c.name, c.arrow_type, c.nullable) for c in self.columns if c.name not in skip]
        )

    @property
    def value_columns(self) -> tuple[str, ...]:
        """Columns compared to decide whether a re-fetched row changed (lineage excluded)."""
        return tuple(c.name for c in self.columns if not c.lineage and c.name not in self.key)

    @property
    def lineage_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.lineage)


@functools.cache
def schema_dir() -> Path:
    """``schemas/`` of the checkout, or the copy packaged into a wheel as ``etl/_schemas``
    (found once: every read of the lake asks for its datasets' declarations)."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "schemas", here / "_schemas"):
        if candidate.is_dir():
            return candidate
    raise ConfigError("schemas/ not found beside the etl package; reinstall the project")


def _parse(path: Path) -> DatasetSchema:
    raw = path.read_bytes()
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
        columns = tuple(
            Column(
                name=c["name"],
                type=c["type"],
                nullable=bool(c["nullable"]),
                unit=c.get("unit"),
                description=c.get("description"),
                lineage=bool(c.get("lineage", False)),
                default=c.get("default"),
            )
            for c in doc["columns"]
        )
        partitions = tuple(
            Partition(
                name=p["name"],
                type=p.get("type", "string"),
                column=p.get("column"),
                source=p.get("from"),
                transform=p.get("transform"),
            )
            for p in doc.get("partition", [])
        )
        b = doc.get("bucket", {})
        bucket = Bucket(
            column=b.get("column"),
            by_partition=b.get("by_partition"),
            default=b.get("default", "all"),
            granularity=dict(b.get("granularity", {})),
        )
        prec = doc.get("precedence")
        precedence = None
        if prec is not None:
            precedence = Precedence(column=prec["column"], order=tuple(prec["order"]))
        schema = DatasetSchema(
            name=doc["name"],
            description=doc.get("description", ""),
            columns=columns,
            key=tuple(doc["key"]),
            sort=tuple(doc.get("sort", doc["key"])),
            partitions=partitions,
            bucket=bucket,
            time=doc.get("time"),
            entity=doc.get("entity"),
            asof=doc.get("asof"),
            area=doc.get("area", "lake"),
            precedence=precedence,
            fingerprint=hashlib.sha256(raw).hexdigest()[:16],
        )
    except (KeyError, TypeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"bad dataset declaration {path.name}: {exc!r}") from exc
    _check(schema, path)
    return schema


def _check(schema: DatasetSchema, path: Path) -> None:
    names = schema.column_names
    if len(set(names)) != len(names):
        raise ConfigError(f"{path.name}: a column is declared twice")
    for col in schema.columns:
        if col.type not in _DUCKDB:  # the same names as _arrow_types()
            raise ConfigError(f"{path.name}: column {col.name} has unknown type {col.type!r}")
    referenced = [*schema.key, *schema.sort]
    referenced += [p.column or p.source or "" for p in schema.partitions]
    referenced += [c for c in (schema.time, schema.entity, schema.asof) if c]
    if schema.precedence is not None:
        referenced.append(schema.precedence.column)
        if schema.column(schema.precedence.column).type != "string":
            raise ConfigError(f"{path.name}: precedence column must be a string column")
    for name in referenced:
        if name not in names:
            raise ConfigError(f"{path.name}: {name!r} is referenced but not declared")
    outside = [c for c in schema.sort if c not in schema.key]
    if outside:
        # Rows with equal keys must sort next to each other (duplicate checks rely on it).
        raise ConfigError(f"{path.name}: sort columns {outside} are not key columns")
    for col in schema.columns:
        if col.default is not None and col.type != "string":
            raise ConfigError(f"{path.name}: column {col.name}: only string columns take a default")
    for key_name in schema.key:
        if schema.column(key_name).nullable:
            raise ConfigError(f"{path.name}: key column {key_name} must not be nullable")


def load_schemas(directory: Path) -> dict[str, DatasetSchema]:
    """Every dataset declared in ``directory``, by name."""
    found = {}
    for path in sorted(directory.glob("*.toml")):
        schema = _parse(path)
        found[schema.name] = schema
    if not found:
        raise ConfigError(f"no dataset declarations in {directory}")
    return found


_override: list[Path] = []


@cache
def _load_cached(directory: Path) -> Mapping[str, DatasetSchema]:
    return load_schemas(directory)


def schemas() -> Mapping[str, DatasetSchema]:
    """The project's datasets (cached: the files do not change while a process runs)."""
    return _load_cached(_override[-1] if _override else schema_dir())


@contextmanager
def use_schema_dir(directory: Path) -> Iterator[None]:
    """Read dataset declarations from ``directory`` for the block (tools and tests)."""
    _override.append(Path(directory))
    try:
        yield
    finally:
        _override.pop()
        _load_cached.cache_clear()


def get(name: str) -> DatasetSchema:
    try:
        return schemas()[name]
    except KeyError:
        known = ", ".join(sorted(schemas()))
        raise BadInputError(f"unknown dataset {name!r}: use one of {known}") from None
