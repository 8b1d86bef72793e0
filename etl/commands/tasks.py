"""``etl tasks``: list, show (live), resume and cancel task records."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from etl.commands.common import ConfigOpt, DataDirOpt, JsonOpt, emit_task, run_async, runtime
from etl.errors import BadInputError

if TYPE_CHECKING:
    from etl.tasks.records import TaskRecord

__all__ = ["list_lines", "register", "tasks_app", "view"]

tasks_app = typer.Typer(help="Task records: list, show, resume, cancel.", no_args_is_help=True)


def _selection(params: dict[str, Any]) -> str:
    """What a task covers, in a dozen characters: ``--market SH``, ``10 symbols``, ``SH``."""
    symbols = params.get("symbols") or []
    if params.get("market") and not symbols:
        return f"--market {params['market']}"
    if len(symbols) == 1:
        return str(symbols[0])
    if symbols:
        return f"{len(symbols)} symbols"
    return str(params.get("market") or "")


def _eta(r: TaskRecord, now: dt.datetime) -> str:
    """Time left at the pace so far (running tasks only)."""
    if r.status != "running" or not r.started_at or not 0 < r.progress < 1:
        return ""
    elapsed = (now - dt.datetime.fromisoformat(r.started_at)).total_seconds()
    return _duration(elapsed * (1 - r.progress) / r.progress)


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _status(r: TaskRecord) -> str:
    if r.status == "running" and (r.message or "").startswith("waiting for"):
        return "rate-wait"  # the governor holds it: `etl tasks show` says for how long
    return r.status


# id, vendor, dataset, freq, selection, progress, ETA, status: 72 characters at most.
_ROW = "{:>4} {:<11.11} {:<13.13} {:<4.4} {:<12.12} {:>4} {:>7} {}"


def list_lines(records: list[TaskRecord], now: dt.datetime) -> list[str]:
    """``etl tasks list`` as text: one line a task, within 80 columns."""
    lines = [_ROW.format("id", "vendor", "dataset", "freq", "selection", "done", "eta", "status")]
    for r in records:
        p = r.params
        lines.append(
            _ROW.format(
                r.id,
                str(p.get("vendor") or r.kind),
                str(p.get("dataset") or r.kind),
                str(p.get("freq") or ""),
                _selection(p),
                f"{r.progress * 100:.0f}%",
                _eta(r, now),
                _status(r),
            )
        )
    return lines


@tasks_app.command("list")
def tasks_list(
    limit: Annotated[int, typer.Option("--limit", help="Newest N tasks.")] = 20,
    data_dir: DataDirOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Recent tasks, newest first."""
    with runtime(data_dir, config, json_out) as (rt, out):
        records = rt.store.list(limit)
        out.document(
            [r.public() for r in records],
            lambda: typer.echo("\n".join(list_lines(records, rt.clock()))),
        )


def _items_line(record: TaskRecord) -> str:
    counts = record.counts()
    if counts is None:  # a record written before items were counted, or still running
        return f"items ok {record.success_count}/{record.total_count}"
    return counts.text()


def view(record: TaskRecord) -> str:
    """``etl tasks show`` as text (also each frame of ``--watch``)."""
    p = record.params
    parts = (p.get("vendor"), p.get("dataset"), p.get("freq"), _selection(p))
    head = " ".join(str(x) for x in parts if x)
    lines = [
        f"task {record.id} {record.kind} {head}: {record.status}, {record.progress * 100:.1f}%",
        f"  {_items_line(record)}, rows written {record.rows_written:,}, "
        f"requests {record.requests:,}, errors {record.error_count}",
        f"  params {json.dumps(p, ensure_ascii=False, default=str)}",
    ]
    for label, value in (
        ("created", record.created_at),
        ("started", record.started_at),
        ("finished", record.finished_at),
    ):
        if value:
            lines.append(f"  {label} {value}")
    if record.message:
        lines.append(f"  {record.message}")
    if record.error_message:
        lines.append(f"  error: {record.error_message}")
    for err in record.errors[:10]:
        lines.append(
            f"  error {err.get('symbol') or ''} {err.get('start') or ''} "
            f"{err.get('end') or ''}: {err.get('reason')}"
        )
    return "\n".join(lines)


@tasks_app.command("show")
def tasks_show(
    task_id: Annotated[int, typer.Argument(help="Task id.")],
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="Redraw in place until the task ends.")
    ] = False,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between redraws.")] = 0.5,
    data_dir: DataDirOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """One task's record; with --watch, redrawn in place until the task ends."""
    with runtime(data_dir, config, json_out) as (rt, out):
        record = rt.store.get(task_id)
        if watch and not json_out:
            from rich.console import Console
            from rich.live import Live
            from rich.text import Text

            # stdout, redrawn in place on a terminal; elsewhere only the last frame is printed.
            with Live(Text(view(record)), console=Console(), auto_refresh=False) as live:
                while record.status in ("running", "pending"):
                    time.sleep(interval)
                    record = rt.store.get(task_id)
                    live.update(Text(view(record)), refresh=True)
            return
        if watch:
            while record.status in ("running", "pending"):
                time.sleep(interval)
                record = rt.store.get(task_id)
        out.document(record.public(), lambda: typer.echo(view(record)))


@tasks_app.command("resume")
def tasks_resume(
    task_id: Annotated[int, typer.Argument(help="Task id.")],
    data_dir: DataDirOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Continue an interrupted, cancelled or failed task without re-fetching what it stored."""
    from etl.tasks.resume import resume_task

    with runtime(data_dir, config, json_out) as (rt, out):
        record = rt.store.get(task_id)
        if record.status == "completed" and not record.error_count:
            raise BadInputError(f"task {task_id} already completed without errors")
        if record.status == "running":
            raise BadInputError(f"task {task_id} is running in process {record.pid}")
        record = run_async(resume_task(rt, record))
        emit_task(out, record)


@tasks_app.command("cancel")
def tasks_cancel(
    task_id: Annotated[int, typer.Argument(help="Task id.")],
    data_dir: DataDirOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Ask a running task to stop at its next safe point (it stays resumable)."""
    with runtime(data_dir, config, json_out) as (rt, out):
        record = rt.store.get(task_id)
        if record.status != "running":
            raise BadInputError(f"task {task_id} is not running (status {record.status})")
        rt.store.request_cancel(task_id)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            record = rt.store.get(task_id)
            if record.status != "running":
                break
            time.sleep(0.2)
        out.document(
            record.public(),
            lambda: typer.echo(
                f"task {task_id}: {record.status}"
                + ("" if record.status != "running" else " (stop requested; it will stop soon)")
            ),
        )


def register(app: typer.Typer) -> None:
    app.add_typer(tasks_app, name="tasks")
