"""Helpers for the scheduler tests: job files, a scheduler subprocess, task records by job."""

from __future__ import annotations

import datetime as dt
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from etl.tasks.records import TaskRecord, TaskStore
from tests.conftest import ETL, etl_env


def write_job(folder: Path, name: str, body: str, cron: str, extra: str = "") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.toml").write_text(
        f'name = "{name}"\n{body}\n[schedule]\ncron = "{cron}"\ntimezone = "UTC"\n{extra}\n'
    )


def slow_symbols(n: int = 20) -> str:
    """``n`` SZ stocks listed before 2022, as a TOML list (1m bars of these take a while)."""
    from etl.synthetic import instruments

    live = sorted(
        i.symbol
        for i in instruments(dt.datetime(2024, 6, 30, tzinfo=dt.UTC), market="SZ")
        if i.type == "stock" and i.list_date and i.list_date < dt.date(2022, 1, 1)
    )
    return "[" + ", ".join(f'"{s}"' for s in live[:n]) + "]"


def slow_job(n: int = 20, start: str = "2024-01-02") -> str:
    """A sim backfill of 1m bars to 2024-06-28: about 4 s for 20 symbols over half a year."""
    return (
        f'action = "backfill"\nvendor = "sim"\ndataset = "klines"\nfreq = "1m"\n'
        f'symbols = {slow_symbols(n)}\nstart = "{start}"\nend = "2024-06-28"'
    )


def job_tasks(data: Path, job: str) -> list[TaskRecord]:
    """The job's task records, oldest first."""
    return sorted(
        (r for r in TaskStore(data).list() if r.params.get("job") == job), key=lambda r: r.id
    )


def wait_for(what: str, check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def seconds_from_now(delay: float) -> tuple[int, float]:
    """The second-of-minute ``delay`` seconds ahead, and that instant (epoch seconds)."""
    at = int(time.time() + delay) + 1
    return at % 60, float(at)


class Scheduler:
    """``etl scheduler`` as a real process; its stderr lines are collected as they come."""

    def __init__(self, jobs: Path, data: Path, **env: str) -> None:
        self.proc = subprocess.Popen(
            [*ETL, "scheduler", "--jobs-dir", str(jobs), "--data-dir", str(data)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=etl_env(data, **env),
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.started_at = time.time()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    @property
    def stderr(self) -> str:
        return "\n".join(self.lines)

    def wait_started(self, timeout: float = 30.0) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"scheduler exited {self.proc.returncode}: {self.stderr}")
            return any("etl scheduler: started" in ln for ln in self.lines)

        wait_for("the scheduler to start", ready, timeout)

    def wait_line(self, text: str, timeout: float = 30.0) -> str:
        """The first stderr line containing ``text``, once it is there (the scheduler's log is
        how it says what it decided); fails at once if the scheduler exits first."""
        found: list[str] = []

        def seen() -> bool:
            found.extend(ln for ln in list(self.lines) if text in ln)
            if not found and self.proc.poll() is not None:
                self._reader.join(5)  # its last lines
                found.extend(ln for ln in self.lines if text in ln)
                if not found:
                    raise AssertionError(f"scheduler exited {self.proc.returncode}: {self.stderr}")
            return bool(found)

        wait_for(repr(text), seen, timeout)
        return found[0]

    def stop(self, timeout: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM, as systemd stops it
        code = self.proc.wait(timeout)
        self._reader.join(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
