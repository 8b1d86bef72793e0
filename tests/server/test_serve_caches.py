"""What the server remembers between requests, and when it stops trusting it: a known set
of codes is trusted for a second while it holds every code asked for, and walked again at
once for a code it lacks (one just written is answered, never refused as unknown); a
verified token is remembered until it expires."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from etl.lake import Lake
from etl.server.reads import LakeReader
from etl.server.tokens import TokenSigner
from tests.conftest import NOW, kline_rows

DAYS = [dt.date(2024, 1, 2) + dt.timedelta(days=i) for i in range(3)]


def test_a_symbol_just_written_is_known_at_once(tmp_path: Path) -> None:
    Lake(tmp_path).write("klines", kline_rows(["600000.SH"], DAYS), now=NOW)
    reader = LakeReader(tmp_path)
    assert reader.known_of("klines", ["600000.SH", "000001.SZ"]) == ["600000.SH"]
    assert reader.known_of("klines", ["600000.SH"]) == ["600000.SH"]  # from the cache
    Lake(tmp_path).write("klines", kline_rows(["000001.SZ"], DAYS), now=NOW)
    assert reader.known_of("klines", ["000001.SZ", "600000.SH"]) == ["000001.SZ", "600000.SH"]
    assert reader.known_of("klines", ["688999.SH"]) == []


def test_a_remembered_token_is_refused_once_it_expires() -> None:
    now = [time.time()]
    signer = TokenSigner(b"k" * 32, "this-root", 60, lambda: now[0])
    token = signer.issue(1, "alice")
    assert signer.verify(token) is not None
    assert signer.verify(token) is not None  # remembered
    assert TokenSigner(b"j" * 32, "this-root", 60, time.time).verify(token) is None
    now[0] += 61
    assert signer.verify(token) is None
