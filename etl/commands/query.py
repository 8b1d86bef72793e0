"""``etl sql``: read-only SQL over the catalog, printed as a table, CSV or JSON."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import itertools
import json
import re
import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from etl.commands.common import ConfigOpt, DataDirOpt, JsonOpt, runtime
from etl.errors import BadInputError
from etl.timefmt import iso_utc

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from etl.catalog import QueryResult
    from etl.catalog.session import RowStream

__all__ = ["register", "render_table", "rows_as_dicts"]


DISPLAY_ROWS = 1000
# Defaults of etl.catalog.session (not imported here: duckdb loads slowly; a test holds them
# equal).
DEFAULT_TIMEOUT = 300.0
DEFAULT_MEMORY_LIMIT = "2GB"


class Format(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return iso_utc(value) if value.tzinfo else value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def rows_as_dicts(result: QueryResult) -> list[dict[str, Any]]:
    return [{c: _plain(v) for c, v in zip(result.columns, row, strict=True)} for row in result.rows]


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _visible(text: str) -> Text:
    """A cell as literal text: markup is not interpreted and control characters (terminal
    escape sequences, carriage returns) are shown escaped instead of acting on the terminal."""
    from rich.text import Text

    return Text(_CONTROL.sub(lambda m: repr(m.group())[1:-1], text))


def render_table(
    result: QueryResult, console: Console | None = None, max_rows: int = DISPLAY_ROWS
) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    if console is None:
        # Piped output is never truncated to 80 columns: scripts read every character.
        console = Console(soft_wrap=True)
        if not console.is_terminal:
            console = Console(soft_wrap=True, width=100_000)
    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    for col, typ in zip(result.columns, result.types, strict=True):
        numeric = any(t in typ.upper() for t in ("INT", "DOUBLE", "FLOAT", "DECIMAL", "NUMBER"))
        table.add_column(_visible(col), justify="right" if numeric else "left", no_wrap=True)
    for row in result.rows[:max_rows]:
        table.add_row(*(_visible("" if v is None else _fmt(v)) for v in row))
    console.print(table)
    shown = min(len(result.rows), max_rows)
    if result.truncated or len(result.rows) > max_rows:
        note = f"(first {shown} rows shown; more not fetched: add LIMIT, or use --format csv)"
    else:
        note = f"({shown} rows)"
    console.print(Text(note, style="dim"))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.10g}"
    plain = _plain(value)
    return plain if isinstance(plain, str) else json.dumps(plain, ensure_ascii=False)


def sql_command(
    query: Annotated[str, typer.Argument(help="SQL (SELECT, WITH, DESCRIBE, SHOW, SUMMARIZE).")],
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.table,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Stop the query after this many seconds.")
    ] = DEFAULT_TIMEOUT,
    memory_limit: Annotated[
        str, typer.Option("--memory-limit", help="DuckDB memory limit, e.g. 2GB.")
    ] = DEFAULT_MEMORY_LIMIT,
    max_rows: Annotated[
        int, typer.Option("--max-rows", help="Rows shown by --format table (the rest unread).")
    ] = DISPLAY_ROWS,
    data_dir: DataDirOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Read-only SQL over the catalog; works while backfills are writing.

    Views: one per dataset (klines, instruments, calendar, balance_sheet, income, cash_flow,
    future_varieties, main_contracts), lake_partitions, lake_files, lake_commits, coverage,
    tasks; macros balance_sheet_asof(date), income_asof(date), cash_flow_asof(date).
    """
    from etl.catalog import ReadOnlySession, check_read_only

    as_json = json_out or fmt is Format.json
    with runtime(data_dir, config, as_json) as (rt, _out):
        if not timeout > 0 or max_rows < 1:
            raise BadInputError("--timeout and --max-rows must be positive")
        check_read_only(query)  # refused before the data root is even looked at
        with ReadOnlySession(
            rt.root, timeout=timeout, memory_limit=memory_limit, for_query=query
        ) as session:
            if as_json:
                _write_json(session.stream(query))
            elif fmt is Format.csv:
                stream = session.stream(query)
                writer = csv.writer(sys.stdout)
                writer.writerow(stream.columns)
                for rows in stream.batches():
                    writer.writerows(["" if v is None else _plain(v) for v in row] for row in rows)
            else:
                render_table(session.query(query, max_rows=max_rows), max_rows=max_rows)
        sys.stdout.flush()


def _write_json(stream: RowStream) -> None:
    """One JSON array, written batch by batch (never the whole result in memory)."""
    batches = stream.batches()
    head = next(batches, [])  # a failing query fails before anything is written
    sys.stdout.write("[")
    first = True
    for rows in itertools.chain([head], batches):
        for row in rows:
            doc = {c: _plain(v) for c, v in zip(stream.columns, row, strict=True)}
            sys.stdout.write(("" if first else ",") + json.dumps(doc, ensure_ascii=False))
            first = False
    sys.stdout.write("]\n")


def register(app: typer.Typer) -> None:
    app.command("sql")(sql_command)
