"""The gap ledger: the evidence behind every expected slot the lake lacks.

States (a slot with no ledger row is ``missing``: never tried):

- ``confirmed_empty``: the vendor answered for the slot's range and had no bar (a halt, a
  suspension). Not requested again unless fill-missing runs with ``--recheck``.
- ``failed``: the last try errored; the reason is the error.
- ``unfillable``: no configured vendor can reach it (older than the vendor's history or
  its window); the reason says why. Re-planned when another vendor is asked.

Rows live in the ``gap_ledger`` dataset (``state/gap_ledger``), written through the lake, so
updates are atomic, idempotent and readable from SQL while a fill runs.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from etl.tasks.expected import Selection

if TYPE_CHECKING:
    import polars as pl

    from etl.lake import Lake  # the lake is handed in; its writer loads when it first writes

__all__ = ["outcome_states", "record_states"]

# When one slot is covered by several outcomes of one batch, the strongest wins.
PRIORITY = {"failed": 3, "unfillable": 2, "confirmed_empty": 1}


def record_states(
    lake: Lake,
    sel: Selection,
    slots: pl.DataFrame,
    *,
    vendor: str,
    task_id: int | None,
    now: dt.datetime,
) -> int:
    """Write ledger rows for ``slots`` (symbol, ts, trade_date, state, reason)."""
    import polars as pl  # with the slots, which are polars: a fill imports this module early

    if slots.height == 0:
        return 0
    rows = slots.select(
        pl.lit(sel.dataset).alias("dataset"),
        pl.lit(sel.slot_freq).alias("freq"),
        pl.col("symbol"),
        pl.col("ts"),
        pl.col("trade_date"),
        pl.col("state"),
        pl.col("reason").cast(pl.String),
        pl.lit(vendor).alias("vendor"),
        pl.lit(task_id, dtype=pl.Int64).alias("task_id"),
    )
    result = lake.write("gap_ledger", rows, now=now)
    return result.rows_written


def outcome_states(absent: pl.DataFrame, events: pl.DataFrame) -> pl.DataFrame:
    """Give each still-absent slot the state of the outcome that covered it.

    ``absent``: symbol, ts, trade_date (slots still lacking after the commit).
    ``events``: symbol, start, end (inclusive dates), state, reason: what each fetch said.
    Slots no event covers are left out (nothing new is known about them).
    """
    import polars as pl  # with the frames, after the first answer

    if absent.height == 0 or events.height == 0:
        return absent.head(0).with_columns(
            pl.lit(None, dtype=pl.String).alias("state"),
            pl.lit(None, dtype=pl.String).alias("reason"),
        )
    joined = absent.join(events, on="symbol", how="inner").filter(
        (pl.col("trade_date") >= pl.col("start")) & (pl.col("trade_date") <= pl.col("end"))
    )
    ranked = joined.with_columns(
        pl.col("state").replace_strict(PRIORITY, return_dtype=pl.Int32).alias("_rank")
    )
    best = ranked.sort("_rank", descending=True).unique(subset=["symbol", "ts"], keep="first")
    return best.select("symbol", "ts", "trade_date", "state", "reason").sort(["symbol", "ts"])
