"""Shared pieces of every command: options, settings, output, and errors -> exit codes.

Each command takes ``--data-dir``, ``--json`` and ``--config`` (docs/contract.md).
With ``--json`` stdout carries exactly one JSON document; logs and progress go to stderr.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

from etl import __version__
from etl.commands import logs
from etl.commands.logs import log_traceback, set_log_options, setup_logging
from etl.errors import BadInputError, EtlError, exit_code_for
from etl.tasks.items import counted

if TYPE_CHECKING:
    from etl.tasks.records import TaskRecord
    from etl.tasks.runtime import Runtime

__all__ = [
    "ConfigIdOpt",
    "ConfigOpt",
    "DataDirOpt",
    "JsonOpt",
    "Output",
    "emit_task",
    "learn_plan",
    "report_unexpected",
    "run_async",
    "runtime",
    "set_log_options",
]

T = TypeVar("T")

DataDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Data root (default: $ETL_DATA_DIR, etl.toml, ./data).",
        show_default=False,
    ),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print one JSON document on stdout (logs go to stderr).")
]
ConfigIdOpt = Annotated[
    int | None,
    typer.Option(
        "--config-id",
        help="Fetch through this upstream configuration of the data root (etl serve's "
        "/configs/sdk); default: the default configuration, for a vendor with no credentials "
        "set otherwise.",
        show_default=False,
    ),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config", help="Settings file (default: ./etl.toml if present).", show_default=False
    ),
]


class Output:
    """Where a command's results go: one JSON document, or human-readable text."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    def document(self, doc: Any, human: Callable[[], None] | None = None) -> None:
        if self.as_json:
            sys.stdout.write(json.dumps(doc, ensure_ascii=False, default=str) + "\n")
        elif human is not None:
            human()
        else:
            sys.stdout.write(json.dumps(doc, ensure_ascii=False, indent=2, default=str) + "\n")
        sys.stdout.flush()

    def fail(self, exc: BaseException) -> NoReturn:
        """One line on stderr (and the error document with ``--json``), then the exit code.
        An unexpected error's traceback goes to a log file the line names."""
        code = exit_code_for(exc)
        if isinstance(exc, KeyboardInterrupt):
            message = "interrupted"
        elif isinstance(exc, EtlError):
            message = str(exc)
        else:
            message = _unexpected_line(exc)
        if self.as_json:
            doc = {"error": {"type": type(exc).__name__, "message": message}, "exit_code": code}
            sys.stdout.write(json.dumps(doc, ensure_ascii=False) + "\n")
        sys.stderr.write(f"etl: error: {message}\n")
        raise typer.Exit(code)


def _unexpected_line(exc: BaseException) -> str:
    from etl.vendors.redact import redact_text

    where = log_traceback(exc)
    line = f"unexpected {type(exc).__name__}: {exc} (a bug; traceback in {where})"
    return redact_text(line, logs.OPTIONS.secrets)


def report_unexpected(exc: BaseException) -> int:
    """For an exception that escaped every command: one line on stderr naming the file that
    holds its traceback; returns the exit code."""
    sys.stderr.write(f"etl: error: {_unexpected_line(exc)}\n")
    return exit_code_for(exc)


@contextmanager
def runtime(
    data_dir: Path | None,
    config: Path | None,
    as_json: bool,
    *,
    progress: bool = True,
    config_id: int | None = None,
) -> Iterator[tuple[Runtime, Output]]:
    """Settings -> Runtime for one command; EtlErrors become docs/contract.md's exit codes.

    ``config_id``: an upstream configuration of the data root (``--config-id``); without
    it the data root's default configuration fills in a vendor that has no credentials."""
    import os

    from etl.config import load_settings
    from etl.tasks.runtime import Runtime

    out = Output(as_json)
    try:
        settings = load_settings(data_dir=data_dir, config=config)
        from etl.dataroot import DataRoot

        if config_id is not None or DataRoot(settings.data_dir).upstreams.exists():
            from etl.upstreams import for_cli

            settings, _ = for_cli(settings, os.environ, config_id)
        check_data_root(settings.data_dir)
        secrets = [s for v in settings.vendors.values() for s in v.secrets()]
        setup_logging(secrets=secrets, data_root=settings.data_dir)
        logging.getLogger("etl").debug(
            "etl %s (%s): data root %s, settings %s",
            __version__,
            " ".join(sys.argv[1:]),
            settings.data_dir,
            settings.config_file or "none",
        )
        yield Runtime(settings=settings, progress=progress and sys.stderr.isatty()), out
    except typer.Exit:
        raise
    except (EtlError, KeyboardInterrupt) as exc:
        out.fail(exc)
    except Exception as exc:
        out.fail(exc)


def check_data_root(root: Path) -> None:
    """A data root must be a folder, or one that can be made: exit 2 before anything runs."""
    fix = "check --data-dir, ETL_DATA_DIR or data_dir in etl.toml"
    if root.exists() and not root.is_dir():
        raise BadInputError(f"data root {root} is not a directory: {fix}")
    if not root.exists() and not root.parent.is_dir():
        raise BadInputError(f"data root {root} cannot be made: {root.parent} does not exist; {fix}")


def learn_plan(rt: Runtime, vendor: str) -> bool:
    """Make sure the vendor's published plan is known (asked once and cached if not), so that
    a ``--dry-run`` estimates at the plan's real rate; True if its rate changed. Without
    credentials there is nothing to ask: the estimate uses what is cached, or the default."""
    from etl.errors import ConfigError

    try:
        adapter = rt.adapter(vendor)
    except ConfigError:
        return False
    before = adapter.capabilities().rate

    async def learn() -> None:
        try:
            await adapter.learn_plan()
        finally:
            await adapter.aclose()

    run_async(learn())
    return adapter.capabilities().rate != before


@contextmanager
def catalog_after(rt: Runtime) -> Iterator[None]:
    """``catalog.duckdb`` brought up to date when the block (a task's run) ends, however it
    ends. Commands that start a task did it first; but nothing of a task reads the catalog,
    and its check loads DuckDB: 0.1 s before the first vendor request (issue 10, start-up)."""
    try:
        yield
    finally:
        from etl.catalog import ensure_catalog

        ensure_catalog(rt.root, now=rt.clock())


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    import asyncio

    return asyncio.run(coro)


def _left_behind(record: TaskRecord) -> None:
    """What a finished task could not get, and the vendor's reason: a task that completes
    with data cut off says so on the terminal, not only in the gap ledger."""
    result = record.result or {}
    for item in (result.get("left_reasons") or [])[:5]:
        typer.echo(
            f"  left {item['state']}: {counted(item['slots'], 'slot')} of "
            f"{counted(item['symbols'], 'symbol')}"
            + (f": {item['reason']}" if item.get("reason") else ""),
            err=True,
        )
    unavailable = result.get("unavailable") or []
    for item in unavailable[:5]:
        typer.echo(
            f"  unavailable: {item['symbol']} {item['start']}..{item['end']}: {item['reason']}",
            err=True,
        )
    if len(unavailable) > 5:
        typer.echo(f"  ... {len(unavailable) - 5} more (etl tasks show {record.id})", err=True)


def emit_task(out: Output, record: TaskRecord, summary: str | None = None) -> None:
    """Print a task's document (``--json``) or a short summary, then exit with its code."""

    def human() -> None:
        typer.echo(summary or record.summary())
        for err in record.errors[:20]:
            where = " ".join(
                str(x) for x in (err.get("symbol"), err.get("start"), err.get("end")) if x
            )
            typer.echo(f"  error: {where}: {err.get('reason')}", err=True)
        if record.error_count > 20:
            typer.echo(
                f"  ... {record.error_count - 20} more (etl tasks show {record.id})", err=True
            )
        _left_behind(record)
        if record.status in ("interrupted", "cancelled"):
            typer.echo(f"  resume with: etl tasks resume {record.id}", err=True)

    out.document(record.public(), human)
    code = record.exit_code()
    if code:
        raise typer.Exit(code)


def today_utc(clock: Callable[[], dt.datetime]) -> dt.date:
    return clock().astimezone(dt.UTC).date()
