"""detect-missing as a task: a record, the contract's JSON document, completeness rows.

One detection is one task record, whether it looks at one selection (``etl detect-missing``)
or at every market of a board (``POST /cache/detect-all-missing``): the document's
``task_id`` names a record whose counts are the document's, so ``etl tasks show`` and
``GET /cache/tasks/{id}`` agree with what the detection answered.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from etl.tasks.detect import DetectReport, detect
from etl.tasks.expected import Selection
from etl.tasks.records import TaskRecord
from etl.tasks.runner import open_run
from etl.tasks.runtime import Runtime

__all__ = ["detect_missing", "detect_missing_all", "merge_documents"]

_SUMMED = ("total_count", "complete_count", "missing_count", "error_count", "expected_rows",
           "present_rows", "unexpected_rows")  # fmt: skip
_LISTED = ("gaps", "daily_stats", "missing_codes")  # too long for the record's result


def detect_missing(rt: Runtime, sel: Selection) -> tuple[TaskRecord, dict[str, Any]]:
    """``etl detect-missing``: one selection, one task record."""
    return detect_missing_all(rt, [sel], sel.params())


def detect_missing_all(
    rt: Runtime, sels: Sequence[Selection], params: dict[str, Any]
) -> tuple[TaskRecord, dict[str, Any]]:
    """Detect every selection of ``sels`` (one per market, say) as **one** task recorded
    with ``params``; the document is theirs merged (:func:`merge_documents`)."""
    record = rt.store.create("detect-missing", params, now=rt.clock())
    docs: list[dict[str, Any]] = []
    with open_run(rt.store, record, clock=rt.clock, ui=rt.ui()) as run:
        first = sels[0] if sels else None
        run.begin(len(sels), label=f"detect {first.dataset} {first.freq or ''}" if first else "")
        for sel in sels:
            report = detect(rt.root, sel, rt.clock())
            _record_completeness(rt, sel, report)
            docs.append(report.document(run.id, "completed"))
            run.advance(1)
        doc = merge_documents(docs)
        run.record.total_count = doc["total_count"]
        run.record.success_count = doc["complete_count"]
        run.record.result = {k: v for k, v in doc.items() if k not in _LISTED}
    return record, {**doc, "status": record.status}


def merge_documents(docs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Detect documents of one task (several markets) as one: counts added, days merged,
    lists joined, calendars and unjudged symbols of every part kept."""
    if len(docs) == 1:
        return dict(docs[0])
    out = dict(docs[-1])
    for name in _SUMMED:
        out[name] = sum(d.get(name) or 0 for d in docs)
    daily: dict[str, dict[str, int]] = {}
    for doc in docs:
        for day, stats in doc["daily_stats"].items():
            into = daily.setdefault(day, {})
            for key, value in stats.items():
                into[key] = into.get(key, 0) + value
    out["daily_stats"] = dict(sorted(daily.items()))
    states: dict[str, int] = {}
    calendars: dict[str, str] = {}
    for doc in docs:
        for key, value in (doc.get("states") or {}).items():
            states[key] = states.get(key, 0) + value
        calendars.update(doc.get("calendars") or {})
    out["states"] = states
    out["calendars"] = calendars
    out["missing_codes"] = [c for d in docs for c in d["missing_codes"]]
    out["gaps"] = [g for d in docs for g in d["gaps"]]
    out["gaps_truncated"] = any(d.get("gaps_truncated") for d in docs)
    out["unjudged"] = [u for d in docs for u in d.get("unjudged") or []]
    return out


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
