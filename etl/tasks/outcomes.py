"""What the vendor's answers say about the slots a commit left absent, into the gap ledger.

After each commit of a kline fetch (fill-missing and backfill alike), the slots of the
committed calls that are still absent get the state the answers imply: answered but empty
(``confirmed_empty``: a suspension, not asked again), failed (with the error), or
unavailable (``unfillable``, with the vendor's reason). Detect-missing reads these states.
"""

from __future__ import annotations

from typing import Any

import duckdb
import polars as pl

from etl.tasks.detect import find_slots
from etl.tasks.expected import Selection, build_expectation
from etl.tasks.ledger import outcome_states, record_states
from etl.tasks.pipeline import Fetched, Unit
from etl.tasks.runtime import Runtime

__all__ = ["record_outcomes"]


def record_outcomes(
    rt: Runtime, vendor: str, sel: Selection, task_id: int, batch: list[tuple[Unit, Fetched]]
) -> None:
    """After a commit: give the batch's still-absent slots the state the vendor's answers imply."""
    events: list[tuple[str, Any, Any, str, str | None]] = []
    for unit, fetched in batch:
        if fetched.error:
            events += [(s, unit.start, unit.end, "failed", fetched.error) for s in unit.symbols]
            continue
        events += [(a.symbol, a.start, a.end, "confirmed_empty", None) for a in fetched.answered]
        events += [(f.symbol, f.start, f.end, "failed", f.reason) for f in fetched.failures]
        events += [(u.symbol, u.start, u.end, "unfillable", u.reason) for u in fetched.unavailable]
        for issue in fetched.issues:
            if issue.severity == "rejected" and issue.symbol:
                events.append(
                    (issue.symbol, unit.start, unit.end, "failed", f"rows rejected: {issue.reason}")
                )
    if not events:
        return
    frame = pl.DataFrame(
        events,
        schema={
            "symbol": pl.String,
            "start": pl.Date,
            "end": pl.Date,
            "state": pl.String,
            "reason": pl.String,
        },
        orient="row",
    )
    symbols = tuple(sorted(set(frame["symbol"].to_list())))
    sub = Selection(sel.dataset, min(frame["start"]), max(frame["end"]), sel.freq, symbols)
    exp = build_expectation(rt.root, sub, rt.clock())
    con = duckdb.connect()
    try:
        find_slots(rt.root, sub, exp, con)
        absent = pl.from_arrow(con.sql("SELECT symbol, ts, trade_date FROM slots").to_arrow_table())
    finally:
        con.close()
    assert isinstance(absent, pl.DataFrame)
    states = outcome_states(absent, frame)
    record_states(rt.lake, sel, states, vendor=vendor, task_id=task_id, now=rt.clock())
