"""``etl scheduler``: every job of ``jobs/`` on its schedule, in one long-running process.

Design, and why:

- **APScheduler 3 with a persistent store** (``<data root>/state/scheduler.sqlite``,
  ``SQLAlchemyJobStore``): the next fire time survives a restart, so a run missed while the
  scheduler was down is seen as due when it comes back, and runs **once** (``coalesce``),
  unless it is later than the job's ``grace_seconds`` (none given: caught up however late).
- **Each run is a child process**, ``etl jobs run NAME`` — exactly what cron would
  call. A run cannot leak memory or a wedged event loop into the daemon, a task's SIGTERM
  handling (stop at a safe point, ``interrupted``, resumable) works as on the command line,
  and the scheduler only has to forward the signal. Not ``--scheduled``: the trigger already
  skipped non-trading days (a catch-up on Saturday of Friday's run must still run).
- **What the store holds is importable**: the callable is the reference
  ``etl.scheduler.daemon:fire`` with plain keyword arguments, and the trigger is
  :class:`~etl.scheduler.cron.JobTrigger`, pickled as plain values.
- **Never two runs of one job**: ``max_instances=1`` here, and ``etl jobs run`` itself holds a
  per-job lock, so a cron run and a scheduler run cannot overlap either.
- **One scheduler per data root**: an ``flock`` on ``state/scheduler.lock``; a second one exits
  1 naming the first one's pid.
- At start the store is made to match ``jobs/``: jobs whose files are gone are removed, jobs
  whose schedule changed are rescheduled from now, unchanged jobs keep their next fire time
  (that is what lets a missed run be caught up). SIGHUP does the same while running.
- **What it decided is on stderr**: at start, each job's next run, and for a cron job whose
  stored fire times passed while the scheduler was down, how many and which one run catches
  them up; after each run, its exit code and the next run as the store now holds it (so a log
  reader, or a test, knows no further catch-up is coming).
- **Record jobs** (``action = "record"``) fire at the start of each session window
  (:mod:`etl.scheduler.session`), and at once when the scheduler starts inside one; the run
  records until the window ends and exits, so the recorder stops without the scheduler.
"""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from etl.config import Settings
from etl.dataroot import DataRoot
from etl.errors import EtlError, TaskConflict
from etl.locks import FileLock
from etl.scheduler.cron import JobTrigger
from etl.scheduler.load import JobSet
from etl.timefmt import iso_utc

__all__ = ["FIRE_REF", "close", "fire", "serve", "sync_store"]

FIRE_REF: Final = "etl.scheduler.daemon:fire"
MAX_PARALLEL_RUNS: Final = 8  # distinct jobs running at once; each is one child process


def say(message: str) -> None:
    """One timestamped line on stderr (journald or the terminal)."""
    stamp = iso_utc(dt.datetime.now(dt.UTC), "seconds")
    sys.stderr.write(f"{stamp} etl scheduler: {message}\n")
    sys.stderr.flush()


class _Children:
    """The runs in progress, so that a stop request reaches each of them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.stopping = False
        self.runs = 0
        self.interrupted = 0

    def reset(self) -> None:
        with self.lock:
            self.procs.clear()
            self.stopping, self.runs, self.interrupted = False, 0, 0

    def stop(self) -> int:
        """No new runs; SIGTERM to each running one. Returns how many were running."""
        with self.lock:
            self.stopping = True
            for proc in self.procs.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            return len(self.procs)


CHILDREN: Final = _Children()


def fire(
    name: str,
    jobs_dir: str,
    data_dir: str,
    config: str | None = None,
    fingerprint: str = "",
    scheduled: bool = False,
) -> int:
    """What the job store calls at a fire time: ``etl jobs run NAME``, waited for.

    ``fingerprint`` is unused here; it is stored so a changed schedule is noticed at start.
    ``scheduled`` (record jobs) adds ``--scheduled``: a run that starts outside its session
    window (a late catch-up) is skipped rather than recording until the next window ends.
    """
    cmd = [sys.executable, "-m", "etl", "jobs", "run", name,
           "--jobs-dir", jobs_dir, "--data-dir", data_dir]  # fmt: skip
    if config:
        cmd += ["--config", config]
    if scheduled:
        cmd.append("--scheduled")
    with CHILDREN.lock:
        if CHILDREN.stopping:
            return -1
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        CHILDREN.procs[name] = proc
        CHILDREN.runs += 1
    say(f"job {name}: running (pid {proc.pid})")
    code = proc.wait()
    with CHILDREN.lock:
        CHILDREN.procs.pop(name, None)
        if code == 130:
            CHILDREN.interrupted += 1
    return code  # said with the next run by _Listener, once the store has moved on


def _kwargs(name: str, jobs: JobSet, settings: Settings, config: Path | None) -> dict[str, Any]:
    job = jobs.jobs[name]
    kwargs: dict[str, Any] = {
        "name": name,
        "jobs_dir": str(jobs.folder.resolve()),
        "data_dir": str(settings.data_dir),
        "config": str(config.resolve()) if config else None,
        "fingerprint": f"{job.trigger().fingerprint()}/{job.schedule.grace_seconds}",
    }
    if job.action == "record":
        kwargs["scheduled"] = True
    return kwargs


def sync_store(sched: Any, jobs: JobSet, settings: Settings, config: Path | None) -> dict[str, int]:
    """Make the persistent store match the job files; counts of what changed."""
    existing = {job.id: job for job in sched.get_jobs()}
    counts = {"added": 0, "updated": 0, "kept": 0, "removed": 0}
    for job_id in existing.keys() - jobs.jobs.keys():
        sched.remove_job(job_id)
        counts["removed"] += 1
    for name, job in jobs.jobs.items():
        kwargs = _kwargs(name, jobs, settings, config)
        old = existing.get(name)
        if old is not None and old.kwargs == kwargs and old.func_ref == FIRE_REF:
            counts["kept"] += 1
            continue
        if old is not None:
            sched.remove_job(name)  # a changed schedule starts afresh from now
        counts["updated" if old is not None else "added"] += 1
        sched.add_job(
            FIRE_REF,
            trigger=job.trigger(),
            id=name,
            name=name,
            kwargs=kwargs,
            misfire_grace_time=job.schedule.grace_seconds,
            coalesce=True,
            max_instances=1,
            replace_existing=True,
        )
    for name, job in jobs.jobs.items():
        with CHILDREN.lock:
            running = name in CHILDREN.procs
        if job.schedule.session is not None and not running:
            # A record job's stored fire time may be tomorrow's although today's window is
            # still open (the scheduler stopped mid-session): inside a window, record now.
            now = dt.datetime.now(dt.UTC)
            sched.modify_job(name, next_run_time=job.trigger().get_next_fire_time(None, now))
    return counts


def close(sched: Any) -> None:
    """Stop the scheduler, leaving every stored fire time in the store.

    APScheduler 3 makes one more pass over due jobs after its executors are shut down; a fire
    time due at that instant would be marked done with nothing to run it. Detaching the store
    first (its rows stay in SQLite) keeps such a run due, so the next start catches it up.
    Waits for the runs in progress.
    """
    sched.pause()
    sched.remove_jobstore("default")  # the only store (see serve)
    sched.shutdown(wait=True)


def _when(at: dt.datetime | None) -> str:
    return iso_utc(at, "seconds") if at is not None else "none (no fire time ahead)"


def _missed(trigger: JobTrigger, first: dt.datetime | None, now: dt.datetime) -> list[dt.datetime]:
    """The fire times from the stored next run ``first`` to ``now``: what APScheduler will find
    due (``Job._get_run_times``) and, with ``coalesce``, run once at the last of them."""
    out: list[dt.datetime] = []
    at = first
    while at is not None and at <= now:
        out.append(at)
        at = trigger.get_next_fire_time(at, now)
    return out


def _report_start(sched: Any, now: dt.datetime) -> None:
    """Each job's next run, or the fire times it missed while the scheduler was down.

    Called while the scheduler is still paused: once it resumes, the store holds the next run
    after the catch-up and the missed fire times cannot be told any more. Record jobs are left
    out of the count: at start their next run is set to the window they are in (sync_store),
    which is not a missed fire time.
    """
    for job in sched.get_jobs():
        cron = isinstance(job.trigger, JobTrigger)
        missed = _missed(job.trigger, job.next_run_time, now) if cron else []
        if not missed:
            say(f"job {job.id}: next run {_when(job.next_run_time)}")
            continue
        first, last = _when(missed[0]), _when(missed[-1])
        span = f"{first} to {last}" if len(missed) > 1 else first
        noun = "fire time" if len(missed) == 1 else "fire times"
        say(f"job {job.id}: {len(missed)} {noun} missed while the scheduler was down ({span}); "
            f"coalesced into one catch-up run, due {last}")  # fmt: skip


class _Listener:
    """Says what APScheduler decided: skipped runs, and after each run the next one.

    The next run is read from the job store itself, not through the scheduler: ``shutdown``
    holds the scheduler's store lock while it waits for the runs, and a run's end is reported
    from the run's thread, so asking the scheduler then would deadlock.
    """

    def __init__(self, store: Any) -> None:
        self.store = store

    def __call__(self, event: Any) -> None:
        from apscheduler.events import (
            EVENT_JOB_ERROR,
            EVENT_JOB_EXECUTED,
            EVENT_JOB_MAX_INSTANCES,
            EVENT_JOB_MISSED,
        )

        name, due = event.job_id, _when(getattr(event, "scheduled_run_time", None))
        if event.code == EVENT_JOB_MISSED:
            say(f"job {name}: the run due {due} was later than its grace_seconds; skipped")
        elif event.code == EVENT_JOB_MAX_INSTANCES:
            say(f"job {name}: still running at its next fire time; that run is skipped")
        elif event.code == EVENT_JOB_EXECUTED and event.retval != -1:  # -1: stopping, not run
            say(f"job {name}: exit {event.retval} (run due {due}); next run {self.next_run(name)}")
        elif event.code == EVENT_JOB_ERROR:
            say(f"job {name}: the run due {due} could not start: {event.exception}; "
                f"next run {self.next_run(name)}")  # fmt: skip

    def next_run(self, name: str) -> str:
        from sqlalchemy.exc import SQLAlchemyError

        try:
            job = self.store.lookup_job(name)
        except SQLAlchemyError as exc:  # the store is the truth; say why it is not known
            return f"unknown ({type(exc).__name__}: {exc})"
        return _when(job.next_run_time) if job is not None else "none (job removed)"


def _handlers(stop: threading.Event, reload: threading.Event) -> dict[int, Any]:
    def on_stop(signum: int, frame: object) -> None:
        stop.set()

    def on_hup(signum: int, frame: object) -> None:
        reload.set()

    previous: dict[int, Any] = {}
    for sig, handler in (
        (signal.SIGTERM, on_stop),
        (signal.SIGINT, on_stop),
        (signal.SIGHUP, on_hup),
    ):
        previous[sig] = signal.signal(sig, handler)
    return previous


def serve(
    settings: Settings,
    jobs: JobSet,
    *,
    config: Path | None,
    reload_jobs: Callable[[], JobSet],
) -> tuple[int, dict[str, Any]]:
    """Run the scheduler until SIGTERM/SIGINT; returns the exit code and a summary document.

    The exit code is 130 when a run was interrupted by the stop (its task is resumable),
    else 0.
    """
    from apscheduler.events import (
        EVENT_JOB_ERROR,
        EVENT_JOB_EXECUTED,
        EVENT_JOB_MAX_INSTANCES,
        EVENT_JOB_MISSED,
    )
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    jobs.raise_errors()
    layout = DataRoot(settings.data_dir)
    lock = FileLock(layout.scheduler_lock, record_pid=True)
    if not lock.acquire(timeout=0):
        raise TaskConflict(
            f"another etl scheduler is running on data root {settings.data_dir} "
            f"(pid {lock.holder()}); not started"
        )
    CHILDREN.reset()
    store_path = layout.scheduler_store
    stop, reload = threading.Event(), threading.Event()
    previous = _handlers(stop, reload)
    started = dt.datetime.now(dt.UTC)
    try:
        store = SQLAlchemyJobStore(url=f"sqlite:///{store_path}")
        sched = BackgroundScheduler(
            jobstores={"default": store},
            executors={"default": ThreadPoolExecutor(MAX_PARALLEL_RUNS)},
            job_defaults={"coalesce": True, "max_instances": 1},
            timezone=dt.UTC,
        )
        events = EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES | EVENT_JOB_EXECUTED | EVENT_JOB_ERROR
        sched.add_listener(_Listener(store), events)
        sched.start(paused=True)  # match the store to jobs/ before anything fires
        counts = sync_store(sched, jobs, settings, config)
        changes = ", ".join(f"{v} {k}" for k, v in counts.items())
        say(f"started: {len(jobs.jobs)} jobs from {jobs.folder} ({changes}); store {store_path}")
        _report_start(sched, dt.datetime.now(dt.UTC))
        sched.resume()
        while not stop.wait(0.2):
            if reload.is_set():
                reload.clear()
                jobs = _reload(sched, reload_jobs, settings, config) or jobs
        running = CHILDREN.stop()
        say(f"stopping: {running} run(s) in progress asked to stop at a safe point")
        close(sched)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        lock.release()
    code = 130 if CHILDREN.interrupted else 0
    say(f"stopped (exit {code}): {CHILDREN.runs} run(s), {CHILDREN.interrupted} interrupted")
    doc = {
        "data_dir": str(settings.data_dir),
        "jobs": sorted(jobs.jobs),
        "started_at": started.isoformat(),
        "stopped_at": dt.datetime.now(dt.UTC).isoformat(),
        "runs": CHILDREN.runs,
        "interrupted_runs": CHILDREN.interrupted,
        "exit_code": code,
    }
    return code, doc


def _reload(
    sched: Any, reload_jobs: Callable[[], JobSet], settings: Settings, config: Path | None
) -> JobSet | None:
    """SIGHUP: re-read jobs/; a folder with errors is reported and the old jobs kept (None)."""
    try:
        jobs = reload_jobs()
        jobs.raise_errors()
    except EtlError as exc:
        say(f"reload refused, keeping the running jobs: {exc}")
        return None
    counts = sync_store(sched, jobs, settings, config)
    say("reloaded: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    for job in sched.get_jobs():
        say(f"job {job.id}: next run {_when(job.next_run_time)}")
    return jobs
