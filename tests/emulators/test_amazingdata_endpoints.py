"""Every AmazingData endpoint against literal answers (docs/vendors/amazingdata.md).

The literal values were read off the emulator once at NOW (2024-06-28T12:00Z, seed 0),
checked by hand against the spec (field names, wire types, order, OHLC consistency) and
pinned here: a change to the synthetic market or the wire form shows up as a diff.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import httpx
import pytest
from emu_helpers import NOW, login

from etl.emulators import EmulatorServer
from etl.emulators.testing import running


def data(reply: httpx.Response) -> Any:
    assert reply.status_code == 200, reply.text
    doc = reply.json()
    assert (doc["code"], doc["message"]) == (200, "success")
    return doc["data"]


def error(reply: httpx.Response) -> tuple[int, str]:
    doc = reply.json()
    assert doc["code"] == reply.status_code and doc["data"] is None and set(doc) == {
        "code", "message", "data"
    }  # fmt: skip
    return reply.status_code, doc["message"]


def test_me(ad: httpx.Client) -> None:
    me = data(ad.get("/auth/me"))
    assert me == {"id": 1, "username": me["username"], "email": f"{me['username']}@example.com",
                  "role": "user", "is_active": True}  # fmt: skip


@pytest.mark.parametrize(
    ("security_type", "count", "head", "tail"),
    [
        # A shares of SH, then SZ, then BJ, listed on 2024-06-28 (delisted ones left out)
        ("EXTRA_STOCK_A", 468, ["600000.SH", "600009.SH", "600016.SH"],
         ["835185.BJ", "870299.BJ", "873223.BJ"]),
        # CFFEX contracts trading that day: index futures 07/08/09/12, treasuries 09/12/03
        ("EXTRA_FUTURE", 28, ["IC2407.CFE", "IC2408.CFE", "IC2409.CFE"],
         ["TS2409.CFE", "TS2412.CFE", "TS2503.CFE"]),
        ("EXTRA_ETF", 5, ["510050.SH", "510300.SH", "588000.SH"],
         ["588000.SH", "159915.SZ", "159919.SZ"]),
        ("EXTRA_INDEX_A", 6, ["000001.SH", "000016.SH", "000300.SH"],
         ["000905.SH", "399001.SZ", "399006.SZ"]),
    ],
)  # fmt: skip
def test_codes_today(
    ad: httpx.Client, security_type: str, count: int, head: list[str], tail: list[str]
) -> None:
    codes = data(ad.get("/base/codes", params={"security_type": security_type}))
    assert (len(codes), codes[:3], codes[-3:]) == (count, head, tail)


def test_codes_are_todays_list() -> None:
    """000539.SZ was delisted on 2023-08-14; 000081.SZ lists on 2025-05-09."""
    for now, present, absent in [
        ("2023-08-14T02:00:00+00:00", "000539.SZ", "000081.SZ"),  # its last day: still listed
        ("2023-08-15T02:00:00+00:00", None, "000539.SZ"),  # the day after: gone
        ("2025-05-09T02:00:00+00:00", "000081.SZ", None),  # listed that morning
    ]:
        at = dt.datetime.fromisoformat(now)
        with running("amazingdata", now=at) as server, login(server.base_url) as client:
            codes = data(client.get("/base/codes", params={"security_type": "EXTRA_STOCK_A"}))
        assert present is None or present in codes
        assert absent is None or absent not in codes


@pytest.mark.parametrize(
    ("params", "days"),
    [
        # Spring Festival 2024: no session from 02-09 to 02-18
        ({"market": "CFE", "start_date": "20240201", "end_date": "20240220"},
         ["20240201", "20240202", "20240205", "20240206", "20240207", "20240208", "20240219",
          "20240220"]),
        # the platform's calendar starts in 2013 (CFE in 2010)
        ({"market": "SH", "start_date": "20121225", "end_date": "20130108"},
         ["20130104", "20130107", "20130108"]),
        ({"market": "SZ", "start_date": "20240106", "end_date": "20240107"}, []),  # a weekend
        ({"market": "SH", "start_date": "20240102", "end_date": "20240102"}, ["20240102"]),
    ],
)  # fmt: skip
def test_calendar(ad: httpx.Client, params: dict[str, str], days: list[str]) -> None:
    assert data(ad.get("/base/calendar", params=params)) == days


@pytest.mark.parametrize(
    ("params", "param"),
    [
        # BJ is not served (the adapter asks for SH)
        ({"market": "BJ", "start_date": "20240101", "end_date": "20240105"}, "market"),
        ({"start_date": "20240101", "end_date": "20240105"}, "market"),  # missing
        ({"market": "SH", "end_date": "20240105"}, "start_date"),  # required (convention)
        ({"market": "SH", "start_date": "2024-01-01", "end_date": "20240105"}, "start_date"),
        ({"market": "SH", "start_date": "20240101", "end_date": "20240230"}, "end_date"),
        ({"market": "SH", "start_date": "20240106", "end_date": "20240105"}, "start_date"),
    ],
)  # fmt: skip
def test_calendar_bad_parameters(ad: httpx.Client, params: dict[str, str], param: str) -> None:
    assert error(ad.get("/base/calendar", params=params)) == (400, f"参数错误: {param}")


@pytest.mark.parametrize(
    ("code", "info"),
    [
        ("600000.SH", {"code": "600000.SH", "name": "浦发银行", "market": "SH", "type": "stock",
                       "list_date": "19991110", "delist_date": None}),
        ("510300.SH", {"code": "510300.SH", "name": "沪深300ETF", "market": "SH", "type": "etf",
                       "list_date": "20120528", "delist_date": None}),
        # a future's expiry is known from its listing
        ("IF2409.CFE", {"code": "IF2409.CFE", "name": "沪深300股指期货2409", "market": "CFE",
                        "type": "future", "list_date": "20240122", "delist_date": "20240920"}),
        # a delisted stock keeps its info
        ("000539.SZ", {"code": "000539.SZ", "name": "东明实业", "market": "SZ", "type": "stock",
                       "list_date": "19980318", "delist_date": "20230814"}),
    ],
)  # fmt: skip
def test_code_info(ad: httpx.Client, code: str, info: dict[str, Any]) -> None:
    assert data(ad.get(f"/base/codes/{code}/info")) == info


@pytest.mark.parametrize(
    "code",
    ["999999.SH", "000081.SZ", "AAPL.US", "RB2405.SHF", "nonsense"],  # unknown, not listed yet,
)  # other markets, other exchanges' futures, not a code
def test_code_info_unknown(ad: httpx.Client, code: str) -> None:
    assert error(ad.get(f"/base/codes/{code}/info")) == (404, f"代码不存在: {code}")


def test_stock_kline_daily_multi_code(ad: httpx.Client) -> None:
    params = {"codes": "600000.SH,999999.SH,000081.SZ,000001.SZ", "start_date": "20240102",
              "end_date": "20240103", "period": "daily"}  # fmt: skip
    got = data(ad.get("/stock/kline", params=params))
    assert list(got) == ["600000.SH", "000001.SZ"]  # request order; unknown codes absent
    assert got["600000.SH"] == [
        {"trade_date": "2024-01-02", "open": 31.19, "high": 31.91, "low": 30.95, "close": 31.61,
         "volume": 333700, "amount": 10508213.0},
        {"trade_date": "2024-01-03", "open": 31.57, "high": 32.04, "low": 31.22, "close": 31.65,
         "volume": 614400, "amount": 19437568.0},
    ]  # fmt: skip
    assert got["000001.SZ"][0] == {"trade_date": "2024-01-02", "open": 6.59, "high": 6.62,
                                   "low": 6.5, "close": 6.57, "volume": 13928200,
                                   "amount": 91415419.33}  # fmt: skip
    batch = data(
        ad.post("/stock/kline/batch", json={**params, "codes": params["codes"].split(",")})
    )
    assert batch == got  # the POST form answers the same


def test_stock_kline_minute_labels_are_bar_starts_in_shanghai(ad: httpx.Client) -> None:
    params = {"codes": "600000.SH", "start_date": "20240102", "end_date": "20240102",
              "period": "min60"}  # fmt: skip
    assert data(ad.get("/stock/kline", params=params)) == {"600000.SH": [
        {"trade_date": "2024-01-02 09:30:00", "open": 31.19, "high": 31.32, "low": 30.96,
         "close": 31.19, "volume": 227400, "amount": 7085026.0},
        {"trade_date": "2024-01-02 10:30:00", "open": 31.19, "high": 31.55, "low": 30.96,
         "close": 31.32, "volume": 717700, "amount": 22447263.67},
        {"trade_date": "2024-01-02 13:00:00", "open": 31.29, "high": 31.66, "low": 31.14,
         "close": 31.5, "volume": 694900, "amount": 21843023.33},
        {"trade_date": "2024-01-02 14:00:00", "open": 31.5, "high": 31.73, "low": 31.27,
         "close": 31.61, "volume": 96200, "amount": 3033827.33},
    ]}  # fmt: skip
    one_minute = data(ad.get("/stock/kline", params={**params, "period": "min1"}))["600000.SH"]
    labels = [b["trade_date"][11:] for b in one_minute]
    assert (len(labels), labels[:2], labels[119:121], labels[-1]) == (
        240,
        ["09:30:00", "09:31:00"],
        ["11:29:00", "13:00:00"],
        "14:59:00",
    )  # 240 bars: 09:30-11:29 and 13:00-14:59


def test_stock_kline_weekly_and_index(ad: httpx.Client) -> None:
    weekly = data(
        ad.get(
            "/stock/kline",
            params={
                "codes": "600000.SH",
                "start_date": "20240101",
                "end_date": "20240131",
                "period": "weekly",
            },
        )
    )
    # a week's trade_date is its first trading day
    assert [b["trade_date"] for b in weekly["600000.SH"]] == [
        "2024-01-02",
        "2024-01-08",
        "2024-01-15",
        "2024-01-22",
        "2024-01-29",
    ]
    index = data(
        ad.get(
            "/stock/kline",
            params={
                "codes": "000300.SH",
                "start_date": "20240102",
                "end_date": "20240102",
                "period": "daily",
            },
        )
    )
    assert index == {"000300.SH": [{"trade_date": "2024-01-02", "open": 3067.93, "high": 3079.21,
                                    "low": 3061.31, "close": 3071.83, "volume": 2693195200,
                                    "amount": 41525434294.22}]}  # fmt: skip


def test_future_kline_daily_has_settle_and_minute_bars_do_not(ad: httpx.Client) -> None:
    params = {"codes": "IF2401.CFE", "start_date": "20240102", "end_date": "20240103",
              "period": "daily"}  # fmt: skip
    assert data(ad.get("/future/kline", params=params))["IF2401.CFE"] == [
        {"trade_date": "2024-01-02", "open": 3452.3, "high": 3468.1, "low": 3444.5,
         "close": 3452.4, "volume": 97960, "amount": 101535540000.0, "settle": 3450.0,
         "open_interest": 152566},
        {"trade_date": "2024-01-03", "open": 3466.3, "high": 3487.9, "low": 3448.5,
         "close": 3468.9, "volume": 60096, "amount": 62531690880.0, "settle": 3469.5,
         "open_interest": 152167},
    ]  # fmt: skip
    minute = data(
        ad.get("/future/kline", params={**params, "end_date": "20240102", "period": "min60"})
    )["IF2401.CFE"]
    assert minute[0] == {
        "trade_date": "2024-01-02 09:30:00",
        "open": 3452.3,
        "high": 3464.0,
        "low": 3444.4,
        "close": 3445.5,
        "volume": 39625,
        "amount": 41027328750.0,
        "settle": None,
        "open_interest": 151609,
    }
    assert minute[-1]["open_interest"] == 152566  # the day's last bar ends with the day's OI


def test_kline_known_codes_without_rows_are_empty_lists(ad: httpx.Client) -> None:
    # IF2407 lists in May 2024: known, but no bars in January; stock codes are not futures
    got = data(ad.get("/future/kline", params={"codes": "IF2407.CFE,600000.SH",
                                               "start_date": "20240102", "end_date": "20240105",
                                               "period": "daily"}))  # fmt: skip
    assert got == {"IF2407.CFE": []}
    holiday = data(
        ad.get(
            "/stock/kline",
            params={
                "codes": "600000.SH",
                "start_date": "20240210",
                "end_date": "20240217",
                "period": "daily",
            },
        )
    )
    assert holiday == {"600000.SH": []}


def test_kline_with_no_known_code_is_404(ad: httpx.Client) -> None:
    params = {"codes": "999999.SH,IF2401.CFE", "start_date": "20240102", "end_date": "20240103",
              "period": "daily"}  # fmt: skip
    assert error(ad.get("/stock/kline", params=params)) == (404, "代码不存在: 999999.SH,IF2401.CFE")


def test_kline_code_and_span_limits(ad: httpx.Client, ad_server: EmulatorServer) -> None:
    codes = data(ad.get("/base/codes", params={"security_type": "EXTRA_STOCK_A"}))
    base = {"start_date": "20240102", "end_date": "20240102", "period": "daily"}
    fifty = data(ad.get("/stock/kline", params={**base, "codes": ",".join(codes[:50])}))
    assert len(fifty) == 50  # 50 codes are allowed
    reply = ad.post("/stock/kline/batch", json={**base, "codes": codes[:51]})
    assert error(reply) == (400, "参数错误: codes")  # 51 are not
    with login(ad_server.base_url) as fresh:
        month = {"codes": "600000.SH", "period": "min30"}
        ok = fresh.get(
            "/stock/kline", params={**month, "start_date": "20240101", "end_date": "20240131"}
        )  # 31 days
        assert len(data(ok)["600000.SH"]) == 22 * 8  # 22 sessions of 8 half-hour bars
        over = fresh.get(
            "/stock/kline", params={**month, "start_date": "20240101", "end_date": "20240201"}
        )  # 32 days
        assert error(over) == (400, "参数错误: end_date")
        daily = fresh.get(
            "/stock/kline",
            params={**month, "period": "daily", "start_date": "20240101", "end_date": "20241231"},
        )
        assert len(data(daily)["600000.SH"]) > 100  # the span limit is for minute periods


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"start_date": "20240102", "end_date": "20240102", "period": "daily"}, "codes"),
        ({"codes": "600000.SH", "end_date": "20240102", "period": "daily"}, "start_date"),
        ({"codes": "600000.SH", "start_date": "20240102", "period": "daily"}, "end_date"),
        ({"codes": "600000.SH", "start_date": "20240102", "end_date": "20240102"}, "period"),
        ({"codes": "600000.SH", "start_date": "20240102", "end_date": "20240102",
          "period": "1d"}, "period"),  # canonical names are not AmazingData's
        ({"codes": "600000.SH", "start_date": "20240103", "end_date": "20240102",
          "period": "daily"}, "start_date"),  # start after end
    ],
)  # fmt: skip
def test_kline_bad_parameters(ad: httpx.Client, params: dict[str, str], param: str) -> None:
    assert error(ad.get("/stock/kline", params=params)) == (400, f"参数错误: {param}")


def test_batch_defaults_to_daily_and_checks_its_body(ad: httpx.Client) -> None:
    body = {"codes": ["600000.SH"], "start_date": "20240102", "end_date": "20240102"}
    bars = data(ad.post("/stock/kline/batch", json=body))["600000.SH"]
    assert [b["trade_date"] for b in bars] == ["2024-01-02"]
    assert error(ad.post("/stock/kline/batch", json={**body, "codes": "600000.SH"})) == (
        400, "参数错误: codes")  # a string, not a list  # fmt: skip
    assert error(ad.post("/stock/kline/batch", content=b"{nope")) == (400, "参数错误: body")


def test_varieties_and_main_contracts(ad: httpx.Client) -> None:
    assert data(ad.get("/cache/future-varieties")) == {"varieties": [
        {"variety": "IF", "name": "沪深300股指期货", "exchange": "CFE"},
        {"variety": "IH", "name": "上证50股指期货", "exchange": "CFE"},
        {"variety": "IC", "name": "中证500股指期货", "exchange": "CFE"},
        {"variety": "IM", "name": "中证1000股指期货", "exchange": "CFE"},
        {"variety": "TS", "name": "2年期国债期货", "exchange": "CFE"},
        {"variety": "TF", "name": "5年期国债期货", "exchange": "CFE"},
        {"variety": "T", "name": "10年期国债期货", "exchange": "CFE"},
        {"variety": "TL", "name": "30年期国债期货", "exchange": "CFE"},
    ]}  # fmt: skip
    assert data(ad.get("/cache/main-contracts")) == {"main_contracts": {
        "IF": "IF2407.CFE", "IH": "IH2407.CFE", "IC": "IC2407.CFE", "IM": "IM2407.CFE",
        "TS": "TS2409.CFE", "TF": "TF2409.CFE", "T": "T2409.CFE", "TL": "TL2409.CFE",
    }}  # fmt: skip


def test_balance_sheet_rows(ad: httpx.Client) -> None:
    params = {"codes": "600000.SH,510300.SH,999999.SH", "start_date": "20231231",
              "end_date": "20231231"}  # fmt: skip
    got = data(ad.get("/finance/balance-sheet", params=params))
    assert got == {
        "600000.SH": [{
            "MARKET_CODE": "600000.SH", "SECURITY_NAME": "浦发银行", "STATEMENT_TYPE": "1",
            "REPORT_TYPE": "4", "REPORTING_PERIOD": "20231231", "ANN_DATE": "20240404",
            "ACTUAL_ANN_DATE": "20240404", "COMP_TYPE_CODE": "2", "CURRENCY_CODE": "CNY",
            "TOTAL_ASSETS": 29133445878.0, "TOTAL_CUR_ASSETS": 17601243130.0,
            "TOT_NONCUR_ASSETS": 11532202748.0, "TOTAL_LIAB": 11171110362.0,
            "TOTAL_CUR_LIAB": 9062314286.0, "TOTAL_NONCUR_LIAB": 2108796076.0,
            "TOT_SHARE_EQUITY_INCL_MIN_INT": 17962335516.0,
            "TOT_SHARE_EQUITY_EXCL_MIN_INT": 17364266961.0, "MINORITY_EQUITY": 598068555.0,
            "TOTAL_LIAB_SHARE_EQUITY": 29133445878.0, "CURRENCY_CAP": 1799242220.0,
            "TOT_SHARE": 2457870000.0,
        }],
        "510300.SH": [],  # a known code without statements; 999999.SH is absent
    }  # fmt: skip
    row = got["600000.SH"][0]
    assert row["TOTAL_ASSETS"] == row["TOTAL_CUR_ASSETS"] + row["TOT_NONCUR_ASSETS"]
    assert row["TOTAL_ASSETS"] == row["TOTAL_LIAB"] + row["TOT_SHARE_EQUITY_INCL_MIN_INT"]


def test_restatements_are_second_rows_visible_once_announced(ad_server: EmulatorServer) -> None:
    """600000.SH restated its Q1 2021 income statement on 2021-07-07."""
    params = {"codes": "600000.SH", "start_date": "20210331", "end_date": "20210331"}
    with login(ad_server.base_url) as client:
        rows = data(client.get("/finance/income", params=params))["600000.SH"]
    identity = [(r["STATEMENT_TYPE"], r["REPORTING_PERIOD"], r["ANN_DATE"], r["ACTUAL_ANN_DATE"])
                for r in rows]  # fmt: skip
    assert identity == [
        ("1", "20210331", "20210411", "20210411"),  # as first announced
        ("4", "20210331", "20210411", "20210707"),  # the restatement, announced later
    ]
    for r in rows:
        assert r["NET_PRO_INCL_MIN_INT_INC"] == r["TOTAL_PROFIT"] - r["INCOME_TAX"]
    before = dt.datetime(2021, 7, 1, tzinfo=dt.UTC)  # as of then, only the first version
    with running("amazingdata", now=before) as server, login(server.base_url) as client:
        early = data(client.get("/finance/income", params=params))["600000.SH"]
    assert [r["STATEMENT_TYPE"] for r in early] == ["1"]


def test_cash_flow_items_and_open_ranges(ad: httpx.Client) -> None:
    got = data(ad.get("/finance/cash-flow", params={"codes": "600000.SH"}))["600000.SH"]
    assert got[0]["REPORTING_PERIOD"] == "20130331" and got[-1]["REPORTING_PERIOD"] == "20240331"
    assert list(got[0])[9:] == [
        "NET_CASH_FLOWS_OPERA_ACT", "NET_CASH_FLOWS_INV_ACT", "NET_CASH_FLOWS_FIN_ACT",
        "NET_INCR_CASH_AND_CASH_EQU", "BEG_BAL_CASH_CASH_EQU", "END_BAL_CASH_CASH_EQU",
        "CASH_RECP_SG_AND_RS", "CASH_PAID_INV", "FREE_CASH_FLOW", "NET_PROFIT",
        "DEPRE_FA_OGA_PBA", "AMORT_INTAN_ASSETS",
    ]  # fmt: skip
    keys = [(r["REPORTING_PERIOD"], r["ACTUAL_ANN_DATE"]) for r in got]
    assert keys == sorted(keys)  # by period, then announcement
    for r in got:
        assert r["END_BAL_CASH_CASH_EQU"] == r["BEG_BAL_CASH_CASH_EQU"] + r[
            "NET_INCR_CASH_AND_CASH_EQU"]  # fmt: skip
    assert error(ad.get("/finance/income", params={"codes": "999999.SH"})) == (
        404, "代码不存在: 999999.SH")  # fmt: skip
    assert error(ad.get("/finance/income", params={"codes": "600000.SH",
                                                   "start_date": "2023"})) == (
        400, "参数错误: start_date")  # fmt: skip


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/configs/sdk"),  # the platform's own endpoints are not emulated
        ("POST", "/configs/sdk/1/test"),
        ("POST", "/cache/detect-all-missing"),
        ("POST", "/cache/cache-all-missing"),
        ("POST", "/cache/fill-missing"),
        ("GET", "/cache/tasks"),
        ("GET", "/cache/tasks/7"),
        ("GET", "/stock/kline/600000.SH/chart"),
        ("GET", "/nope"),
    ],
)
def test_not_emulated_endpoints_are_404(ad: httpx.Client, method: str, path: str) -> None:
    assert error(ad.request(method, path)) == (404, "Not Found")


def test_other_method_is_405(ad: httpx.Client) -> None:
    assert error(ad.get("/auth/login")) == (405, "Method Not Allowed")


def test_same_request_same_bytes() -> None:
    params = {"codes": "600000.SH,IF2401.CFE,000001.SZ", "start_date": "20240102",
              "end_date": "20240105", "period": "min15"}  # fmt: skip
    bodies = []
    for seed in (0, 0, 1):
        with running("amazingdata", now=NOW, seed=seed) as server, login(server.base_url) as c:
            first = c.get("/stock/kline", params=params).content
            assert c.get("/stock/kline", params=params).content == first
            bodies.append(first)
    assert bodies[0] == bodies[1]  # another server, same seed: the same bytes
    assert bodies[0] != bodies[2]  # another seed: other prices
    assert json.loads(bodies[2])["data"].keys() == {"600000.SH", "000001.SZ"}
