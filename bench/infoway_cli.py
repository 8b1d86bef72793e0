"""Infoway through the command line as a user types it: 10 stocks, 1m over the last 11
sessions and 1d over six months, two `etl backfill` commands one after the other against the
emulator's Premium plan (10 requests/s), on a fresh data root. The bound is the rate budget of
the requests the emulator saw (requests / 10 s); the figure is the end-to-end time of both
commands as a share of it, with the emulator's violations (0 required), the time each
command took to reach its first request, and a `fill-missing --dry-run` on a second fresh data
root, whose estimate must use the plan's 10/s.

    python -m bench infoway_cli
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from etl.emulators.base import EmulatorOptions
from etl.emulators.infoway import InfowayEmulator
from etl.emulators.testing import running
from etl.emulators.wire import Outcome, Request

KEY = "bench-infoway-key-1"
RATE = 10.0  # Premium: apiNumPerSec (docs/vendors/infoway.md "Limits")
SYMBOLS = ("000001.SZ,000002.SZ,000040.SZ,000049.SZ,000081.SZ,000090.SZ,000103.SZ,000104.SZ,"
           "000126.SZ,000133.SZ")  # fmt: skip


class _Clocked(InfowayEmulator):
    """The emulator, noting when each vendor request arrives."""

    def __init__(self, options: EmulatorOptions | None = None) -> None:
        super().__init__(options)
        self.arrivals: list[float] = []
        self.lock = threading.Lock()

    def answer(self, request: Request) -> Outcome:
        if not request.path.startswith("/_emulator/"):
            with self.lock:
                self.arrivals.append(time.time())
        return super().answer(request)


def _sessions_back(end: dt.date, count: int) -> dt.date:
    """The weekday ``count - 1`` weekdays before ``end`` (CN holidays aside: the emulator's
    calendar decides the bars, this only sizes the range)."""
    day = end
    left = count - 1
    while left:
        day -= dt.timedelta(days=1)
        if day.weekday() < 5:
            left -= 1
    return day


def _etl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "etl", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def measure() -> dict[str, Any]:
    """The two commands end to end, and a dry run's estimate; see the module docstring."""
    # The CLI has no frozen clock, so neither has the emulator: the ranges end yesterday.
    end = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    minute_start = _sessions_back(end, 11)
    daily_start = end - dt.timedelta(days=182)
    with running(_Clocked, api_key=KEY) as server, tempfile.TemporaryDirectory() as tmp:
        emulator = server.emulator
        assert isinstance(emulator, _Clocked)
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")}
        env.update(ETL_INFOWAY_API_KEY=KEY, ETL_INFOWAY_BASE_URL=server.base_url)
        common = ["backfill", "--vendor", "infoway", "--dataset", "klines", "--symbols", SYMBOLS]
        commands = [
            [*common, "--freq", "1m", "--start", str(minute_start), "--end", str(end)],
            [*common, "--freq", "1d", "--start", str(daily_start), "--end", str(end)],
        ]
        env["ETL_DATA_DIR"] = str(Path(tmp) / "load")
        firsts, tasks = [], []
        began = time.time()
        for args in commands:
            seen = len(emulator.arrivals)
            started = time.time()
            proc = _etl(env, *args, "--json")
            if proc.returncode != 0:
                raise RuntimeError(f"etl {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
            tasks.append(json.loads(proc.stdout))
            firsts.append(emulator.arrivals[seen] - started)
        took = time.time() - began
        stats = server.stats()
        env["ETL_DATA_DIR"] = str(Path(tmp) / "dry")
        dry = _etl(env, "fill-missing", "--vendor", "infoway", "--dataset", "klines",
                   "--freq", "1d", "--symbols", SYMBOLS, "--start", str(daily_start),
                   "--end", str(end), "--dry-run", "--json")  # fmt: skip
        if dry.returncode != 0:
            raise RuntimeError(f"fill-missing --dry-run exited {dry.returncode}: {dry.stderr}")
        plan = json.loads(dry.stdout)
    requests = int(stats["requests"])
    bound = requests / RATE
    return {
        "requests": requests,
        "rows_written": sum(int(t["rows_written"]) for t in tasks),
        "bound_s": round(bound, 2),
        "seconds": round(took, 2),
        "ratio_to_bound": round(took / bound, 2),
        "violations": stats["violations"],
        "first_request_s": [round(f, 2) for f in firsts],
        "dry_run_rate_per_s": plan["rate_limit_per_second"],
        "dry_run_seconds": plan["seconds_at_rate_limit"],
        "dry_run_requests": plan["requests"],
    }


def run() -> list[dict[str, Any]]:
    return [measure()]
