"""``etl serve`` as a real process: accounts, tokens, the envelope's error codes, bounded
input, and secrets that appear in no answer, no log and no file under the data root."""

from __future__ import annotations

import base64
import datetime as dt
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import orjson
import polars as pl
import pytest
from serve_helpers import ETL, Served, add_user, serve_env, serving

from etl.dataroot import DataRoot
from etl.lake import Lake
from etl.localkeys import load_key
from etl.vendors.amazingdata import api
from etl.warehouse import Warehouse
from tests.conftest import kline_rows

pytestmark = pytest.mark.integration

ADMIN_PASSWORD = "admin-pass-0c5e91"
VIEWER_PASSWORD = "viewer-pass-77d2aa"
UPSTREAM_PASSWORD = "upstream-pass-3b9f1e42"
SYMBOL = "600000.SH"
FUTURE = "IF2403.CFE"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, dict[str, str]]]:
    base = tmp_path_factory.mktemp("serve")
    root = base / "data"
    root.mkdir()
    days = [dt.date(2024, 1, 2) + dt.timedelta(days=i) for i in range(0, 60)]
    Lake(root).write("klines", kline_rows([SYMBOL], days), now=dt.datetime.now(dt.UTC))
    # a future with settle and open interest, some of them missing, and a fractional amount
    future = kline_rows([FUTURE], days[:20], close=3512.4).with_columns(
        pl.Series("settle", [None if i % 7 == 3 else 3510.2 + i for i in range(20)]),
        pl.Series("open_interest", [None if i % 5 == 1 else 1e5 + i for i in range(20)]),
        pl.Series("amount", [1234567.891 * (i + 1) for i in range(20)]),
    )
    Lake(root).write("klines", future, now=dt.datetime.now(dt.UTC))
    env = serve_env(root, base / "config")
    add_user(env, "admin", ADMIN_PASSWORD, "admin")
    add_user(env, "viewer", VIEWER_PASSWORD, "user")
    with serving(env, "--token-ttl", "60") as server:
        yield server, env


def _get(server: Served, path: str, headers: dict[str, str] | None = None, **kw: Any) -> Any:
    return httpx.get(server.base_url + path, headers=headers, **kw)


def _etl_on_empty_root(tmp_path: Path, *args: str) -> tuple[Path, Any]:
    """``etl ARGS`` on a new, empty data root: (the root, the finished process)."""
    root = tmp_path / "data"
    root.mkdir()
    done = subprocess.run(
        [*ETL, *args], env=serve_env(root, tmp_path / "cfg"),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return root, done


def test_without_an_account_the_server_says_how_to_add_one(tmp_path: Path) -> None:
    _, done = _etl_on_empty_root(tmp_path, "serve", "--port", "0")
    assert done.returncode == 3
    assert "etl users add" in done.stderr


def test_users_list_and_password_from_stdin(served: tuple[Served, dict[str, str]]) -> None:
    _, env = served
    listed = subprocess.run(
        [*ETL, "users", "list", "--json"], env=env, capture_output=True, text=True, timeout=60
    )
    users = {u["username"]: u for u in json.loads(listed.stdout)}
    assert users["admin"]["role"] == "admin" and users["viewer"]["role"] == "user"
    assert ADMIN_PASSWORD not in listed.stdout and "hash" not in listed.stdout
    short = subprocess.run(
        [*ETL, "users", "add", "bob"], input="short\n", env=env,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert short.returncode == 2 and "at least 8" in short.stderr


def test_sign_in_me_and_wrong_passwords_throttled(served: tuple[Served, dict[str, str]]) -> None:
    server, _ = served
    headers = server.login("viewer", VIEWER_PASSWORD)
    me = _get(server, "/auth/me", headers).json()
    who = {"id": 2, "username": "viewer", "email": None, "role": "user", "is_active": True}
    assert me == {"code": 200, "message": "success", "data": who}
    login = server.base_url + "/auth/login"
    wrong = {"username": "admin", "password": "not-the-password"}
    codes = [httpx.post(login, json=wrong).status_code for _ in range(5)]
    assert codes == [401] * 5
    refused = httpx.post(login, json={"username": "admin", "password": ADMIN_PASSWORD})
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    assert refused.json() == {"code": 429, "message": "请求过于频繁", "data": None}
    # another account from the same address is not locked out by admin's failures
    assert httpx.post(login, json={"username": "viewer", "password": VIEWER_PASSWORD}).is_success
    missing = httpx.post(login, json={"username": "viewer"})
    assert missing.json()["message"] == "参数错误: password"


def _claims(env: dict[str, str], root: Path, **override: Any) -> tuple[dict[str, Any], bytes]:
    key = load_key(env, root, create=False).derive("tokens")
    audience = json.loads(DataRoot(root).server_instance.read_bytes())["id"]
    now = int(dt.datetime.now(dt.UTC).timestamp())
    claims = {"sub": "2", "name": "viewer", "aud": audience, "iat": now, "exp": now + 60}
    return {**claims, **override}, key


def test_tokens_of_another_key_expired_or_malformed_get_401(
    served: tuple[Served, dict[str, str]],
) -> None:
    server, env = served
    root = Path(env["ETL_DATA_DIR"])
    claims, key = _claims(env, root)
    good = jwt.encode(claims, key, algorithm="HS256")
    assert _get(server, "/auth/me", {"Authorization": f"Bearer {good}"}).status_code == 200
    now = claims["iat"]
    forged = [
        jwt.encode(claims, b"k" * 32, algorithm="HS256"),  # another key
        jwt.encode({**claims, "iat": now - 120, "exp": now - 60}, key, algorithm="HS256"),
        jwt.encode({**claims, "aud": "another-warehouse"}, key, algorithm="HS256"),
        jwt.encode(claims, key * 2, algorithm="HS512"),  # another algorithm
        jwt.encode({**claims, "sub": "99"}, key, algorithm="HS256"),  # no such account
        good[:-4] + "AAAA",  # signature altered
        "not.a.token",
        "-",
    ]
    for token in forged:
        answer = _get(server, "/auth/me", {"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401, token
        assert answer.json() == {"code": 401, "message": "Token无效或已过期", "data": None}
    assert _get(server, "/stock/kline", params={"codes": SYMBOL}).status_code == 401
    expires = httpx.post(
        server.base_url + "/auth/login", json={"username": "viewer", "password": VIEWER_PASSWORD}
    ).json()["data"]["expires_in"]
    assert expires == 60


def test_reads_are_open_to_users_changes_need_the_admin_role(
    served: tuple[Served, dict[str, str]],
) -> None:
    server, _ = served
    viewer = server.login("viewer", VIEWER_PASSWORD)
    body = {"name": "x", "username": "u", "password": "p" * 8}
    paths = ("/configs/sdk", "/cache/cache-all-missing", "/cache/fill-missing",
             "/cache/detect-all-missing")  # fmt: skip
    for path in paths:
        answer = httpx.post(server.base_url + path, headers=viewer, json=body)
        assert answer.status_code == 403 and answer.json()["code"] == 403, path
    assert _get(server, "/configs/sdk", viewer).json()["data"] == {"items": [], "total": 0}


def test_bad_input_is_400_naming_the_parameter(served: tuple[Served, dict[str, str]]) -> None:
    server, _ = served
    headers = server.login("viewer", VIEWER_PASSWORD)
    good = {"codes": SYMBOL, "start_date": "20240102", "end_date": "20240131", "period": "daily"}
    bars = _get(server, "/stock/kline", headers, params=good).json()["data"][SYMBOL]
    assert len(bars) == 30 and bars[0]["trade_date"] == "2024-01-02"
    cases = [
        ({"codes": ""}, "codes"),
        ({"codes": ",".join(f"{600000 + i}.SH" for i in range(51))}, "codes"),
        ({"start_date": "2024-01-02"}, "start_date"),
        ({"start_date": "20240231"}, "start_date"),
        ({"start_date": "20240201", "end_date": "20240101"}, "start_date"),
        ({"end_date": None}, "end_date"),
        ({"period": "1d"}, "period"),
        ({"period": "min1", "start_date": "20240101", "end_date": "20240201"}, "end_date"),
    ]
    for change, param in cases:
        params = {k: v for k, v in {**good, **change}.items() if v is not None}
        answer = _get(server, "/stock/kline", headers, params=params)
        assert answer.status_code == 400, change
        assert answer.json() == {"code": 400, "message": f"参数错误: {param}", "data": None}
    # adjust (the warehouse's own parameter, for the chart page): raw, qfq or hfq
    for value in ("raw", "qfq", "hfq"):
        adjusted = _get(server, "/stock/kline", headers, params={**good, "adjust": value})
        assert len(adjusted.json()["data"][SYMBOL]) == 30, value
    wrong = _get(server, "/stock/kline", headers, params={**good, "adjust": "QFQ"})
    assert wrong.status_code == 400
    assert wrong.json()["message"] == "参数错误: adjust (raw, qfq or hfq)"
    big = server.base_url + "/stock/kline/batch"
    too_big = httpx.post(big, headers=headers, content=b"[" + b"1," * 200_000 + b"1]")
    assert too_big.status_code == 400 and "body" in too_big.json()["message"]
    not_json = httpx.post(big, headers=headers, content=b"{codes")
    assert not_json.json()["message"].startswith("参数错误: body")


def test_kline_answers_are_the_bytes_of_the_documented_rows(
    served: tuple[Served, dict[str, str]],
) -> None:
    """The kline endpoints write their bars from the columns (api.bars_json); the bytes on
    the wire are those of the envelope of :func:`api.encode_bar`'s rows, read back from the
    lake by the analysts' read path: stocks (7 fields), futures (9, settle and open interest
    with gaps), one code and the batch form."""
    server, env = served
    headers = server.login("viewer", VIEWER_PASSWORD)
    lake = Warehouse(Path(env["ETL_DATA_DIR"]))

    def expected(codes: list[str], future: bool, start: dt.date, end: dt.date) -> bytes:
        frame = lake.bars(codes, "1d", start, end)
        data: dict[str, list[dict[str, Any]]] = {code: [] for code in codes}
        for r in frame.iter_rows(named=True):
            data[r["symbol"]].append(api.encode_bar(
                ts=r["ts"], trade_date=r["trade_date"], open=r["open"], high=r["high"],
                low=r["low"], close=r["close"], volume=r["volume"], amount=r["amount"],
                settle=r["settle"], open_interest=r["open_interest"], period="daily",
                future=future))  # fmt: skip
        assert all(data.values())
        return orjson.dumps(api.envelope(200, api.MSG_OK, data))

    first, last = dt.date(2024, 1, 2), dt.date(2024, 2, 29)
    span = {"start_date": "20240102", "end_date": "20240229", "period": "daily"}
    stock = _get(server, "/stock/kline", headers, params={"codes": SYMBOL, **span})
    assert stock.content == expected([SYMBOL], False, first, last)
    future = _get(server, "/future/kline", headers, params={"codes": FUTURE, **span})
    assert future.content == expected([FUTURE], True, first, last)
    assert b'"settle":null' in future.content and b'"open_interest":null' in future.content
    batch = httpx.post(server.base_url + "/stock/kline/batch", headers=headers,
                       json={"codes": [SYMBOL], **span})  # fmt: skip
    assert batch.content == expected([SYMBOL], False, first, last)


def test_unknown_paths_and_codes_are_404_and_never_paths(
    served: tuple[Served, dict[str, str]],
) -> None:
    server, _ = served
    headers = server.login("viewer", VIEWER_PASSWORD)
    assert _get(server, "/no/such/path", headers).json() == {
        "code": 404, "message": "Not Found", "data": None}  # fmt: skip
    for code in ("000002.SZ", "../../../etc/passwd", "x' OR '1'='1", "IF2401.CFE"):
        params = {"codes": code, "start_date": "20240102", "end_date": "20240131"}
        answer = _get(server, "/stock/kline", headers, params={**params, "period": "daily"})
        assert answer.status_code == 404, code
        assert answer.json()["message"] == f"代码不存在: {code}"
    known_and_unknown = _get(server, "/stock/kline", headers, params={
        "codes": f"{SYMBOL},000002.SZ", "start_date": "20240401", "end_date": "20240410",
        "period": "daily"}).json()["data"]  # fmt: skip
    assert list(known_and_unknown) == [SYMBOL] and known_and_unknown[SYMBOL] == []
    info = _get(server, "/base/codes/..%2F..%2Fetc/info", headers)
    assert info.status_code == 404
    # a method a path does not answer: the document's 404, never a 405 it does not have
    for method, path in (("POST", "/auth/me"), ("GET", "/auth/login"), ("DELETE", "/stock/kline"),
                         ("PUT", "/cache/tasks")):  # fmt: skip
        answer = httpx.request(method, server.base_url + path, headers=headers)
        assert answer.status_code == 404, (method, path)
        assert answer.json() == {"code": 404, "message": "Not Found", "data": None}


def test_an_unexpected_failure_is_500_without_a_traceback(
    served: tuple[Served, dict[str, str]],
) -> None:
    server, env = served
    headers = server.login("viewer", VIEWER_PASSWORD)
    folder = DataRoot(Path(env["ETL_DATA_DIR"])).dataset("future_varieties")
    folder.mkdir(parents=True, exist_ok=True)
    damaged = folder / "part-damaged.parquet"
    damaged.write_bytes(b"PAR1 this is not parquet PAR1")
    try:
        answer = _get(server, "/cache/future-varieties", headers)
    finally:
        damaged.unlink()
    assert answer.status_code == 500
    assert answer.json() == {"code": 500, "message": "服务器内部错误", "data": None}
    assert "Traceback" in "".join(server.stderr) or server.proc.poll() is None


def _every_file(root: Path) -> Iterator[Path]:
    for path in root.rglob("*"):
        if path.is_file():
            yield path


def test_secrets_appear_in_no_answer_log_or_file(served: tuple[Served, dict[str, str]]) -> None:
    server, env = served
    root = Path(env["ETL_DATA_DIR"])
    headers = _admin(server)
    body = {"name": "upstream", "username": "someone", "password": UPSTREAM_PASSWORD,
            "host": "127.0.0.1", "port": 1, "api_key": UPSTREAM_PASSWORD[::-1]}  # fmt: skip
    created = httpx.post(server.base_url + "/configs/sdk", headers=headers, json=body)
    created = created.json()["data"]
    answers = [json.dumps(created)]
    answers.append(_get(server, "/configs/sdk", headers).text)
    answers.append(_get(server, f"/configs/sdk/{created['id']}", headers).text)
    test_url = server.base_url + f"/configs/sdk/{created['id']}/test"
    tested = httpx.post(test_url, headers=headers, timeout=60)
    answers.append(tested.text)
    assert tested.json()["data"]["success"] is False  # nothing listens on port 1
    assert created["password"] == created["api_key"] == "***"

    master = load_key(env, root, create=False)
    signing = master.derive("tokens")
    secrets = {
        "upstream password": UPSTREAM_PASSWORD.encode(),
        "upstream api key": UPSTREAM_PASSWORD[::-1].encode(),
        "admin password": ADMIN_PASSWORD.encode(),
        "viewer password": VIEWER_PASSWORD.encode(),
        "signing key": signing,
        "signing key (hex)": signing.hex().encode(),
        "signing key (base64)": base64.b64encode(signing),
        "master key": master._master,  # the test must know what to look for
        "master key (base64)": base64.urlsafe_b64encode(master._master),
    }
    files = list(_every_file(root))
    assert any(p.name == "upstreams.json" for p in files)
    assert any(p.name == "users.json" for p in files)
    for name, value in secrets.items():
        for path in files:
            assert value not in path.read_bytes(), f"{name} in {path}"
        for text in [*answers, "".join(server.stderr)]:
            assert value not in text.encode(), f"{name} in an answer or the log"


def _admin(server: Served) -> dict[str, str]:
    return server.login("admin", ADMIN_PASSWORD)


def test_removing_an_unknown_user_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    """A refusal (exit 2) writes nothing: `users remove` made the accounts' lock file first."""
    root, done = _etl_on_empty_root(tmp_path, "users", "remove", "nobody")
    assert done.returncode == 2 and "no user 'nobody'" in done.stderr
    assert list(root.iterdir()) == []
