"""mdapi request rate: 1m klines of 50 products against the emulator's per-product limit
(redis.php: 5 requests per sliding second per product code, 10 s ban over it), through the
file-backed governor every process shares. The figures that matter: zero violations and zero
429s (no ban ever started), and each product's sustained rate as a share of its 5/s.

    python -m bench mdapi_rate

The emulator runs in this process (its arrival times are read off it), so the aggregate rate
over many products is bounded by one Python process doing both sides; the per-product rate
is what the vendor limits.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import tempfile
import time
from pathlib import Path

from etl.config import VendorSettings
from etl.emulators import EmulatorOptions, MdapiEmulator
from etl.emulators.mdapi_data import PRODUCTS
from etl.emulators.testing import running
from etl.emulators.wire import Outcome, Request
from etl.vendors.base import InstrumentMap, VendorContext
from etl.vendors.mdapi import MdapiAdapter

NOW = dt.datetime(2024, 6, 28, 12, 0, tzinfo=dt.UTC)
# redis.php requests per sliding second per product code (docs/vendors/mdapi.md "Limits")
LIMIT = 5.0
CODES = [p.code for p in PRODUCTS][:50]  # crypto, forex, futures; hf_OIL needs the code map
CASES = [
    # label, products, windows fetched per product
    ("50 products, one 1m window each (one klines call)", 50, 1),
    ("50 products, 10 windows each, all at once", 50, 10),
    ("5 products, 30 windows each, all at once", 5, 30),
]


class _Timed(MdapiEmulator):
    """The emulator, noting when each kline request arrives, per product code."""

    def __init__(self, options: EmulatorOptions | None = None) -> None:
        super().__init__(options)
        self.arrivals: dict[str, list[float]] = {}

    def answer(self, request: Request) -> Outcome:
        if request.path == "/redis.php":
            code = request.params.get("code", "")
            self.arrivals.setdefault(code, []).append(time.monotonic())
        return super().answer(request)


async def _prepare(settings: VendorSettings) -> dict[str, str]:
    """The code map ``etl instruments sync`` would store, and one window per product to warm
    the emulator's calendars and caches up (a cold start is not the sustained rate)."""
    probe = MdapiAdapter(VendorContext(settings, now=lambda: NOW))
    try:
        listed = await probe.instruments()
        codes = {r["symbol"]: r["vendor_code"] for r in listed.to_pylist()}
        symbols = [s for s, c in codes.items() if c in CODES]
        await probe.klines(symbols, "1m", NOW.date(), NOW.date())
    finally:
        await probe.aclose()
    return codes


async def _fetch(adapter: MdapiAdapter, symbols: list[str], windows: int) -> tuple[int, int]:
    day = NOW.date()
    try:
        if windows == 1:
            batch = await adapter.klines(symbols, "1m", day, day)
            return batch.table.num_rows, batch.requests

        async def repeat(symbol: str) -> tuple[int, int]:
            rows = requests = 0
            for _ in range(windows):
                batch = await adapter.klines([symbol], "1m", day, day)
                rows, requests = rows + batch.table.num_rows, requests + batch.requests
            return rows, requests

        done = await asyncio.gather(*(repeat(s) for s in symbols))
        return sum(r for r, _ in done), sum(q for _, q in done)
    finally:
        await adapter.aclose()


def _sustained(arrivals: list[float]) -> float | None:
    """Requests per second after the first window's burst of LIMIT, as the emulator saw them."""
    burst = int(LIMIT)
    if len(arrivals) <= burst:
        return None
    return (len(arrivals) - burst) / (arrivals[-1] - arrivals[burst - 1])


def _case(label: str, products: int, windows: int) -> dict[str, object]:
    with running(_Timed, now=NOW) as server, tempfile.TemporaryDirectory() as state:
        settings = VendorSettings("mdapi", base_url=server.base_url)
        codes = asyncio.run(_prepare(settings))
        symbols = [s for s, c in codes.items() if c in CODES[:products]]
        emulator = server.emulator
        assert isinstance(emulator, _Timed) and len(symbols) == products
        emulator.reset()  # counters, windows and bans start clean; the governor below is new
        emulator.arrivals = {}
        context = VendorContext(
            settings, now=lambda: NOW, state_dir=Path(state), instruments=InstrumentMap(codes)
        )
        began = time.perf_counter()
        rows, requests = asyncio.run(_fetch(MdapiAdapter(context), symbols, windows))
        took = time.perf_counter() - began
        stats = server.stats()
    rates = [r for t in emulator.arrivals.values() if (r := _sustained(sorted(t))) is not None]
    row: dict[str, object] = {
        "case": label,
        "requests": requests,
        "rows": rows,
        "seconds": round(took, 2),
        "requests_per_s": round(requests / took, 1),
        "violations": stats["violations"],  # any 429 (and so any ban) would be one
    }
    if rates:
        mean = sum(rates) / len(rates)
        row |= {
            "per_product_sustained_per_s": round(mean, 2),
            "per_product_min_max": [round(min(rates), 2), round(max(rates), 2)],
            "share_of_limit": round(mean / LIMIT, 3),
        }
    return row


def run() -> list[dict[str, object]]:
    return [_case(*case) for case in CASES]
