"""detect-missing finds exactly the absent slots, as maximal runs, with states from the ledger."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etl.calendars import bar_grid
from etl.lake import Lake
from etl.tasks import detect as detect_module
from etl.tasks.detect import detect
from etl.tasks.expected import Selection
from etl.tasks.ledger import outcome_states, record_states
from tests.conftest import NOW

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

START, END = dt.date(2024, 1, 2), dt.date(2024, 2, 29)
SYMBOLS = ("600000.SH", "000001.SZ")


def grid_rows(symbol: str, freq: str) -> pl.DataFrame:
    grid = bar_grid(symbol.rsplit(".", 1)[1], freq, START, END)
    n = len(grid)
    return pl.DataFrame({
        "symbol": [symbol] * n, "freq": [freq] * n,
        "ts": pl.Series(grid.ts).cast(pl.Datetime("us", "UTC")),
        "trade_date": pl.Series(grid.trade_date.astype("datetime64[D]")).cast(pl.Date),
        "open": [10.0] * n, "high": [11.0] * n, "low": [9.0] * n, "close": [10.5] * n,
        "volume": [1.0] * n, "vendor": ["test"] * n,
    })  # fmt: skip


def reference_runs(expected: list[dt.datetime], absent: set[int]) -> list[tuple[int, int]]:
    """Maximal runs of consecutive indices, computed by hand."""
    runs, start = [], None
    for i in range(len(expected) + 1):
        if i in absent and start is None:
            start = i
        elif i not in absent and start is not None:
            runs.append((start, i - 1))
            start = None
    return runs


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data(), freq=st.sampled_from(["1d", "1h"]))
def test_gaps_are_the_maximal_runs_of_what_was_removed(tmp_path_factory, data, freq) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("detect")
    expected_by_symbol, removed_by_symbol = {}, {}
    frames = []
    for symbol in SYMBOLS:
        rows = grid_rows(symbol, freq)
        removed = data.draw(st.sets(st.integers(0, rows.height - 1), max_size=12), label=symbol)
        keep = [i for i in range(rows.height) if i not in removed]
        frames.append(rows[keep])
        expected_by_symbol[symbol] = rows["ts"].to_list()
        removed_by_symbol[symbol] = removed
    Lake(root).write("klines", pl.concat(frames), now=NOW)

    report = detect(root, Selection("klines", START, END, freq, SYMBOLS), NOW)
    got = sorted(
        (g["symbol"], g["start"], g["end"], g["bars"]) for g in report.gaps.iter_rows(named=True)
    )
    want = []
    for symbol in SYMBOLS:
        exp = expected_by_symbol[symbol]
        for a, b in reference_runs(exp, removed_by_symbol[symbol]):
            want.append((symbol, exp[a], exp[b], b - a + 1))
    assert got == sorted(want)
    total = sum(len(v) for v in expected_by_symbol.values())
    assert report.expected_rows == total
    assert report.present_rows == total - sum(len(v) for v in removed_by_symbol.values())
    doc = report.document(1, "completed")
    assert doc["missing_codes"] == sorted(s for s in SYMBOLS if removed_by_symbol[s])
    assert doc["complete_count"] + doc["missing_count"] == doc["total_count"] == 2


def test_ledger_states_split_runs_and_confirmed_empty_is_not_missing(data_root: Path) -> None:
    rows = grid_rows("600000.SH", "1d")
    lake = Lake(data_root)
    lake.write("klines", rows[[i for i in range(rows.height) if i not in (3, 4, 5, 10)]], now=NOW)
    sel = Selection("klines", START, END, "1d", ("600000.SH",))
    slots = detect(data_root, sel, NOW, keep_slots=True).slots
    assert slots.height == 4
    states = slots.with_columns(
        pl.when(pl.col("ts") == rows["ts"][4])
        .then(pl.lit("failed"))
        .when(pl.col("ts") == rows["ts"][10])
        .then(pl.lit("confirmed_empty"))
        .otherwise(pl.lit("missing"))
        .alias("state"),
        pl.lit("test").alias("reason"),
    ).filter(pl.col("state") != "missing")
    record_states(lake, sel, states, vendor="test", task_id=None, now=NOW)
    report = detect(data_root, sel, NOW)
    doc = report.document(2, "completed")
    assert doc["states"] == {"missing": 2, "confirmed_empty": 1, "failed": 1, "unfillable": 0}
    assert [(g["bars"], g["state"]) for g in doc["gaps"]] == [
        (1, "missing"),
        (1, "failed"),
        (1, "missing"),
    ]
    day = rows["trade_date"][10].isoformat()
    assert doc["daily_stats"][day] == {
        "expected": 1,
        "present": 0,
        "missing": 0,
        "confirmed_empty": 1,
    }
    assert doc["error_count"] == 1


def test_outcome_priority_failed_over_empty() -> None:
    ts = dt.datetime(2024, 1, 2, 1, 30, tzinfo=dt.UTC)
    absent = pl.DataFrame({"symbol": ["A.SH"], "ts": [ts], "trade_date": [dt.date(2024, 1, 2)]})
    events = pl.DataFrame({
        "symbol": ["A.SH", "A.SH"], "start": [dt.date(2024, 1, 1)] * 2,
        "end": [dt.date(2024, 1, 3)] * 2, "state": ["confirmed_empty", "failed"],
        "reason": [None, "HTTP 500"],
    })  # fmt: skip
    [row] = outcome_states(absent, events).to_dicts()
    assert (row["state"], row["reason"]) == ("failed", "HTTP 500")


def test_products_without_calendar_are_not_judged(data_root: Path) -> None:
    sel = Selection("klines", START, END, "1d", ("HX_HSI.MDAPI", "600000.SH"))
    doc = detect(data_root, sel, NOW).document(None, "completed")
    assert doc["total_count"] == 1
    assert doc["unjudged"] == [
        {"symbol": "HX_HSI.MDAPI", "reason": "no calendar is known for this product"}
    ]


def test_task_records_scrub_secrets_from_values_not_keys(tmp_path: Path) -> None:
    # Regression: a one-letter API key ("k") turned the record's "kind" key into "***ind".
    from etl.tasks.records import TaskStore

    store = TaskStore(tmp_path, secrets=["k", "s3cr3t-key"])
    record = store.create("backfill", {"url": "http://v/?key=s3cr3t-key", "note": "k"}, now=NOW)
    record.add_error("A.SH", None, None, "refused s3cr3t-key")
    store.save(record)
    text = store.path(record.id).read_text()
    loaded = store.load(record.id)
    assert "s3cr3t-key" not in text
    assert loaded.kind == "backfill"
    assert loaded.params == {"url": "http://v/?key=***", "note": "***"}
    assert loaded.errors[0]["reason"] == "refused ***"


def test_chunked_detection_equals_one_pass(
    data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Symbols are judged in chunks of bounded size: cut into chunks of one or two symbols'
    slots, the report is the same as in one pass (runs, days, states, counts, slots)."""
    symbols = ("600000.SH", "600004.SH", "000001.SZ", "000002.SZ", "300750.SZ")
    frames = []
    for n, symbol in enumerate(symbols):
        rows = grid_rows(symbol, "1h")
        frames.append(rows.filter(pl.int_range(pl.len()) % (n + 3) != 0))  # holes differ
    Lake(data_root).write("klines", pl.concat(frames), now=NOW)
    sel = Selection("klines", START, END, "1h", symbols)
    whole = detect(data_root, sel, NOW, keep_slots=True)
    per_symbol_slots = grid_rows(symbols[0], "1h").height
    monkeypatch.setattr("etl.tasks.detect.SLOT_BUDGET", per_symbol_slots + 1)
    chunked = detect(data_root, sel, NOW, keep_slots=True)
    assert whole.gaps.height > 0 and whole.slots.height > 0
    assert chunked.document(1, "completed") == whole.document(1, "completed")
    assert chunked.slots.equals(whole.slots)
    assert chunked.per_symbol.equals(whole.per_symbol)
    assert chunked.daily.equals(whole.daily)
    assert chunked.present_rows == whole.present_rows == sum(f.height for f in frames)
    # and without keep_slots nothing but the aggregates is held
    lean = detect(data_root, sel, NOW)
    assert lean.slots.height == 0 and lean.document(1, "x") == whole.document(1, "x")


def test_gap_runs_beyond_the_document_cap_are_counted(
    data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = grid_rows("600000.SH", "1h")
    Lake(data_root).write("klines", rows.filter(pl.int_range(pl.len()) % 2 == 0), now=NOW)
    sel = Selection("klines", START, END, "1h", ("600000.SH",))
    runs = rows.height // 2
    monkeypatch.setattr("etl.tasks.detect.MAX_GAPS_IN_DOCUMENT", 7)
    monkeypatch.setattr("etl.tasks.detect.SLOT_BUDGET", 10)  # every symbol its own chunk
    report = detect(data_root, sel, NOW)
    doc = report.document(None, "completed")
    assert len(doc["gaps"]) == 7 and doc["gaps_truncated"] is True
    assert report.gaps_total == runs
    assert [g["start"] for g in doc["gaps"]] == sorted(g["start"] for g in doc["gaps"])
    assert doc["present_rows"] == rows.height - runs


@pytest.mark.parametrize("freq", ["1d", "1h"])
def test_nothing_stored_reports_as_duckdb_does(
    data_root: Path, monkeypatch: pytest.MonkeyPatch, freq: str
) -> None:
    """Symbols no stored or ledger file can hold get their report from the expectation
    alone (no DuckDB): the same report, slot for slot, as the DuckDB path's. One of them
    listed mid-range, so its slots are its grid clipped to its listed life."""
    Lake(data_root).write("klines", grid_rows("600000.SH", freq), now=NOW)
    late = dt.date(2024, 2, 5)
    Lake(data_root).write(
        "instruments",
        pl.DataFrame({
            "symbol": ["600004.SH"], "market": ["SH"], "type": ["stock"], "vendor": ["test"],
            "vendor_code": ["600004"],
            "list_date": [late], "delist_date": [None],
        }, schema_overrides={"delist_date": pl.Date}),
        now=NOW,
    )  # fmt: skip
    sel = Selection("klines", START, END, freq, ("600004.SH", "600009.SH", "000001.SZ"))
    taken: list[bool] = []
    real = detect_module._nothing_stored

    def spy(*args: object) -> bool:
        taken.append(real(*args))  # type: ignore[arg-type]
        return taken[-1]

    monkeypatch.setattr(detect_module, "_nothing_stored", spy)
    fast = detect(data_root, sel, NOW, keep_slots=True)
    assert taken == [True]
    monkeypatch.setattr(detect_module, "_nothing_stored", lambda *a: False)
    slow = detect(data_root, sel, NOW, keep_slots=True)
    assert fast.document(1, "completed") == slow.document(1, "completed")
    for name in ("slots", "per_symbol", "daily", "gaps"):
        assert getattr(fast, name).equals(getattr(slow, name)), name
    assert fast.reasons.sort("state").equals(slow.reasons.sort("state"))
    assert fast.slots.filter(pl.col("symbol") == "600004.SH")["trade_date"].min() == late
    assert fast.gaps.height == 3 and fast.present_rows == 0 and fast.expected_rows > 0


def test_a_ledger_entry_goes_through_duckdb(data_root: Path) -> None:
    """A symbol with nothing stored but a state in the gap ledger is not "all missing"."""
    sel = Selection("klines", START, END, "1d", ("600000.SH",))
    day = bar_grid("SH", "1d", START, START)
    states = pl.DataFrame({
        "symbol": ["600000.SH"], "ts": pl.Series(day.ts).cast(pl.Datetime("us", "UTC")),
        "trade_date": [START], "state": ["confirmed_empty"], "reason": ["answered, no bars"],
    })  # fmt: skip
    record_states(Lake(data_root), sel, states, vendor="test", task_id=1, now=NOW)
    report = detect(data_root, sel, NOW)
    assert report.state_counts()["confirmed_empty"] == 1
    assert report.state_counts()["missing"] == report.expected_rows - 1
