"""StockTV request rate: the adapter paging klines against the emulator's 5 requests per
sliding second (per key), through the file-backed governor every process shares. The
figure that matters is the sustained rate as a share of the limit, with zero violations.

    python -m bench stocktv_rate
"""

from __future__ import annotations

import asyncio
import datetime as dt
import tempfile
import time
from pathlib import Path

from etl.config import Secret, VendorSettings
from etl.emulators import EmulatorOptions, StockTVEmulator
from etl.emulators.testing import running
from etl.emulators.wire import Outcome, Request
from etl.vendors.base import InstrumentMap, VendorContext
from etl.vendors.stocktv import StockTVAdapter

NOW = dt.datetime(2024, 6, 28, 12, 0, tzinfo=dt.UTC)
LIMIT = 5.0  # the emulator's requests per sliding second per key (docs/vendors/stocktv.md "Limits")
CASES = [
    # label, symbols, freq, first day; every case ends 2024-06-27
    ("1 symbol, 1m over 180 days: sequential backwards pages", ["RELIANCE.IN"], "1m",
     dt.date(2024, 1, 1)),
    ("6 symbols at once, 5m over 180 days", ["RELIANCE.IN", "TCS.IN", "AAPL.US", "MSFT.US",
     "7203.JP", "6758.JP"], "5m", dt.date(2024, 1, 1)),
]  # fmt: skip


class _Timed(StockTVEmulator):
    """The emulator, noting when each vendor request arrives (as its limiter sees it)."""

    def __init__(self, options: EmulatorOptions | None = None) -> None:
        super().__init__(options)
        self.arrivals: list[float] = []

    def answer(self, request: Request) -> Outcome:
        if not request.path.startswith("/_emulator/"):
            self.arrivals.append(time.monotonic())
        return super().answer(request)


async def _fetch(adapter: StockTVAdapter, symbols: list[str], freq: str, first: dt.date) -> int:
    end = dt.date(2024, 6, 27)
    try:
        batches = await asyncio.gather(*(adapter.klines([s], freq, first, end) for s in symbols))
    finally:
        await adapter.aclose()
    return sum(b.table.num_rows for b in batches)


async def _prepare(settings: VendorSettings, symbols: list[str], freq: str) -> dict[str, str]:
    """The pid map ``etl instruments sync`` would store, and one page per symbol to warm
    the emulator's calendars up (a cold start is not the sustained rate)."""
    probe = StockTVAdapter(VendorContext(settings, now=lambda: NOW))
    try:
        tables = [await probe.instruments(m) for m in ("IN", "US", "JP")]
        ids = {r["symbol"]: r["vendor_id"] for t in tables for r in t.to_pylist()}
        probe.context = VendorContext(settings, now=lambda: NOW, instruments=InstrumentMap(ids=ids))
        day = dt.date(2024, 6, 27)
        await asyncio.gather(*(probe.klines([s], freq, day, day) for s in symbols))
    finally:
        await probe.aclose()
    return ids


def _case(label: str, symbols: list[str], freq: str, first: dt.date) -> dict[str, object]:
    with running(_Timed, now=NOW) as server, tempfile.TemporaryDirectory() as state:
        settings = VendorSettings("stocktv", base_url=server.base_url, api_key=Secret("bench"))
        ids = asyncio.run(_prepare(settings, symbols, freq))
        emulator = server.emulator
        assert isinstance(emulator, _Timed)
        emulator.reset()  # counters and windows start clean; the governor below is new
        emulator.arrivals = []
        context = VendorContext(
            settings, now=lambda: NOW, state_dir=Path(state), instruments=InstrumentMap(ids=ids)
        )
        began = time.perf_counter()
        rows = asyncio.run(_fetch(StockTVAdapter(context), symbols, freq, first))
        took = time.perf_counter() - began
        stats = server.stats()
    requests = int(stats["requests"])
    # Steady state, as the emulator saw it: after the first window's burst of LIMIT requests,
    # the requests that followed over the time they took to arrive.
    t = emulator.arrivals
    burst = int(LIMIT)
    sustained = (len(t) - burst) / (t[-1] - t[burst - 1]) if len(t) > burst else 0.0
    return {
        "case": label,
        "requests": requests,
        "rows": rows,
        "seconds": round(took, 2),
        "requests_per_s": round(requests / took, 2),
        "sustained_per_s": round(sustained, 2),
        "share_of_limit": round(sustained / LIMIT, 3),
        "violations": stats["violations"],
    }


def run() -> list[dict[str, object]]:
    return [_case(*case) for case in CASES]
