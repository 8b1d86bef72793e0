"""The AmazingData adapter against a fake platform serving the spec's payloads.

Expected rows are literal: timestamps to the second, prices to the digit.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from etl.config import Secret, VendorSettings
from etl.errors import (
    AuthError,
    CapabilityError,
    PermanentVendorError,
    SchemaError,
    TransientVendorError,
)
from etl.normalize import validate, validate_klines
from etl.vendors import ADAPTERS, adapter_class
from etl.vendors.amazingdata import AmazingDataAdapter
from etl.vendors.base import Failure, InstrumentMap, Span, Unavailable, VendorContext
from tests.vendors._amazingdata_fake import (
    PASSWORD,
    SDK_FAILED,
    TOO_MANY,
    USERNAME,
    FakeAmazing,
    error,
)
from tests.vendors._stub import Reply, StubServer

T = TypeVar("T")
UTC = dt.UTC
D = dt.date
# Wednesday 2024-01-10, 20:00 in Shanghai: that day's bars are final.
NOW = dt.datetime(2024, 1, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def fake() -> Iterator[tuple[FakeAmazing, str]]:
    platform = FakeAmazing()
    with StubServer(platform) as server:
        yield platform, server.url + "/api/v1"


def adapter(
    base_url: str,
    *,
    now: dt.datetime = NOW,
    password: str = PASSWORD,
    state_dir: Path | None = None,
    rate: float | None = None,
) -> AmazingDataAdapter:
    settings = VendorSettings(
        name="amazingdata",
        base_url=base_url,
        username=USERNAME,
        password=Secret(password),
        rate=rate,
        extra={"backoff_base": 0.01, "backoff_jitter": 0.0},
    )
    return AmazingDataAdapter(VendorContext(settings, now=lambda: now, state_dir=state_dir))


def run(ad: AmazingDataAdapter, fn: Callable[[AmazingDataAdapter], Awaitable[T]]) -> T:
    async def go() -> T:
        try:
            return await fn(ad)
        finally:
            await ad.aclose()

    return asyncio.run(go())


def test_registry_and_capabilities() -> None:
    assert ADAPTERS["amazingdata"] is AmazingDataAdapter is adapter_class("amazingdata")
    assert AmazingDataAdapter.required_settings == ("username", "password")
    caps = adapter("http://unused").capabilities()
    for market in ("SH", "SZ", "BJ"):
        for freq in ("1m", "5m", "15m", "30m", "1h", "1d", "1w", "1M"):
            cap = caps.require("klines", market, freq)
            assert cap.since == D(2013, 1, 1) and cap.symbols_per_call == 50
    futures = caps.require("klines", "CFE", "1m")
    assert futures.since == D(2010, 4, 16) and "settle" in futures.note
    assert futures.span_days_per_call == {f: 31 for f in ("1m", "5m", "15m", "30m", "1h")}
    assert "1d" not in caps.require("klines", "SH", "1d").span_days_per_call
    for market in ("SH", "SZ", "BJ", "CFE"):
        assert caps.serves("calendar", market) and caps.serves("instruments", market)
    assert caps.require("calendar", "CFE").since == D(2010, 4, 16)
    for dataset in ("balance_sheet", "income", "cash_flow"):
        assert caps.require(dataset, "SZ").since == D(2013, 1, 1)
        assert not caps.serves(dataset, "CFE")
    assert caps.serves("future_varieties", "CFE") and caps.serves("main_contracts", "CFE")
    for market in ("SHF", "DCE", "CZC", "INE", "HK", "US", "CC", "FX"):
        assert not caps.serves("klines", market, "1d")
    assert (caps.rate.per_second, caps.rate.in_flight) == (5.0, 2)
    assert adapter("http://unused", rate=3).capabilities().rate.per_second == 3


def test_unserved_symbols_are_refused_before_any_request(fake: tuple[FakeAmazing, str]) -> None:
    platform, url = fake
    with pytest.raises(CapabilityError):
        symbols = ["600000.SH", "RB2405.SHF"]
        run(adapter(url), lambda a: a.klines(symbols, "1d", D(2024, 1, 2), D(2024, 1, 2)))
    assert platform.logins == 0 and not platform.data_calls


def test_minute_klines(fake: tuple[FakeAmazing, str]) -> None:
    platform, url = fake
    day = D(2024, 1, 2)
    symbols = ["600000.SH", "000001.SZ", "999999.SH"]
    batch = run(adapter(url), lambda a: a.klines(symbols, "1m", day, day))
    (call,) = platform.data_calls
    assert call.path == "/api/v1/stock/kline"
    assert call.query == {
        "codes": "600000.SH,000001.SZ,999999.SH",
        "start_date": "20240102",
        "end_date": "20240102",
        "period": "min1",
    }
    base = {"symbol": "600000.SH", "freq": "1m", "trade_date": day, "settle": None,
            "open_interest": None, "vendor": "amazingdata",
            "request_id": "amazingdata-min1-20240102-20240102", "source": "rest"}  # fmt: skip
    assert batch.table.to_pylist() == [
        # "2024-01-02 09:30:00" Shanghai is the bar start 01:30:00Z
        {**base, "ts": dt.datetime(2024, 1, 2, 1, 30, tzinfo=UTC), "open": 6.57, "high": 6.58,
         "low": 6.55, "close": 6.56, "volume": 1523400.0, "amount": 9993504.0},
        {**base, "ts": dt.datetime(2024, 1, 2, 1, 31, tzinfo=UTC), "open": 6.56, "high": 6.57,
         "low": 6.56, "close": 6.57, "volume": 412300.0, "amount": 2707210.5},
    ]  # fmt: skip
    # 000001.SZ answered [] (confirmed empty); 999999.SH is unknown to the vendor.
    assert batch.answered == [Span("000001.SZ", day, day), Span("600000.SH", day, day)]
    assert [(f.symbol, f.start, f.end) for f in batch.failures] == [("999999.SH", day, day)]
    assert "代码不存在" in batch.failures[0].reason
    assert batch.unavailable == [] and batch.requests == 1  # the login is not a data request
    checked = validate_klines(batch.table, freq="1m", start=day, end=day, now=NOW)
    assert checked.frame.height == 2 and not checked.issues


def test_daily_future_klines_carry_settle_and_open_interest(fake: tuple[FakeAmazing, str]) -> None:
    platform, url = fake
    start, end = D(2024, 1, 2), D(2024, 1, 3)
    batch = run(adapter(url), lambda a: a.klines(["IF2401.CFE"], "1d", start, end))
    (call,) = platform.data_calls
    assert call.path == "/api/v1/future/kline" and call.query["period"] == "daily"
    rows = [
        (r["ts"], r["trade_date"], r["close"], r["volume"], r["settle"], r["open_interest"])
        for r in batch.table.to_pylist()
    ]
    assert rows == [
        # daily: 00:00 Asia/Shanghai of the trade date, i.e. 16:00Z the day before
        (dt.datetime(2024, 1, 1, 16, tzinfo=UTC), D(2024, 1, 2), 3405.6, 80331.0, 3410.4, 152340.0),
        (dt.datetime(2024, 1, 2, 16, tzinfo=UTC), D(2024, 1, 3), 3386.8, 91207.0, 3391.0, 150118.0),
    ]  # fmt: skip
    assert batch.answered == [Span("IF2401.CFE", start, end)]
    checked = validate_klines(batch.table, freq="1d", start=start, end=end, now=NOW)
    assert checked.frame.height == 2 and not checked.issues


def test_minute_calls_are_cut_by_50_codes_and_31_days(fake: tuple[FakeAmazing, str]) -> None:
    platform, url = fake
    codes = [f"KNOWN{i:03d}.SZ" for i in range(120)]  # the fake knows any KNOWN* code
    start, end = D(2024, 1, 1), D(2024, 3, 15)
    later = dt.datetime(2024, 6, 28, tzinfo=UTC)
    batch = run(adapter(url, now=later), lambda a: a.klines(codes, "5m", start, end))
    windows = [("20240101", "20240131"), ("20240201", "20240302"), ("20240303", "20240315")]
    sizes = [50, 50, 20]
    got = [
        (len(c.query["codes"].split(",")), (c.query["start_date"], c.query["end_date"]))
        for c in platform.data_calls
    ]
    assert got == [(n, w) for n in sizes for w in windows]
    assert batch.requests == 9 and not batch.failures and batch.table.num_rows == 0
    assert batch.answered == [Span(c, start, end) for c in sorted(codes)]  # windows merged


def test_ranges_before_history_or_after_now_are_unavailable(fake: tuple[FakeAmazing, str]) -> None:
    platform, url = fake
    platform.bars["600000.SH"] = []  # only the booking of ranges matters here
    # 11:00 in Shanghai on 2024-01-10: that day is not final yet.
    morning = dt.datetime(2024, 1, 10, 3, 0, tzinfo=UTC)
    old = run(adapter(url), lambda a: a.klines(["600000.SH"], "1d", D(2012, 12, 1), D(2013, 1, 10)))
    new = run(
        adapter(url, now=morning),
        lambda a: a.klines(["600000.SH"], "1d", D(2024, 1, 8), D(2024, 1, 12)),
    )
    why = "AmazingData serves these klines from 2013-01-01"
    assert old.unavailable == [Unavailable("600000.SH", D(2012, 12, 1), D(2012, 12, 31), why)]
    assert old.answered == [Span("600000.SH", D(2013, 1, 1), D(2013, 1, 10))]
    assert new.unavailable == [
        Unavailable("600000.SH", D(2024, 1, 10), D(2024, 1, 12), "not complete yet at now")
    ]
    assert new.answered == [Span("600000.SH", D(2024, 1, 8), D(2024, 1, 9))]
    assert [(c.query["start_date"], c.query["end_date"]) for c in platform.data_calls] == [
        ("20130101", "20130110"),
        ("20240108", "20240109"),
    ]


def test_a_batch_of_unknown_codes_fails_those_codes(fake: tuple[FakeAmazing, str]) -> None:
    _, url = fake
    day = D(2024, 1, 2)
    batch = run(adapter(url), lambda a: a.klines(["999998.SH", "999999.SH"], "1d", day, day))
    assert [f.symbol for f in batch.failures] == ["999998.SH", "999999.SH"]
    assert all(isinstance(f, Failure) and "代码不存在" in f.reason for f in batch.failures)
    assert batch.table.num_rows == 0 and batch.answered == []


def test_schema_drift(fake: tuple[FakeAmazing, str]) -> None:
    platform, url = fake
    day = D(2024, 1, 2)
    bar = dict(platform.bars["600000.SH"][0])
    platform.bars["600000.SH"] = [{**bar, "turnover_rate": 0.01}]  # extra: ignored
    batch = run(adapter(url), lambda a: a.klines(["600000.SH"], "1m", day, day))
    assert batch.table.num_rows == 1 and "turnover_rate" not in batch.table.column_names
    renamed = {("kline_time" if k == "trade_date" else k): v for k, v in bar.items()}
    platform.bars["600000.SH"] = [renamed]  # rename: the call fails, nothing is stored
    with pytest.raises(SchemaError, match="trade_date"):
        run(adapter(url), lambda a: a.klines(["600000.SH"], "1m", day, day))


def test_bad_prices_pass_through_to_validation(fake: tuple[FakeAmazing, str]) -> None:
    platform, url = fake
    day = D(2024, 1, 2)
    bar = platform.bars["600000.SH"][0]
    platform.bars["600000.SH"] = [{**bar, "close": float("nan")}]  # the bare NaN token
    batch = run(adapter(url), lambda a: a.klines(["600000.SH"], "1m", day, day))
    checked = validate_klines(batch.table, freq="1m", start=day, end=day, now=NOW)
    assert checked.frame.height == 0 and checked.rejected == 1


def test_expired_token_relogs_in_once(fake: tuple[FakeAmazing, str]) -> None:
    platform, url = fake

    async def two_calls(a: AmazingDataAdapter) -> Any:
        await a.future_varieties()
        platform.revoke()  # auth_expired: issued tokens stop working, a new login works
        return await a.main_contracts()

    assert run(adapter(url), two_calls).num_rows == 3
    assert platform.logins == 2


def test_refused_relogin_is_an_auth_error(fake: tuple[FakeAmazing, str]) -> None:
    platform, url = fake

    async def two_calls(a: AmazingDataAdapter) -> Any:
        await a.future_varieties()
        platform.revoke()
        platform.refuse_logins = True  # auth_expired:login
        return await a.main_contracts()

    with pytest.raises(AuthError) as info:
        run(adapter(url), two_calls)
    assert info.value.exit_code == 3 and "用户名或密码错误" in str(info.value)
    assert platform.logins == 2


def test_check(fake: tuple[FakeAmazing, str]) -> None:
    _, url = fake
    ok = run(adapter(url), lambda a: a.check())
    assert ok.success and ok.message == "logged in as admin" and ok.response_time > 0
    bad = run(adapter(url, password="wrong-pw-42"), lambda a: a.check())
    assert not bad.success and "用户名或密码错误" in bad.message
    assert "ETL_AMAZINGDATA_PASSWORD" in bad.message and "wrong-pw-42" not in bad.message


@pytest.mark.parametrize(
    ("replies", "error_class", "calls"),
    [
        ([error(400, "参数错误: period")], PermanentVendorError, 1),  # final at once
        ([SDK_FAILED] * 4, TransientVendorError, 4),  # 500: first try and 3 retries
        ([TOO_MANY, TOO_MANY], None, 3),  # 429 twice, then the answer
    ],
    ids=["400", "500", "429"],
)
def test_errors_table(
    fake: tuple[FakeAmazing, str], replies: list[Reply], error_class: Any, calls: int
) -> None:
    platform, url = fake
    platform.next = list(replies)
    if error_class is None:
        assert run(adapter(url), lambda a: a.future_varieties()).num_rows == 3
    else:
        with pytest.raises(error_class):
            run(adapter(url), lambda a: a.future_varieties())
    assert len(platform.data_calls) == calls


def test_statements_keep_every_version(fake: tuple[FakeAmazing, str]) -> None:
    platform, url = fake
    table = run(
        adapter(url),
        lambda a: a.statements("balance_sheet", ["600000.SH"], D(2023, 1, 1), D(2023, 12, 31)),
    )
    (call,) = platform.data_calls
    assert call.path == "/api/v1/finance/balance-sheet"
    assert call.query == {"codes": "600000.SH", "start_date": "20230101", "end_date": "20231231"}
    rows = table.to_pylist()
    ident = {"symbol": "600000.SH", "security_name": "浦发银行",
             "reporting_period": D(2023, 12, 31), "report_type": "4",
             "ann_date": D(2024, 3, 30), "comp_type_code": "2", "currency": "CNY",
             "vendor": "amazingdata"}  # fmt: skip
    # first the original report, then the restatement announced later (STATEMENT_TYPE 4)
    assert [{k: r[k] for k in ident} for r in rows] == [ident, ident]
    assert [(r["statement_type"], r["actual_ann_date"]) for r in rows] == [
        ("1", D(2024, 3, 30)),
        ("4", D(2024, 4, 26)),
    ]
    assert [r["total_assets"] for r in rows] == [9007247000000.0, 9007251000000.0]
    assert [r["minority_equity"] for r in rows] == [12086000000.0, 12086000000.0]
    assert rows[0]["currency_cap"] is None and rows[0]["total_cur_assets"] is None
    assert "memo" not in table.column_names
    assert not validate("balance_sheet", table).issues


def test_statements_schema_and_unknown_codes(fake: tuple[FakeAmazing, str]) -> None:
    platform, url = fake
    with pytest.raises(PermanentVendorError, match="代码不存在"):
        run(adapter(url), lambda a: a.statements("balance_sheet", ["999999.SH"], None, None))
    row = platform.finance["600000.SH"][0]
    renamed = {("REPORT_PERIOD" if k == "REPORTING_PERIOD" else k): v for k, v in row.items()}
    platform.finance["600000.SH"] = [renamed]
    with pytest.raises(SchemaError, match="REPORTING_PERIOD"):
        run(adapter(url), lambda a: a.statements("balance_sheet", ["600000.SH"], None, None))
    with pytest.raises(CapabilityError):
        run(adapter(url), lambda a: a.statements("balance_sheet", ["IF2401.CFE"], None, None))
    assert "start_date" not in platform.data_calls[0].query  # no range: no filter sent


def test_calendar(fake: tuple[FakeAmazing, str]) -> None:
    platform, url = fake
    table = run(adapter(url), lambda a: a.calendar("BJ", D(2024, 1, 1), D(2024, 1, 7)))
    (call,) = platform.data_calls
    assert call.query == {"market": "SH", "start_date": "20240101", "end_date": "20240107"}
    assert [(r["market"], r["trade_date"], r["is_open"]) for r in table.to_pylist()] == [
        ("BJ", D(2024, 1, 1), False),  # New Year's Day
        ("BJ", D(2024, 1, 2), True),
        ("BJ", D(2024, 1, 3), True),
        ("BJ", D(2024, 1, 4), True),
        ("BJ", D(2024, 1, 5), True),
        ("BJ", D(2024, 1, 6), False),  # Saturday
        ("BJ", D(2024, 1, 7), False),  # Sunday
    ]
    assert not any(table.column("is_half_day").to_pylist())
    # Before CFFEX opened nothing is claimed, open or closed.
    old = run(adapter(url), lambda a: a.calendar("CFE", D(2010, 1, 1), D(2010, 4, 20)))
    assert platform.data_calls[1].query["start_date"] == "20100416"
    assert old.column("trade_date").to_pylist()[0] == D(2010, 4, 16)


def test_instruments(fake: tuple[FakeAmazing, str]) -> None:
    platform, url = fake
    table = run(adapter(url), lambda a: a.instruments())
    rows = {r["symbol"]: r for r in table.to_pylist()}
    assert rows["600000.SH"] == {
        "symbol": "600000.SH", "market": "SH", "name": "浦发银行", "type": "stock",
        "currency": "CNY", "list_date": D(1999, 11, 10), "delist_date": None,
        "vendor_code": "600000.SH", "vendor_id": None,
        "vendor_extra": '{"delist_date": null, "list_date": "19991110", "name": "浦发银行", '
                        '"type": "stock"}',
        "vendor": "amazingdata",
    }  # fmt: skip
    assert rows["IF2401.CFE"]["delist_date"] == D(2024, 1, 19)
    assert {s: r["type"] for s, r in rows.items()} == {
        "600000.SH": "stock", "000001.SZ": "stock", "430047.BJ": "stock",
        "510300.SH": "etf", "000300.SH": "index", "IF2401.CFE": "future",
    }  # fmt: skip
    # 000001.SZ is in today's list but its info answers 404: kept, without a name, and with
    # nothing in vendor_extra, so that the next sync asks again
    assert rows["000001.SZ"]["name"] is None and rows["000001.SZ"]["market"] == "SZ"
    assert rows["000001.SZ"]["vendor_extra"] is None
    assert not validate("instruments", table).issues
    platform.data_calls.clear()
    futures = run(adapter(url), lambda a: a.instruments("CFE"))
    assert futures.column("symbol").to_pylist() == ["IF2401.CFE"]
    asked = [c.query.get("security_type") or c.path for c in platform.data_calls]
    assert asked == ["EXTRA_FUTURE", "/api/v1/base/codes/IF2401.CFE/info"]


def test_instruments_ask_only_for_codes_the_map_lacks(fake: tuple[FakeAmazing, str]) -> None:
    platform, url = fake
    first = run(adapter(url), lambda a: a.instruments())
    # What the next run's instruments map holds: every row but 430047.BJ's, whose stored
    # vendor_extra is damaged (an older writer's, say): that code is asked again.
    rows = [r for r in first.to_pylist() if r["symbol"] != "430047.BJ"]
    known = InstrumentMap(
        codes={r["symbol"]: r["vendor_code"] for r in first.to_pylist()},
        extra={
            **{r["symbol"]: json.loads(r["vendor_extra"]) for r in rows if r["vendor_extra"]},
            "430047.BJ": {"name": "诺思兰德", "type": "stock", "list_date": "2020-07-27"},
        },
    )  # fmt: skip
    platform.data_calls.clear()
    settings = adapter(url).settings
    again = run(
        AmazingDataAdapter(VendorContext(settings, now=lambda: NOW, instruments=known)),
        lambda a: a.instruments(),
    )
    asked = [c.path.removeprefix("/api/v1") for c in platform.data_calls]
    assert sorted(asked) == sorted([
        "/base/codes", "/base/codes", "/base/codes", "/base/codes",  # the four lists
        "/base/codes/000001.SZ/info",  # 404 last time: nothing was kept
        "/base/codes/430047.BJ/info",  # kept badly
    ])  # fmt: skip
    assert again.to_pylist() == first.to_pylist()  # the same rows, from the map


def test_varieties_and_main_contracts(fake: tuple[FakeAmazing, str]) -> None:
    _, url = fake
    varieties = run(adapter(url), lambda a: a.future_varieties())
    assert varieties.to_pylist()[0] == {
        "variety": "IF", "exchange": "CFE", "name": "沪深300股指期货", "vendor": "amazingdata"
    }  # fmt: skip
    # 17:00Z on 2024-01-10 is already 01:00 on the 11th in Shanghai
    late = dt.datetime(2024, 1, 10, 17, 0, tzinfo=UTC)
    mains = run(adapter(url, now=late), lambda a: a.main_contracts())
    assert mains.to_pylist() == [
        {"exchange": "CFE", "variety": v, "trade_date": D(2024, 1, 11), "symbol": s,
         "vendor": "amazingdata"}
        for v, s in (("IF", "IF2403.CFE"), ("IC", "IC2403.CFE"), ("T", "T2403.CFE"))
    ]  # fmt: skip


def test_secrets_stay_out_of_errors_and_logs(
    fake: tuple[FakeAmazing, str], caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    platform, url = fake
    caplog.set_level(logging.DEBUG)

    async def calls(a: AmazingDataAdapter) -> None:
        assert (await a.check()).success
        platform.next = [SDK_FAILED] * 4
        await a.future_varieties()

    with pytest.raises(TransientVendorError) as info:
        run(adapter(url, state_dir=tmp_path), calls)
    token = platform.tokens[-1]
    text = caplog.text + str(info.value)
    assert "SDK调用失败" in text and "retry 3 of 3" in text
    assert PASSWORD not in text and token not in text
    assert (tmp_path / "amazingdata.json").is_file()  # the shared governor
    assert token not in (tmp_path / "amazingdata.json").read_text()
