"""Point in time, end to end: statements stored from the AmazingData emulator, read through the
catalog's ``<dataset>_asof(date)`` macros. The emulator restates some periods: a second row
with ``STATEMENT_TYPE`` "4" and a later ``ACTUAL_ANN_DATE``. An as-of date before that
announcement must see the original figures, one on or after it the restated ones, and one
before the original announcement nothing at all (no look-ahead either way).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from etl.catalog import ReadOnlySession
from etl.config import Secret, Settings, VendorSettings
from etl.emulators.amazingdata_data import codes_of
from etl.emulators.testing import running
from etl.tasks.backfill import BackfillRequest, backfill
from etl.tasks.runtime import Runtime

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

NOW = dt.datetime(2024, 6, 28, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
# dataset -> an item column whose restated value the test compares
ITEMS = {
    "income": "net_pro_excl_min_int_inc",
    "balance_sheet": "total_assets",
    "cash_flow": "net_cash_flows_opera_act",
}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every version of the three statements of 50 A shares since 2020, as served."""
    root = tmp_path_factory.mktemp("asof") / "data"
    symbols = tuple(codes_of("EXTRA_STOCK_A", NOW, 0)[:50])  # one call per statement
    with running("amazingdata", now=NOW) as server:
        vendor = VendorSettings(
            "amazingdata", base_url=server.base_url, username="analyst", password=Secret("pw")
        )
        settings = Settings(root, {"amazingdata": vendor}, jobs_dir=root / "jobs")
        for dataset in ITEMS:
            rt = Runtime(settings, clock=lambda: NOW, progress=False)
            periods = (dt.date(2020, 1, 1), dt.date(2024, 6, 30))
            req = BackfillRequest("amazingdata", dataset, symbols, None, *periods)
            record = asyncio.run(backfill(rt, req))
            assert (record.status, record.error_count) == ("completed", 0)
    return root


def query(root: Path, sql: str, *params: Any) -> list[dict[str, Any]]:
    result = ReadOnlySession(root).arrow(sql, params)
    rows: list[dict[str, Any]] = result.to_pylist()
    return rows


@pytest.mark.parametrize("dataset", list(ITEMS))
def test_a_restatement_is_invisible_before_its_announcement(root: Path, dataset: str) -> None:
    item = ITEMS[dataset]
    # A restated period found in the stored data: the original and the later version "4".
    found = query(
        root,
        f"SELECT o.symbol, o.reporting_period, o.actual_ann_date AS first_ann, "
        f"r.actual_ann_date AS re_ann, o.{item} AS original, r.{item} AS restated "
        f"FROM {dataset} o JOIN {dataset} r USING (symbol, reporting_period) "
        f"WHERE o.statement_type = '1' AND r.statement_type = '4' "
        f"ORDER BY o.symbol, o.reporting_period LIMIT 1",
    )
    assert found, f"no restatement among the stored {dataset}: the test proves nothing"
    (case,) = found
    assert case["re_ann"] > case["first_ann"] and case["original"] != case["restated"]

    def as_of(day: dt.date) -> list[tuple[str, float]]:
        rows = query(
            root,
            f"SELECT statement_type, {item} AS value FROM {dataset}_asof(?) "
            f"WHERE symbol = ? AND reporting_period = ?",
            day.isoformat(), case["symbol"], case["reporting_period"],
        )  # fmt: skip
        return [(r["statement_type"], r["value"]) for r in rows]

    assert as_of(case["first_ann"] - DAY) == []  # not yet announced at all
    assert as_of(case["first_ann"]) == [("1", case["original"])]
    assert as_of(case["re_ann"] - DAY) == [("1", case["original"])]  # the eve of the restatement
    assert as_of(case["re_ann"]) == [("4", case["restated"])]
    assert as_of(NOW.date()) == [("4", case["restated"])]
