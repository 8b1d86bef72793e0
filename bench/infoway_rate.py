"""Infoway request rate: the adapter paging minute klines against the emulator's Premium plan
(10 requests in any sliding second and 600 in any minute, per key), through the file-backed
governor every process shares, at the rate the adapter read from ``/package/info``. What
matters is the sustained rate as the emulator saw it, as a share of the limit, with zero
violations; the last case runs past a minute so that the per-minute window binds too.

    python -m bench infoway_rate
"""

from __future__ import annotations

import asyncio
import datetime as dt
import tempfile
import time
from pathlib import Path

from etl.config import Secret, VendorSettings
from etl.emulators.base import EmulatorOptions
from etl.emulators.infoway import InfowayEmulator
from etl.emulators.testing import running
from etl.emulators.wire import Outcome, Request
from etl.vendors.base import VendorContext
from etl.vendors.infoway import InfowayAdapter

NOW = dt.datetime(2024, 6, 28, 12, 0, tzinfo=dt.UTC)
END = dt.date(2024, 6, 27)
LIMIT = 10.0  # Premium: apiNumPerSec (docs/vendors/infoway.md "Limits")
MIX = ["600519.SH", "000001.SZ", "00700.HK", "AAPL.US", "MSFT.US", "BTCUSDT.CC", "EURUSD.FX",
       "XAUUSD.INFOWAY"]  # fmt: skip
CASES = [
    # label, symbols, freq, first day (every case ends on END)
    ("1 symbol, 1m over 26 weeks: one page after another", ["600519.SH"], "1m",
     dt.date(2024, 1, 2)),
    ("8 symbols at once, 1m over 4 weeks", MIX, "1m", dt.date(2024, 5, 30)),
    ("8 symbols at once, 1m over 12 weeks: past the per-minute window", MIX, "1m",
     dt.date(2024, 4, 1)),
]  # fmt: skip


class _Clocked(InfowayEmulator):
    """The emulator, noting when each vendor request arrives (as its limiter judges it)."""

    def __init__(self, options: EmulatorOptions | None = None) -> None:
        super().__init__(options)
        self.arrivals: list[float] = []

    def answer(self, request: Request) -> Outcome:
        if not request.path.startswith("/_emulator/"):
            self.arrivals.append(time.monotonic())
        return super().answer(request)


async def _fetch(adapter: InfowayAdapter, symbols: list[str], freq: str, first: dt.date) -> int:
    try:
        jobs = (adapter.klines([s], freq, first, END) for s in symbols)
        batches = await asyncio.gather(*jobs)
    finally:
        await adapter.aclose()
    return sum(b.table.num_rows for b in batches)


def _case(label: str, symbols: list[str], freq: str, first: dt.date) -> dict[str, object]:
    with running(_Clocked, now=NOW) as server, tempfile.TemporaryDirectory() as state:
        settings = VendorSettings("infoway", base_url=server.base_url, api_key=Secret("bench"))
        warm = InfowayAdapter(VendorContext(settings, now=lambda: NOW))
        asyncio.run(_fetch(warm, symbols, freq, END))  # calendars loaded: not a cold start
        emulator = server.emulator
        assert isinstance(emulator, _Clocked)
        emulator.reset()  # counters and windows start clean; the governor below is new
        emulator.arrivals = []
        adapter = InfowayAdapter(VendorContext(settings, now=lambda: NOW, state_dir=Path(state)))
        began = time.perf_counter()
        rows = asyncio.run(_fetch(adapter, symbols, freq, first))
        took = time.perf_counter() - began
        stats = server.stats()
    arrivals = emulator.arrivals
    # Steady state as the emulator saw it: after the first second's burst, the requests that
    # followed over the time they took to arrive (the /package/info read included).
    burst = int(LIMIT)
    span = arrivals[-1] - arrivals[burst - 1] if len(arrivals) > burst else 0.0
    sustained = (len(arrivals) - burst) / span if span else 0.0
    return {
        "case": label,
        "requests": stats["requests"],
        "rows": rows,
        "seconds": round(took, 2),
        "requests_per_s": round(int(stats["requests"]) / took, 2),
        "sustained_per_s": round(sustained, 2),
        "share_of_limit": round(sustained / LIMIT, 3),
        "violations": stats["violations"],
        "refused_429": stats["statuses"].get("429", 0),
    }


def run() -> list[dict[str, object]]:
    return [_case(*case) for case in CASES]
