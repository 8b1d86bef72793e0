"""Redaction: no secret value and no secret-looking parameter value survives."""

from __future__ import annotations

import pytest

from etl.vendors.redact import MASK, is_secret_name, redact_text, redact_tree, redact_url

SECRET = "s3cr/et+key"  # has characters that URL-encoding changes


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # StockTV: the key travels in the query string
        (
            "https://api.stocktv.top/stock/kline?pid=7&key=abc123&interval=P1D",
            "https://api.stocktv.top/stock/kline?pid=7&key=***&interval=P1D",
        ),
        # Infoway WebSocket: apikey, any case
        (
            "wss://data.infoway.io/ws?business=stock&apiKey=K1",
            "wss://data.infoway.io/ws?business=stock&apiKey=***",
        ),
        # several names at once, and a fragment
        (
            "http://h/p?token=t&a=1&access_token=x&sign=y&password=z#id_token=q",
            "http://h/p?token=***&a=1&access_token=***&sign=***&password=***#id_token=***",
        ),
        # user info: the password goes, the user stays
        ("http://bob:hunter2@h:8000/api/v1", "http://bob:***@h:8000/api/v1"),
        # nothing to hide: unchanged, byte for byte
        (
            "http://127.0.0.1:8000/api/v1/stock/kline?codes=600000.SH%2C000001.SZ&period=min1",
            "http://127.0.0.1:8000/api/v1/stock/kline?codes=600000.SH%2C000001.SZ&period=min1",
        ),
        # an empty secret parameter stays empty
        ("http://h/p?key=&a=1", "http://h/p?key=&a=1"),
    ],
)
def test_redact_url_parameters(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_redact_url_known_secret_in_any_form() -> None:
    encoded = "s3cr%2Fet%2Bkey"
    for url in (
        f"http://h/p?q={encoded}",  # under an innocent name, percent-encoded
        f"http://h/{SECRET}/x",  # in the path, clear
        f"http://h/p?q={SECRET.replace('/', '%2F')}",  # half encoded ('+' left alone)
    ):
        out = redact_url(url, [SECRET])
        assert SECRET not in out and encoded not in out, out
        assert MASK in out


def test_redact_text_rules() -> None:
    text = (
        "GET http://h/x?apikey=K9&codes=1 failed; Authorization: Bearer eyJhbGc.iOi.Jz; "
        '{"username": "admin", "password": "admin123"}; apiKey: K8'
    )
    out = redact_text(text)
    for leaked in ("K9", "eyJhbGc", "admin123", "K8"):
        assert leaked not in out
    assert "codes=1" in out and '"username": "admin"' in out


def test_redact_text_keeps_vendor_messages() -> None:
    # Chinese vendor messages are kept verbatim (docs/vendors/README.md).
    for message in ("参数错误: codes", "代码不存在: 600000.SH", "Token无效或已过期"):
        assert redact_text(message, ["hunter2"]) == message


def test_redact_text_longest_secret_first() -> None:
    assert redact_text("abcd abcdefgh", ["abcd", "abcdefgh"]) == "*** ***"


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("key", True),
        ("apiKey", True),
        ("X-Api-Key", True),
        ("access_token", True),
        ("client_secret", True),
        ("codes", False),
        ("klineType", False),
        ("pageSize", False),
        ("monkey", False),
    ],
)
def test_is_secret_name(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


def test_short_secret_is_masked_only_as_the_whole_text() -> None:
    # Regression: a one-letter key turned every "k" of a task record into "***" ("***ind").
    assert redact_text("kind: backfill", ["k"]) == "kind: backfill"
    assert redact_text("k", ["k"]) == "***"
    assert redact_text("token abcd1234 here", ["abcd1234"]) == "token *** here"


def test_redact_tree_masks_values_never_keys() -> None:
    doc = {"api_key_name": "x", "params": {"note": "sent s3cret-value"}, "errors": ["s3cret-value"]}
    assert redact_tree(doc, ["s3cret-value"]) == {
        "api_key_name": "x",
        "params": {"note": "sent ***"},
        "errors": ["***"],
    }
