"""`etl sql` is read-only: writing, attaching, installing or reading outside the root is refused."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from etl.catalog import ReadOnlySession, check_read_only
from etl.errors import BadInputError
from tests.conftest import NOW

REFUSED = [
    "INSERT INTO klines VALUES (1)",
    "CREATE TABLE t AS SELECT 1",
    "DROP VIEW klines",
    "UPDATE klines SET close = 0",
    "DELETE FROM klines",
    "ATTACH 'other.duckdb'",
    "INSTALL httpfs",
    "LOAD httpfs",
    "COPY (SELECT 1) TO 'x.csv'",
    "SET threads = 1",
    "SELECT 1; DELETE FROM klines",  # a second statement is checked too
    "EXPORT DATABASE 'out'",
]
ALLOWED = [
    "SELECT count(*) FROM klines",
    "WITH x AS (SELECT 1 AS a) SELECT a FROM x",
    "DESCRIBE klines",
    "SHOW TABLES",
    "SUMMARIZE SELECT 1 AS a",
    "EXPLAIN SELECT * FROM klines",
    "FROM klines LIMIT 1",
]


@pytest.mark.parametrize("sql", REFUSED)
def test_writes_are_refused_before_running(sql: str) -> None:
    with pytest.raises(BadInputError, match="read-only"):
        check_read_only(sql)


@pytest.mark.parametrize("sql", ALLOWED)
def test_reads_run(sql: str, data_root: Path) -> None:
    from etl.catalog import build_catalog

    build_catalog(data_root, now=NOW)
    with ReadOnlySession(data_root) as session:
        session.query(sql)


def test_files_outside_the_data_root_cannot_be_read(data_root: Path, tmp_path: Path) -> None:
    secret = tmp_path / "outside.csv"
    secret.write_text("a\n1\n")
    with ReadOnlySession(data_root) as session, pytest.raises(duckdb.PermissionException):
        session.query(f"SELECT * FROM read_csv('{secret}')")


def test_configuration_is_locked(data_root: Path) -> None:
    with ReadOnlySession(data_root) as session, pytest.raises(duckdb.Error):
        session.con.execute("SET enable_external_access = true")
