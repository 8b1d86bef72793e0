"""AmazingData request rate: a real backfill task (planning, the adapter, validation, commits)
against the emulator's per-user limits (5 requests in any sliding second, 2 in flight; the
login not counted), through the file-backed governor every process on a data root shares.
The figure that matters is the sustained rate as the emulator saw it, as a share of the 5/s,
with zero violations and zero 429s.

With 2 requests in flight, the rate is also bounded by 2 / (time to answer and read one
call): the last case's answers are big enough (and the emulator, in this process, slow enough
to build them) that this bound, not the governor, sets its figure.

    python -m bench amazingdata_rate
"""

from __future__ import annotations

import asyncio
import datetime as dt
import tempfile
import time
from pathlib import Path

from etl.config import Secret, Settings, VendorSettings
from etl.emulators import AmazingDataEmulator, EmulatorOptions
from etl.emulators.amazingdata_data import codes_of
from etl.emulators.testing import running
from etl.emulators.wire import Outcome, Request
from etl.tasks.backfill import BackfillRequest, backfill
from etl.tasks.runtime import Runtime

NOW = dt.datetime(2024, 6, 28, 12, 0, tzinfo=dt.UTC)
END = dt.date(2024, 6, 28)
LIMIT = 5.0  # requests per sliding second per user (docs/vendors/amazingdata.md "Limits")
SH = tuple(c for c in codes_of("EXTRA_STOCK_A", NOW, 0) if c.endswith(".SH"))
CASES = [
    # label, symbols, freq, first day (every case ends on END)
    ("1 symbol, 1h over 5 years: 60 small calls (~90 bars)", SH[:1], "1h", dt.date(2019, 7, 1)),
    ("4 symbols, 15m over 5 years: 60 calls (~1,400 bars)", SH[:4], "15m", dt.date(2019, 7, 1)),
    ("2 symbols, 1m over 2 years: 24 calls (~10,000 bars)", SH[:2], "1m", dt.date(2022, 7, 1)),
]  # fmt: skip


class _Clocked(AmazingDataEmulator):
    """The emulator, noting when each counted request arrives (as its limiter judges it)."""

    def __init__(self, options: EmulatorOptions | None = None) -> None:
        super().__init__(options)
        self.arrivals: list[float] = []

    def answer(self, request: Request) -> Outcome:
        path = request.path
        if not path.startswith("/_emulator/") and not path.endswith("/auth/login"):
            self.arrivals.append(time.monotonic())
        return super().answer(request)


def _runtime(root: Path, base_url: str) -> Runtime:
    vendor = VendorSettings(
        "amazingdata", base_url=base_url, username="bench", password=Secret("bench")
    )
    settings = Settings(data_dir=root, vendors={"amazingdata": vendor}, jobs_dir=root / "jobs")
    return Runtime(settings, clock=lambda: NOW, progress=False)


def _backfill(root: Path, base_url: str, req: BackfillRequest) -> tuple[int, int]:
    record = asyncio.run(backfill(_runtime(root, base_url), req))
    assert (record.status, record.error_count) == ("completed", 0), record.errors[:3]
    return record.rows_written, int(record.result["requests"])


def _case(label: str, symbols: tuple[str, ...], freq: str, first: dt.date) -> dict[str, object]:
    with running(_Clocked, now=NOW) as server, tempfile.TemporaryDirectory() as work:
        emulator = server.emulator
        assert isinstance(emulator, _Clocked)
        # One small call first, so that calendars are loaded: not a cold start.
        warm = BackfillRequest("amazingdata", "klines", symbols[:1], freq, END, END)
        _backfill(Path(work) / "warm", server.base_url, warm)
        emulator.reset()
        emulator.arrivals = []
        time.sleep(1.1)  # the warm-up's requests leave the emulator's sliding window
        req = BackfillRequest("amazingdata", "klines", symbols, freq, first, END)
        began = time.perf_counter()
        rows, requests = _backfill(Path(work) / "data", server.base_url, req)
        took = time.perf_counter() - began
        stats = server.stats()
    t = emulator.arrivals
    # Steady state as the emulator saw it: after the first second's burst of LIMIT requests,
    # the requests that followed over the time they took to arrive.
    burst = int(LIMIT)
    sustained = (len(t) - burst) / (t[-1] - t[burst - 1]) if len(t) > burst + 1 else 0.0
    return {
        "case": label,
        "requests": requests,
        "rows": rows,
        "seconds": round(took, 2),
        "requests_per_s": round(requests / took, 2),
        "sustained_per_s": round(sustained, 2),
        "share_of_limit": round(sustained / LIMIT, 3),
        "violations": stats["violations"],
        "refused_429": stats["statuses"].get("429", 0),
    }


def run() -> list[dict[str, object]]:
    return [_case(*case) for case in CASES]
