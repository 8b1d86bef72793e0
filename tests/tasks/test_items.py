"""Each item of a task ends in exactly one category, and the exit code follows the reasons:
the rules of :mod:`etl.tasks.items`, on the outcomes a task can meet."""

from __future__ import annotations

import pytest

from etl.tasks.items import (
    BEYOND_DEPTH,
    CONFIRMED_EMPTY,
    NOT_COMPLETE,
    Item,
    ItemCounts,
    classify,
    count_items,
)
from etl.tasks.records import TaskRecord


@pytest.mark.parametrize(
    ("reason", "item_reason"),
    [
        ("not complete yet at now", NOT_COMPLETE),
        ("older than Infoway's minute history (2 years on this plan)", BEYOND_DEPTH),
        ("beyond mdapi's window (only the latest 600 1m bars)", BEYOND_DEPTH),
        ("StockTV returned no 1m bars before 2024-01-02", BEYOND_DEPTH),
        ("confirmed empty by the vendor", CONFIRMED_EMPTY),
        ("stocktv does not serve klines of SH", "not served"),
    ],
)
def test_vendor_reasons_map_to_item_reasons(reason: str, item_reason: str) -> None:
    assert classify(reason) == item_reason


def test_each_item_lands_in_one_category() -> None:
    counts = count_items(
        "symbols",
        {
            "A": Item(finished=True, started=True),
            "B": Item(finished=True, started=True, left=(NOT_COMPLETE,)),  # today: later
            "C": Item(finished=False, started=True),  # stopped part-way
            "D": Item(finished=False, started=False),  # stopped before it was asked
            "E": Item(finished=True, started=False, failed=True),
            "F": Item(finished=True, started=True, failed=True),
            "G": Item(finished=True, started=False, left=(BEYOND_DEPTH,)),
            "H": Item(finished=True, started=True, left=(NOT_COMPLETE, BEYOND_DEPTH)),
        },
    )
    doc = counts.as_dict()
    assert (doc["total"], doc["done"], doc["partly_done"], doc["failed"]) == (8, 2, 3, 1)
    assert (doc["unavailable"], doc["not_reached"]) == (1, 1)
    assert doc["why"]["partly_done"] == {"beyond depth": 1, "failed": 1, "stopped": 1}
    assert doc["why"]["done"] == {NOT_COMPLETE: 1}
    assert counts.text() == (
        "8 symbols: 2 done (not complete yet 1), 3 partly done (stopped 1, failed 1, "
        "beyond depth 1), 1 failed, 1 unavailable (beyond depth 1), 1 not reached"
    )
    assert ItemCounts.from_dict(doc) == counts


@pytest.mark.parametrize(
    ("items", "code"),
    [
        ({"A": Item(True, True), "B": Item(True, True, left=(NOT_COMPLETE,))}, 0),
        ({"A": Item(True, False, left=(CONFIRMED_EMPTY,))}, 0),
        # beyond a vendor's depth: said, by item, but nothing a rerun would change
        ({"A": Item(True, True), "B": Item(True, False, left=(BEYOND_DEPTH,))}, 0),
        ({"A": Item(True, True), "B": Item(True, False, left=("not served",))}, 1),
        ({"A": Item(True, True), "B": Item(False, True)}, 1),  # left unfinished
        ({"A": Item(True, True, failed=True)}, 1),
    ],
)
def test_exit_code_is_1_only_for_what_the_user_can_act_on(
    items: dict[str, Item], code: int
) -> None:
    record = TaskRecord(id=1, kind="backfill", status="completed")
    record.items = count_items("symbols", items).as_dict()
    assert record.exit_code() == code
    assert record.summary().startswith("task 1 backfill: completed, ")


def test_a_stopped_task_exits_130_whatever_its_items() -> None:
    record = TaskRecord(id=2, kind="backfill", status="interrupted")
    record.items = count_items("symbols", {"A": Item(False, False)}).as_dict()
    assert record.exit_code() == 130
    assert "1 symbol: 1 not reached" in record.summary()
