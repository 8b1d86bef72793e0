"""Read-only SQL over the catalog for ``etl sql``, usable while writers are running.

The session is an in-memory DuckDB holding the catalog's views (the same statements as
``catalog.duckdb``), so it never contends for the catalog file's lock, not even with a
``duckdb`` shell that has it open for writing. It is locked down: only SELECT-like
statements run, file access is confined to the data root, extensions cannot be installed
or loaded, and the configuration cannot be changed afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from etl import schema as schemas
from etl.catalog.build import ensure_anchors
from etl.catalog.ddl import catalog_sql, quote_path
from etl.errors import BadInputError

__all__ = ["QueryResult", "ReadOnlySession", "check_read_only"]

_ALLOWED = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}


@dataclass
class QueryResult:
    columns: list[str]
    types: list[str]
    rows: list[tuple[Any, ...]]


def check_read_only(sql: str) -> None:
    """Refuse, before running anything, any statement that could write, attach or install."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise BadInputError(f"SQL does not parse: {exc}") from exc
    if not statements:
        raise BadInputError("no SQL statement given")
    for st in statements:
        if st.type not in _ALLOWED:
            kind = str(st.type).rsplit(".", 1)[-1]
            raise BadInputError(
                f"etl sql is read-only: {kind} statements are refused "
                "(use SELECT, WITH ... SELECT, DESCRIBE, SHOW, SUMMARIZE or EXPLAIN)"
            )


class ReadOnlySession:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        ensure_anchors(self.root)
        self.con = duckdb.connect(":memory:")
        for statement in catalog_sql(self.root, schemas.schemas().values()):
            self.con.execute(statement)
        root_dir = quote_path(str(self.root) + "/")
        for setting in (
            "SET TimeZone = 'UTC'",
            f"SET allowed_directories = [{root_dir}]",
            "SET enable_external_access = false",
            "SET autoinstall_known_extensions = false",
            "SET autoload_known_extensions = false",
            "SET lock_configuration = true",
        ):
            self.con.execute(setting)

    def query(self, sql: str, params: Iterable[Any] | None = None) -> QueryResult:
        check_read_only(sql)
        for attempt in range(3):
            try:
                cursor = self.con.execute(sql, list(params) if params is not None else None)
                rows = cursor.fetchall()
                desc = cursor.description or []
                return QueryResult([d[0] for d in desc], [str(d[1]) for d in desc], rows)
            except duckdb.IOException as exc:
                # A partition swapped between listing and opening its files: list again.
                if attempt == 2 or "No such file" not in str(exc):
                    raise
                time.sleep(0.05)
        raise AssertionError("unreachable")

    def arrow(self, sql: str, params: Iterable[Any] | None = None) -> pa.Table:
        """The result as an Arrow table (no per-row Python objects: for large results)."""
        check_read_only(sql)
        table: pa.Table = self.con.sql(
            sql, params=list(params) if params is not None else None
        ).to_arrow_table()
        return table

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> ReadOnlySession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
