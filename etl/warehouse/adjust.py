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

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from etl.warehouse.args import Adjust

__all__ = ["PRICE_COLUMNS", "adjust_bars", "adjust_table", "chosen_factors"]

PRICE_COLUMNS: Final = ("open", "high", "low", "close", "settle")
_EPOCH: Final = dt.date(1970, 1, 1)
_SCALED: Final = frozenset({*PRICE_COLUMNS, "volume"})
_SPAN: Final = 1 << 24  # (symbol code, day number) -> code * _SPAN + day: days fit 24 bits


def chosen_factors(factors: pl.DataFrame, as_of: dt.date | None) -> pl.DataFrame:
    """(symbol, ex_date, backward_factor) of one vendor per symbol, ex-dates up to ``as_of``,
    sorted by ex_date."""
    if as_of is not None:
        factors = factors.filter(pl.col("ex_date") <= as_of)
    if factors.is_empty():
        return pl.DataFrame(
            schema={"symbol": pl.String, "ex_date": pl.Date, "backward_factor": pl.Float64}
        )
    if factors["vendor"].n_unique() == 1:  # one vendor's factors: nothing to choose
        return factors.select("symbol", "ex_date", "backward_factor").sort("ex_date")
    chosen = factors.group_by("symbol").agg(
        pl.col("vendor").sort_by(["ingested_at", "vendor"]).last()
    )
    return (
        factors.join(chosen, on=["symbol", "vendor"])
        .select("symbol", "ex_date", "backward_factor")
        .sort("ex_date")
    )


def _codes(bars: pa.Table, factors: pa.Table) -> tuple[np.ndarray, np.ndarray, int]:
    """Symbol codes of the bars and of the factors, from one shared dictionary."""
    parts = [bars.column("symbol"), factors.column("symbol")]
    ends = pc.min_max(parts[0])
    if ends["min"] == ends["max"] and set(parts[1].to_pylist()) == {ends["min"].as_py()}:
        return np.zeros(bars.num_rows, np.int64), np.zeros(factors.num_rows, np.int64), 1
    both = pa.chunked_array(
        [c for part in parts for c in part.cast(pa.string()).chunks], type=pa.string()
    ).combine_chunks()
    encoded = pc.dictionary_encode(both)
    codes = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    return codes[: bars.num_rows], codes[bars.num_rows :], len(encoded.dictionary)


def _chosen_rows(factors: pa.Table, codes: np.ndarray, n_codes: int) -> np.ndarray:
    """Which factor rows count: per symbol, those of the vendor synced last (ties: the
    vendor name), as :func:`chosen_factors` decides."""
    vendors = factors.column("vendor").combine_chunks()
    if len(set(vendors.to_pylist())) <= 1:  # tens of rows a symbol: a set is cheapest
        return np.ones(factors.num_rows, dtype=bool)
    vendor_codes = pc.dictionary_encode(vendors)
    names = vendor_codes.dictionary.to_pylist()
    rank_of_name = np.argsort(np.argsort(np.array(names, dtype=object)))
    vendor_rank = rank_of_name[np.asarray(vendor_codes.indices.to_numpy(zero_copy_only=False))]
    stamps = factors.column("ingested_at").combine_chunks().cast(pa.int64())
    stamp = np.asarray(stamps.fill_null(-(2**62)).to_numpy(zero_copy_only=False))
    # the chosen row of each symbol is its last by (code, stamp, vendor rank)
    order = np.lexsort((vendor_rank, stamp, codes))
    last = np.r_[codes[order][1:] != codes[order][:-1], True]
    best_vendor = np.full(n_codes, -1)
    best_vendor[codes[order][last]] = vendor_rank[order][last]
    return np.asarray(vendor_rank == best_vendor[codes])


def _in_force(
    keys: np.ndarray, key_codes: np.ndarray, values: np.ndarray, codes: np.ndarray, days: np.ndarray
) -> np.ndarray:
    """The backward factor in force for each (symbol code, day): the last ex-date on or
    before it of that symbol (1.0 before its first). ``keys`` are the factors' sorted
    (code, day) keys, ``key_codes`` their codes."""
    wanted = codes * _SPAN + days
    at = np.searchsorted(keys, wanted, side="right") - 1
    safe = np.maximum(at, 0)
    hit = (at >= 0) & (key_codes[safe] == codes) if len(keys) else np.zeros(len(codes), bool)
    return np.where(hit, values[safe] if len(keys) else 1.0, 1.0)


def _day_numbers(dates: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Dates as days since 1970."""
    if isinstance(dates, pa.ChunkedArray):
        dates = dates.combine_chunks()
    return np.asarray(dates.cast(pa.int32()).to_numpy(zero_copy_only=False), dtype=np.int64)


def adjust_table(
    bars: pa.Table,
    factors: pa.Table,
    mode: Adjust,
    *,
    anchor: dt.date | None,
    as_of: dt.date | None,
) -> pa.Table:
    """``bars`` (klines columns, any row order) with prices and volume adjusted by
    ``mode``; same columns, same order. ``anchor`` (qfq only): the date whose prices stay
    as stored; None: each symbol's last bar in ``bars``.

    Vectorised over every symbol at once: symbols become codes of one dictionary, each
    (code, day) one integer key, and the factor in force on a bar one binary search among
    the factors' sorted keys; each price column is then scaled by one Arrow kernel before
    any DataFrame is built, so the adjusted read costs little more than the raw one
    (BENCHMARKS.md)."""
    if bars.num_rows == 0 or factors.num_rows == 0:
        return bars  # no corporate action known: every factor is 1
    bar_codes, factor_codes, n_codes = _codes(bars, factors)
    ex_days = _day_numbers(factors.column("ex_date"))
    keep = _chosen_rows(factors, factor_codes, n_codes)
    if as_of is not None:
        keep &= ex_days <= (as_of - _EPOCH).days
    backward = np.asarray(
        factors.column("backward_factor").combine_chunks().to_numpy(zero_copy_only=False),
        dtype=np.float64,
    )[keep]
    key_codes, keys = factor_codes[keep], factor_codes[keep] * _SPAN + ex_days[keep]
    order = np.argsort(keys, kind="stable")
    keys, key_codes, backward = keys[order], key_codes[order], backward[order]
    days = _day_numbers(bars.column("trade_date"))
    multiplier = _in_force(keys, key_codes, backward, bar_codes, days)
    if mode == "qfq":
        if anchor is None:  # each symbol's last bar
            anchor_days = np.full(n_codes, np.iinfo(np.int64).min)
            np.maximum.at(anchor_days, bar_codes, days)
        else:
            anchor_days = np.full(n_codes, (anchor - _EPOCH).days)
        every = np.arange(n_codes)
        at_anchor = _in_force(keys, key_codes, backward, every, anchor_days)
        multiplier = multiplier / at_anchor[bar_codes]
    columns = [
        _scaled(bars.column(i), multiplier, divide=name == "volume")
        if name in _SCALED
        else bars.column(i)
        for i, name in enumerate(bars.column_names)
    ]
    return pa.Table.from_arrays(columns, schema=bars.schema)


def _scaled(
    column: pa.ChunkedArray, multiplier: np.ndarray, *, divide: bool
) -> pa.ChunkedArray | pa.Array:
    """``column`` times (or divided by) ``multiplier``: in numpy when it has no null (the
    common case, and several times cheaper than a kernel call), untouched when all null."""
    if column.null_count == len(column):
        return column
    if column.null_count == 0 and pa.types.is_float64(column.type):
        values = column.combine_chunks().to_numpy(zero_copy_only=False)
        return pa.array(values / multiplier if divide else values * multiplier)
    m = pa.array(multiplier)
    return pc.divide(column, m) if divide else pc.multiply(column, m)


def adjust_bars(
    bars: pl.DataFrame,
    factors: pl.DataFrame,
    mode: Adjust,
    *,
    anchor: dt.date | None,
    as_of: dt.date | None,
) -> pl.DataFrame:
    """:func:`adjust_table` for polars frames."""
    table = adjust_table(bars.to_arrow(), factors.to_arrow(), mode, anchor=anchor, as_of=as_of)
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame
