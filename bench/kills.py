"""Resume after SIGKILL, per vendor paging style: a backfill and a fill-missing of scattered
holes, each run once uninterrupted and once SIGKILLed 5 times then resumed, against the
vendor's emulator (`etl emulate`, a real process) through `etl` as a user runs it. The
figure: the vendor calls of the killed run against the uninterrupted one's (issue 10: at
most 1.05x), and whether the two lakes are equal.

Kills land when the emulator has counted a random number of this run's calls (an event at
the vendor, not a guess at timing): the first within the first 1-3 calls of the first run
(within 2 s of its first request) and the third within the first 1-3 calls of a resumed
run; the others after a random share of the calls. Only the calls that fetch bars are
counted (every process also asks for a plan, a login or a symbol list).

- infoway: 1m pages of 500 bars, paged back from the newest (6 US stocks, 8 weeks);
- stocktv: 1m pages of 1,000 bars, paged back by window (7 US stocks, 15 weeks);
- amazingdata: 1m in 31-day windows, one call each (an SH and an SZ stock, 2013-2024);
- mdapi: the latest 300 1h bars, one call per product (its 47 products: a run of 28-55
  calls, where 5 kills cannot stay within 1.05x: each kill loses the call it lands on);
- mdapi-large: the same with 200 more (made-up) crypto pairs, the emulator's ``products``
  option: a run of 200+ calls, as a user's larger universe would be.

The fills run over a lake that already holds every other week (half-year for AmazingData,
day for mdapi), so their holes are scattered; mdapi's fill asks each product once whatever
its holes.

    python -m bench kills            # every case; BENCH_KILLS=infoway,mdapi-large for some
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from etl.dataroot import DataRoot
from etl.emulators.testing import fetch_stats, reset_stats, spawn_emulate, vendor_calls

KILLS = 5
ETL = [sys.executable, "-m", "etl"]
NOW = "2024-06-28T22:00:00Z"


@dataclass
class Case:
    vendor: str
    env: Callable[[str], dict[str, str]]  # base URL -> the variables pointing etl at it
    path: str  # the path whose calls are counted (bars)
    symbols: list[str]
    freq: str
    start: dt.date
    end: dt.date
    held: list[tuple[dt.date, dt.date]] = field(default_factory=list)  # the fill's lake
    sync: bool = False  # `instruments sync` first (the vendor's code map)
    name: str = ""  # the case's name in the figures (default: the vendor's)
    emulator: tuple[str, ...] = ()  # more `etl emulate` arguments


def _weeks(start: dt.date, end: dt.date, days: int) -> list[tuple[dt.date, dt.date]]:
    """Every other ``days``-long stretch of ``[start, end]``: what the fill's lake holds."""
    out, cur, keep = [], start, True
    while cur <= end:
        last = min(end, cur + dt.timedelta(days=days - 1))
        if keep:
            out.append((cur, last))
        keep, cur = not keep, last + dt.timedelta(days=1)
    return out


def _sim(market: str, n: int) -> list[str]:
    """``n`` stocks of the sim universe listed before 2013 and still listed mid-2024."""
    from etl.synthetic import instruments

    at = dt.datetime(2024, 6, 28, tzinfo=dt.UTC)
    live = [
        i.symbol
        for i in instruments(at, market=market)
        if i.type == "stock" and i.list_date and i.list_date < dt.date(2013, 1, 1)
    ]
    return sorted(live)[:n]


MORE_MDAPI = 200  # mdapi-large: made-up pairs beyond the emulator's 47 products


def _mdapi_symbols(more: int = 0) -> list[str]:
    from etl.emulators.mdapi_data import PRODUCTS, more_coins

    return [p.symbol for p in (*PRODUCTS, *more_coins(more))]


def cases() -> dict[str, Case]:
    infoway_range = (dt.date(2024, 5, 1), dt.date(2024, 6, 27))
    stocktv_range = (dt.date(2024, 3, 15), dt.date(2024, 6, 27))
    amazing_range = (dt.date(2013, 1, 1), dt.date(2024, 6, 27))
    mdapi_range = (dt.date(2024, 6, 18), dt.date(2024, 6, 28))
    return {
        "infoway": Case(
            "infoway",
            lambda url: {"ETL_INFOWAY_BASE_URL": url, "ETL_INFOWAY_API_KEY": "bench-key"},
            "batch_kline", _sim("US", 6), "1m", *infoway_range,
            held=_weeks(*infoway_range, 7),
        ),
        "stocktv": Case(
            "stocktv",
            lambda url: {"ETL_STOCKTV_BASE_URL": url, "ETL_STOCKTV_API_KEY": "k"},
            "/stock/kline", _sim("US", 7), "1m", *stocktv_range,
            held=_weeks(*stocktv_range, 7), sync=True,
        ),
        "amazingdata": Case(
            "amazingdata",
            lambda url: {"ETL_AMAZINGDATA_BASE_URL": url, "ETL_AMAZINGDATA_USERNAME": "analyst",
                         "ETL_AMAZINGDATA_PASSWORD": "pw-9Tq"},
            "/stock/kline", [*_sim("SH", 1), *_sim("SZ", 1)], "1m", *amazing_range,
            held=_weeks(*amazing_range, 183),
        ),
        "mdapi": Case(
            "mdapi", lambda url: {"ETL_MDAPI_BASE_URL": url},
            "/redis.php", _mdapi_symbols(), "1h", *mdapi_range,
            held=_weeks(*mdapi_range, 1), sync=True,
        ),
        "mdapi-large": Case(
            "mdapi", lambda url: {"ETL_MDAPI_BASE_URL": url},
            "/redis.php", _mdapi_symbols(MORE_MDAPI), "1h", *mdapi_range,
            held=_weeks(*mdapi_range, 1), sync=True, name="mdapi-large",
            emulator=("--option", f"products={MORE_MDAPI}"),
        ),
    }  # fmt: skip


def _env(root: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")}
    env["ETL_DATA_DIR"] = str(root)
    env.update(extra)
    return env


def _etl(root: Path, extra: dict[str, str], *args: str) -> dict[str, Any]:
    done = subprocess.run([*ETL, *args, "--json"], capture_output=True, text=True,
                          env=_env(root, extra), timeout=900, check=False)  # fmt: skip
    if done.returncode not in (0, 1):
        raise RuntimeError(f"etl {' '.join(args[:3])} exited {done.returncode}: {done.stderr}")
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


def _range_args(case: Case, start: dt.date, end: dt.date) -> list[str]:
    return ["--vendor", case.vendor, "--dataset", "klines", "--freq", case.freq,
            "--symbols", ",".join(case.symbols), "--start", start.isoformat(),
            "--end", end.isoformat()]  # fmt: skip


def _lake(root: Path, freq: str) -> pl.DataFrame:
    files = sorted(DataRoot(root).dataset("klines").glob(f"freq={freq}/*/*.parquet"))
    if not files:
        return pl.DataFrame()
    cols = ["symbol", "ts", "open", "high", "low", "close", "volume", "amount"]
    return pl.read_parquet(files).select(cols).sort("symbol", "ts")


@dataclass
class Killed:
    calls: int
    at: list[int]  # this run's calls counted when each kill landed
    seconds_after_first: list[float]  # from the run's first counted call to its kill


def _kill_and_resume(
    root: Path, extra: dict[str, str], args: list[str], calls: Callable[[], int], total: int,
    rng: random.Random,
) -> Killed:  # fmt: skip
    """SIGKILL ``etl ARGS`` KILLS times (kills 1 and 3 within the first 1-3 calls of their
    run, the others after 5-20 % of ``total`` more), resuming each time, then resume it to
    its end."""
    spans = [(1, 3), (total // 20, total // 5), (1, 3), (total // 20, total // 5),
             (total // 20, total // 5)]  # fmt: skip
    task_id: int | None = None
    at: list[int] = []
    after: list[float] = []
    for span in spans:
        argv = args if task_id is None else ["tasks", "resume", str(task_id)]
        proc = subprocess.Popen([*ETL, *argv, "--json"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=_env(root, extra))  # fmt: skip
        base = calls()
        target = base + rng.randint(max(1, span[0]), max(1, span[0], span[1]))
        first: float | None = None
        while (seen := calls()) < target and proc.poll() is None:
            if first is None and seen > base:
                first = time.monotonic()
            time.sleep(0.005)  # between looks at the vendor's counter
        if proc.poll() is not None:
            break  # it finished before this kill
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        at.append(calls() - base)
        after.append(round(time.monotonic() - (first or time.monotonic()), 2))
        if task_id is None:
            from etl.tasks.records import TaskStore

            task_id = TaskStore(root).list(1)[0].id
    if task_id is not None:
        doc = _etl(root, extra, "tasks", "resume", str(task_id))
        if doc.get("status") != "completed":
            raise RuntimeError(f"resume ended {doc.get('status')}: {doc}")
    return Killed(calls(), at, after)


def _scenario(
    case: Case, kind: str, url: str, base: Path, work: Path, rng: random.Random
) -> dict[str, Any]:
    extra = case.env(url)
    cmd = "backfill" if kind == "backfill" else "fill-missing"
    args = [cmd, *_range_args(case, case.start, case.end)]

    def counted() -> int:
        return vendor_calls(fetch_stats(url), case.path)

    calm, rough = work / f"{kind}-calm", work / f"{kind}-rough"
    shutil.copytree(base, calm)
    shutil.copytree(base, rough)
    reset_stats(url)
    began = time.perf_counter()
    _etl(calm, extra, *args)
    seconds = time.perf_counter() - began
    uninterrupted = counted()
    reset_stats(url)
    killed = _kill_and_resume(rough, extra, args, counted, uninterrupted, rng)
    violations = fetch_stats(url)["violations"]
    want, got = _lake(calm, case.freq), _lake(rough, case.freq)
    return {
        "case": f"{case.name or case.vendor} {kind}", "calls_uninterrupted": uninterrupted,
        "seconds_uninterrupted": round(seconds, 1), "kills": len(killed.at),
        "calls_with_kills": killed.calls,
        "ratio": round(killed.calls / uninterrupted, 3) if uninterrupted else None,
        "extra_per_kill": round((killed.calls - uninterrupted) / max(1, len(killed.at)), 2),
        "kill_at_calls": killed.at, "kill_s_after_first_call": killed.seconds_after_first,
        "lake_equal": bool(want.height and got.equals(want)), "rows": want.height,
        "violations": violations,
    }  # fmt: skip


def _prepare(case: Case, url: str, tmp: Path) -> tuple[Path, Path]:
    """Two data roots: one with only the code map (the backfill's), one that also holds
    every other stretch of the range (the fill's)."""
    extra = case.env(url)
    empty = tmp / "empty"
    empty.mkdir()
    if case.sync:
        _etl(empty, extra, "instruments", "sync", "--vendor", case.vendor)
    held = tmp / "held"
    shutil.copytree(empty, held)
    for lo, hi in case.held:
        _etl(held, extra, "backfill", *_range_args(case, lo, hi))
    return empty, held


def _run(case: Case) -> Iterator[dict[str, Any]]:
    rng = random.Random(10)
    with spawn_emulate(case.vendor, "--now", NOW, *case.emulator) as emulator, tempfile.TemporaryDirectory(
        prefix=f"bench-kills-{case.vendor}-"
    ) as tmp:  # fmt: skip
        url = emulator.base_url
        empty, held = _prepare(case, url, Path(tmp))
        yield _scenario(case, "backfill", url, empty, Path(tmp), rng)
        yield _scenario(case, "fill", url, held, Path(tmp), rng)


def run(vendors: list[str] | None = None) -> Iterator[dict[str, Any]]:
    chosen = [v for v in os.environ.get("BENCH_KILLS", "").split(",") if v]
    wanted = vendors or chosen or list(cases())
    table = cases()
    for name in wanted:
        if name in table:
            yield from _run(table[name])
