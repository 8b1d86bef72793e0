"""A task's stop signals are its own only for its block: a handler the process had before
(the recorder's, whose repair tasks run inside it) is put back after, so a SIGTERM after a
repair stops the recorder instead of killing the process (regression: `etl record` died of
SIGTERM, exit -15, when the signal came just after a repair task ended)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

_SCRIPT = """
import asyncio, datetime as dt, os, signal, sys
from pathlib import Path
from etl.config import load_settings
from etl.tasks.runner import open_run
from etl.tasks.runtime import Runtime

NOW = dt.datetime(2024, 6, 3, tzinfo=dt.UTC)
rt = Runtime(load_settings(data_dir=Path(sys.argv[1]), env={}), clock=lambda: NOW,
             progress=False)

async def main() -> None:
    loop = asyncio.get_running_loop()
    outer = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, outer.set)  # the recorder's stop
    record = rt.store.create("backfill", {"vendor": "sim"}, now=NOW)
    with open_run(rt.store, record, clock=rt.clock, ui=rt.ui()) as run:
        with run.stop_signals(loop):
            os.kill(os.getpid(), signal.SIGTERM)  # the task's: a stop request
            await asyncio.sleep(0)
            while run.stop_reason is None:
                await asyncio.sleep(0.001)
    os.kill(os.getpid(), signal.SIGTERM)  # after the task: the recorder's again
    await asyncio.wait_for(outer.wait(), 30)
    print("outer handler ran; task", run.stop_reason)

asyncio.run(main())
"""


def test_the_handler_from_before_a_task_is_put_back(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode != -signal.SIGTERM, "SIGTERM killed the process after the task"
    assert proc.returncode == 0, proc.stderr
    assert "outer handler ran; task signal" in proc.stdout
