"""What the vendor's answers say about the slots a commit left absent, into the gap ledger.

After each commit of a fill-missing, the slots of the committed calls that are still absent
get the state the answers imply: answered but empty (``confirmed_empty``: a suspension, not
asked again), failed (with the error), or unavailable (``unfillable``, with the vendor's
reason). Detect-missing reads these states. The answers' *facts* (symbol, range, state,
reason) are kept in the task's resume state with the commit and written here afterwards
(:class:`~etl.tasks.pipeline.Outcomes`), so a kill between the two loses nothing.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from etl.tasks.expected import Selection, build_expectation
from etl.tasks.pipeline import Fetched, Outcomes, Unit
from etl.tasks.runtime import Runtime

__all__ = ["answer_facts", "ledger_outcomes", "record_facts"]


def ledger_outcomes(rt: Runtime, vendor: str, sel: Selection, task_id: int) -> Outcomes:
    """The pipeline's :class:`~etl.tasks.pipeline.Outcomes` for a fill: facts to the ledger."""
    return Outcomes(
        facts=answer_facts,
        record=lambda facts: record_facts(rt, vendor, sel, task_id, facts),
    )


def answer_facts(batch: list[tuple[Unit, Fetched]]) -> list[Any]:
    """What the answers of ``batch`` say, as JSON-able ``[symbol, start, end, state, reason]``
    (ISO dates): kept in the task's resume state until :func:`record_facts` wrote them."""
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
    return [[s, _iso(a), _iso(b), state, why] for s, a, b, state, why in events]


def _iso(day: Any) -> str | None:
    return day.isoformat() if isinstance(day, dt.date) else None


def record_facts(rt: Runtime, vendor: str, sel: Selection, task_id: int, facts: list[Any]) -> None:
    """Give the still-absent slots that ``facts`` cover the state they imply (idempotent)."""
    day = dt.date.fromisoformat
    events = [(s, day(a), day(b), state, why) for s, a, b, state, why in facts if a and b]
    if not events:
        return
    # with the first answer: polars and detect are not needed before the first request
    import polars as pl

    from etl.tasks.detect import find_slots
    from etl.tasks.ledger import outcome_states, record_states

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
    import duckdb  # after the first answer: not on the way to the first request

    con = duckdb.connect()
    try:
        find_slots(rt.root, sub, exp, con)
        absent = pl.from_arrow(con.sql("SELECT symbol, ts, trade_date FROM slots").to_arrow_table())
    finally:
        con.close()
    assert isinstance(absent, pl.DataFrame)
    states = outcome_states(absent, frame)
    record_states(rt.lake, sel, states, vendor=vendor, task_id=task_id, now=rt.clock())
