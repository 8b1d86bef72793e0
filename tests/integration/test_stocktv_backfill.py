"""StockTV end to end against its emulator on 127.0.0.1: ``instruments sync`` fills the pid
map, backfills go through it, and every fault of docs/vendors/README.md ends either with exactly
the emulator's data (the synthetic generator behind it) or with a clear error and nothing
stored for the bad part. The task functions run with a Runtime on a tmp data root, as the CLI
would; one test drives the real CLI."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path

import polars as pl
import pytest

from etl.config import Secret, Settings, VendorSettings
from etl.emulators import StockTVEmulator
from etl.emulators.server import EmulatorServer
from etl.emulators.testing import running, spawn_emulate
from etl.errors import AuthError
from etl.synthetic import klines as synthetic_klines
from etl.tasks.backfill import BackfillRequest, backfill, plan_backfill
from etl.tasks.expected import Selection
from etl.tasks.fill import plan_only
from etl.tasks.records import TaskRecord
from etl.tasks.runtime import Runtime, instrument_map
from etl.tasks.sync import sync_instruments
from tests.conftest import ETL, etl_env

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

NOW = dt.datetime(2024, 6, 28, 12, 0, tzinfo=dt.UTC)  # NSE closed; NYSE not open yet
KEY = "stv-key-7Hq2Lr9Z"
D = dt.date
SYMBOLS = ["RELIANCE.IN", "BRK_B.US"]
START, END = D(2024, 1, 1), D(2024, 6, 27)  # one page of 1d bars each
PRICES = ("open", "high", "low", "close", "volume", "amount")
SCHEMA = {"symbol": pl.String, "ts": pl.Datetime("us", "UTC"), "trade_date": pl.Date,
          **dict.fromkeys(PRICES, pl.Float64)}  # fmt: skip
COLUMNS = list(SCHEMA)


def runtime(root: Path, base_url: str, now: dt.datetime = NOW) -> Runtime:
    vendor = VendorSettings(
        "stocktv", base_url=base_url, api_key=Secret(KEY),
        extra={"backoff_base": 0.05, "backoff_jitter": 0.0},
    )  # fmt: skip
    settings = Settings(data_dir=root, vendors={"stocktv": vendor}, jobs_dir=root / "jobs")
    return Runtime(settings, clock=lambda: now, progress=False)


def run_backfill(
    root: Path, server: EmulatorServer, symbols: list[str], freq: str = "1d",
    start: D = START, end: D = END, now: dt.datetime = NOW,
) -> TaskRecord:  # fmt: skip
    req = BackfillRequest("stocktv", "klines", tuple(symbols), freq, start, end)
    return asyncio.run(backfill(runtime(root, server.base_url, now), req))


def truth(symbols: list[str], freq: str = "1d", start: D = START, end: D = END) -> pl.DataFrame:
    """What the emulator serves: the synthetic generator behind it."""
    frames = []
    for symbol in symbols:
        bars = synthetic_klines(symbol, freq, start, end, NOW)
        frames.append(pl.DataFrame({
            "symbol": symbol, "ts": pl.Series(bars.ts).cast(pl.Datetime("us", "UTC")),
            "trade_date": pl.Series(bars.trade_date.astype("datetime64[D]")).cast(pl.Date),
            "open": bars.open, "high": bars.high, "low": bars.low, "close": bars.close,
            "volume": bars.volume, "amount": bars.amount,
        }))  # fmt: skip
    return pl.concat(frames).sort("symbol", "ts")


def stored(root: Path, freq: str = "1d") -> pl.DataFrame:
    files = sorted((root / "lake" / "klines").glob(f"freq={freq}/*/*.parquet"))
    if not files:
        return pl.DataFrame(schema=SCHEMA)
    return pl.read_parquet(files).select(COLUMNS).sort("symbol", "ts")


def leaks(root: Path) -> list[str]:
    """Files under the data root that contain the key."""
    return [str(p) for p in root.rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()]


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root after ``instruments sync --vendor stocktv`` (pids are stable, so every
    emulator below accepts them)."""
    root = tmp_path_factory.mktemp("stocktv") / "data"
    with running(StockTVEmulator, now=NOW, api_key=KEY) as server:
        record = asyncio.run(sync_instruments(runtime(root, server.base_url), "stocktv", None))
        assert server.stats()["violations"] == 0
        # every page of every country counted (regression: one request per market was)
        assert record.result["requests"] == server.stats()["requests"] > 4
    assert (record.status, record.error_count, record.rows_written) == ("completed", 0, 69)
    return root


@pytest.fixture
def root(synced: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "data"
    shutil.copytree(synced, copy)
    return copy


def test_instruments_sync_builds_the_pid_map(synced: Path) -> None:
    found = instrument_map(synced, "stocktv")
    assert (found.codes["M_M.IN"], found.codes["BRK_B.US"]) == ("M&M", "BRK.B")
    assert found.ids["RELIANCE.IN"] == "8899932"  # the NSE listing, not BSE's 4930801
    assert found.extra["RELIANCE.IN"] == {"countryId": 14, "exchangeId": 46}
    assert found.ids["N225.STOCKTV"] and len(found.codes) == 69
    assert not leaks(synced)


def test_backfill_through_the_pid_map_stores_the_emulator_data(root: Path) -> None:
    with running(StockTVEmulator, now=NOW, api_key=KEY) as server:
        record = run_backfill(root, server, [*SYMBOLS, "7203.JP", "M_M.IN"])
        stats = server.stats()
    assert (record.status, record.error_count) == ("completed", 0)
    symbols = sorted([*SYMBOLS, "7203.JP", "M_M.IN"])
    assert stored(root).equals(truth(symbols))
    assert stats["violations"] == 0 and stats["by_path"]["/stock/kline"]["requests"] == 4
    assert not leaks(root)


@pytest.mark.parametrize(
    ("fault", "repaired"),
    [
        ("rate_limit_burst@1", 0), ("http_500@1", 0), ("timeout:0.3@1", 0),
        ("connection_reset@1", 0), ("malformed_json@1", 0), ("truncated_body@1", 0),
        ("duplicate_bars", 1), ("out_of_order_bars", 1), ("out_of_order_bars:reversed", 1),
        ("schema_drift:extra", 0),
    ],
)  # fmt: skip
def test_faults_ending_with_exactly_the_emulator_data(
    root: Path, fault: str, repaired: int
) -> None:
    with running(StockTVEmulator, now=NOW, faults=fault) as server:
        record = run_backfill(root, server, SYMBOLS)
        stats = server.stats()
    assert (record.status, record.error_count, record.errors) == ("completed", 0, [])
    assert stored(root).equals(truth(SYMBOLS))
    assert stats["violations"] == 0 and stats["faults_applied"] >= 1
    assert (record.result["repaired_rows"] > 0) == bool(repaired)  # duplicates, re-sorting
    retried = fault.endswith("@1")
    assert record.result["requests"] == 2 + retried


@pytest.mark.parametrize(
    ("fault", "reasons"),
    [
        ("bad_prices", {"high below low", "price zero or negative", "NaN price"}),
        ("bad_prices:nan", {"NaN price"}),
        ("bad_prices:negative", {"price zero or negative"}),
        ("bad_prices:high_low", {"high below low"}),
        ("duplicate_bars:conflict", {"conflicting duplicates (same key, other values)"}),
    ],
)
def test_faults_ending_with_the_bad_rows_refused(root: Path, fault: str, reasons: set[str]) -> None:
    with running(StockTVEmulator, now=NOW, faults=fault) as server:
        record = run_backfill(root, server, SYMBOLS)
    got, want = stored(root), truth(SYMBOLS)
    # Nothing bad is stored: every stored bar is the generator's, and only refused ones lack.
    assert got.join(want, on=COLUMNS, how="anti").height == 0
    lacking = want.height - got.height
    refused = sum(int(e["reason"].split(" ", 1)[0]) for e in record.errors)
    per_key = 2 if "conflict" in fault else 1  # a conflicting key refuses both copies
    assert lacking > 0 and refused == lacking * per_key
    assert {e["reason"].split(": ", 1)[1] for e in record.errors} == reasons
    assert record.status == "completed" and record.error_count > 0  # the CLI exits 1


def test_missing_bars_store_what_was_sent_and_a_rerun_heals(root: Path) -> None:
    with running(StockTVEmulator, now=NOW, faults="missing_bars@1-2") as server:
        first = run_backfill(root, server, SYMBOLS)
        after_first = stored(root)
        second = run_backfill(root, server, SYMBOLS)
    want = truth(SYMBOLS)
    assert first.error_count == 0 and want.height > after_first.height
    assert after_first.join(want, on=COLUMNS, how="anti").height == 0
    assert second.error_count == 0 and stored(root).equals(want)


def test_auth_expired_stops_with_an_auth_error_and_stores_nothing(root: Path) -> None:
    with (
        running(StockTVEmulator, now=NOW, faults="auth_expired@1") as server,
        pytest.raises(AuthError, match="ETL_STOCKTV_API_KEY") as info,
    ):
        run_backfill(root, server, SYMBOLS[:1])
    assert KEY not in str(info.value) and stored(root).height == 0
    assert not leaks(root)


def test_schema_drift_rename_fails_the_symbol_and_stores_nothing(root: Path) -> None:
    with running(StockTVEmulator, now=NOW, faults="schema_drift:rename") as server:
        record = run_backfill(root, server, SYMBOLS)
    assert stored(root).height == 0 and record.rows_written == 0
    assert record.error_count == 2 and all("'time'" in e["reason"] for e in record.errors)


def test_long_range_pages_of_1000_store_every_bar_once(root: Path) -> None:
    start, end = D(2024, 4, 1), D(2024, 6, 27)
    with running(StockTVEmulator, now=NOW) as server:
        record = run_backfill(root, server, SYMBOLS, "5m", start, end)
        stats = server.stats()
    want = truth(SYMBOLS, "5m", start, end)
    got = stored(root, "5m")
    assert want.height > 9000 and got.equals(want)  # ~4600 bars a symbol
    assert got.select("symbol", "ts").is_duplicated().sum() == 0
    per_symbol = want.group_by("symbol").len()["len"].to_list()
    pages = sum(n // 1000 + 1 for n in per_symbol)  # full pages, then a short one
    assert record.result["requests"] == pages == stats["by_path"]["/stock/kline"]["requests"]
    assert stats["violations"] == 0 and record.error_count == 0


def test_ranges_stocktv_cannot_serve_are_unavailable(root: Path) -> None:
    later = NOW + dt.timedelta(days=20)  # this emulator's history starts 20 days later
    with running(StockTVEmulator, now=later) as server:
        record = run_backfill(root, server, SYMBOLS[:1], "5m", D(2023, 12, 1), D(2024, 1, 12))
    # asked for, however old: the emulator's empty answer is what makes it unavailable
    (gone,) = record.result["unavailable"]
    assert (gone["start"], gone["end"]) == ("2023-12-01", "2024-01-12")
    assert "no 5m bars" in gone["reason"]
    assert record.result["requests"] >= 1
    assert (record.status, record.error_count, record.rows_written) == ("completed", 0, 0)


def test_cli_sync_then_backfill(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with spawn_emulate("stocktv", "--now", "2024-06-28T12:00:00Z",
                       env={"ETL_STOCKTV_API_KEY": KEY}) as emu:  # fmt: skip
        env = etl_env(data, ETL_STOCKTV_BASE_URL=emu.base_url, ETL_STOCKTV_API_KEY=KEY)

        def etl(*args: str) -> subprocess.CompletedProcess[str]:
            cmd = [*ETL, *args, "--json"]
            return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)

        synced = etl("instruments", "sync", "--vendor", "stocktv", "--market", "IN")
        fill = ["backfill", "--vendor", "stocktv", "--dataset", "klines", "--freq", "1d"]
        june = ["--start", "2024-06-03", "--end", "2024-06-28"]
        done = etl(*fill, "--symbols", "M_M.IN,RELIANCE.IN", *june)
        unmapped = etl(*fill, "--symbols", "AAPL.US", *june)  # US was not synced
        assert emu.stats()["violations"] == 0
    june_bars = truth(["M_M.IN", "RELIANCE.IN"], "1d", D(2024, 6, 3), D(2024, 6, 28)).height
    assert june_bars == 37  # 19 NSE sessions each; one suspended day (synthetic)
    assert synced.returncode == 0 and json.loads(synced.stdout)["rows_written"] == 16
    assert done.returncode == 0 and json.loads(done.stdout)["rows_written"] == june_bars
    assert unmapped.returncode == 1
    (error,) = json.loads(unmapped.stdout)["errors"]
    assert "etl instruments sync --vendor stocktv" in error["reason"]
    outputs = "".join(p.stdout + p.stderr for p in (synced, done, unmapped))
    assert KEY not in outputs and not leaks(data)


def test_a_depth_stocktv_answered_is_remembered_until_refetch(root: Path) -> None:
    later = NOW + dt.timedelta(days=20)  # this emulator's 5m history starts 2024-01-20
    symbol, first, last = SYMBOLS[0], D(2023, 12, 1), D(2024, 1, 31)
    with running(StockTVEmulator, now=later) as server:
        record = run_backfill(root, server, [symbol], "5m", first, last, now=later)
        asked = server.stats()["requests"]
        assert record.status == "completed" and record.rows_written > 0
        depth = json.loads((root / "state" / "depths" / "stocktv.json").read_text())
        since = D.fromisoformat(depth[symbol]["5m"]["since"])
        assert first < since <= last
        assert "no 5m bars" in depth[symbol]["5m"]["reason"]

        # a plan and a rerun ask nothing before it: the vendor's answer is the reason
        rt = runtime(root, server.base_url, later)
        req = BackfillRequest("stocktv", "klines", (symbol,), "5m", first, last)
        doc = plan_backfill(rt, req)
        assert doc["requests"] == 0 and doc["calls"] == 0
        (gone,) = doc["unavailable"]
        assert gone["start"] == first.isoformat() and D.fromisoformat(gone["end"]) < since
        assert gone["reason"].startswith("beyond depth: StockTV returned no 5m bars")
        plan = plan_only(rt, "stocktv", Selection("klines", first, last, "5m", (symbol,)))
        assert plan["requests"] == 0 and plan["unfillable"] > 0
        again = run_backfill(root, server, [symbol], "5m", first, last, now=later)
        assert server.stats()["requests"] == asked
        assert again.result["unavailable"][0]["reason"].startswith("beyond depth")

        # --refetch asks again
        refetch = BackfillRequest("stocktv", "klines", (symbol,), "5m", first, last, True)
        asyncio.run(backfill(runtime(root, server.base_url, later), refetch))
        assert server.stats()["requests"] > asked
