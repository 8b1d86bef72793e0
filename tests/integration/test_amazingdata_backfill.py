"""AmazingData end to end: every fault of docs/vendors/README.md, in AmazingData's wire form,
through a real backfill task against the emulator on 127.0.0.1. Each ends either with exactly the
emulator's data (klines: the synthetic generator behind it; statements: a fault-free run) or
with a clear error and nothing stored for the bad part. The task functions run with a
Runtime on a tmp data root, as the CLI would (tests/integration/test_amazingdata_cli.py
drives the real commands).

WHEN numbers count what a fault applies to (etl/emulators/faults.py): the login is the first
request for the network and ``http_500``-like faults, but it is not counted by
``rate_limit_burst`` (logins are outside the limits), ``auth_expired`` (but for its ``:login``
variant) or the bar faults, so ``@2`` and ``@1`` below both mean "the first data call".
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from etl.config import Secret, Settings, VendorSettings
from etl.emulators.testing import running
from etl.errors import AuthError
from etl.synthetic import klines as synthetic_klines
from etl.tasks.backfill import BackfillRequest, backfill
from etl.tasks.records import TaskRecord, TaskStore
from etl.tasks.runtime import Runtime

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

NOW = dt.datetime(2024, 6, 28, 12, 0, tzinfo=dt.UTC)  # Friday, 20:00 in Shanghai
D = dt.date
USER, PASSWORD = "analyst", "pw-Zq81-secret"
SYMBOLS = ("600000.SH", "600036.SH")  # one market: one kline call, one finance call
START, END = D(2024, 1, 2), D(2024, 6, 28)  # trade dates of the 1d bars
PERIODS = (D(2022, 1, 1), D(2024, 6, 30))  # reporting periods of the statements
STATEMENT = "income"
PRICES = ("open", "high", "low", "close", "volume", "amount")
SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.String(), "ts": pl.Datetime("us", "UTC"), "trade_date": pl.Date(),
    **{p: pl.Float64() for p in PRICES},
}  # fmt: skip
COLUMNS = list(SCHEMA)
STATEMENT_KEY = ["symbol", "reporting_period", "statement_type", "actual_ann_date"]


def runtime(root: Path, base_url: str) -> Runtime:
    vendor = VendorSettings(
        "amazingdata", base_url=base_url, username=USER, password=Secret(PASSWORD),
        extra={"backoff_base": 0.05, "backoff_jitter": 0.0},
    )  # fmt: skip
    settings = Settings(data_dir=root, vendors={"amazingdata": vendor}, jobs_dir=root / "jobs")
    return Runtime(settings, clock=lambda: NOW, progress=False)


def request(dataset: str) -> BackfillRequest:
    if dataset == "klines":
        return BackfillRequest("amazingdata", "klines", SYMBOLS, "1d", START, END)
    return BackfillRequest("amazingdata", dataset, SYMBOLS, None, *PERIODS)


def run_backfill(root: Path, dataset: str, faults: str | None = None) -> TaskRecord:
    """One backfill task of ``dataset`` against a fresh emulator with ``faults``."""
    with running("amazingdata", now=NOW, faults=faults or "") as server:
        record = asyncio.run(backfill(runtime(root, server.base_url), request(dataset)))
        stats = server.stats()
    assert stats["violations"] == 0, stats
    if faults:
        assert stats["faults_applied"] >= 1, f"{faults} never fired: the test proves nothing"
    return record


def truth() -> pl.DataFrame:
    """The emulator's 1d bars: the synthetic generator behind it."""
    frames = []
    for symbol in SYMBOLS:
        bars = synthetic_klines(symbol, "1d", START, END, NOW)
        frames.append(pl.DataFrame({
            "symbol": symbol, "ts": pl.Series(bars.ts).cast(pl.Datetime("us", "UTC")),
            "trade_date": pl.Series(bars.trade_date.astype("datetime64[D]")).cast(pl.Date),
            "open": bars.open, "high": bars.high, "low": bars.low, "close": bars.close,
            "volume": bars.volume, "amount": bars.amount,
        }, schema=SCHEMA))  # fmt: skip
    return pl.concat(frames).sort("symbol", "ts")


def stored(root: Path, dataset: str) -> pl.DataFrame:
    """What the lake holds (klines: the compared columns; statements: all but lineage)."""
    files = sorted((root / "lake" / dataset).rglob("*.parquet"))
    if dataset == "klines":
        if not files:
            return pl.DataFrame(schema=SCHEMA)
        return pl.read_parquet(files).select(COLUMNS).sort("symbol", "ts")
    if not files:
        return pl.DataFrame()
    return pl.read_parquet(files).drop("ingested_at").sort(STATEMENT_KEY)


@pytest.fixture(scope="module")
def clean_statements(tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    """The statements a fault-free emulator gives (restatements included)."""
    root = tmp_path_factory.mktemp("amazingdata-clean") / "data"
    record = run_backfill(root, STATEMENT)
    assert (record.status, record.error_count) == ("completed", 0)
    frame = stored(root, STATEMENT)
    assert frame.height > 10 and set(frame["symbol"]) == set(SYMBOLS)
    return frame


def test_fault_free_klines_are_the_generator_data(data_root: Path) -> None:
    record = run_backfill(data_root, "klines")
    assert (record.status, record.error_count, record.errors) == ("completed", 0, [])
    assert stored(data_root, "klines").equals(truth())
    # the login, then both codes in one call: every request sent is counted
    assert record.result["requests"] == 1 + 1


SURVIVED = [
    "rate_limit_burst@1", "http_500@2", "timeout:1@2", "connection_reset@2", "truncated_body@2",
    "malformed_json@2", "auth_expired@1", "schema_drift:extra",
]  # fmt: skip


@pytest.mark.parametrize("fault", SURVIVED)
def test_klines_faults_ending_with_exactly_the_emulator_data(data_root: Path, fault: str) -> None:
    record = run_backfill(data_root, "klines", fault)
    assert (record.status, record.error_count, record.errors) == ("completed", 0, [])
    assert stored(data_root, "klines").equals(truth())
    # The login, the refused call and its repeat (after a retry, or after logging in again:
    # a second login). Every request sent is counted (regression: one per call was).
    repeat = not fault.startswith("schema_drift")
    relogin = fault.startswith("auth_expired")
    assert record.result["requests"] == 1 + 1 + repeat + relogin


@pytest.mark.parametrize("fault", SURVIVED)
def test_statement_faults_ending_with_exactly_the_emulator_data(
    data_root: Path, clean_statements: pl.DataFrame, fault: str
) -> None:
    record = run_backfill(data_root, STATEMENT, fault)
    assert (record.status, record.error_count, record.errors) == ("completed", 0, [])
    assert stored(data_root, STATEMENT).equals(clean_statements)


@pytest.mark.parametrize(
    "fault", ["duplicate_bars", "out_of_order_bars", "out_of_order_bars:reversed"]
)
def test_bar_faults_repaired_to_exactly_the_emulator_data(data_root: Path, fault: str) -> None:
    record = run_backfill(data_root, "klines", fault)
    assert (record.status, record.error_count) == ("completed", 0)
    assert stored(data_root, "klines").equals(truth())
    # Copies dropped, or rows put back in order: counted as repairs, never as errors.
    assert record.result["repaired_rows"] > 0 or fault.startswith("out_of_order")


@pytest.mark.parametrize(
    ("fault", "reasons"),
    [
        ("bad_prices", {"high below low", "price zero or negative", "NaN price"}),
        ("bad_prices:nan", {"NaN price"}),  # a bare NaN token in the JSON
        ("bad_prices:negative", {"price zero or negative"}),
        ("bad_prices:high_low", {"high below low"}),
        ("duplicate_bars:conflict", {"conflicting duplicates (same key, other values)"}),
    ],
)
def test_bad_rows_are_refused_and_the_rest_stored(
    data_root: Path, fault: str, reasons: set[str]
) -> None:
    record = run_backfill(data_root, "klines", fault)
    got, want = stored(data_root, "klines"), truth()
    # Nothing bad is stored: every stored bar is the generator's; only refused ones lack.
    assert got.join(want, on=COLUMNS, how="anti").height == 0
    lacking = want.height - got.height
    refused = sum(int(e["reason"].split(" ", 1)[0]) for e in record.errors)
    per_key = 2 if "conflict" in fault else 1  # a conflicting key refuses both copies
    assert lacking > 0 and refused == lacking * per_key
    assert {e["reason"].split(": ", 1)[1] for e in record.errors} == reasons
    assert {e["symbol"] for e in record.errors} <= set(SYMBOLS)
    assert record.status == "completed" and record.error_count > 0  # the CLI exits 1


def test_missing_bars_store_what_was_sent_and_a_rerun_heals(data_root: Path) -> None:
    first = run_backfill(data_root, "klines", "missing_bars")
    after_first, want = stored(data_root, "klines"), truth()
    assert first.error_count == 0 and want.height > after_first.height
    assert after_first.join(want, on=COLUMNS, how="anti").height == 0
    second = run_backfill(data_root, "klines")
    assert second.error_count == 0 and stored(data_root, "klines").equals(want)


@pytest.mark.parametrize("dataset", ["klines", STATEMENT])
def test_schema_drift_rename_fails_the_call_and_stores_nothing(
    data_root: Path, dataset: str
) -> None:
    record = run_backfill(data_root, dataset, "schema_drift:rename")
    renamed = "'trade_date'" if dataset == "klines" else "REPORTING_PERIOD"
    assert record.rows_written == 0 and stored(data_root, dataset).height == 0
    assert record.error_count == len(SYMBOLS)
    assert {e["symbol"] for e in record.errors} == set(SYMBOLS)
    assert all(renamed in e["reason"] for e in record.errors), record.errors


@pytest.mark.parametrize("dataset", ["klines", STATEMENT])
@pytest.mark.parametrize("fault", ["http_500", "rate_limit_burst", "truncated_body"])
def test_a_fault_that_never_clears_ends_with_errors_and_nothing_stored(
    data_root: Path, dataset: str, fault: str
) -> None:
    at = "@1+" if fault == "rate_limit_burst" else "@2+"  # let the login through
    record = run_backfill(data_root, dataset, fault + at)
    assert record.rows_written == 0 and stored(data_root, dataset).height == 0
    assert (record.status, record.error_count) == ("completed", len(SYMBOLS))  # the CLI exits 1
    says = {
        "http_500": 'HTTP 500: {"code":500,"message":"SDK调用失败"',
        "rate_limit_burst": 'HTTP 429: {"code":429,"message":"请求过于频繁"',
        "truncated_body": "peer closed connection without sending complete message body",
    }[fault]
    for error in record.errors:  # what failed, where, and after how many tries
        assert says in error["reason"] and "vendor=amazingdata" in error["reason"], error
        assert "attempts=4" in error["reason"], error  # the first try and 3 retries


@pytest.mark.parametrize("dataset", ["klines", STATEMENT])
@pytest.mark.parametrize(
    ("fault", "says"),
    [
        ("auth_expired", "Token无效或已过期"),  # every call refused: re-login does not help
        ("auth_expired:login@2+", "用户名或密码错误"),  # the re-login itself refused
        ("auth_expired:login", "用户名或密码错误"),  # the first login refused
    ],
)
def test_auth_failures_stop_the_task_and_store_nothing(
    data_root: Path, dataset: str, fault: str, says: str
) -> None:
    with pytest.raises(AuthError) as info:
        run_backfill(data_root, dataset, fault)
    assert says in str(info.value) and PASSWORD not in str(info.value)
    assert stored(data_root, dataset).height == 0
    (record,) = TaskStore(data_root).list()
    assert (record.status, record.rows_written) == ("failed", 0)
    assert not [
        p for p in data_root.rglob("*") if p.is_file() and PASSWORD in p.read_text("latin-1")
    ]
