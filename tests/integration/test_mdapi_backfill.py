"""mdapi end to end against its emulator on 127.0.0.1: ``instruments sync`` fills the code map,
backfills go through it, and every fault of docs/vendors/README.md ends either with exactly the
emulator's data (the synthetic generator behind it) or with a clear error and nothing stored
for the bad part. Ranges older than the latest-N window are reported unavailable, and a
fill-missing plan marks them unfillable without asking. The task functions run with a Runtime
on a tmp data root, as the CLI would; the last tests drive the real CLI."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
import subprocess
import time
from pathlib import Path

import polars as pl
import pytest

from etl.config import Settings, VendorSettings
from etl.emulators.mdapi import MdapiEmulator
from etl.emulators.mdapi_data import BY_CODE, latest_bars
from etl.emulators.server import EmulatorServer
from etl.emulators.testing import reset_stats, running, spawn_emulate
from etl.errors import AuthError
from etl.synthetic import klines_for_any
from etl.tasks.backfill import BackfillRequest, backfill
from etl.tasks.detect import detect
from etl.tasks.expected import Selection
from etl.tasks.fill import fill_missing, plan_only
from etl.tasks.records import TaskRecord
from etl.tasks.runtime import Runtime, instrument_map
from etl.tasks.sync import sync_instruments
from tests.conftest import ETL, etl_env

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

NOW = dt.datetime(2024, 6, 28, 12, 0, tzinfo=dt.UTC)  # Friday 20:00 in Shanghai
D = dt.date
SYMBOLS = ["BTCUSDT.CC", "GBPUSD.FX", "HF_OIL.MDAPI"]  # HF_OIL's code is hf_OIL: the map knows
START, END = D(2024, 6, 20), D(2024, 6, 27)  # inside every 1h window (300 bars) and finished
PRICES = ("open", "high", "low", "close", "volume")
SCHEMA = {"symbol": pl.String, "ts": pl.Datetime("us", "UTC"), "trade_date": pl.Date,
          **dict.fromkeys(PRICES, pl.Float64)}  # fmt: skip
COLUMNS = list(SCHEMA)
WINDOW = "beyond mdapi's window (only the latest 300 1h bars)"


def runtime(root: Path, base_url: str) -> Runtime:
    vendor = VendorSettings(
        "mdapi", base_url=base_url, extra={"backoff_base": 0.05, "backoff_jitter": 0.0}
    )
    settings = Settings(data_dir=root, vendors={"mdapi": vendor}, jobs_dir=root / "jobs")
    return Runtime(settings, clock=lambda: NOW, progress=False)


def run_backfill(
    root: Path, server: EmulatorServer, symbols: list[str], freq: str = "1h",
    start: D = START, end: D = END,
) -> TaskRecord:  # fmt: skip
    req = BackfillRequest("mdapi", "klines", tuple(symbols), freq, start, end)
    return asyncio.run(backfill(runtime(root, server.base_url), req))


def truth(symbols: list[str], freq: str = "1h", start: D = START, end: D = END) -> pl.DataFrame:
    """What the emulator serves: its generator (FX has no volume: null in the lake)."""
    frames = []
    for symbol in symbols:
        bars = klines_for_any(symbol, freq, start, end, NOW)
        frames.append(
            pl.DataFrame(schema=SCHEMA, data={
                "symbol": symbol, "ts": pl.Series(bars.ts).cast(pl.Datetime("us", "UTC")),
                "trade_date": pl.Series(bars.trade_date.astype("datetime64[D]")).cast(pl.Date),
                "open": bars.open, "high": bars.high, "low": bars.low, "close": bars.close,
                "volume": bars.volume if bars.volume is not None else [None] * len(bars),
            })
        )  # fmt: skip
    return pl.concat(frames).sort("symbol", "ts")


def stored(root: Path, freq: str = "1h") -> pl.DataFrame:
    files = sorted((root / "lake" / "klines").glob(f"freq={freq}/*/*.parquet"))
    if not files:
        return pl.DataFrame(schema=SCHEMA)
    frame = pl.read_parquet(files)
    assert frame["amount"].null_count() == frame.height  # mdapi has no turnover
    return frame.select(COLUMNS).sort("symbol", "ts")


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root after ``instruments sync --vendor mdapi``."""
    root = tmp_path_factory.mktemp("mdapi") / "data"
    with running(MdapiEmulator, now=NOW) as server:
        record = asyncio.run(sync_instruments(runtime(root, server.base_url), "mdapi", None))
        stats = server.stats()
    assert (record.status, record.error_count, record.rows_written) == ("completed", 0, 55)
    # 1 category list + 5 symbol lists, asked once for the three markets, within 2/s
    assert stats["requests"] == 6 and stats["violations"] == 0
    return root


@pytest.fixture
def root(synced: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "data"
    shutil.copytree(synced, copy)
    return copy


def test_instruments_sync_builds_the_code_map(synced: Path) -> None:
    found = instrument_map(synced, "mdapi")
    assert len(found.codes) == 55
    assert (found.codes["BTCUSDT.CC"], found.codes["GBPUSD.FX"]) == ("btcusdt", "fx_sgbpusd")
    assert (found.codes["HX_HSI.MDAPI"], found.codes["HF_OIL.MDAPI"]) == ("HX_HSI", "hf_OIL")
    assert found.extra["RT_AU.MDAPI"] == {"category": "3"}


def test_backfill_stores_exactly_the_emulator_data(root: Path) -> None:
    with running(MdapiEmulator, now=NOW) as server:
        record = run_backfill(root, server, SYMBOLS)
        stats = server.stats()
    assert (record.status, record.error_count, record.result["unavailable"]) == (
        "completed", 0, [],
    )  # fmt: skip
    assert stored(root).equals(truth(SYMBOLS))
    assert stats["violations"] == 0 and stats["by_path"]["/redis.php"]["requests"] == 3
    assert record.result["requests"] == 3  # one window per product


@pytest.mark.parametrize(
    "fault",
    [
        "http_500@1", "timeout:0.3@1", "connection_reset@1", "malformed_json@1",
        "truncated_body@1", "duplicate_bars", "out_of_order_bars", "out_of_order_bars:reversed",
        "schema_drift:extra",
    ],
)  # fmt: skip
def test_faults_ending_with_exactly_the_emulator_data(root: Path, fault: str) -> None:
    with running(MdapiEmulator, now=NOW, faults=fault) as server:
        record = run_backfill(root, server, SYMBOLS)
        stats = server.stats()
    assert (record.status, record.error_count, record.errors) == ("completed", 0, [])
    assert stored(root).equals(truth(SYMBOLS))
    assert stats["violations"] == 0 and stats["faults_applied"] >= 1
    assert record.result["requests"] == 3 + fault.endswith("@1")  # the failed try, retried


@pytest.mark.slow  # the ban is 10 s
def test_rate_limit_burst_waits_out_the_ban(root: Path) -> None:
    with running(MdapiEmulator, now=NOW, faults="rate_limit_burst@1") as server:
        began = time.monotonic()
        record = run_backfill(root, server, SYMBOLS)
        took = time.monotonic() - began
        stats = server.stats()
    assert (record.status, record.error_count) == ("completed", 0)
    assert stored(root).equals(truth(SYMBOLS))
    # nothing was sent into the 10 s ban: not a single violation, and the retry came after it
    assert stats["violations"] == 0 and stats["statuses"] == {"200": 4}
    assert took >= 10.0 and record.result["requests"] == 4


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
    with running(MdapiEmulator, now=NOW, faults=fault) as server:
        record = run_backfill(root, server, SYMBOLS)
    got, want = stored(root), truth(SYMBOLS)
    # Nothing bad is stored: every stored bar is the generator's, and only refused ones lack.
    assert got.join(want, on=COLUMNS, how="anti", nulls_equal=True).height == 0
    lacking = want.height - got.height
    refused = sum(int(e["reason"].split(" ", 1)[0]) for e in record.errors)
    per_key = 2 if "conflict" in fault else 1  # a conflicting key refuses both copies
    assert lacking > 0 and refused == lacking * per_key
    assert {e["reason"].split(": ", 1)[1] for e in record.errors} == reasons
    assert record.status == "completed" and record.error_count > 0  # the CLI exits 1


def test_missing_bars_store_what_was_sent_and_a_rerun_heals(root: Path) -> None:
    with running(MdapiEmulator, now=NOW, faults="missing_bars@1-3") as server:
        first = run_backfill(root, server, SYMBOLS)
        after_first = stored(root)
        second = run_backfill(root, server, SYMBOLS)
    want = truth(SYMBOLS)
    assert first.error_count == 0 and want.height > after_first.height
    assert after_first.join(want, on=COLUMNS, how="anti", nulls_equal=True).height == 0
    assert second.error_count == 0 and stored(root).equals(want)


@pytest.mark.parametrize("fault", ["ip_refused", "auth_expired"])
def test_ip_refusal_stops_with_an_auth_error_and_stores_nothing(root: Path, fault: str) -> None:
    with (
        running(MdapiEmulator, now=NOW, faults=fault) as server,
        pytest.raises(AuthError, match="allow-list") as info,
    ):
        run_backfill(root, server, SYMBOLS)
    assert info.value.exit_code == 3 and "IP未授权" in str(info.value)
    assert stored(root).height == 0


def test_schema_drift_rename_fails_every_product_and_stores_nothing(root: Path) -> None:
    with running(MdapiEmulator, now=NOW, faults="schema_drift:rename") as server:
        record = run_backfill(root, server, SYMBOLS)
    assert stored(root).height == 0 and record.rows_written == 0
    assert record.error_count == 3 and all("not an array" in e["reason"] for e in record.errors)


def test_minute_bars_of_today_are_stored_but_not_claimed(root: Path) -> None:
    day = NOW.date()
    with running(MdapiEmulator, now=NOW) as server:
        record = run_backfill(root, server, SYMBOLS[:1], "1m", day, day)
    # the latest 600 bars: 10:01 to 20:00 local, the last still forming (not stored)
    got = stored(root, "1m")
    assert got.equals(truth(SYMBOLS[:1], "1m", day, day).tail(599))
    (why,) = record.result["unavailable"]  # the window opens mid-day: the day is not claimed
    assert (why["start"], why["end"], why["reason"]) == (
        "2024-06-28", "2024-06-28", "beyond mdapi's window (only the latest 600 1m bars)",
    )  # fmt: skip


def test_range_older_than_the_window_is_unavailable_and_never_planned(root: Path) -> None:
    symbols = SYMBOLS[:2]
    start = D(2024, 6, 1)
    oldest = {s: latest_bars(BY_CODE[c], "1h", 300, NOW, 0)[-1].ts
              for s, c in (("BTCUSDT.CC", "btcusdt"), ("GBPUSD.FX", "fx_sgbpusd"))}  # fmt: skip
    assert oldest == {  # 300 bars back from the forming 20:00 bar (local times)
        "BTCUSDT.CC": dt.datetime(2024, 6, 16, 1, tzinfo=dt.UTC),  # 16th 09:00, every day
        "GBPUSD.FX": dt.datetime(2024, 6, 12, 1, tzinfo=dt.UTC),  # 12th 09:00, Mon-Fri only
    }
    sel = Selection("klines", start, END, "1h", tuple(symbols))
    with running(MdapiEmulator, now=NOW) as server:
        rt = runtime(root, server.base_url)
        plan = plan_only(rt, "mdapi", sel)
        assert server.stats()["requests"] == 0  # planning asks nothing
        reset_stats(server.base_url)
        task = asyncio.run(fill_missing(runtime(root, server.base_url), "mdapi", sel))
        stats = server.stats()
        # A plain backfill of the same range books the old part as unavailable, per product.
        record = run_backfill(root, server, symbols, "1h", start, END)
    want = truth(symbols, "1h", start, END)
    beyond = want.filter(pl.col("ts") < pl.col("symbol").replace_strict(oldest))
    # One call per symbol covers the whole range; what lies beyond the window is the answer's
    # to say (regression: marked unfillable by the local clock, without a request).
    assert plan["unfillable"] == 0 and beyond.height > 0
    assert (plan["requests"], plan["calls"]) == (2, 2)
    assert stats["requests"] == 2 and stats["violations"] == 0
    assert task.status == "completed" and task.error_count == 0
    # what is left, and why, is in the task's result (and so in its summary line)
    (left,) = task.result["left_reasons"]
    assert (left["state"], left["reason"], left["slots"]) == ("unfillable", WINDOW, beyond.height)
    assert stored(root).equals(want.join(beyond, on=COLUMNS, how="anti", nulls_equal=True))
    after = detect(root, sel, NOW, keep_slots=True)
    assert after.state_counts()["missing"] == 0
    assert after.state_counts()["unfillable"] == beyond.height
    reasons = set(after.slots.filter(pl.col("state") == "unfillable")["reason"].to_list())
    assert reasons == {WINDOW}
    assert sorted((u["symbol"], u["start"], u["end"], u["reason"])
                  for u in record.result["unavailable"]) == [
        ("BTCUSDT.CC", "2024-06-01", "2024-06-16", WINDOW),  # the 16th only from 09:00
        ("GBPUSD.FX", "2024-06-01", "2024-06-12", WINDOW),
    ]  # fmt: skip


def test_sustained_calls_keep_the_per_product_limit(tmp_path: Path) -> None:
    with running(MdapiEmulator, now=NOW) as server:
        rt = runtime(tmp_path / "data", server.base_url)
        adapter = rt.adapter("mdapi")

        async def hammer(symbol: str) -> None:
            for _ in range(8):
                await adapter.klines([symbol], "1d", END, END)

        async def go() -> float:
            began = time.monotonic()
            await asyncio.gather(*(hammer(s) for s in ("BTCUSDT.CC", "GBPUSD.FX", "HX_HSI.MDAPI")))
            await adapter.aclose()
            return time.monotonic() - began

        took = asyncio.run(go())
        stats = server.stats()
    assert stats["requests"] == 24 and stats["violations"] == 0
    assert 0.55 < took < 3.0  # 8 per product at 5/s: 5 at once, 3 more after ~a second


def test_cli_refused_ip_exits_3(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with spawn_emulate("mdapi", "--faults", "ip_refused") as emu:
        env = etl_env(data, ETL_MDAPI_BASE_URL=emu.base_url)

        def etl(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([*ETL, *args], env=env, capture_output=True, text=True,
                                  timeout=120)  # fmt: skip

        check = etl("vendors", "check", "mdapi", "--json")
        fill = etl("backfill", "--vendor", "mdapi", "--dataset", "klines", "--freq", "1d",
                   "--symbols", "BTCUSDT.CC", "--start", "2024-06-03",
                   "--end", "2024-06-28")  # fmt: skip
    assert check.returncode == 3 and not json.loads(check.stdout)["success"]
    assert "allow-list" in json.loads(check.stdout)["message"]
    assert fill.returncode == 3 and "IP未授权" in fill.stderr and "allow-list" in fill.stderr
    assert not list((data / "lake").glob("klines/**/*.parquet"))


@pytest.mark.slow  # three CLI processes and an emulator process
def test_cli_sync_then_backfill(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with spawn_emulate("mdapi") as emu:  # the real clock, like the CLI's
        assert emu.ready["vendor"] == "mdapi" and emu.ready["ws_url"].endswith("/ws")
        env = etl_env(data, ETL_MDAPI_BASE_URL=emu.base_url)

        def etl(*args: str) -> subprocess.CompletedProcess[str]:
            cmd = [*ETL, *args, "--json"]
            return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)

        synced = etl("instruments", "sync", "--vendor", "mdapi")
        today = dt.datetime.now(dt.UTC).date()
        month = ["--start", (today - dt.timedelta(days=30)).isoformat(), "--end", today.isoformat()]
        done = etl("backfill", "--vendor", "mdapi", "--dataset", "klines", "--freq", "1d",
                   "--symbols", "HF_OIL.MDAPI,BTCUSDT.CC", *month)  # fmt: skip
        assert emu.stats()["violations"] == 0
    assert synced.returncode == 0 and json.loads(synced.stdout)["rows_written"] == 55
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows_written"] >= 40  # ~30 days of CC, ~21 of HF_OIL
