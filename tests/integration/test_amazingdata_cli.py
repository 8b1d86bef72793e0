"""Every AmazingData endpoint through the real commands, once: ``etl vendors check``,
``instruments sync``, ``calendar sync`` (SH, SZ, CFE, and BJ on SSE's days), ``backfill`` of
stock and CFFEX klines, of each statement and of both futures snapshots, against one
``etl emulate amazingdata`` subprocess that accepts only one login. Then a wrong password:
exit 3, naming the variables, never printing the secret.

The commands run with the real clock; the emulator's is frozen at NOW, so its data is what
the synthetic market held then, and every range asked below is long finished.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from etl.catalog import ReadOnlySession
from etl.emulators.testing import EmulateProcess, spawn_emulate
from etl.synthetic import klines as synthetic_klines
from tests.conftest import ETL, etl_env

# ~35 s: fourteen `etl` processes, each paying Python's and the lake's start-up.
pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

NOW = dt.datetime(2024, 6, 28, 12, 0, tzinfo=dt.UTC)
USER, PASSWORD = "quant", "emu-pw-4Kd9"
LOGIN = {"ETL_AMAZINGDATA_USERNAME": USER, "ETL_AMAZINGDATA_PASSWORD": PASSWORD}
JUNE = ["--start", "2024-06-01", "--end", "2024-06-30"]
Etl = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulateProcess]:
    with spawn_emulate("amazingdata", "--now", NOW.isoformat(), env=LOGIN) as proc:
        yield proc
        assert proc.stats()["violations"] == 0


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("amazingdata-cli") / "data"


def etl_for(root: Path, base_url: str, **env: str) -> Etl:
    full = etl_env(root, ETL_AMAZINGDATA_BASE_URL=base_url, **{**LOGIN, **env})

    def etl(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [*ETL, *args, "--json"]
        done = subprocess.run(cmd, env=full, capture_output=True, text=True, timeout=120)
        assert PASSWORD not in done.stdout + done.stderr
        return done

    return etl


@pytest.fixture(scope="module")
def etl(root: Path, emulator: EmulateProcess) -> Etl:
    return etl_for(root, emulator.base_url)


def ok(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert done.returncode == 0, done.stderr
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


def sql(root: Path, query: str) -> pl.DataFrame:
    frame = pl.from_arrow(ReadOnlySession(root).arrow(query))
    assert isinstance(frame, pl.DataFrame)
    return frame


def backfill(etl: Etl, dataset: str, *args: str) -> dict[str, Any]:
    doc = ok(etl("backfill", "--vendor", "amazingdata", "--dataset", dataset, *args))
    assert (doc["status"], doc["error_count"]) == ("completed", 0)
    return doc


def test_vendors_check(etl: Etl) -> None:
    doc = ok(etl("vendors", "check", "amazingdata"))
    assert doc["success"] is True and doc["message"] == f"logged in as {USER}"
    assert isinstance(doc["response_time"], float) and 0 < doc["response_time"] < 10


def test_instruments_sync(etl: Etl, root: Path) -> None:
    doc = ok(etl("instruments", "sync", "--vendor", "amazingdata", "--market", "BJ"))
    got = sql(root, "SELECT * FROM instruments ORDER BY symbol")
    assert doc["rows_written"] == got.height == 6  # the emulator's six BSE stocks
    assert set(got["market"]) == {"BJ"} and set(got["type"]) == {"stock"}
    assert got["name"].null_count() == 0 and got["list_date"].null_count() == 0
    assert got["symbol"].to_list() == got["vendor_code"].to_list()  # codes are canonical


def test_calendar_sync_of_every_market(etl: Etl, root: Path) -> None:
    for market in ("SH", "SZ", "CFE", "BJ"):
        doc = ok(etl("calendar", "sync", "--vendor", "amazingdata", "--market", market, *JUNE))
        assert doc["rows_written"] == 30  # every calendar day, open or not
    got = sql(
        root,
        "SELECT market, count(*) AS days, sum(is_open::INT) AS open, "
        "list(trade_date ORDER BY trade_date) FILTER (WHERE is_open) AS sessions "
        "FROM calendar GROUP BY market ORDER BY market",
    )
    assert got["market"].to_list() == ["BJ", "CFE", "SH", "SZ"]
    assert set(got["days"]) == {30} and set(got["open"]) == {19}  # Dragon Boat on the 10th
    assert got["sessions"].n_unique() == 1  # BJ asked as SH: the same days everywhere
    assert dt.date(2024, 6, 10) not in got["sessions"][0]


def test_backfill_stock_and_cffex_klines(etl: Etl, root: Path) -> None:
    symbols = ["600000.SH", "000001.SZ", "IF2407.CFE"]
    day = ["--start", "2024-06-03", "--end", "2024-06-28"]
    daily = backfill(etl, "klines", "--freq", "1d", "--symbols", ",".join(symbols), *day)
    minute = backfill(
        etl, "klines", "--freq", "1m", "--symbols", "IF2407.CFE",
        "--start", "2024-06-28", "--end", "2024-06-28",
    )  # fmt: skip
    want = sum(
        len(synthetic_klines(s, "1d", dt.date(2024, 6, 3), dt.date(2024, 6, 28), NOW))
        for s in symbols
    )
    assert daily["rows_written"] == want and minute["rows_written"] == 240
    got = sql(
        root,
        "SELECT freq, symbol LIKE '%.CFE' AS future, count(*) AS n, count(settle) AS settle, "
        "count(open_interest) AS oi FROM klines GROUP BY ALL ORDER BY ALL",
    )
    rows = {(r["freq"], r["future"]): (r["n"], r["settle"], r["oi"]) for r in got.to_dicts()}
    n_future = rows["1d", True][0]
    assert rows["1d", True] == (n_future, n_future, n_future)  # CFE 1d: settle and OI
    assert rows["1d", False][1:] == (0, 0)  # stocks: neither
    assert rows["1m", True] == (240, 0, 240)  # minute bars: OI, no settlement


@pytest.mark.parametrize(
    ("dataset", "whole", "parts"),
    [
        ("balance_sheet", "total_assets", "total_liab + tot_share_equity_incl_min_int"),
        ("income", "net_pro_incl_min_int_inc", "total_profit - income_tax"),
        ("cash_flow", "end_bal_cash_cash_equ",
         "beg_bal_cash_cash_equ + net_incr_cash_and_cash_equ"),
    ],
)  # fmt: skip
def test_backfill_statements(etl: Etl, root: Path, dataset: str, whole: str, parts: str) -> None:
    """Every version lands, and an identity of the emulator's sums holds in the lake."""
    periods = ["--start", "2022-01-01", "--end", "2024-06-30"]
    doc = backfill(etl, dataset, "--symbols", "600000.SH,000001.SZ", *periods)
    got = sql(
        root,
        f"SELECT count(*) AS n, count(DISTINCT symbol) AS symbols, "
        f"min(reporting_period) AS first, "
        f"max(abs({whole} - ({parts})) / greatest(abs({whole}), 1)) AS err FROM {dataset}",
    )
    assert doc["rows_written"] == got["n"][0] >= 2 * 9  # nine periods each, restatements on top
    assert got["symbols"][0] == 2 and got["first"][0] >= dt.date(2022, 1, 1)
    assert got["err"][0] < 1e-9


def test_backfill_futures_snapshots(etl: Etl, root: Path) -> None:
    backfill(etl, "future_varieties")
    backfill(etl, "main_contracts")
    varieties = sql(root, "SELECT variety, exchange FROM future_varieties")
    mains = sql(root, "SELECT variety, symbol, trade_date FROM main_contracts")
    assert {"IF", "IC", "IH", "IM", "T", "TF", "TS"} <= set(varieties["variety"])
    assert set(varieties["exchange"]) == {"CFE"}
    assert set(mains["variety"]) == set(varieties["variety"])
    assert all(s.startswith(v) and s.endswith(".CFE") for v, s in zip(
        mains["variety"], mains["symbol"], strict=True))  # fmt: skip
    assert mains["trade_date"].n_unique() == 1  # today's list only


def test_a_refused_login_exits_3(root: Path, emulator: EmulateProcess, tmp_path: Path) -> None:
    wrong = etl_for(tmp_path / "data", emulator.base_url, ETL_AMAZINGDATA_PASSWORD="nope-x")
    check = wrong("vendors", "check", "amazingdata")
    fill = wrong(
        "backfill", "--vendor", "amazingdata", "--dataset", "klines", "--freq", "1d",
        "--symbols", "600000.SH", *JUNE,
    )  # fmt: skip
    assert check.returncode == 3 and json.loads(check.stdout)["success"] is False
    assert "用户名或密码错误" in json.loads(check.stdout)["message"]
    assert fill.returncode == 3, fill.stderr
    error = json.loads(fill.stdout)["error"]["message"]
    assert "ETL_AMAZINGDATA_USERNAME" in error and "ETL_AMAZINGDATA_PASSWORD" in error
    assert "nope-x" not in fill.stdout + fill.stderr + check.stdout + check.stderr
    assert not list((tmp_path / "data" / "lake").glob("klines/**/*.parquet"))
