"""AmazingData auth (login, bearer tokens, token_ttl) and limits (2 in flight, 5/s per user)."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest
from emu_helpers import login

from etl.emulators import AmazingDataEmulator
from etl.emulators.testing import options
from etl.errors import BadInputError

TOKEN_ERROR = {"code": 401, "message": "Token无效或已过期", "data": None}
LOGIN_ERROR = {"code": 401, "message": "用户名或密码错误", "data": None}


def post_login(server: Any, body: Any) -> httpx.Response:
    return httpx.post(server.base_url + "/auth/login", json=body)


def test_login_answer(start_ad: Any) -> None:
    reply = post_login(start_ad(), {"username": "admin", "password": "admin123"})
    doc = reply.json()
    assert reply.status_code == 200
    assert (doc["code"], doc["message"]) == (200, "登录成功")
    assert set(doc["data"]) == {"access_token", "token_type", "expires_in"}
    assert (doc["data"]["token_type"], doc["data"]["expires_in"]) == ("bearer", 86400)
    assert len(doc["data"]["access_token"]) >= 20  # opaque


@pytest.mark.parametrize(
    ("configured", "body", "status", "answer"),
    [
        ({}, {"username": "any", "password": "thing"}, 200, None),  # unconfigured: any
        ({}, {"username": "", "password": "thing"}, 401, LOGIN_ERROR),  # but not empty
        ({}, {"username": "any", "password": ""}, 401, LOGIN_ERROR),
        # ETL_AMAZINGDATA_USERNAME/_PASSWORD set: only those
        ({"username": "u", "password": "p"}, {"username": "u", "password": "p"}, 200, None),
        ({"username": "u", "password": "p"}, {"username": "u", "password": "x"}, 401,
         LOGIN_ERROR),
        ({"username": "u", "password": "p"}, {"username": "v", "password": "p"}, 401,
         LOGIN_ERROR),
        # regression: non-ASCII credentials crashed the comparison (compare_digest on str)
        ({"username": "张三", "password": "密码"}, {"username": "张三", "password": "密码"}, 200,
         None),
        ({"username": "张三", "password": "密码"}, {"username": "张三", "password": "口令"}, 401,
         LOGIN_ERROR),
        ({}, {"username": "any"}, 400, {"code": 400, "message": "参数错误: password",
                                        "data": None}),  # a missing field
        ({}, ["any", "thing"], 400, {"code": 400, "message": "参数错误: body", "data": None}),
    ],
)  # fmt: skip
def test_credentials(
    start_ad: Any, configured: dict[str, str], body: Any, status: int, answer: Any
) -> None:
    reply = post_login(start_ad(**configured), body)
    assert reply.status_code == status
    if answer is not None:
        assert reply.json() == answer


@pytest.mark.parametrize(
    "headers",
    [
        {},  # no token
        {"Authorization": "Bearer not-a-token"},  # unknown token
        {"Authorization": "Basic dTpw"},  # another scheme
        {"Authorization": "Bearer"},  # no token after the scheme
    ],
)
def test_calls_need_a_valid_bearer_token(start_ad: Any, headers: dict[str, str]) -> None:
    reply = httpx.get(start_ad().base_url + "/base/codes?security_type=EXTRA_ETF", headers=headers)
    assert (reply.status_code, reply.json()) == (401, TOKEN_ERROR)


def test_token_ttl_expires_tokens_and_relogin_works(start_ad: Any) -> None:
    server = start_ad(token_ttl=1)
    with httpx.Client(base_url=server.base_url) as client:
        doc = client.post("/auth/login", json={"username": "u", "password": "p"}).json()
        assert doc["data"]["expires_in"] == 1  # the answer says how long
        auth = {"Authorization": f"Bearer {doc['data']['access_token']}"}
        assert client.get("/auth/me", headers=auth).status_code == 200
        time.sleep(1.05)
        assert client.get("/auth/me", headers=auth).json() == TOKEN_ERROR
        new = client.post("/auth/login", json={"username": "u", "password": "p"}).json()
        auth = {"Authorization": f"Bearer {new['data']['access_token']}"}
        assert client.get("/auth/me", headers=auth).status_code == 200


@pytest.mark.parametrize("ttl", [0, -5, "soon", 1.5, "2.5", True])
def test_token_ttl_must_be_positive_seconds(ttl: object) -> None:
    with pytest.raises(BadInputError, match="token_ttl must be a whole number of seconds > 0"):
        AmazingDataEmulator(options(token_ttl=ttl))


def test_six_requests_in_a_second_get_429_and_count_as_violation(start_ad: Any) -> None:
    server = start_ad()
    with login(server.base_url) as client:
        for _ in range(3):
            client.post("/auth/login", json={"username": "x", "password": "y"})  # not counted
        replies = [client.get("/auth/me") for _ in range(6)]
        assert [r.status_code for r in replies] == [200] * 5 + [429]
        assert replies[-1].json() == {"code": 429, "message": "请求过于频繁", "data": None}
        time.sleep(1.0)  # the refused request took no place: a full second frees all five
        assert [client.get("/auth/me").status_code for _ in range(5)] == [200] * 5
    stats = server.stats()
    assert (stats["requests"], stats["violations"]) == (15, 1)  # 4 logins + 11 calls
    assert stats["by_path"]["/api/v1/auth/me"] == {
        "requests": 11, "violations": 1, "violations_rate": 1}  # fmt: skip


def test_limits_are_per_user(start_ad: Any) -> None:
    server = start_ad()
    with login(server.base_url, "a") as a, login(server.base_url, "b") as b:
        statuses = [c.get("/auth/me").status_code for _ in range(5) for c in (a, b)]
    assert statuses == [200] * 10 and server.stats()["violations"] == 0


def test_a_third_request_in_flight_gets_429(start_ad: Any) -> None:
    server = start_ad(latency=0.6)  # every answer takes 0.6 s
    with login(server.base_url) as client:
        results: list[int] = []
        threads = [
            threading.Thread(target=lambda: results.append(client.get("/auth/me").status_code))
            for _ in range(2)
        ]
        for t in threads:
            t.start()
        time.sleep(0.3)  # both are in flight now
        third = client.get("/auth/me")
        for t in threads:
            t.join()
    assert (sorted(results), third.status_code) == ([200, 200], 429)
    assert server.stats()["by_path"]["/api/v1/auth/me"]["violations_in_flight"] == 1


def test_a_client_within_the_limits_makes_no_violation(start_ad: Any) -> None:
    """Two workers, each pacing itself: 4 requests a second in total, never 3 at once."""
    server = start_ad(latency=0.05)
    with login(server.base_url) as client:

        def worker() -> None:
            for _ in range(4):
                assert client.get("/auth/me").status_code == 200
                time.sleep(0.5)

        threads = [threading.Thread(target=worker) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert server.stats()["violations"] == 0
    assert httpx.post(server.root_url + "/_emulator/reset").status_code == 200
    assert server.stats()["requests"] == 0
    with httpx.Client(base_url=server.base_url) as client:  # reset also revoked the tokens
        assert client.get("/auth/me").status_code == 401
