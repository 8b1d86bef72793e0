"""The sim adapter: the vendor contract of etl/vendors/base.py over the synthetic market."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Coroutine
from typing import Any, TypeVar

import pyarrow as pa
import pytest

from etl import schema
from etl.config import VendorSettings
from etl.errors import BadInputError, CapabilityError, ConfigError, PermanentVendorError
from etl.vendors import ADAPTERS, adapter_class
from etl.vendors.base import Span, Unavailable, VendorContext
from etl.vendors.sim import SimAdapter

pytestmark = pytest.mark.filterwarnings(
    "ignore:Series.values returning an ndarray:DeprecationWarning"
)

T = TypeVar("T")
# Wednesday 2024-01-10, 11:00 in Shanghai: the day's bars are still forming.
NOW = dt.datetime(2024, 1, 10, 3, 0, tzinfo=dt.UTC)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def make(now: dt.datetime = NOW, **extra: object) -> SimAdapter:
    settings = VendorSettings(name="sim", extra=extra)
    return SimAdapter(VendorContext(settings=settings, now=lambda: now))


def without_ingested_at(dataset: str) -> pa.Schema:
    full = schema.get(dataset).arrow_schema
    return full.remove(full.get_field_index("ingested_at"))


def test_registry() -> None:
    assert ADAPTERS["sim"] is SimAdapter
    assert adapter_class("sim") is SimAdapter
    with pytest.raises(BadInputError, match="sim"):
        adapter_class("nosuchvendor")


def test_capabilities() -> None:
    caps = make().capabilities()
    assert caps.vendor == "sim" and caps.rate.per_second == 1000.0
    for market in ("SH", "SZ", "BJ", "HK", "US", "IN", "JP", "CFE", "CC", "FX"):
        for freq in ("1m", "5m", "15m", "30m", "1h", "1d", "1w", "1M"):
            cap = caps.require("klines", market, freq)
            assert cap.since == dt.date(2005, 1, 4) and cap.symbols_per_call == 500
    for market in ("SHF", "DCE", "CZC", "INE"):
        assert caps.serves("klines", market, "1d") and not caps.serves("klines", market, "1m")
    for dataset in ("balance_sheet", "income", "cash_flow"):
        assert caps.serves(dataset, "SH") and not caps.serves(dataset, "HK")
    assert caps.serves("calendar", "FX") and caps.serves("main_contracts", "CFE")


def test_check() -> None:
    result = run(make().check())
    assert result.success and "seed 0" in result.message


def test_instruments_table() -> None:
    table = run(make().instruments("HK"))
    assert table.schema == without_ingested_at("instruments")
    rows = table.to_pylist()
    assert rows and {r["market"] for r in rows} == {"HK"}
    tencent = next(r for r in rows if r["symbol"] == "00700.HK")
    assert tencent["vendor_code"] == "00700.HK" and tencent["vendor"] == "sim"
    with pytest.raises(BadInputError):
        run(make().instruments("XX"))


def test_calendar_has_every_day_with_half_days() -> None:
    table = run(make().calendar("HK", dt.date(2024, 12, 23), dt.date(2024, 12, 27)))
    assert table.schema == without_ingested_at("calendar")
    rows = {r["trade_date"]: (r["is_open"], r["is_half_day"]) for r in table.to_pylist()}
    assert rows == {
        dt.date(2024, 12, 23): (True, False),
        dt.date(2024, 12, 24): (True, True),  # Christmas Eve: morning only
        dt.date(2024, 12, 25): (False, False),  # Christmas
        dt.date(2024, 12, 26): (False, False),  # Boxing Day
        dt.date(2024, 12, 27): (True, False),
    }


def test_klines_batch() -> None:
    batch = run(
        make().klines(
            ["600000.SH", "NOPE.SH", "EURUSD.FX", "IF2401.CFE"],
            "1d",
            dt.date(2024, 1, 1),
            dt.date(2024, 1, 31),
        )
    )
    assert batch.table.schema == without_ingested_at("klines")
    assert [(f.symbol, f.reason) for f in batch.failures] == [("NOPE.SH", "unknown symbol")]
    # Served through 2024-01-09: the 10th is still trading at NOW.
    assert batch.answered == [
        Span("600000.SH", dt.date(2024, 1, 1), dt.date(2024, 1, 9)),
        Span("EURUSD.FX", dt.date(2024, 1, 1), dt.date(2024, 1, 9)),
        Span("IF2401.CFE", dt.date(2024, 1, 1), dt.date(2024, 1, 9)),
    ]
    assert [(u.symbol, u.start, u.end) for u in batch.unavailable] == [
        ("600000.SH", dt.date(2024, 1, 10), dt.date(2024, 1, 31)),
        ("EURUSD.FX", dt.date(2024, 1, 10), dt.date(2024, 1, 31)),
        ("IF2401.CFE", dt.date(2024, 1, 10), dt.date(2024, 1, 19)),  # expires on the 19th
    ]
    rows = batch.table.to_pylist()
    assert {r["vendor"] for r in rows} == {"sim"}
    by_symbol: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_symbol.setdefault(r["symbol"], []).append(r)
    # Sessions 2024-01-02 .. 01-09 (six), minus any suspension of the share.
    assert len(by_symbol["EURUSD.FX"]) == 7  # weekdays 01-01 .. 01-09
    assert len(by_symbol["IF2401.CFE"]) == 6
    assert 5 <= len(by_symbol["600000.SH"]) <= 6
    fx = by_symbol["EURUSD.FX"][0]
    assert fx["volume"] is None and fx["amount"] is None and fx["settle"] is None
    future = by_symbol["IF2401.CFE"][0]
    assert future["settle"] is not None and future["open_interest"] > 0
    assert future["ts"] == dt.datetime(2024, 1, 1, 16, 0, tzinfo=dt.UTC)


def test_klines_listed_life_and_old_ranges() -> None:
    adapter = make(dt.datetime(2024, 6, 1, tzinfo=dt.UTC))
    batch = run(adapter.klines(["IF2403.CFE"], "1d", dt.date(2004, 12, 1), dt.date(2024, 5, 31)))
    assert batch.answered == [Span("IF2403.CFE", dt.date(2023, 7, 24), dt.date(2024, 3, 15))]
    assert batch.unavailable == [
        Unavailable("IF2403.CFE", dt.date(2004, 12, 1), dt.date(2005, 1, 3),
                    "sim serves klines since 2005-01-04"),
    ]  # fmt: skip
    # A range wholly before listing is answered: there is nothing there.
    batch = run(adapter.klines(["IF2403.CFE"], "1d", dt.date(2023, 1, 1), dt.date(2023, 3, 1)))
    assert batch.answered == [Span("IF2403.CFE", dt.date(2023, 1, 1), dt.date(2023, 3, 1))]
    assert batch.table.num_rows == 0


def test_klines_in_the_future_are_unavailable() -> None:
    # Beyond the calendars' horizon too: no error, nothing claimed.
    batch = run(make().klines(["600000.SH"], "1h", dt.date(2030, 1, 1), dt.date(2030, 1, 31)))
    assert batch.answered == [] and batch.table.num_rows == 0
    assert [(u.start, u.end) for u in batch.unavailable] == [
        (dt.date(2030, 1, 1), dt.date(2030, 1, 31))
    ]


def test_klines_capability_and_bad_input() -> None:
    adapter = make()
    with pytest.raises(CapabilityError):
        run(adapter.klines(["RB2405.SHF"], "1m", dt.date(2024, 1, 2), dt.date(2024, 1, 2)))
    with pytest.raises(BadInputError):
        run(adapter.klines(["600000.SH"], "2h", dt.date(2024, 1, 2), dt.date(2024, 1, 2)))
    with pytest.raises(BadInputError):
        run(adapter.klines(["600000.SH"], "1d", dt.date(2024, 1, 5), dt.date(2024, 1, 2)))


def test_klines_are_deterministic_and_seeded() -> None:
    args = (["600519.SH", "00700.HK"], "30m", dt.date(2024, 1, 2), dt.date(2024, 1, 5))
    a = run(make().klines(*args)).table
    b = run(make().klines(*args)).table
    c = run(make(seed=3).klines(*args)).table
    assert a.equals(b)
    assert not a.column("close").equals(c.column("close"))
    with pytest.raises(ConfigError):
        make(seed="three").seed  # noqa: B018


def test_statements() -> None:
    adapter = make(dt.datetime(2024, 6, 1, tzinfo=dt.UTC))
    table = run(
        adapter.statements(
            "balance_sheet", ["600000.SH", "NOPE.SH"], dt.date(2023, 1, 1), dt.date(2023, 12, 31)
        )
    )
    assert table.schema == without_ingested_at("balance_sheet")
    periods = {r["reporting_period"] for r in table.to_pylist()}
    assert periods == {dt.date(2023, 3, 31), dt.date(2023, 6, 30), dt.date(2023, 9, 30),
                       dt.date(2023, 12, 31)}  # fmt: skip
    with pytest.raises(PermanentVendorError):
        run(adapter.statements("income", ["NOPE.SH"], None, None))
    with pytest.raises(CapabilityError):
        run(adapter.statements("klines", ["600000.SH"], None, None))


def test_future_varieties_and_main_contracts() -> None:
    varieties = run(make().future_varieties())
    assert varieties.schema == without_ingested_at("future_varieties")
    assert {(r["variety"], r["exchange"]) for r in varieties.to_pylist()} >= {
        ("IF", "CFE"), ("IH", "CFE"), ("IC", "CFE"), ("IM", "CFE"),
        ("T", "CFE"), ("TF", "CFE"), ("TS", "CFE"), ("TL", "CFE"),
        ("RB", "SHF"), ("CU", "SHF"), ("M", "DCE"), ("SR", "CZC"), ("SC", "INE"),
    }  # fmt: skip
    # Saturday 2024-01-13: the latest session is Friday the 12th, when IF rolled to 2402.
    saturday = make(dt.datetime(2024, 1, 13, 2, 0, tzinfo=dt.UTC))
    table = run(saturday.main_contracts())
    assert table.schema == without_ingested_at("main_contracts")
    mains = {r["variety"]: (r["trade_date"], r["symbol"]) for r in table.to_pylist()}
    assert mains["IF"] == (dt.date(2024, 1, 12), "IF2402.CFE")
    assert mains["T"] == (dt.date(2024, 1, 12), "T2403.CFE")
    assert mains["SR"] == (dt.date(2024, 1, 12), "SR405.CZC")


@pytest.mark.benchmark
def test_generation_speed() -> None:
    """300 shares x 2 years of 1d and 20 x 5 sessions of 1m, well under 2 s."""
    import time

    adapter = make(dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    shares = [
        r["symbol"] for r in run(adapter.instruments("SZ")).to_pylist() if r["type"] == "stock"
    ]
    shares += [
        r["symbol"] for r in run(adapter.instruments("SH")).to_pylist() if r["type"] == "stock"
    ]
    began = time.perf_counter()
    daily = run(adapter.klines(shares[:300], "1d", dt.date(2023, 1, 1), dt.date(2024, 12, 31)))
    minute = run(adapter.klines(shares[:20], "1m", dt.date(2024, 12, 23), dt.date(2024, 12, 27)))
    took = time.perf_counter() - began
    assert daily.table.num_rows > 100_000 and minute.table.num_rows > 20_000
    assert took < 2.0
