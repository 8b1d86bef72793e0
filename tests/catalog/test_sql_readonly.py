"""`etl sql` cannot change anything: hostile statements leave the lake, the catalog and the
working directory byte-identical and exit 2; writes that get past the statement check are
stopped by the session's construction (DuckDB's confinement and the kernel's)."""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from etl.catalog import ReadOnlySession, build_catalog, check_read_only
from etl.catalog.confine import confine_current_thread, landlock_abi
from etl.errors import BadInputError, EtlError
from etl.lake import Lake
from tests.conftest import ETL, NOW, etl_env, kline_rows

DAYS = [dt.date(2024, 1, 2) + dt.timedelta(days=i) for i in range(5)]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hostile") / "data"
    lake = Lake(root)
    lake.write("klines", kline_rows(["600000.SH", "000001.SZ"], DAYS), now=NOW)
    lake.write("klines", kline_rows(["600000.SH"], DAYS[:2], close=11.0), now=NOW)
    build_catalog(root, now=NOW)
    return root


@pytest.fixture(scope="module")
def session(root: Path) -> Iterator[ReadOnlySession]:
    with ReadOnlySession(root, timeout=30) as s:
        yield s


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    work = tmp_path / "cwd"
    work.mkdir()
    (work / "notes.txt").write_text("mine\n")
    monkeypatch.chdir(work)
    return work


def snapshot(*folders: Path) -> dict[str, str]:
    """Every file and folder under ``folders``: content hashes, so any change shows."""
    out = {}
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                out[str(path)] = "dir"
    return out


def a_lake_file(root: Path) -> Path:
    return sorted((root / "lake" / "klines").rglob("*.parquet"))[0]


# Statements the check refuses before anything runs. {lake}/{file}/{root}/{cwd} are filled in.
REFUSED = [
    "INSERT INTO klines VALUES (1)",
    "CREATE TABLE t AS SELECT 1",
    "CREATE OR REPLACE VIEW klines AS SELECT 1",
    "CREATE MACRO m() AS 1",
    "CREATE TYPE mood AS ENUM ('a')",
    "DROP VIEW klines",
    "UPDATE klines SET close = 0",
    "DELETE FROM klines",
    "ALTER VIEW klines RENAME TO k",
    "COMMENT ON VIEW klines IS 'x'",
    "ATTACH '{root}/x.duckdb'",
    "DETACH DATABASE memory",
    "USE memory",
    "INSTALL httpfs",
    "LOAD httpfs",
    "LOAD '{cwd}/evil.duckdb_extension'",
    "UPDATE EXTENSIONS",
    "COPY (SELECT 1) TO '{file}'",
    "COPY (SELECT * FROM klines) TO '{lake}/klines' "
    "(FORMAT parquet, PARTITION_BY (freq), OVERWRITE)",
    "COPY klines FROM '{file}'",
    # EXPLAIN ANALYZE runs what it wraps: it is judged by the wrapped statement.
    "EXPLAIN ANALYZE COPY (SELECT * FROM klines) TO '{file}' (FORMAT parquet)",
    "EXPLAIN COPY (SELECT 1) TO '{file}'",
    "EXPLAIN (FORMAT json) COPY (SELECT 1) TO '{file}'",
    "EXPLAIN ANALYZE (FORMAT json) INSERT INTO t VALUES (1)",
    "explain analyse /* a comment */ copy (select 1) to '{cwd}/x.csv'",
    "EXPLAIN ANALYZE\n-- a comment\nDELETE FROM klines",
    "EXPLAIN ANALYZE EXPORT DATABASE '{lake}'",
    "EXPORT DATABASE '{root}/exp'",
    "IMPORT DATABASE '{root}'",
    "SET threads = 1",
    "SET enable_external_access = true",
    "SET allowed_directories = ['/']",
    "RESET allowed_directories",
    "SET temp_directory = '{cwd}'",
    "SET log_query_path = '{cwd}/q.log'",
    "PRAGMA enable_profiling",
    "PRAGMA profile_output = '{root}/p.txt'",
    "CALL enable_logging(storage = 'file', storage_path = '{cwd}/logs')",
    "CALL pragma_version()",
    "CHECKPOINT",
    "FORCE CHECKPOINT",
    "VACUUM",
    "ANALYZE",
    "PREPARE p AS COPY (SELECT 1) TO '{file}'",
    "EXECUTE p",
    "BEGIN TRANSACTION",
    "SET VARIABLE x = 1",
    "CREATE SECRET s (TYPE s3, KEY_ID 'a', SECRET 'b')",
    "CREATE PERSISTENT SECRET s (TYPE s3, KEY_ID 'a', SECRET 'b')",
    "WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x",
    "PIVOT klines ON freq USING count(*)",  # may create types: refused, inside a query too
    "SELECT * FROM (PIVOT klines ON freq USING count(*))",
    "SELECT 1; COPY (SELECT 1) TO '{file}'",  # every statement is checked
    "",
]

# Queries that parse as SELECT but reach for files they may not read, or smuggle a statement.
REFUSED_WHEN_RUN = [
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM sniff_csv('/etc/passwd')",
    "SELECT * FROM read_text('{root}/catalog.duckdb')",
    "SELECT * FROM read_blob('{cwd}/notes.txt')",
    "SELECT * FROM glob('{cwd}/*')",
    "SELECT * FROM glob('/*')",
    "SELECT * FROM read_json('/etc/os-release')",
    "SELECT * FROM parquet_metadata('{cwd}/x.parquet')",
    "SELECT * FROM query('COPY (SELECT 1) TO ''{file}''')",
    "SELECT * FROM read_parquet('{cwd}/../**/*.parquet')",
]

ALLOWED = [
    "SELECT count(*) FROM klines",
    "WITH x AS (SELECT 1 AS a) SELECT a FROM x",
    "DESCRIBE klines",
    "SHOW TABLES",
    "SUMMARIZE SELECT 1 AS a",
    "EXPLAIN SELECT * FROM klines",
    "EXPLAIN ANALYZE SELECT count(*) FROM klines",
    "EXPLAIN (SELECT 1)",
    "FROM klines LIMIT 1",
    "SELECT * FROM query_table('klines') LIMIT 1",
]


def fill(sql: str, root: Path, cwd: Path) -> str:
    return sql.format(lake=root / "lake", file=a_lake_file(root), root=root, cwd=cwd)


@pytest.mark.parametrize("sql", REFUSED)
def test_statements_that_are_not_queries_are_refused(
    sql: str, root: Path, session: ReadOnlySession, cwd: Path
) -> None:
    before = snapshot(root, cwd)
    text = fill(sql, root, cwd)
    with pytest.raises(BadInputError):
        check_read_only(text)
    with pytest.raises(BadInputError):
        session.query(text)
    assert snapshot(root, cwd) == before


@pytest.mark.parametrize("sql", REFUSED_WHEN_RUN)
def test_files_outside_the_lake_cannot_be_read(
    sql: str, root: Path, session: ReadOnlySession, cwd: Path
) -> None:
    (cwd / "x.parquet").write_bytes(a_lake_file(root).read_bytes())
    before = snapshot(root, cwd)
    with pytest.raises(BadInputError):
        session.query(fill(sql, root, cwd))
    assert snapshot(root, cwd) == before


@pytest.mark.parametrize("sql", ALLOWED)
def test_queries_run(sql: str, session: ReadOnlySession) -> None:
    session.query(sql)


# Writes run straight on the session's connection, past the statement check: the second and
# third layers alone must stop each one.
PAST_THE_CHECK = [
    "COPY (SELECT 1 AS a) TO '{file}' (FORMAT parquet)",
    "COPY (SELECT * FROM klines) TO '{lake}/klines' (FORMAT parquet, PARTITION_BY (freq), "
    "OVERWRITE)",
    "COPY (SELECT * FROM klines) TO '{lake}/new' (FORMAT parquet, PARTITION_BY (symbol))",
    "EXPLAIN ANALYZE COPY (SELECT * FROM klines) TO '{file}' (FORMAT parquet)",
    "COPY (SELECT 1) TO '{cwd}/out.csv'",
    "COPY (SELECT 1) TO '{root}/catalog.duckdb'",
    "ATTACH '{lake}/x.duckdb'",
    "EXPORT DATABASE '{lake}/exp'",
    "CREATE PERSISTENT SECRET s (TYPE s3, KEY_ID 'a', SECRET 'b')",
    "SET allowed_directories = ['/']",
    "SET temp_directory = '{cwd}'",
    "SET memory_limit = '100GB'",
]


@pytest.mark.parametrize("sql", PAST_THE_CHECK)
def test_writes_past_the_check_fail_by_construction(
    sql: str, root: Path, session: ReadOnlySession, cwd: Path
) -> None:
    before = snapshot(root, cwd)
    with pytest.raises((duckdb.Error, EtlError)):
        # The session's own runner, without check_read_only: what a parser gap would allow.
        session._run(lambda con: con.execute(fill(sql, root, cwd)).fetchall(), time.monotonic())
    assert snapshot(root, cwd) == before


def test_a_confined_thread_cannot_write_even_with_duckdb_wide_open(tmp_path: Path) -> None:
    if landlock_abi() == 0:
        pytest.skip("the kernel has no Landlock")
    outcome: dict[str, object] = {}

    def confined() -> None:
        outcome["abi"] = confine_current_thread()
        con = duckdb.connect()  # external access on, no allowed_directories: DuckDB allows all
        for name in ("a.csv", "b.parquet"):
            try:
                con.execute(f"COPY (SELECT * FROM range(100000)) TO '{tmp_path / name}'")
                outcome[name] = "written"
            except duckdb.Error as exc:
                outcome[name] = str(exc)
        con.close()

    worker = threading.Thread(target=confined)
    worker.start()
    worker.join()
    assert outcome["abi"] == landlock_abi()
    assert "Permission denied" in str(outcome["a.csv"])
    assert "Permission denied" in str(outcome["b.parquet"])
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "main.txt").write_text("the main thread is not confined")


def test_session_is_kernel_confined(session: ReadOnlySession) -> None:
    assert session.confined == (landlock_abi() or None)


def test_a_runaway_query_stops_at_the_timeout(root: Path) -> None:
    with ReadOnlySession(root, timeout=1.0) as session:
        started = time.monotonic()
        with pytest.raises(BadInputError, match="--timeout"):
            session.query("SELECT sum(hash(range)) FROM range(100000000000)")
        assert time.monotonic() - started < 10
        assert session.query("SELECT 42").rows == [(42,)]  # the session still answers


def test_memory_is_capped_and_nothing_spills(root: Path, cwd: Path) -> None:
    before = snapshot(root, cwd)
    with (
        ReadOnlySession(root, memory_limit="64MB") as session,
        pytest.raises(BadInputError, match="memory"),
    ):
        session.query("SELECT count(DISTINCT range::VARCHAR) FROM range(50000000)")
    assert snapshot(root, cwd) == before
    assert not (cwd / ".tmp").exists()


def test_display_fetches_only_what_it_shows(session: ReadOnlySession) -> None:
    started = time.monotonic()
    result = session.query("SELECT * FROM range(1000000000000)", max_rows=10)
    assert len(result.rows) == 10 and result.truncated
    assert time.monotonic() - started < 5
    assert not session.query("SELECT 1", max_rows=10).truncated


def test_streamed_batches_hold_every_row(session: ReadOnlySession) -> None:
    stream = session.stream("SELECT * FROM range(10000)", batch_rows=1000)
    sizes = [len(rows) for rows in stream.batches()]
    assert sizes == [1000] * 10


# Through the real command line: a few of the above, and what users see.


def run_etl(root: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ETL, *args], env=etl_env(root), capture_output=True, text=True, cwd=cwd, timeout=60
    )


def test_cli_refuses_explain_analyze_copy_into_the_lake(root: Path, cwd: Path) -> None:
    before = snapshot(root, cwd)
    sql = f"EXPLAIN ANALYZE COPY (SELECT * FROM klines) TO '{a_lake_file(root)}' (FORMAT parquet)"
    proc = run_etl(root, "sql", sql, cwd=cwd)
    assert proc.returncode == 2, proc.stderr
    assert "read-only" in proc.stderr
    proc = run_etl(root, "sql", "SELECT * FROM read_text('/etc/hostname')", cwd=cwd)
    assert proc.returncode == 2, proc.stderr
    assert snapshot(root, cwd) == before


def test_cli_prints_markup_and_escapes_as_text(root: Path, cwd: Path) -> None:
    sql = "SELECT '[/bold]' AS a, '[red]x[/red]' AS \"[b]\", chr(27) || '[31mred' AS c"
    proc = run_etl(root, "sql", sql, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    assert "[/bold]" in proc.stdout and "[red]x[/red]" in proc.stdout and "[b]" in proc.stdout
    assert "\x1b" not in proc.stdout
    assert "\\x1b[31mred" in proc.stdout


def test_cli_refuses_a_data_root_that_is_not_one(root: Path, cwd: Path) -> None:
    typo = cwd / "typo"
    proc = run_etl(root, "sql", "SELECT 1", "--data-dir", str(typo), cwd=cwd)
    assert proc.returncode == 2 and "does not exist" in proc.stderr
    assert not typo.exists()  # no empty lake made on the way
    proc = run_etl(root, "sql", "SELECT 1", "--data-dir", str(cwd / "notes.txt"), cwd=cwd)
    assert proc.returncode == 2 and "not a directory" in proc.stderr


def test_cli_timeout_and_row_cap(root: Path, cwd: Path) -> None:
    proc = run_etl(
        root, "sql", "SELECT sum(hash(range)) FROM range(100000000000)", "--timeout", "1", cwd=cwd
    )
    assert proc.returncode == 2 and "--timeout" in proc.stderr
    proc = run_etl(root, "sql", "SELECT * FROM range(100000000000)", "--max-rows", "5", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    assert "first 5 rows shown" in proc.stdout


def test_command_defaults_are_the_sessions() -> None:
    from etl.catalog import session as session_module
    from etl.commands import query

    assert query.DEFAULT_TIMEOUT == session_module.DEFAULT_TIMEOUT
    assert query.DEFAULT_MEMORY_LIMIT == session_module.DEFAULT_MEMORY_LIMIT
