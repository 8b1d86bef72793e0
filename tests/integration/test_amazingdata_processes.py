"""Two ``etl backfill`` processes on one data root, one AmazingData login, one emulator process.

AmazingData limits each *user* (5 requests in any second, 2 in flight), not each process, so
two backfills side by side must keep to the limit together. They do through the governor's
file under ``<data root>/state``, which every process on that root shares: the emulator,
itself a separate ``etl emulate`` process, must count no violation, and both tasks must
complete with every bar the synthetic market has.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path

import polars as pl
import pytest

from etl.emulators.testing import spawn_emulate
from etl.synthetic import klines as synthetic_klines
from tests.conftest import ETL, etl_env

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

NOW = dt.datetime(2024, 6, 28, 12, 0, tzinfo=dt.UTC)
START, END = dt.date(2023, 7, 1), dt.date(2024, 6, 28)  # 12 windows of <= 31 days at 5m
GROUPS = (("600000.SH", "600036.SH"), ("000001.SZ", "000002.SZ"))  # one process each
LOGIN = {"ETL_AMAZINGDATA_USERNAME": "desk", "ETL_AMAZINGDATA_PASSWORD": "pw-shared-7"}


def expected_bars(symbols: tuple[str, ...]) -> int:
    return sum(len(synthetic_klines(s, "5m", START, END, NOW)) for s in symbols)


def test_two_backfills_share_the_limit_through_the_data_root(tmp_path: Path) -> None:
    root = tmp_path / "data"
    with spawn_emulate("amazingdata", "--now", NOW.isoformat()) as emu:
        env = etl_env(root, ETL_AMAZINGDATA_BASE_URL=emu.base_url, **LOGIN)
        args = ["backfill", "--vendor", "amazingdata", "--dataset", "klines", "--freq", "5m",
                "--start", START.isoformat(), "--end", END.isoformat(), "--json"]  # fmt: skip
        procs = [
            subprocess.Popen(
                [*ETL, *args, "--symbols", ",".join(symbols)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for symbols in GROUPS
        ]
        outputs = [p.communicate(timeout=180) for p in procs]
        stats = emu.stats()
    docs = []
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        docs.append(json.loads(out))
    assert [(d["status"], d["error_count"]) for d in docs] == [("completed", 0)] * 2
    # They did run at once: each started before the other finished.
    (a, b) = docs
    assert a["started_at"] < b["finished_at"] and b["started_at"] < a["finished_at"]

    assert stats["violations"] == 0, stats
    assert stats["statuses"] == {"200": stats["requests"]}  # not one 429 to retry
    paths = {p: c["requests"] for p, c in stats["by_path"].items()}
    # a call per 31-day window, and each process's login
    assert sum(d["result"]["requests"] for d in docs) == 2 * (12 + 1) == stats["requests"]
    assert paths == {"/api/v1/auth/login": 2, "/api/v1/stock/kline": 2 * 12}

    files = sorted((root / "lake" / "klines").glob("freq=5m/*/*.parquet"))
    stored = pl.read_parquet(files).group_by("symbol").len()
    counts = dict(zip(stored["symbol"], stored["len"], strict=True))
    for symbols, doc in zip(GROUPS, docs, strict=True):
        assert sum(counts.pop(s) for s in symbols) == doc["rows_written"]
        assert doc["rows_written"] == expected_bars(symbols)
    assert not counts  # nothing else stored
