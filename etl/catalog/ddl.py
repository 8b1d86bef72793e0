"""The catalog's SQL, generated from ``schemas/``: one view per dataset, plus the lake's own
tables (partitions, files, commits, coverage), the task records and as-of macros.

Views read the lake at query time (globs, not file lists), so nothing needs to write the
catalog while a backfill runs: readers always see committed partitions. Each glob is paired
with a zero-row anchor so a view over an empty dataset still has its declared columns.
Only validated identifiers and escaped paths ever reach this SQL.

Two dialects, because two kinds of DuckDB read it. ``etl sql`` runs the statements in its own
process, on the duckdb the package imports, and tolerates a dataset with no file yet with
``allow_empty``. ``catalog.duckdb`` is opened by whatever ``duckdb`` shell a user has, older
than the library (the newest shell on PyPI is a 1.x, which knows no ``allow_empty``), so its
views use only SQL that DuckDB 1.0 binds: a dataset with files reads its glob and its anchor,
a dataset without any reads its anchor alone (a glob matching nothing is an error there), and
the catalog is rebuilt when a dataset gets its first file (see :mod:`etl.catalog.build`).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Final

from etl.dataroot import DataRoot
from etl.schema import DatasetSchema

__all__ = [
    "catalog_sql",
    "dataset_glob",
    "dataset_sql",
    "file_pattern",
    "quote_path",
    "shared_sql",
]

_IDENT: Final = re.compile(r"^[a-z_][a-z0-9_]*$")

MANIFEST_COLUMNS: Final = (
    "{'dataset': 'VARCHAR', 'path': 'VARCHAR', 'partition': 'MAP(VARCHAR, VARCHAR)', "
    "'generation': 'BIGINT', 'updated_at': 'VARCHAR', "
    "'files': 'STRUCT(name VARCHAR, bucket VARCHAR, \"rows\" BIGINT, bytes BIGINT, "
    'min_time VARCHAR, max_time VARCHAR, created_at VARCHAR, "commit" VARCHAR)[]\', '
    '\'coverage\': \'STRUCT(entity VARCHAR[], "rows" BIGINT[], "first" VARCHAR[], '
    '"last" VARCHAR[], last_ingested_at VARCHAR[])\', '
    "'commits': 'STRUCT(id VARCHAR, \"at\" VARCHAR, task_id BIGINT, rows_added BIGINT, "
    "rows_replaced BIGINT, rows_unchanged BIGINT, files_added VARCHAR[], files_removed VARCHAR[], "
    "compacted BOOLEAN)[]'}"
)

TASK_COLUMNS: Final = (
    "{'id': 'BIGINT', 'kind': 'VARCHAR', 'status': 'VARCHAR', 'progress': 'DOUBLE', "
    "'total_count': 'BIGINT', 'success_count': 'BIGINT', 'error_count': 'BIGINT', "
    "'rows_written': 'BIGINT', 'error_message': 'VARCHAR', 'errors': 'JSON', 'params': 'JSON', "
    "'created_at': 'TIMESTAMPTZ', 'started_at': 'TIMESTAMPTZ', 'finished_at': 'TIMESTAMPTZ', "
    "'updated_at': 'TIMESTAMPTZ', 'pid': 'BIGINT', 'message': 'VARCHAR'}"
)


def quote_path(path: Path | str) -> str:
    """A SQL string literal for a filesystem path."""
    return "'" + str(path).replace("'", "''") + "'"


def _ident(name: str) -> str:
    if not _IDENT.match(name):
        raise ValueError(f"unsafe SQL identifier {name!r}")
    return name


def anchor_path(root: Path, schema: DatasetSchema) -> Path:
    return DataRoot(root).schema_anchor(schema)


def file_pattern(schema: DatasetSchema) -> str:
    """A dataset's data files, relative to its folder: one ``*`` per partition level."""
    return "/".join(["*" for _ in schema.partitions] + ["*.parquet"])


def dataset_glob(root: Path, schema: DatasetSchema) -> str:
    return f"{DataRoot(root).dataset(schema.name)}/{file_pattern(schema)}"


def dataset_view(
    root: Path,
    schema: DatasetSchema,
    files: list[Path] | None = None,
    *,
    present: bool | None = None,
) -> str:
    """The dataset's view: over its glob, or over ``files`` alone (a reader that must leave
    out unreadable files lists the others). ``present`` None: the glob may match nothing
    (``allow_empty``, for the package's own duckdb); True/False: whether it matches a file
    now, in SQL that any DuckDB since 1.0 binds (for ``catalog.duckdb``)."""
    # A column added later reads as its declared default in files written before it.
    cols = ", ".join(
        _ident(c.name)
        if c.default is None
        else f"coalesce({_ident(c.name)}, '{c.default.replace(chr(39), chr(39) * 2)}') AS "
        f"{_ident(c.name)}"
        for c in schema.columns
    )
    hive = ", ".join(f"'{p.name}': '{_DUCK[p.type]}'" for p in schema.partitions)
    options = "union_by_name = true" + (", allow_empty = true" if present is None else "")
    if schema.partitions:
        options += f", hive_partitioning = true, hive_types = {{{hive}}}"
    else:
        options += ", hive_partitioning = false"
    if files is not None:
        listed = [quote_path(f) for f in files]
    elif present is False:
        listed = []  # DuckDB 1.x refuses a glob that matches nothing: the anchor alone
    else:
        listed = [quote_path(dataset_glob(root, schema))]
    sources = f"[{', '.join([*listed, quote_path(anchor_path(root, schema))])}]"
    comment = schema.description.replace("'", "''")
    return (
        f"CREATE OR REPLACE VIEW {_ident(schema.name)} AS "
        f"SELECT {cols} FROM read_parquet({sources}, {options});\n"
        f"COMMENT ON VIEW {_ident(schema.name)} IS '{comment}';"
    )


_DUCK: Final = {"string": "VARCHAR", "int32": "INTEGER", "int64": "BIGINT", "date": "DATE"}


def _manifests(root: Path) -> str:
    glob = quote_path(DataRoot(root).manifests / "*" / "**" / "*.json")
    return (
        f"(SELECT * FROM read_json({glob}, columns = {MANIFEST_COLUMNS}, "
        f"hive_partitioning = false, format = 'auto') WHERE dataset IS NOT NULL)"
    )


def lake_views(root: Path) -> list[str]:
    m = _manifests(root)
    return [
        f"""CREATE OR REPLACE VIEW lake_partitions AS
SELECT dataset, path AS partition, partition AS partition_values, generation,
       updated_at::TIMESTAMPTZ AS updated_at, len(files) AS files,
       list_sum([f."rows" for f in files]) AS "rows", list_sum([f.bytes for f in files]) AS bytes
FROM {m};""",
        f"""CREATE OR REPLACE VIEW lake_files AS
SELECT m.dataset, m.path AS partition, f.name AS file, f.bucket, f."rows", f.bytes,
       f.min_time, f.max_time, f.created_at::TIMESTAMPTZ AS created_at, f."commit"
FROM {m} AS m, unnest(m.files) AS t(f);""",
        f"""CREATE OR REPLACE VIEW lake_commits AS
SELECT m.dataset, m.path AS partition, c.id, c."at"::TIMESTAMPTZ AS committed_at, c.task_id,
       c.rows_added, c.rows_replaced, c.rows_unchanged, c.files_added, c.files_removed, c.compacted
FROM {m} AS m, unnest(m.commits) AS t(c);""",
        f"""CREATE OR REPLACE VIEW coverage AS
SELECT dataset, freq, entity, sum("rows")::BIGINT AS "rows",
       min("first")::TIMESTAMPTZ AS first_time, max("last")::TIMESTAMPTZ AS last_time,
       max(last_ingested_at)::TIMESTAMPTZ AS last_ingested_at
FROM (
    SELECT m.dataset, m.partition['freq'] AS freq, unnest(m.coverage.entity) AS entity,
           unnest(m.coverage."rows") AS "rows", unnest(m.coverage."first") AS "first",
           unnest(m.coverage."last") AS "last",
           unnest(m.coverage.last_ingested_at) AS last_ingested_at
    FROM {m} AS m
)
GROUP BY ALL;""",
    ]


def task_view(root: Path) -> str:
    glob = quote_path(DataRoot(root).tasks / "**" / "*.json")
    return (
        "CREATE OR REPLACE VIEW tasks AS SELECT * FROM read_json("
        f"{glob}, columns = {TASK_COLUMNS}, hive_partitioning = false) WHERE id IS NOT NULL;"
    )


def asof_macro(schema: DatasetSchema) -> str:
    """``<dataset>_asof(d)``: per symbol and period, the latest version public on date ``d``."""
    assert schema.asof
    name = _ident(schema.name)
    asof = _ident(schema.asof)
    return f"""CREATE OR REPLACE MACRO {name}_asof(as_of) AS TABLE
SELECT * FROM {name}
WHERE {asof} <= CAST(as_of AS DATE)
QUALIFY row_number() OVER (
    PARTITION BY symbol, reporting_period ORDER BY {asof} DESC, statement_type DESC) = 1;"""


FRESHNESS_VIEW: Final = """CREATE OR REPLACE VIEW freshness AS
WITH measured AS (
    SELECT dataset, freq, market,
           max(trade_date) FILTER (WHERE present + confirmed_empty >= expected)
               AS last_complete_session,
           max(trade_date) AS last_checked_session,
           max(ingested_at) AS checked_at
    FROM completeness GROUP BY ALL
), sessions AS (
    SELECT market, max(trade_date) AS last_calendar_session
    FROM calendar WHERE is_open AND trade_date <= current_date GROUP BY market
)
SELECT m.dataset, m.freq, m.market, m.last_complete_session, s.last_calendar_session,
       (SELECT count(*) FROM calendar k
        WHERE k.market = m.market AND k.is_open
          AND k.trade_date > coalesce(m.last_complete_session, DATE '1900-01-01')
          AND k.trade_date <= s.last_calendar_session) AS sessions_behind,
       m.last_checked_session, m.checked_at
FROM measured m LEFT JOIN sessions s USING (market);
COMMENT ON VIEW freshness IS
    'last session found complete by detect-missing, against the calendar''s last session';"""


# live_vs_rest: each live bar etl record built (live_klines) beside the REST bar that replaced
# it in klines, per key; `differs` when any of OHLC, volume or amount is not the same.
LIVE_VS_REST_VIEW: Final = """CREATE OR REPLACE VIEW live_vs_rest AS
SELECT l.symbol, l.freq, l.ts, l.trade_date, l.vendor,
       l.open AS live_open, l.high AS live_high, l.low AS live_low, l.close AS live_close,
       l.volume AS live_volume, l.amount AS live_amount,
       r.open AS rest_open, r.high AS rest_high, r.low AS rest_low, r.close AS rest_close,
       r.volume AS rest_volume, r.amount AS rest_amount,
       (l.open IS DISTINCT FROM r.open OR l.high IS DISTINCT FROM r.high
        OR l.low IS DISTINCT FROM r.low OR l.close IS DISTINCT FROM r.close
        OR l.volume IS DISTINCT FROM r.volume OR l.amount IS DISTINCT FROM r.amount) AS differs
FROM live_klines AS l
JOIN klines AS r ON r.symbol = l.symbol AND r.freq = l.freq AND r.ts = l.ts
WHERE r.source = 'rest';"""

# klines_adj(mode, anchor_date): klines with prices adjusted at read time from adj_factors, as
# etl.Warehouse.bars(adjust=...) does (etl/warehouse/adjust.py): per symbol the factors of the
# vendor ingested last; a bar's factor is that of the latest ex-date on or before its trade
# date (1.0 before the first); hfq multiplies by it, qfq by it over the factor in force on
# anchor_date (NULL: each symbol's last bar of the frequency); volume is scaled inversely.
# SQL that DuckDB 1.0 binds (the catalog's shell): ASOF LEFT JOIN, no lambdas.
KLINES_ADJ_MACRO: Final = """CREATE OR REPLACE MACRO klines_adj(mode, anchor_date) AS TABLE
WITH chosen AS (
    SELECT symbol, arg_max(vendor, ingested_at::VARCHAR || vendor) AS vendor
    FROM adj_factors GROUP BY symbol
), f AS (
    SELECT a.symbol, a.ex_date, a.backward_factor
    FROM adj_factors a JOIN chosen c ON a.symbol = c.symbol AND a.vendor = c.vendor
), bars AS (
    SELECT k.*, coalesce(f.backward_factor, 1.0) AS _bf,
           coalesce(CAST(anchor_date AS DATE),
                    max(k.trade_date) OVER (PARTITION BY k.symbol, k.freq)) AS _anchor
    FROM klines k ASOF LEFT JOIN f ON k.symbol = f.symbol AND k.trade_date >= f.ex_date
), anchored AS (
    SELECT b.*, coalesce(fa.backward_factor, 1.0) AS _af
    FROM bars b ASOF LEFT JOIN f fa ON b.symbol = fa.symbol AND b._anchor >= fa.ex_date
), scaled AS (
    SELECT *, CASE lower(mode) WHEN 'hfq' THEN _bf WHEN 'qfq' THEN _bf / _af
              ELSE error('klines_adj: mode must be ''qfq'' or ''hfq''') END AS _m
    FROM anchored
)
SELECT * EXCLUDE (_bf, _anchor, _af, _m) REPLACE (
    open * _m AS open, high * _m AS high, low * _m AS low, close * _m AS close,
    settle * _m AS settle, volume / _m AS volume)
FROM scaled;"""


def dataset_sql(
    root: Path,
    schema: DatasetSchema,
    files: list[Path] | None = None,
    *,
    present: bool | None = None,
) -> list[str]:
    """The statements of one dataset: its view and, for statements, its as-of macro."""
    statements = [dataset_view(root, schema, files, present=present)]
    if schema.asof:
        statements.append(asof_macro(schema))
    return statements


def shared_sql(root: Path, datasets: Iterable[DatasetSchema]) -> list[str]:
    """The statements over the lake's own state: manifests, tasks, freshness."""
    statements = lake_views(root)
    statements.append(task_view(root))
    names = {s.name for s in datasets}
    if {"completeness", "calendar"} <= names:
        statements.append(FRESHNESS_VIEW)
    if {"klines", "adj_factors"} <= names:
        statements.append(KLINES_ADJ_MACRO)
    if {"klines", "live_klines"} <= names:
        statements.append(LIVE_VS_REST_VIEW)
    return statements


def catalog_sql(
    root: Path, datasets: Iterable[DatasetSchema], *, present: Collection[str] | None = None
) -> list[str]:
    """Every statement that defines the catalog for the data root ``root``. ``present``: the
    datasets that have a file, for SQL any DuckDB since 1.0 binds; None for the package's own
    duckdb, which also reads a dataset's first files without a rebuild."""
    datasets = list(datasets)
    statements = [
        st
        for schema in datasets
        for st in dataset_sql(
            root, schema, present=None if present is None else schema.name in present
        )
    ]
    return statements + shared_sql(root, datasets)
