"""Each fault's wire effect on the AmazingData emulator (docs/vendors/amazingdata.md "Faults")."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import httpx
import pytest
from emu_helpers import login

DAY = {"codes": "600000.SH", "start_date": "20240102", "end_date": "20240102"}
MIN60 = {**DAY, "period": "min60"}  # four bars
MIN5 = {**DAY, "period": "min5"}  # 48 bars: enough for every row fault to show
FIN = {"codes": "600000.SH", "start_date": "20230101", "end_date": "20231231"}


def bars(client: httpx.Client, params: dict[str, str] = MIN5) -> list[dict[str, Any]]:
    reply = client.get("/stock/kline", params=params)
    assert reply.status_code == 200, reply.text
    out: list[dict[str, Any]] = reply.json()["data"]["600000.SH"]
    return out


@pytest.fixture
def clean(start_ad: Any) -> list[dict[str, Any]]:
    """The 48 five-minute bars without any fault (the reference)."""
    with login(start_ad().base_url) as client:
        return bars(client)


def test_rate_limit_burst_is_the_429_and_not_a_violation(start_ad: Any) -> None:
    server = start_ad(faults="rate_limit_burst@2")
    with login(server.base_url) as client:  # the login is not counted
        statuses = [client.get("/auth/me") for _ in range(3)]
    assert [r.status_code for r in statuses] == [200, 429, 200]
    assert statuses[1].json() == {"code": 429, "message": "请求过于频繁", "data": None}
    stats = server.stats()
    assert (stats["violations"], stats["faults_by_name"]) == (0, {"rate_limit_burst": 1})


def test_http_500_is_the_sdk_failure(start_ad: Any) -> None:
    server = start_ad(faults="http_500@2-3")  # request 1 is the login
    with login(server.base_url) as client:
        replies = [client.get("/stock/kline", params=MIN60) for _ in range(3)]
    assert [r.status_code for r in replies] == [500, 500, 200]
    assert replies[0].json() == {"code": 500, "message": "SDK调用失败", "data": None}


def test_timeout_sends_nothing(start_ad: Any) -> None:
    server = start_ad(faults="timeout:5@2")
    with login(server.base_url) as client:
        t0 = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            client.get("/auth/me", timeout=0.3)
        assert 0.3 <= time.monotonic() - t0 < 2
        assert client.get("/auth/me").status_code == 200  # the next request is served


def test_connection_reset(start_ad: Any) -> None:
    server = start_ad(faults="connection_reset@2")
    with login(server.base_url) as client:
        with pytest.raises(httpx.TransportError):
            client.get("/auth/me")
        assert client.get("/auth/me").status_code == 200


def test_malformed_json_is_a_complete_200_body(start_ad: Any) -> None:
    server = start_ad(faults="malformed_json@2")
    with login(server.base_url) as client:
        reply = client.get("/stock/kline", params=MIN60)
    assert reply.status_code == 200 and len(reply.content) == int(reply.headers["content-length"])
    with pytest.raises(json.JSONDecodeError):
        json.loads(reply.content)


def test_truncated_body(start_ad: Any) -> None:
    server = start_ad(faults="truncated_body@2")
    with login(server.base_url) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.get("/stock/kline", params=MIN60)
        assert client.get("/stock/kline", params=MIN60).status_code == 200


def test_auth_expired_revokes_tokens_and_a_new_login_works(start_ad: Any) -> None:
    server = start_ad(faults="auth_expired@2")  # logins are not counted by plain auth_expired
    with login(server.base_url, "alice") as client:
        assert client.get("/auth/me").status_code == 200
        expired = client.get("/auth/me")
        assert (expired.status_code, expired.json()) == (
            401, {"code": 401, "message": "Token无效或已过期", "data": None})  # fmt: skip
        assert client.get("/auth/me").status_code == 401  # the token stays revoked
        again = client.post("/auth/login", json={"username": "alice", "password": "secret"})
        token = again.json()["data"]["access_token"]
        me = client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200


def test_auth_expired_login_refuses_logins_too(start_ad: Any) -> None:
    server = start_ad(faults="auth_expired:login@2+")  # counts every request, logins included
    with login(server.base_url, "bob") as client:  # request 1
        assert client.get("/auth/me").status_code == 401  # request 2: revoked
        refused = client.post("/auth/login", json={"username": "bob", "password": "secret"})
    assert (refused.status_code, refused.json()["message"]) == (401, "用户名或密码错误")


def test_duplicate_bars(start_ad: Any, clean: list[dict[str, Any]]) -> None:
    with login(start_ad(faults="duplicate_bars").base_url) as client:
        got = bars(client)
    assert len(got) == 53 and [b for i, b in enumerate(got) if b not in got[:i]] == clean
    with login(start_ad(faults="duplicate_bars:conflict").base_url) as client:
        conflict = bars(client)
    labels = [b["trade_date"] for b in conflict]
    twice = [t for t in dict.fromkeys(labels) if labels.count(t) == 2]
    assert len(twice) == 5
    for t in twice:
        first, second = (b for b in conflict if b["trade_date"] == t)
        assert first["close"] != second["close"] and first["open"] == second["open"]


def test_out_of_order_bars(start_ad: Any, clean: list[dict[str, Any]]) -> None:
    with login(start_ad(faults="out_of_order_bars").base_url) as client:
        shuffled = bars(client)
    assert shuffled != clean and sorted(shuffled, key=lambda b: b["trade_date"]) == clean
    with login(start_ad(faults="out_of_order_bars:reversed").base_url) as client:
        assert bars(client) == clean[::-1]  # newest first: the opposite of the spec's order


def test_missing_bars_keep_the_range(start_ad: Any, clean: list[dict[str, Any]]) -> None:
    with login(start_ad(faults="missing_bars").base_url) as client:
        got = bars(client)
    assert len(got) == 43 and got[0] == clean[0] and got[-1] == clean[-1]
    assert all(b in clean for b in got)


def test_bad_prices_wire_forms(start_ad: Any) -> None:
    with login(start_ad(faults="bad_prices").base_url) as client:
        raw = client.get("/stock/kline", params=MIN5).content
    assert b'"close":NaN' in raw  # the bare NaN token
    got = json.loads(raw)["data"]["600000.SH"]
    # 5 of 48 bars spoiled, the kinds in turn: high_low, negative, nan, high_low, negative
    assert sum(b["high"] < b["low"] for b in got) == 2  # high below low
    assert sum(b["low"] < 0 for b in got) == 2  # a negative number
    assert sum(math.isnan(b["close"]) for b in got) == 1
    for variant, check in [
        ("nan", lambda b: math.isnan(b["close"])),
        ("negative", lambda b: b["low"] < 0),
        ("high_low", lambda b: b["high"] < b["low"]),
    ]:
        with login(start_ad(faults=f"bad_prices:{variant}").base_url) as client:
            assert sum(check(b) for b in bars(client)) == 5  # 10 % of 48 bars


def test_schema_drift_extra_and_rename(start_ad: Any) -> None:
    with login(start_ad(faults="schema_drift:extra").base_url) as client:
        assert all(b["turnover_rate"] == 0.0 for b in bars(client, MIN60))
        rows = client.get("/finance/income", params=FIN).json()["data"]["600000.SH"]
        assert rows and all(r["MEMO"] == "" for r in rows)
        assert "turnover_rate" not in client.get("/auth/me").json()["data"]  # not a data answer
    with login(start_ad(faults="schema_drift:rename").base_url) as client:
        got = bars(client, MIN60)
        assert list(got[0])[:2] == ["kline_time", "open"]
        rows = client.get("/finance/balance-sheet", params=FIN).json()["data"]["600000.SH"]
        assert "REPORT_PERIOD" in rows[0] and "REPORTING_PERIOD" not in rows[0]


def test_bar_faults_count_kline_answers_only(start_ad: Any, clean: list[dict[str, Any]]) -> None:
    server = start_ad(faults="out_of_order_bars:reversed@2")
    with login(server.base_url) as client:
        client.get("/auth/me")  # not a kline answer: not counted
        assert bars(client) == clean  # the first kline answer
        assert bars(client) == clean[::-1]  # the second
        assert bars(client) == clean
    assert server.stats()["faults_applied"] == 1


def test_the_first_deciding_fault_in_spec_wins(start_ad: Any) -> None:
    # rate_limit_burst does not count the login, http_500 does: both are on for /auth/me
    for spec, status in [("http_500@2,rate_limit_burst@1", 500),
                         ("rate_limit_burst@1,http_500@2", 429)]:  # fmt: skip
        with login(start_ad(faults=spec).base_url) as client:
            assert client.get("/auth/me").status_code == status


def test_row_faults_combine(start_ad: Any, clean: list[dict[str, Any]]) -> None:
    with login(start_ad(faults="duplicate_bars,out_of_order_bars:reversed").base_url) as client:
        got = bars(client)
    assert len(got) == 53 and got[0] == clean[-1] and got[-1] == clean[0]


def test_probability_runs_repeat(start_ad: Any) -> None:
    runs = []
    for _ in range(2):
        # rate_limit_burst never applies to the login, so the login itself always works
        with login(start_ad(faults="rate_limit_burst@p0.5", seed=3).base_url) as client:
            runs.append([client.get("/auth/me").status_code for _ in range(5)])
    assert runs[0] == runs[1] and set(runs[0]) == {200, 429}
