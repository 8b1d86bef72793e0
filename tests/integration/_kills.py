"""The kill-and-resume loop of the crash tests: a task run as a real ``etl`` process, SIGKILLed
when the emulator has answered a random number of its calls (an event counted at the vendor,
not a guess at how long start-up takes), resumed with ``etl tasks resume``, again and again,
then resumed to its end."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from etl.tasks.records import TaskStore
from tests.conftest import ETL, etl_env


@dataclass
class KillRun:
    kills: int
    task_id: int
    final: dict[str, Any]  # the last resume's --json document


def _reach(calls: Callable[[], int], target: int, proc: subprocess.Popen[bytes]) -> bool:
    """Wait until ``calls()`` reaches ``target`` (True), or ``proc`` ended (False)."""
    while calls() < target:
        if proc.poll() is not None:
            return False
        time.sleep(0.01)  # between looks at the vendor's counter
    return True


def kill_and_resume(
    root: Path,
    env: dict[str, str],
    args: Sequence[str],
    calls: Callable[[], int],
    *,
    kills: int,
    rng: random.Random,
    first_ahead: tuple[int, int] = (1, 3),
    ahead: tuple[int, int] = (5, 40),
) -> KillRun:
    """Run ``etl ARGS`` (with ``--json``) under data root ``root``; SIGKILL it ``kills``
    times, the first within ``first_ahead`` of its calls, the others after ``ahead`` more
    (``calls()``: the vendor's count of the calls that matter); each time the task must
    read as interrupted; then resume it to the end (exit 0)."""
    store = TaskStore(root)
    task_id: int | None = None
    done = 0
    while done < kills:
        argv = list(args) if task_id is None else ["tasks", "resume", str(task_id), "--json"]
        proc = subprocess.Popen(
            [*ETL, *argv], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=etl_env(root, **env),
        )  # fmt: skip
        span = first_ahead if done == 0 else ahead
        if not _reach(calls, calls() + rng.randint(*span), proc):
            break  # finished before this kill: fewer kills than asked, the caller's assert
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        done += 1
        if task_id is None:
            records = store.list(1)
            assert records, "the first run was killed before it created its task"
            task_id = records[0].id
        assert store.get(task_id).status == "interrupted"
    assert task_id is not None, "no kill landed"
    final = subprocess.run(
        [*ETL, "tasks", "resume", str(task_id), "--json"],
        capture_output=True, text=True, env=etl_env(root, **env), timeout=300,
    )  # fmt: skip
    assert final.returncode == 0, final.stderr
    return KillRun(done, task_id, json.loads(final.stdout))
