"""Shared pieces of every command: options, settings, output, and errors -> exit codes.

Each command takes ``--data-dir``, ``--json`` and ``--config`` (docs/contract.md). With ``--json``
stdout carries exactly one JSON document; logs and progress go to stderr.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import sys
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from etl.config import Settings, load_settings
from etl.errors import EtlError, exit_code_for
from etl.tasks.records import TaskRecord
from etl.tasks.runtime import Runtime

__all__ = [
    "ConfigOpt",
    "DataDirOpt",
    "JsonOpt",
    "Output",
    "emit_task",
    "run_async",
    "runtime",
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
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config", help="Settings file (default: ./etl.toml if present).", show_default=False
    ),
]


class RedactingFilter(logging.Filter):
    """Scrubs configured secrets from every log record, whatever logged them."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            for secret in self.secrets:
                if len(secret) >= 4 or message == secret:  # see records.MIN_SCRUB_LEN
                    message = message.replace(secret, "***")
            record.msg, record.args = message, None
        return True


def _setup_logging(settings: Settings) -> None:
    root = logging.getLogger()
    if not any(getattr(h, "_etl", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler._etl = True  # type: ignore[attr-defined]
        root.addHandler(handler)
        root.setLevel(logging.WARNING)
        for noisy in ("httpx", "httpcore", "apscheduler"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    secrets = [s for v in settings.vendors.values() for s in v.secrets()]
    for existing in root.handlers:
        existing.filters = [f for f in handler.filters if not isinstance(f, RedactingFilter)]
        existing.addFilter(RedactingFilter(secrets))


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
        code = exit_code_for(exc)
        message = str(exc) if isinstance(exc, EtlError) else f"{type(exc).__name__}: {exc}"
        if isinstance(exc, KeyboardInterrupt):
            message = "interrupted"
        if self.as_json:
            doc = {"error": {"type": type(exc).__name__, "message": message}, "exit_code": code}
            sys.stdout.write(json.dumps(doc, ensure_ascii=False) + "\n")
        sys.stderr.write(f"etl: error: {message}\n")
        raise typer.Exit(code)


@contextmanager
def runtime(
    data_dir: Path | None, config: Path | None, as_json: bool, *, progress: bool = True
) -> Iterator[tuple[Runtime, Output]]:
    """Settings -> Runtime for one command; EtlErrors become docs/contract.md's exit codes."""
    out = Output(as_json)
    try:
        settings = load_settings(data_dir=data_dir, config=config)
        _setup_logging(settings)
        yield Runtime(settings=settings, progress=progress and sys.stderr.isatty()), out
    except typer.Exit:
        raise
    except (EtlError, KeyboardInterrupt) as exc:
        out.fail(exc)
    except Exception as exc:
        logging.getLogger("etl").debug("unexpected error", exc_info=True)
        out.fail(exc)


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def task_exit_code(record: TaskRecord) -> int:
    return record.exit_code()


def emit_task(out: Output, record: TaskRecord, summary: str | None = None) -> None:
    """Print a task's document (``--json``) or a short summary, then exit with its code."""

    def human() -> None:
        line = summary or record.summary()
        typer.echo(line)
        for err in record.errors[:20]:
            where = " ".join(
                str(x) for x in (err.get("symbol"), err.get("start"), err.get("end")) if x
            )
            typer.echo(f"  error: {where}: {err.get('reason')}", err=True)
        if record.error_count > 20:
            typer.echo(
                f"  ... {record.error_count - 20} more (etl tasks show {record.id})", err=True
            )
        if record.status in ("interrupted", "cancelled"):
            typer.echo(f"  resume with: etl tasks resume {record.id}", err=True)

    out.document(record.public(), human)
    code = task_exit_code(record)
    if code:
        raise typer.Exit(code)


def today_utc(clock: Callable[[], dt.datetime]) -> dt.date:
    return clock().astimezone(dt.UTC).date()
