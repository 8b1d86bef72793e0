"""Adjusted prices at read time, from ``adj_factors``.

Bars are stored unadjusted. A bar's backward factor is the cumulative factor of the latest
ex-date on or before its trade date (1.0 before the first): hfq multiplies prices by it, qfq by
it divided by the factor in force on the anchor date, and volume is scaled inversely so that
``price x volume`` keeps its meaning. Only the ratio of two factors of one vendor is used for
qfq, which is why each vendor's factors are stored apart: per symbol, the vendor whose factors
were ingested most recently is used (ties: the vendor name), never a mix of two vendors.

``as_of`` drops ex-dates after that date before anything is computed, so a backtest standing
on ``as_of`` sees exactly the corporate actions that were known then. The catalog macro
``klines_adj`` (etl/catalog/ddl.py) computes the same in SQL.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

import polars as pl

from etl.warehouse.args import Adjust

__all__ = ["PRICE_COLUMNS", "adjust_bars"]

PRICE_COLUMNS: Final = ("open", "high", "low", "close", "settle")


def chosen_factors(factors: pl.DataFrame, as_of: dt.date | None) -> pl.DataFrame:
    """(symbol, ex_date, backward_factor) of one vendor per symbol, ex-dates up to ``as_of``,
    sorted by ex_date."""
    if as_of is not None:
        factors = factors.filter(pl.col("ex_date") <= as_of)
    if factors.is_empty():
        return pl.DataFrame(
            schema={"symbol": pl.String, "ex_date": pl.Date, "backward_factor": pl.Float64}
        )
    chosen = factors.group_by("symbol").agg(
        pl.col("vendor").sort_by(["ingested_at", "vendor"]).last()
    )
    return (
        factors.join(chosen, on=["symbol", "vendor"])
        .select("symbol", "ex_date", "backward_factor")
        .sort("ex_date")
    )


def _in_force(frame: pl.DataFrame, on: str, factors: pl.DataFrame, name: str) -> pl.DataFrame:
    """``frame`` with the factor in force on its ``on`` date as column ``name``."""
    right = factors.select(
        "symbol", pl.col("ex_date").alias("_ex"), pl.col("backward_factor").alias(name)
    )
    # Both sides are sorted by their date (globally, so within every symbol too).
    joined = frame.sort(on).join_asof(
        right, left_on=on, right_on="_ex", by="symbol", strategy="backward", check_sortedness=False
    )
    return joined.drop("_ex").with_columns(pl.col(name).fill_null(1.0))


def adjust_bars(
    bars: pl.DataFrame,
    factors: pl.DataFrame,
    mode: Adjust,
    *,
    anchor: dt.date | None,
    as_of: dt.date | None,
) -> pl.DataFrame:
    """``bars`` (sorted by symbol, ts) with prices and volume adjusted by ``mode``; same
    columns, same order. ``anchor`` (qfq only): the date whose prices stay as stored; None:
    each symbol's last bar in ``bars``."""
    if bars.is_empty():
        return bars
    table = chosen_factors(factors, as_of)
    order = bars.columns
    work = _in_force(bars.with_row_index("_row"), "trade_date", table, "_bf")
    if mode == "hfq":
        work = work.with_columns(pl.col("_bf").alias("_m"))
    else:
        anchors = work.group_by("symbol").agg(
            (pl.lit(anchor, dtype=pl.Date) if anchor else pl.col("trade_date").max()).alias("_at")
        )
        anchors = _in_force(anchors, "_at", table, "_af").drop("_at")
        work = work.join(anchors, on="symbol").with_columns(
            (pl.col("_bf") / pl.col("_af")).alias("_m")
        )
    prices = [c for c in PRICE_COLUMNS if c in order]
    work = work.with_columns(
        *(pl.col(c) * pl.col("_m") for c in prices),
        *((pl.col("volume") / pl.col("_m")).alias("volume") for _ in [0] if "volume" in order),
    )
    return work.sort("_row").select(order)
