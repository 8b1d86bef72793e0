"""Scheduled jobs: ``jobs/*.toml`` definitions, one-off runs (cron) and the scheduler daemon.

The flow reads top to bottom: :mod:`~etl.scheduler.spec` parses a job file (and
:mod:`~etl.scheduler.window`, :mod:`~etl.scheduler.cron` its window and schedule),
:mod:`~etl.scheduler.load` checks a folder of them against the vendors' capability tables,
:mod:`~etl.scheduler.run` runs one job through the ordinary task functions
(:mod:`~etl.scheduler.actions`), :mod:`~etl.scheduler.status` reports on them, and
:mod:`~etl.scheduler.daemon` fires them on schedule. Like the CLI it is an edge: it calls the
task functions and nothing below imports it.
"""

from etl.scheduler.load import JobSet, load_jobs
from etl.scheduler.spec import ACTIONS, JobFileError, JobSpec

__all__ = ["ACTIONS", "JobFileError", "JobSet", "JobSpec", "load_jobs"]
