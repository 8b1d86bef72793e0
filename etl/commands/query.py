"""``etl sql``: read-only SQL over the catalog, printed as a table, CSV or JSON."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import json
import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from etl.commands.common import ConfigOpt, DataDirOpt, JsonOpt, runtime
from etl.timefmt import iso_utc

if TYPE_CHECKING:
    from rich.console import Console

    from etl.catalog import QueryResult

__all__ = ["register", "render_table", "rows_as_dicts"]


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


def render_table(result: QueryResult, console: Console | None = None, max_rows: int = 1000) -> None:
    from rich.console import Console
    from rich.table import Table

    if console is None:
        # Piped output is never truncated to 80 columns: scripts read every character.
        console = Console(soft_wrap=True)
        if not console.is_terminal:
            console = Console(soft_wrap=True, width=100_000)
    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    for col, typ in zip(result.columns, result.types, strict=True):
        numeric = any(t in typ.upper() for t in ("INT", "DOUBLE", "FLOAT", "DECIMAL", "NUMBER"))
        table.add_column(col, justify="right" if numeric else "left", no_wrap=True)
    for row in result.rows[:max_rows]:
        table.add_row(*("" if v is None else _fmt(v) for v in row))
    console.print(table)
    more = len(result.rows) - max_rows
    console.print(
        f"({len(result.rows)} rows{f'; {more} not shown' if more > 0 else ''})", style="dim"
    )


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.10g}"
    plain = _plain(value)
    return plain if isinstance(plain, str) else json.dumps(plain, ensure_ascii=False)


def sql_command(
    query: Annotated[str, typer.Argument(help="SQL (SELECT, WITH, DESCRIBE, SHOW, SUMMARIZE).")],
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.table,
    data_dir: DataDirOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Read-only SQL over the catalog; works while backfills are writing.

    Views: one per dataset (klines, instruments, calendar, balance_sheet, income, cash_flow,
    future_varieties, main_contracts), lake_partitions, lake_files, lake_commits, coverage,
    tasks; macros balance_sheet_asof(date), income_asof(date), cash_flow_asof(date).
    """
    from etl.catalog import ReadOnlySession

    as_json = json_out or fmt is Format.json
    with runtime(data_dir, config, as_json) as (rt, out), ReadOnlySession(rt.root) as session:
        result = session.query(query)
        if as_json:
            out.document(rows_as_dicts(result))
        elif fmt is Format.csv:
            writer = csv.writer(sys.stdout)
            writer.writerow(result.columns)
            for row in result.rows:
                writer.writerow(["" if v is None else _plain(v) for v in row])
        else:
            render_table(result)


def register(app: typer.Typer) -> None:
    app.command("sql")(sql_command)
