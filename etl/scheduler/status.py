"""What ``etl jobs list`` shows: each job's schedule, next run, last outcome, and warnings.

The warning that matters most: a vendor that keeps only its latest N bars (``depth`` in its
capability table, e.g. mdapi's 600 1m bars) loses bars for good when a job's runs are further
apart than N bars. The longest gap between the trigger's fire times (trading-day skipping
included) is compared with N x bar length. That is wall-clock time, so for a market that does
not trade around the clock the warning errs on the safe side.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from etl.names import MARKETS
from etl.scheduler.cron import longest_gap
from etl.scheduler.spec import JobSpec
from etl.scheduler.window import resolve_window
from etl.tasks.records import TaskRecord
from etl.vendors.base import Capabilities

__all__ = ["config_warnings", "depth_warnings", "job_status", "last_runs"]

BAR_SECONDS: Final = {
    "1m": 60, "5m": 300, "15m": 900, "30m": 1800, "1h": 3600, "1d": 86_400,
    "1w": 7 * 86_400, "1M": 30 * 86_400,
}  # fmt: skip


def human(span: dt.timedelta) -> str:
    """``12h00m``, ``3d04h``, ``45s``: short enough for one warning line."""
    seconds = int(span.total_seconds())
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _retention(
    job: JobSpec, caps: Mapping[str, Capabilities], exchange: str | None
) -> tuple[str, int, dt.timedelta] | None:
    """The chain's longest-keeping vendor for ``exchange`` if every vendor keeps only its
    latest N bars (None: some vendor keeps history, or none serves it)."""
    best: tuple[str, int, dt.timedelta] | None = None
    for vendor in job.vendors:
        cap = caps[vendor].find("klines", exchange, job.freq) if vendor in caps else None
        if cap is None:
            continue
        depth = cap.depth.get(job.freq or "")
        if not depth:
            return None
        span = dt.timedelta(seconds=depth * BAR_SECONDS[job.freq or "1d"])
        if best is None or span > best[2]:
            best = (vendor, depth, span)
    return best


def depth_warnings(job: JobSpec, caps: Mapping[str, Capabilities], now: dt.datetime) -> list[str]:
    """Warnings for a job whose runs are further apart than its data survives."""
    if job.dataset != "klines" or job.action not in ("fill-missing", "backfill"):
        return []
    gap = longest_gap(job.trigger(), now)
    if gap is None:
        return []
    out: list[str] = []
    for exchange in job.exchanges or (None,):
        kept = _retention(job, caps, exchange)
        if kept is None or gap <= kept[2]:
            continue
        vendor, depth, span = kept
        line = (
            f"job {job.name}: runs up to {human(gap)} apart, but {vendor} keeps only the "
            f"latest {depth} {job.freq} bars (~{human(span)}): bars are lost between runs; "
            f"schedule it at least every {human(span)}"
        )
        if line not in out:
            out.append(line)
    if job.window is not None and job.window.kind in ("days", "sessions", "today"):
        today = job.trigger().local_date(now)
        calendars = tuple(e for e in job.exchanges if e in MARKETS)
        start, end = resolve_window(job.window, today=today, markets=calendars)
        covered = dt.timedelta(days=(end - start).days + 1)
        if gap > covered:
            out.append(
                f"job {job.name}: its window ({job.window.text}) covers {human(covered)} but "
                f"runs are up to {human(gap)} apart: days between runs are never looked at"
            )
    return out


def config_warnings(job: JobSpec, problem: Callable[[str], str | None]) -> list[str]:
    """A warning per vendor of the job that is not configured (``problem(vendor)`` says why):
    found now rather than at 17:30 by the run."""
    problems = {v: why for v in job.vendors if (why := problem(v))}
    effect = (
        "its runs will exit 3" if len(problems) == len(job.vendors) else "its runs will skip it"
    )
    return [f"job {job.name}: {why}; {effect}" for why in problems.values()]


def last_runs(records: Iterable[TaskRecord]) -> dict[str, dict[str, Any]]:
    """Per job name, the outcome of its latest run, from the task records alone."""
    runs: dict[str, dict[str, list[TaskRecord]]] = {}
    for record in records:
        job = record.params.get("job")
        if isinstance(job, str):
            run = str(record.params.get("job_run") or record.id)
            runs.setdefault(job, {}).setdefault(run, []).append(record)
    out: dict[str, dict[str, Any]] = {}
    for job, by_run in runs.items():
        run_id, tasks = max(by_run.items(), key=lambda kv: max(r.id for r in kv[1]))
        tasks.sort(key=lambda r: r.id)
        statuses = {r.status for r in tasks}
        if statuses & {"running", "pending"}:
            outcome = "running"
        elif "interrupted" in statuses or "cancelled" in statuses:
            outcome = "interrupted"
        elif "failed" in statuses:
            outcome = "failed"
        elif any(r.error_count for r in tasks):
            outcome = "completed with errors"
        else:
            outcome = "completed"
        out[job] = {
            "run": run_id,
            "status": outcome,
            "task_ids": [r.id for r in tasks],
            "started_at": tasks[0].started_at or tasks[0].created_at,
            "finished_at": tasks[-1].finished_at,
            "rows_written": sum(r.rows_written for r in tasks),
        }
    return out


def job_status(
    job: JobSpec,
    caps: Mapping[str, Capabilities],
    now: dt.datetime,
    last: Mapping[str, dict[str, Any]],
    problem: Callable[[str], str | None] = lambda vendor: None,
) -> dict[str, Any]:
    """One job's entry of ``etl jobs list --json``."""
    trigger = job.trigger()
    upcoming = trigger.get_next_fire_time(None, now)
    s = job.schedule
    return {
        "name": job.name,
        "file": str(job.file),
        "description": job.description,
        "action": job.action,
        "vendors": list(job.vendors),
        "selection": job.selection_text(),
        "schedule": {
            "cron": s.cron,
            "timezone": s.timezone,
            "grace_seconds": s.grace_seconds,
            "trading_days_only": s.trading_days_only,
            "calendar": list(s.calendar),
            "session": s.session.text() if s.session else None,
        },
        "next_run": upcoming.isoformat() if upcoming else None,
        "last_run": last.get(job.name),
        "warnings": depth_warnings(job, caps, now) + config_warnings(job, problem),
    }
