"""The AmazingData adapter against the real emulator (etl/emulators), which serves the same
synthetic market as the ``sim`` vendor: what comes over the wire must equal what sim gives,
the emulator must count zero limit violations, and its faults must be survived."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa
import pytest

from etl.config import Secret, VendorSettings
from etl.emulators import AmazingDataEmulator
from etl.emulators.testing import running
from etl.errors import AuthError, SchemaError
from etl.normalize import validate_klines
from etl.vendors.amazingdata import AmazingDataAdapter
from etl.vendors.base import VendorContext
from etl.vendors.sim import SimAdapter

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:Series.values returning an ndarray:DeprecationWarning"),
]

T = TypeVar("T")
D = dt.date
NOW = dt.datetime(2024, 6, 28, 12, 0, tzinfo=dt.UTC)  # Friday, 20:00 in Shanghai
VALUES = ("symbol", "freq", "ts", "trade_date", "open", "high", "low", "close", "volume",
          "amount", "settle", "open_interest")  # fmt: skip


def make(base_url: str, state_dir: Path | None = None) -> AmazingDataAdapter:
    settings = VendorSettings(
        name="amazingdata",
        base_url=base_url,
        username="analyst",
        password=Secret("pw-for-tests"),
        extra={"backoff_base": 0.05, "backoff_jitter": 0.0},
    )
    return AmazingDataAdapter(VendorContext(settings, now=lambda: NOW, state_dir=state_dir))


def run(ad: AmazingDataAdapter, fn: Callable[[AmazingDataAdapter], Awaitable[T]]) -> T:
    async def go() -> T:
        try:
            return await fn(ad)
        finally:
            await ad.aclose()

    return asyncio.run(go())


def sim_klines(symbols: list[str], freq: str, start: D, end: D) -> pa.Table:
    sim = SimAdapter(VendorContext(VendorSettings("sim"), now=lambda: NOW))
    return asyncio.run(sim.klines(symbols, freq, start, end)).table


def values(table: pa.Table) -> list[dict[str, Any]]:
    return (
        table.select(list(VALUES))
        .sort_by([("symbol", "ascending"), ("ts", "ascending")])
        .to_pylist()
    )


@pytest.mark.parametrize(
    ("symbols", "freq", "start", "end"),
    [
        (["600000.SH", "000001.SZ", "IF2407.CFE"], "1d", D(2024, 5, 1), D(2024, 6, 28)),
        (["000001.SZ", "IF2407.CFE"], "15m", D(2024, 5, 20), D(2024, 6, 28)),  # 2 windows
    ],
)
def test_klines_equal_the_synthetic_market(symbols: list[str], freq: str, start: D, end: D) -> None:
    with running(AmazingDataEmulator, now=NOW) as server:
        batch = run(make(server.base_url), lambda a: a.klines(symbols, freq, start, end))
        stats = server.stats()
    assert not batch.failures and not batch.unavailable
    assert values(batch.table) == values(sim_klines(symbols, freq, start, end))
    checked = validate_klines(batch.table, freq=freq, start=start, end=end, now=NOW)
    assert not checked.issues
    assert stats["violations"] == 0


def test_statements_calendar_instruments_snapshots() -> None:
    async def everything(a: AmazingDataAdapter) -> dict[str, pa.Table]:
        return {
            "income": await a.statements("income", ["600000.SH"], D(2022, 1, 1), None),
            "calendar": await a.calendar("SZ", D(2024, 6, 1), D(2024, 6, 30)),
            "instruments": await a.instruments("BJ"),
            "varieties": await a.future_varieties(),
            "mains": await a.main_contracts(),
        }

    with running(AmazingDataEmulator, now=NOW) as server:
        got = run(make(server.base_url), everything)
        assert server.stats()["violations"] == 0
    income = got["income"].to_pylist()
    assert income and {r["symbol"] for r in income} == {"600000.SH"}
    assert all(r["reporting_period"] >= D(2022, 1, 1) for r in income)
    june = got["calendar"].to_pylist()
    assert len(june) == 30 and sum(r["is_open"] for r in june) == 19  # Dragon Boat on the 10th
    assert set(got["instruments"].column("market").to_pylist()) == {"BJ"}
    assert {"IF", "IC", "IH", "T"} <= set(got["varieties"].column("variety").to_pylist())
    assert set(got["mains"].column("trade_date").to_pylist()) == {D(2024, 6, 28)}


def test_sustained_calls_keep_the_limits(tmp_path: Path) -> None:
    symbols = ["600000.SH", "000001.SZ", "000002.SZ", "600009.SH"]

    async def load(a: AmazingDataAdapter) -> int:
        async def one(i: int) -> int:
            day = D(2024, 6, 3) + dt.timedelta(days=i % 25)
            return (await a.klines([symbols[i % 4]], "1d", day, day)).requests

        return sum(await asyncio.gather(*(one(i) for i in range(30))))

    with running(AmazingDataEmulator, now=NOW) as server:
        began = time.monotonic()
        requests = run(make(server.base_url, state_dir=tmp_path), load)
        took = time.monotonic() - began
        stats = server.stats()
    assert requests == 30 and stats["violations"] == 0
    # 5 per sliding second: the first 5 at once, then 25 more in at least 5 windows.
    assert 25 / 5 * 1.0 <= took < 25 / 5 / 0.85 + 1.0


@pytest.mark.parametrize(
    "fault",
    [
        "http_500@2",  # request 1 is the login
        "connection_reset@2",
        "truncated_body@2",
        "malformed_json@2",
        "timeout:0.3@2",
        "rate_limit_burst@1",  # the login is outside the limits, so not counted here
    ],
)
def test_faults_are_survived(fault: str) -> None:
    day = D(2024, 6, 28)
    with running(AmazingDataEmulator, now=NOW, faults=fault) as server:
        batch = run(make(server.base_url), lambda a: a.klines(["600000.SH"], "1d", day, day))
        stats = server.stats()
    assert batch.table.num_rows == 1 and batch.requests == 2  # the failed try and the retry
    assert stats["faults_applied"] == 1 and stats["violations"] == 0, stats


def test_auth_expired_relogin_and_refusal() -> None:
    day = D(2024, 6, 28)

    async def two(a: AmazingDataAdapter) -> int:
        await a.klines(["600000.SH"], "1d", day, day)
        return (await a.klines(["000001.SZ"], "1d", day, day)).table.num_rows

    with running(AmazingDataEmulator, now=NOW, faults="auth_expired@3") as server:
        assert run(make(server.base_url), two) == 1
    with (
        running(AmazingDataEmulator, now=NOW, faults="auth_expired:login@3+") as server,
        pytest.raises(AuthError),
    ):
        run(make(server.base_url), two)


def test_schema_drift() -> None:
    day = D(2024, 6, 28)
    with running(AmazingDataEmulator, now=NOW, faults="schema_drift:extra") as server:
        batch = run(make(server.base_url), lambda a: a.klines(["600000.SH"], "1d", day, day))
        assert batch.table.num_rows == 1
    with (
        running(AmazingDataEmulator, now=NOW, faults="schema_drift:rename") as server,
        pytest.raises(SchemaError),
    ):
        run(make(server.base_url), lambda a: a.klines(["600000.SH"], "1d", day, day))
