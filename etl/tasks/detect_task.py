"""detect-missing as a task: a record, the contract's JSON document, completeness rows."""

from __future__ import annotations

from typing import Any

import polars as pl

from etl.tasks.detect import DetectReport, detect
from etl.tasks.expected import Selection
from etl.tasks.records import TaskRecord
from etl.tasks.runner import open_run
from etl.tasks.runtime import Runtime

__all__ = ["detect_missing"]


def detect_missing(rt: Runtime, sel: Selection) -> tuple[TaskRecord, dict[str, Any]]:
    record = rt.store.create("detect-missing", sel.params(), now=rt.clock())
    report: DetectReport | None = None
    with open_run(rt.store, record, clock=rt.clock, ui=rt.ui()) as run:
        run.begin(1, label=f"detect {sel.dataset} {sel.freq or ''}")
        report = detect(rt.root, sel, rt.clock())
        _record_completeness(rt, sel, report)
        run.advance(1)
        doc = report.document(run.id, "completed")
        run.record.total_count = doc["total_count"]
        run.record.success_count = doc["complete_count"]
        run.record.result = {
            k: v for k, v in doc.items() if k not in ("gaps", "daily_stats", "missing_codes")
        }
    assert report is not None
    return record, report.document(record.id, record.status)


def _record_completeness(rt: Runtime, sel: Selection, report: DetectReport) -> None:
    """Per market and day, what this detection measured (the dashboard views read it)."""
    if report.daily.height == 0:
        return
    rows = report.daily.select(
        pl.lit(sel.dataset).alias("dataset"),
        pl.lit(sel.slot_freq).alias("freq"),
        "market", "trade_date", "symbols", "expected", "present", "missing",
        "confirmed_empty", "failed", "unfillable",
        pl.lit("detect").alias("vendor"),
    )  # fmt: skip
    rt.lake.write("completeness", rows, now=rt.clock())
