"""``etl jobs list``, ``etl jobs run NAME`` and ``etl scheduler``: the scheduled jobs of jobs/.

Thin, like every command: parse options, load and check the job files
(:mod:`etl.scheduler`), call it, print. ``jobs run`` is what cron calls, so it prints exactly
one summary line on stderr and exits with docs/contract.md's codes.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from etl.commands.common import ConfigOpt, DataDirOpt, JsonOpt, runtime
from etl.errors import ConfigError

if TYPE_CHECKING:
    from etl.tasks.runtime import Runtime

__all__ = ["jobs_app", "register"]

jobs_app = typer.Typer(
    help="Scheduled jobs (jobs/*.toml): list them, run one now.", no_args_is_help=True
)

JobsDirOpt = Annotated[
    Path | None,
    typer.Option("--jobs-dir", help="Folder of job files (default: ./jobs).", show_default=False),
]


def _folder(rt: Runtime, jobs_dir: Path | None) -> Path:
    return jobs_dir.resolve() if jobs_dir else rt.settings.jobs_dir


def _problem(rt: Runtime) -> Callable[[str], str | None]:
    """What is missing for a vendor to run (None: configured)."""

    def check(vendor: str) -> str | None:
        try:
            rt.check_configured(vendor)
        except ConfigError as exc:
            return str(exc)
        return None

    return check


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@jobs_app.command("list")
def jobs_list(
    jobs_dir: JobsDirOpt = None,
    data_dir: DataDirOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Each job: schedule, next run, last run's outcome; warns where data would be lost."""
    from etl.scheduler import load_jobs
    from etl.scheduler.status import job_status, last_runs

    with runtime(data_dir, config, json_out, progress=False) as (rt, out):
        caps = rt.capabilities()
        jobs = load_jobs(_folder(rt, jobs_dir), caps)
        now = rt.clock()
        last = last_runs(rt.store.list())
        check = _problem(rt)
        entries = [job_status(job, caps, now, last, check) for job in jobs.jobs.values()]
        doc = {
            "jobs_dir": str(jobs.folder),
            "jobs": entries,
            "errors": [str(e) for e in jobs.errors],
        }
        out.document(doc, lambda: _table(entries))
        for entry in entries:
            for warning in entry["warnings"]:
                sys.stderr.write(f"warning: {warning}\n")
        for error in jobs.errors:
            sys.stderr.write(f"etl: error: {error}\n")
        if jobs.errors:
            raise typer.Exit(2)


def _table(entries: list[dict[str, Any]]) -> None:
    """Two lines a job: what it does, then when (readable at any terminal width)."""
    for e in entries:
        s = e["schedule"]
        days = ", trading days only" if s["trading_days_only"] else ""
        last = e["last_run"]
        outcome = (
            f"{last['status']} (run {last['run']}, tasks {','.join(map(str, last['task_ids']))}, "
            f"started {last['started_at']})"
            if last
            else "never run"
        )
        vendors = " -> ".join(e["vendors"]) or "no vendor"
        typer.echo(f"{e['name']}: {e['action']} {e['selection']} from {vendors}")
        when = s["session"] or f"{s['cron']} {s['timezone']}{days}"
        typer.echo(f"    {when}; next {e['next_run'] or 'never'}; last {outcome}")


@jobs_app.command("run")
def jobs_run(
    name: Annotated[str, typer.Argument(help="The job's name (see `etl jobs list`).")],
    scheduled: Annotated[
        bool,
        typer.Option(
            "--scheduled",
            help="Act as a scheduled fire: skip a day trading_days_only excludes (for cron).",
        ),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", hidden=True, help="Accepted; a run without --scheduled runs.")
    ] = False,
    jobs_dir: JobsDirOpt = None,
    data_dir: DataDirOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Run one job now, once, in the foreground, whatever its schedule says (cron lines add
    --scheduled to skip the days trading_days_only excludes)."""
    with contextlib.suppress(ValueError):
        signal.signal(signal.SIGTERM, _interrupt)  # a stop before any task: exit 130
    from etl.catalog import ensure_catalog
    from etl.scheduler import load_jobs
    from etl.scheduler.run import JobRuntime, new_run_id, run_job

    with runtime(data_dir, config, json_out, progress=False) as (rt, out):
        job = load_jobs(_folder(rt, jobs_dir), rt.capabilities()).get(name)
        ensure_catalog(rt.root, now=rt.clock())
        jrt = JobRuntime(
            settings=rt.settings, clock=rt.clock, progress=False, job=job.name, run_id=new_run_id()
        )
        result = run_job(job, jrt, scheduled=scheduled and not force)
        out.document(result.document(), lambda: None)
        sys.stderr.write(result.summary() + "\n")
        if result.exit_code:
            raise typer.Exit(result.exit_code)


def scheduler_command(
    jobs_dir: JobsDirOpt = None,
    data_dir: DataDirOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Run every job on its schedule until SIGTERM (one scheduler per data root)."""
    from etl.scheduler import load_jobs
    from etl.scheduler.daemon import serve
    from etl.scheduler.status import config_warnings

    with runtime(data_dir, config, json_out, progress=False) as (rt, out):
        folder = _folder(rt, jobs_dir)
        jobs = load_jobs(folder, rt.capabilities())
        for job in jobs.jobs.values():
            for warning in config_warnings(job, _problem(rt)):
                sys.stderr.write(f"warning: {warning}\n")
        code, doc = serve(
            rt.settings,
            jobs,
            config=rt.settings.config_file,
            reload_jobs=lambda: load_jobs(folder, rt.capabilities()),
        )
        out.document(doc, lambda: None)
        if code:
            raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.add_typer(jobs_app, name="jobs")
    app.command("scheduler")(scheduler_command)
