"""From process start to the first kline request, with a cached plan (issue 10: at most 0.5 s).

A vendor emulator in this process on the real clock (so the plan `/package/info` reports
expires a year from now and the cached plan stays fresh: no run asks for it again), and a
*template* data root: one command run on it first caches the plan, the calendars and the
catalog, and stores another symbol (MSFT.US) over the same range. Each timed run is a copy
of that template put back at the same path, so each one finds the data root a user's second
command finds, and its selection (AAPL.US over the last two months of 1d) is wholly missing,
so it asks for klines. The figure is the time from ``Popen`` to the emulator's handling of the run's first
kline request (the emulator notes each request as it is parsed, path and time); a run that
asked for anything before its first kline request (the plan, a login) says so.

Cases: ``etl backfill`` and ``etl fill-missing`` against Infoway, and ``etl backfill``
against StockTV (its template also holds the instruments map StockTV's calls need). An
import-time breakdown (``python -X importtime``) of one backfill follows: the cumulative
seconds of each top-level import, over the whole run (what comes after the first request
included).

    python -m bench startup            # 7 timed runs a case
    ETL_BENCH_RUNS=15 python -m bench startup
    ETL_BENCH_TREE=/path/to/other/checkout python -m bench startup   # that tree's `etl`
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from etl.emulators.base import Emulator, EmulatorOptions
from etl.emulators.infoway import InfowayEmulator
from etl.emulators.stocktv import StockTVEmulator
from etl.emulators.testing import running
from etl.emulators.wire import Outcome, Request

AIM_S = 0.5  # issue 10, "Rate"
RUNS = int(os.environ.get("ETL_BENCH_RUNS", "7"))
# The commands run from this checkout (a baseline's, say), the emulators from this one.
TREE = os.environ.get("ETL_BENCH_TREE")
SYMBOL = "AAPL.US"
OTHER = "MSFT.US"  # stored by the template's first run, so the lake is not empty
DAYS = 61  # two months of 1d, ending yesterday
KLINE_PATHS = {"infoway": "batch_kline", "stocktv": "kline"}


def _clocked(base: type[Emulator]) -> type[Emulator]:
    """``base``, noting (time, path) of each vendor request as it is handled."""

    class Clocked(base):  # type: ignore[valid-type,misc]
        def __init__(self, options: EmulatorOptions | None = None) -> None:
            super().__init__(options)
            self.arrivals: list[tuple[float, str]] = []
            self.lock = threading.Lock()

        def answer(self, request: Request) -> Outcome:
            if not request.path.startswith("/_emulator/"):
                with self.lock:
                    self.arrivals.append((time.time(), request.path))
            result: Outcome = super().answer(request)
            return result

    Clocked.__name__ = f"Clocked{base.__name__}"
    return Clocked


def _env(vendor: str, base_url: str, root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")}
    env["PYTHONPATH"] = TREE or str(Path(__file__).resolve().parents[1])
    up = vendor.upper()
    env.update({
        f"ETL_{up}_API_KEY": "bench-startup-key-1",
        f"ETL_{up}_BASE_URL": base_url,
        "ETL_DATA_DIR": str(root),
    })  # fmt: skip
    return env


def _etl(env: dict[str, str], *args: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "etl", *args],
        env=env,
        cwd=Path(env["ETL_DATA_DIR"]).parent,  # not a checkout (see _timed)
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"etl {' '.join(args)} exited {proc.returncode}: {proc.stderr}")


def _range() -> tuple[str, str]:
    end = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    return str(end - dt.timedelta(days=DAYS - 1)), str(end)


def _command(name: str, vendor: str, symbol: str) -> list[str]:
    start, end = _range()
    verb = ["backfill"] if name == "backfill" else ["fill-missing"]
    return [*verb, "--vendor", vendor, "--dataset", "klines", "--freq", "1d",
            "--symbols", symbol, "--start", start, "--end", end]  # fmt: skip


@contextmanager
def _template(vendor: str) -> Iterator[tuple[Any, Path, Path]]:
    """(emulator server, template, the data root): the template is a copy of the data root
    after its first run, put back in place before each timed run (at the same path: the
    catalog's fingerprint names the root, and a user's next command runs on the same one)."""
    cls = InfowayEmulator if vendor == "infoway" else StockTVEmulator
    with running(_clocked(cls)) as server, tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        env = _env(vendor, server.base_url, root)
        if vendor == "stocktv":
            _etl(env, "instruments", "sync", "--vendor", vendor, "--market", "US")
        _etl(env, *_command("backfill", vendor, OTHER))
        template = Path(tmp) / "template"
        shutil.copytree(root, template)
        yield server, template, root


def _restore(template: Path, root: Path) -> None:
    shutil.rmtree(root)
    shutil.copytree(template, root)


def _timed(server: Any, vendor: str, root: Path, args: list[str]) -> dict[str, Any]:
    """One run on ``root``: seconds to the first kline request, and what came before it."""
    emulator = server.emulator
    seen = len(emulator.arrivals)
    env = _env(vendor, server.base_url, root)
    began = time.time()
    proc = subprocess.run(
        [sys.executable, "-m", "etl", *args],
        env=env,
        cwd=root.parent,  # not a checkout: `python -m etl` imports from the working folder
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"etl {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
    mine = emulator.arrivals[seen:]
    kline = KLINE_PATHS[vendor]
    firsts = [t for t, path in mine if kline in path]
    if not firsts:
        raise RuntimeError(f"etl {' '.join(args)} made no kline request: {mine}")
    before = sorted({path for t, path in mine if t < firsts[0]})
    return {"first_kline_s": firsts[0] - began, "before": before}


def _case(server: Any, vendor: str, template: Path, root: Path, name: str) -> dict[str, Any]:
    times, before = [], set()
    for _ in range(RUNS):
        _restore(template, root)
        got = _timed(server, vendor, root, _command(name, vendor, SYMBOL))
        times.append(got["first_kline_s"])
        before.update(got["before"])
    return {
        "case": f"{vendor} {name} 1d {SYMBOL} {DAYS} days",
        "runs": RUNS,
        "p50_s": round(statistics.median(times), 3),
        "min_s": round(min(times), 3),
        "max_s": round(max(times), 3),
        "aim_s": AIM_S,
        "requests_before_first_kline": sorted(before),
    }


_IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def _import_times(server: Any, template: Path, root: Path) -> dict[str, Any]:
    """``-X importtime`` of one backfill: the cumulative seconds of every top-level import
    (the largest first), and the total."""
    _restore(template, root)
    env = _env("infoway", server.base_url, root)
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "etl", *_command("backfill", "infoway", SYMBOL)],
        env=env,
        cwd=root.parent,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"etl -X importtime exited {proc.returncode}: {proc.stderr[-2000:]}")
    tops: dict[str, float] = {}
    names: set[str] = set()
    for line in proc.stderr.splitlines():
        m = _IMPORT_LINE.match(line)
        if m:
            names.add(m.group(4))
        if m and len(m.group(3)) == 1:  # nesting level 0: imported by the program itself
            tops[m.group(4)] = tops.get(m.group(4), 0.0) + int(m.group(2)) / 1e6
    biggest = sorted(tops.items(), key=lambda kv: -kv[1])[:12]
    return {
        "case": "import time, infoway backfill (-X importtime, top-level imports)",
        "total_s": round(sum(tops.values()), 3),
        "top": {name: round(s, 3) for name, s in biggest},
        # over the whole run, its first request and after: pandas comes with the first answer
        # (pyarrow's Schema.empty_table), DuckDB with the catalog after the task
        "loaded_in_the_run": {
            name: any(n == name or n.startswith(name + ".") for n in names)
            for name in ("pandas", "exchange_calendars", "polars", "pyarrow", "duckdb")
        },
    }


def run() -> list[dict[str, Any]]:
    rows = []
    with _template("infoway") as (server, template, root):
        rows.append(_case(server, "infoway", template, root, "backfill"))
        rows.append(_case(server, "infoway", template, root, "fill-missing"))
        rows.append(_import_times(server, template, root))
    with _template("stocktv") as (server, template, root):
        rows.append(_case(server, "stocktv", template, root, "backfill"))
    return rows
