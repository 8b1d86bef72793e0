"""``etl tasks``: list, show (live), resume and cancel task records."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer

from etl.commands.common import ConfigOpt, DataDirOpt, JsonOpt, emit_task, run_async, runtime
from etl.errors import BadInputError

if TYPE_CHECKING:
    from rich.console import Console

    from etl.tasks.records import TaskRecord

__all__ = ["register", "tasks_app"]

tasks_app = typer.Typer(help="Task records: list, show, resume, cancel.", no_args_is_help=True)


def _line(r: TaskRecord) -> list[str]:
    return [
        str(r.id),
        r.kind,
        r.status,
        f"{r.progress * 100:.0f}%",
        f"{r.success_count}/{r.total_count}",
        f"{r.rows_written:,}",
        str(r.error_count),
        (r.created_at or "")[:19].replace("T", " "),
        (r.message or r.error_message or "")[:50],
    ]


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

        def human() -> None:
            from rich.console import Console
            from rich.table import Table

            table = Table(show_edge=False, header_style="bold")
            for col in (
                "id",
                "kind",
                "status",
                "progress",
                "ok",
                "rows",
                "errors",
                "created",
                "note",
            ):
                table.add_column(col)
            for r in records:
                table.add_row(*_line(r))
            Console().print(table)

        out.document([r.public() for r in records], human)


def _show(record: TaskRecord, console: Console) -> None:
    console.print(
        f"[bold]task {record.id}[/] {record.kind}  {record.status}  {record.progress * 100:.1f}%"
    )
    console.print(
        f"  symbols ok {record.success_count}/{record.total_count}, rows written "
        f"{record.rows_written:,}, errors {record.error_count}"
    )
    console.print(f"  params {record.params}")
    for label, value in (
        ("created", record.created_at),
        ("started", record.started_at),
        ("finished", record.finished_at),
    ):
        if value:
            console.print(f"  {label} {value}")
    if record.message:
        console.print(f"  [dim]{record.message}[/]")
    if record.error_message:
        console.print(f"  [red]{record.error_message}[/]")
    for err in record.errors[:10]:
        console.print(
            f"  error {err.get('symbol') or ''} {err.get('start') or ''} "
            f"{err.get('end') or ''}: {err.get('reason')}"
        )


@tasks_app.command("show")
def tasks_show(
    task_id: Annotated[int, typer.Argument(help="Task id.")],
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="Refresh until the task ends.")
    ] = False,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between refreshes.")] = 1.0,
    data_dir: DataDirOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """One task's record; with --watch, a live view that refreshes until the task ends."""
    from rich.console import Console

    with runtime(data_dir, config, json_out) as (rt, out):
        record = rt.store.get(task_id)
        if watch and not json_out:
            from rich.live import Live

            console = Console()
            with Live(console=console, refresh_per_second=4) as live:
                while True:
                    record = rt.store.get(task_id)
                    sub = Console(record=True, width=console.width)
                    with sub.capture():
                        _show(record, sub)
                    live.update(sub.export_text())
                    if record.status not in ("running", "pending"):
                        break
                    time.sleep(interval)
            return
        if watch:
            while record.status in ("running", "pending"):
                time.sleep(interval)
                record = rt.store.get(task_id)
        out.document(record.public(), lambda: _show(record, Console()))


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
