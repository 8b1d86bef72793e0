"""Read-only SQL over the catalog for ``etl sql``, usable while writers are running.

The session is an in-memory DuckDB holding the catalog's views (the same statements as
``catalog.duckdb``), so it never contends for the catalog file's lock. It cannot change
anything, in three layers, each enough against a statement the others let through:

1. the statement check (:mod:`etl.catalog.statements`): queries only, EXPLAIN judged by
   what it wraps;
2. DuckDB's confinement: files are read only under the data root's ``lake/``, ``state/``
   and ``tasks/``; no temporary directory (nothing spills), extensions neither installed
   nor loaded, no progress bar, then ``lock_configuration`` so no setting can be widened;
3. the kernel's (:mod:`etl.catalog.confine`): every DuckDB call runs on one thread that
   Landlock forbids every file system change, and DuckDB's workers are its children.

Queries stop at a timeout (DuckDB's interrupt) and within a memory limit, and results are
fetched in batches, so a display of the first rows never fetches the rest. A Parquet file
that cannot be read (truncated, a damaged page) is left out of its view with a warning that
names it, and the query answers from everything else.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import functools
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

import duckdb

from etl import schema as schemas
from etl.catalog.build import ensure_anchors
from etl.catalog.confine import confine_current_thread
from etl.catalog.ddl import dataset_glob, dataset_sql, quote_path, shared_sql
from etl.catalog.statements import check_read_only
from etl.dataroot import DataRoot
from etl.errors import BadInputError, EtlError, LakeError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "DEFAULT_MEMORY_LIMIT",
    "DEFAULT_TIMEOUT",
    "QueryResult",
    "ReadOnlySession",
    "RowStream",
    "check_read_only",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_TIMEOUT: Final = 300.0  # seconds; `etl sql --timeout`
DEFAULT_MEMORY_LIMIT: Final = "2GB"  # `etl sql --memory-limit`
BATCH_ROWS: Final = 2048
MAX_SKIPS: Final = 20  # unreadable files left out of one query before giving up
_PARQUET_PATH: Final = re.compile(r"""(/[^'"\n]*?\.parquet)""")


@dataclass
class QueryResult:
    columns: list[str]
    types: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool = False  # more rows exist than were fetched (``max_rows``)


@dataclass
class RowStream:
    """A running query's columns and its rows, fetched batch by batch within the timeout."""

    columns: list[str]
    types: list[str]
    _next: Callable[[], list[tuple[Any, ...]]] = field(repr=False)

    def batches(self) -> Iterator[list[tuple[Any, ...]]]:
        while rows := self._next():
            yield rows


class ReadOnlySession:
    """One confined DuckDB connection with the catalog's views over ``root``."""

    def __init__(
        self,
        root: Path,
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
        memory_limit: str = DEFAULT_MEMORY_LIMIT,
        threads: int | None = None,
        for_query: str | None = None,
    ) -> None:
        self.root = root.resolve()
        _check_data_root(self.root)
        self.paths = DataRoot(self.root)
        self.timeout = timeout
        self.skipped: dict[str, str] = {}  # unreadable file -> why it was left out
        self.confined: int | None = None  # the Landlock ABI in force, None if none
        ensure_anchors(self.root)
        self._pool = cf.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="etl-sql", initializer=self._confine
        )
        self._con: duckdb.DuckDBPyConnection | None = None
        try:
            wanted = _datasets_named(for_query) if for_query is not None else None
            self._con = self._call(lambda: self._open(memory_limit, threads, wanted), timeout=None)
        except BaseException:
            self._pool.shutdown(wait=True)
            raise

    # -- the confined thread ---------------------------------------------------------------

    def _confine(self) -> None:
        self.confined = confine_current_thread()
        if self.confined is None:
            log.debug("Landlock unavailable: etl sql relies on DuckDB's confinement alone")

    def _open(
        self, memory_limit: str, threads: int | None, wanted: set[str] | None = None
    ) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect(":memory:")
        try:
            con.execute("SET enable_progress_bar = false")
            con.execute("SET TimeZone = 'UTC'")
            if wanted is not None:  # a query that names datasets only: bind just those
                for name in sorted(wanted):
                    self._define(con, name)
            else:
                for schema in schemas.schemas().values():
                    self._define(con, schema.name)
                for statement in shared_sql(self.root, list(schemas.schemas().values())):
                    con.execute(statement)
            readable = [self.paths.lake, self.paths.state, self.paths.tasks]
            dirs = ", ".join(quote_path(f"{p}/") for p in readable)
            settings = [
                "SET temp_directory = ''",  # nothing spills to disk: over the limit fails
                f"SET memory_limit = {quote_path(memory_limit)}",
                *([f"SET threads = {int(threads)}"] if threads else []),
                f"SET allowed_directories = [{dirs}]",
                "SET allowed_paths = []",
                "SET enable_external_access = false",
                "SET autoinstall_known_extensions = false",
                "SET autoload_known_extensions = false",
                "SET allow_community_extensions = false",
                "SET lock_configuration = true",
            ]
            for setting in settings:
                con.execute(setting)
        except duckdb.InvalidInputException as exc:
            con.close()
            raise BadInputError(f"--memory-limit {memory_limit!r}: {exc}") from exc
        except BaseException:
            con.close()
            raise
        return con

    def _define(self, con: duckdb.DuckDBPyConnection, dataset: str) -> None:
        """(Re)create a dataset's view, leaving out files known to be unreadable; a file
        that fails while the view is bound is found, named and left out too."""
        schema = schemas.get(dataset)
        for _ in range(MAX_SKIPS):
            files = None
            if any(_belongs(path, self.paths.dataset(dataset)) for path in self.skipped):
                files = [
                    p
                    for p in sorted(Path("/").glob(dataset_glob(self.root, schema).lstrip("/")))
                    if str(p) not in self.skipped
                ]
            try:
                for statement in dataset_sql(self.root, schema, files):
                    con.execute(statement)
                return
            except duckdb.Error as exc:
                if not self._skip_from(exc) and not self._skip_scan(dataset):
                    raise
        raise LakeError(f"more than {MAX_SKIPS} unreadable files in {dataset}: run etl verify")

    def _skip_from(self, exc: BaseException) -> bool:
        """Leave out the lake file an error names, if it is one that cannot be read."""
        lake = str(self.paths.lake) + "/"
        for path in _PARQUET_PATH.findall(str(exc)):
            if path.startswith(lake) and path not in self.skipped and Path(path).exists():
                if _readable(Path(path)):
                    continue  # the file is fine: the error is about something else
                self._skip(path, str(exc).splitlines()[0])
                return True
        return False

    def _skip_scan(self, dataset: str) -> bool:
        """Check every footer of a dataset whose view failed without naming its file."""
        schema = schemas.get(dataset)
        found = False
        for path in sorted(Path("/").glob(dataset_glob(self.root, schema).lstrip("/"))):
            if str(path) not in self.skipped and not _readable(path):
                self._skip(str(path), "its Parquet footer does not read")
                found = True
        return found

    def _skip(self, path: str, why: str) -> None:
        self.skipped[path] = why
        log.warning(
            "etl sql: skipping unreadable file %s (%s); run `etl verify --repair`", path, why
        )

    def _dataset_of(self, path: str) -> str | None:
        for name in schemas.schemas():
            if _belongs(path, self.paths.dataset(name)):
                return name
        return None

    # -- calls across to the confined thread -------------------------------------------------

    def _call(self, fn: Callable[[], T], *, timeout: float | None, started: float = 0.0) -> T:
        future = self._pool.submit(fn)
        if timeout is None:
            return future.result()
        remaining = max(timeout - (time.monotonic() - started), 0.0)
        try:
            return future.result(timeout=remaining)
        except cf.TimeoutError:
            if self._con is not None:
                self._con.interrupt()
            with contextlib.suppress(duckdb.Error):
                future.result()  # unwinds with the interrupt, as asked
            raise BadInputError(
                f"the query ran longer than --timeout {timeout:g} s and was stopped: narrow it "
                "(WHERE, LIMIT) or give a longer --timeout"
            ) from None

    def _run(self, fn: Callable[[duckdb.DuckDBPyConnection], T], started: float) -> T:
        """Run ``fn`` on the confined thread; an unreadable lake file is left out of its
        view and the call is tried again (nothing has reached the caller yet)."""
        assert self._con is not None
        con = self._con
        for attempt in range(MAX_SKIPS + 2):
            try:
                return self._call(lambda: fn(con), timeout=self.timeout, started=started)
            except duckdb.IOException as exc:
                # A partition swapped between listing and opening its files: list again.
                if "No such file" in str(exc) and attempt < 2:
                    self._redefine_all()
                    continue
                if not self._retry_without_named_file(exc):
                    raise _translate(exc) from exc
            except duckdb.Error as exc:
                if not self._retry_without_named_file(exc):
                    raise _translate(exc) from exc
        raise LakeError(f"more than {MAX_SKIPS} unreadable files: run etl verify")

    def _retry_without_named_file(self, exc: duckdb.Error) -> bool:
        if not self._skip_from(exc):
            return False
        self._redefine_all()
        return True

    def _redefine_all(self) -> None:
        """Views that list their files (because some are left out) are listed again."""
        con = self._con
        assert con is not None
        names = {self._dataset_of(p) for p in self.skipped} - {None}
        for name in sorted(n for n in names if n):
            self._call(functools.partial(self._define, con, name), timeout=None)

    # -- the public surface -------------------------------------------------------------------

    def query(
        self, sql: str, params: Iterable[Any] | None = None, *, max_rows: int | None = None
    ) -> QueryResult:
        """Run a query; with ``max_rows``, fetch only that many rows (``truncated`` says if
        there were more)."""
        check_read_only(sql)
        args = list(params) if params is not None else None

        def run(con: duckdb.DuckDBPyConnection) -> QueryResult:
            cursor = con.execute(sql, args)
            desc = cursor.description or []
            if max_rows is None:
                rows = cursor.fetchall()
                truncated = False
            else:
                rows = cursor.fetchmany(max_rows + 1)
                truncated = len(rows) > max_rows
                rows = rows[:max_rows]
            return QueryResult([d[0] for d in desc], [str(d[1]) for d in desc], rows, truncated)

        return self._run(run, time.monotonic())

    def stream(
        self, sql: str, params: Iterable[Any] | None = None, *, batch_rows: int = BATCH_ROWS
    ) -> RowStream:
        """Run a query and hand its rows over in batches (bounded memory for any result)."""
        check_read_only(sql)
        args = list(params) if params is not None else None
        started = time.monotonic()

        def start(con: duckdb.DuckDBPyConnection) -> tuple[duckdb.DuckDBPyConnection, list[Any]]:
            cursor = con.execute(sql, args)
            return cursor, list(cursor.description or [])

        cursor, desc = self._run(start, started)

        def fetch() -> list[tuple[Any, ...]]:
            try:
                return self._call(
                    lambda: cursor.fetchmany(batch_rows), timeout=self.timeout, started=started
                )
            except duckdb.Error as exc:
                raise _translate(exc) from exc

        return RowStream([d[0] for d in desc], [str(d[1]) for d in desc], fetch)

    def arrow(self, sql: str, params: Iterable[Any] | None = None) -> pa.Table:
        """The result as an Arrow table (no per-row Python objects: for large results)."""
        check_read_only(sql)
        args = list(params) if params is not None else None

        def run(con: duckdb.DuckDBPyConnection) -> pa.Table:
            # A relation, not a DB-API cursor: duckdb hands its Arrow result over without the
            # extra copy a cursor's result makes (and warns about).
            table: pa.Table = con.sql(sql, params=args).to_arrow_table()
            return table

        return self._run(run, time.monotonic())

    def close(self) -> None:
        con, self._con = self._con, None
        if con is not None:
            self._pool.submit(con.close).result()
        self._pool.shutdown(wait=True)

    def __enter__(self) -> ReadOnlySession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_data_root(root: Path) -> None:
    """Refuse a data root that is not one, rather than query (or make) an empty lake."""
    fix = "check --data-dir, ETL_DATA_DIR or data_dir in etl.toml"
    if not root.exists():
        raise BadInputError(f"data root {root} does not exist: {fix}")
    if not root.is_dir():
        raise BadInputError(f"data root {root} is not a directory: {fix}")


def _belongs(path: str | Path, folder: Path) -> bool:
    return str(path).startswith(str(folder) + "/")


def _readable(path: Path) -> bool:
    """The footer reads and every page's checksum holds (pages written without one pass)."""
    import pyarrow as pa  # here: `etl sql` starts without pyarrow (65 ms; etl.schema)
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path, page_checksum_verification=True)
        for group in range(pf.metadata.num_row_groups):
            pf.read_row_group(group)
    except (OSError, ValueError, pa.ArrowException):
        return False
    return True


def _translate(exc: duckdb.Error) -> EtlError:
    """DuckDB's error as ours: the user's SQL is bad input (exit 2), the rest exit 1."""
    message = str(exc).strip()
    if isinstance(exc, duckdb.PermissionException):
        return BadInputError(
            f"etl sql reads only the data root's lake, state and tasks: {message.splitlines()[0]}"
        )
    bad_sql = (
        duckdb.ParserException,
        duckdb.BinderException,
        duckdb.CatalogException,
        duckdb.ConversionException,
        duckdb.InvalidInputException,
        duckdb.OutOfRangeException,
        duckdb.SyntaxException,
        duckdb.NotImplementedException,
    )
    if isinstance(exc, bad_sql):
        return BadInputError(f"SQL error: {message}")
    if isinstance(exc, duckdb.OutOfMemoryException):
        return BadInputError(
            f"the query needs more memory than --memory-limit allows: {message.splitlines()[0]}"
        )
    return LakeError(f"query failed: {message}")


def _datasets_named(query: str) -> set[str] | None:
    """The datasets ``query`` reads, when it reads datasets and nothing else (then only their
    views are made: binding a view reads every file's footer, the bulk of a one-symbol
    query's time on a big lake); None when it names anything else (a catalog view, a macro,
    nothing at all as in SHOW TABLES) or does not parse: then everything is defined."""
    try:
        names = {str(n) for n in duckdb.get_table_names(query)}
    except duckdb.Error:
        return None
    known = set(schemas.schemas())
    return names if names and names <= known else None
