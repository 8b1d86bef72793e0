"""``etl.Warehouse``: the lake as polars DataFrames, for analysts and for the platform server.

Every method returns a ``polars.DataFrame`` with the dataset's columns as declared in
``schemas/`` (``.to_pandas()`` for pandas), sorted by the dataset's key, and an empty frame
with the same columns when nothing matches. Nothing here writes: not the lake, not the
catalog, not a lock file, so a Warehouse is safe on a data root that backfills, jobs and
``etl serve`` are writing, and on a read-only mount.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from etl.dataroot import PartitionKey
from etl.errors import BadInputError
from etl.lake.reader import LakeReader, RowFilter
from etl.warehouse.adjust import (
    SCALED,
    FactorIndex,
    adjust_parts,
    adjust_table,
    scaled_in_parts,
)
from etl.warehouse.args import (
    Adjust,
    DateLike,
    check_adjust,
    check_date,
    check_freq,
    check_market,
    check_range,
    check_statement_dataset,
    check_symbols,
)

__all__ = ["Warehouse"]


class Warehouse:
    """Read the lake under a data root::

        wh = etl.Warehouse("data")
        wh.bars(["600000.SH"], "1d", "2015-01-01", "2024-12-31")   # one symbol's history
        wh.bars(None, "1d", "2024-06-03", "2024-06-03")            # one day, every symbol
        wh.calendar("SH", "2024-01-01", "2024-12-31")
        wh.instruments("SH")
        wh.statements("income", ["600000.SH"], as_of="2024-04-30")

    Dates are ISO strings or ``datetime.date``; ranges are inclusive trade dates (reporting
    periods for statements). Each partition is read from one committed state (see
    :mod:`etl.lake.reader`): no row twice, none missing, while writers commit.
    """

    def __init__(self, data_dir: str | os.PathLike[str] = "data") -> None:
        root = Path(data_dir).expanduser()
        if not root.is_dir():
            raise BadInputError(
                f"no data root at {str(root)!r}: pass the folder that holds lake/ "
                "(the --data-dir / ETL_DATA_DIR of the etl commands; ./data after `make demo`)"
            )
        self.root = root.resolve()
        self._reader = LakeReader(self.root)
        self._factors: tuple[tuple[object, ...], FactorIndex] | None = None

    def __repr__(self) -> str:
        return f"Warehouse({str(self.root)!r})"

    # -- bars ------------------------------------------------------------------------------

    def bars(
        self,
        symbols: str | Sequence[str] | None,
        freq: str,
        start: DateLike,
        end: DateLike,
        adjust: str | None = None,
        anchor: DateLike | None = None,
        as_of: DateLike | None = None,
    ) -> pl.DataFrame:
        """Bars of ``symbols`` (None: every symbol) at ``freq`` with trade dates in
        ``[start, end]``, sorted by (symbol, ts).

        ``adjust``: None for prices as stored (unadjusted), ``"hfq"`` (backward-adjusted) or
        ``"qfq"`` (forward-adjusted, so that prices on ``anchor`` stay as stored; default
        each symbol's last bar), computed from ``adj_factors`` at read time, volume scaled
        inversely. ``as_of``: only ex-dates on or before that date count, so a backtest never
        sees a corporate action announced later."""
        raw = self._bars_arrow(symbols, freq, start, end, adjust, anchor, as_of)
        return _frame(raw, ["symbol", "ts"])

    def bar_table(
        self,
        symbols: str | Sequence[str] | None,
        freq: str,
        start: DateLike,
        end: DateLike,
        adjust: str | None = None,
    ) -> pa.Table:
        """:meth:`bars` as the Arrow table its frame is made from: the same rows, columns
        and order (symbol, ts), for a reader that needs the columns and not a polars frame
        (``etl serve`` writes them as JSON: the frame's making was half of a symbol-year's
        read)."""
        raw = self._bars_arrow(symbols, freq, start, end, adjust, None, None)
        if raw.num_rows < 2 or _one_run_sorted(raw, ["symbol", "ts"]):
            return raw
        return raw.sort_by([("symbol", "ascending"), ("ts", "ascending")])

    def _bars_arrow(
        self,
        symbols: str | Sequence[str] | None,
        freq: str,
        start: DateLike,
        end: DateLike,
        adjust: str | None,
        anchor: DateLike | None,
        as_of: DateLike | None,
    ) -> pa.Table:
        wanted = check_symbols(symbols)
        freq = check_freq(freq)
        first, last = check_range(start, end)
        mode = check_adjust(adjust)
        anchor_day = None if anchor is None else check_date(anchor, name="anchor")
        as_of_day = None if as_of is None else check_date(as_of, name="as_of")
        if mode is not None and wanted is not None and len(wanted) == 1:
            return self._adjusted_one(wanted[0], freq, first, last, mode, anchor_day, as_of_day)
        raw = self._bar_rows(wanted, freq, first, last)
        owned = False
        if raw.num_columns and raw.column(0).num_chunks > 1:
            owned = mode is not None and scaled_in_parts(raw)
            raw = raw.combine_chunks()  # once, for the adjustment and the frame alike
        if mode is not None and raw.num_rows:
            index = self._factor_index(wanted)
            # before the frame is built: one numpy pass per price column (adjust_table)
            raw = adjust_table(raw, index, mode, anchor=anchor_day, as_of=as_of_day, owned=owned)
        return raw

    def _adjusted_one(
        self,
        symbol: str,
        freq: str,
        first: dt.date,
        last: dt.date,
        mode: Adjust,
        anchor: dt.date | None,
        as_of: dt.date | None,
    ) -> pa.Table:
        """One symbol's adjusted bars: from a history and mirrors with numpy views of
        their columns (adjust_parts), else as any read (adjust_table)."""
        keys = self._bar_keys(freq, first, last)
        where = RowFilter(entities=(symbol,), date_column="trade_date", lo=first, hi=last)
        raw, views = self._reader.read_views("klines", keys, where, SCALED)
        index = self._factor_index((symbol,))
        if views is not None:
            factors = index.of_symbol(symbol)
            return adjust_parts(raw, views, factors, mode, anchor=anchor, as_of=as_of)
        owned = False
        if raw.num_columns and raw.column(0).num_chunks > 1:
            owned = scaled_in_parts(raw)  # combined here: the copies are the read's own
            raw = raw.combine_chunks()
        if not raw.num_rows:
            return raw
        return adjust_table(raw, index, mode, anchor=anchor, as_of=as_of, only=symbol,
                            owned=owned)  # fmt: skip

    def _factor_index(self, symbols: tuple[str, ...] | None) -> FactorIndex:
        """Every stored symbol's factors as one index, kept until ``adj_factors`` changes
        (a read of a few symbols while it is being written builds one for them alone)."""
        token = self._reader.state_token("adj_factors")
        cached = self._factors
        if token is not None and cached is not None and cached[0] == token:
            return cached[1]
        keys = self._reader.partition_keys("adj_factors")
        wanted = None if token is not None else symbols
        index = FactorIndex.of(self._reader.read("adj_factors", keys, RowFilter(entities=wanted)))
        if token is not None:
            self._factors = (token, index)
        return index

    def adj_factors(self, symbols: str | Sequence[str] | None = None) -> pl.DataFrame:
        """The stored adjustment factors (every vendor's), sorted by (symbol, vendor,
        ex_date): one row per ex-date with the cumulative backward factor in force from it."""
        wanted = check_symbols(symbols)
        keys = self._reader.partition_keys("adj_factors")
        table = self._reader.read("adj_factors", keys, RowFilter(entities=wanted))
        return _frame(table, ["symbol", "vendor", "ex_date"])

    def _bar_rows(
        self, wanted: tuple[str, ...] | None, freq: str, first: dt.date, last: dt.date
    ) -> pa.Table:
        keys = self._bar_keys(freq, first, last)
        where = RowFilter(entities=wanted, date_column="trade_date", lo=first, hi=last)
        return self._reader.read("klines", keys, where)

    def _bar_keys(self, freq: str, first: dt.date, last: dt.date) -> list[PartitionKey]:
        return [
            key
            for key in self._reader.partition_keys("klines", freq=freq)
            if first.year <= int(key.values["year"]) <= last.year
        ]

    # -- reference data --------------------------------------------------------------------

    def calendar(
        self, market: str, start: DateLike | None = None, end: DateLike | None = None
    ) -> pl.DataFrame:
        """Every stored calendar day of ``market`` in ``[start, end]`` (open or not: filter
        on ``is_open`` for sessions), sorted by date."""
        market = check_market(market)
        first, last = _optional_range(start, end)
        keys = self._present("calendar", [PartitionKey.of(market=market)])
        where = RowFilter(date_column="trade_date", lo=first, hi=last)
        return _frame(self._reader.read("calendar", keys, where), ["trade_date"])

    def instruments(
        self, market: str | None = None, symbols: str | Sequence[str] | None = None
    ) -> pl.DataFrame:
        """The instrument list: one row per (symbol, vendor) with the vendor's code, of one
        market (a suffix such as ``SH``) or every market."""
        wanted = check_symbols(symbols)
        if market is None:
            keys = self._reader.partition_keys("instruments")
        else:
            keys = self._present("instruments", [PartitionKey.of(market=_suffix(market))])
        table = self._reader.read("instruments", keys, RowFilter(entities=wanted))
        return _frame(table, ["symbol", "vendor"])

    def statements(
        self,
        dataset: str,
        symbols: str | Sequence[str] | None = None,
        *,
        as_of: DateLike | None = None,
        start: DateLike | None = None,
        end: DateLike | None = None,
    ) -> pl.DataFrame:
        """A financial statement (``balance_sheet``, ``income`` or ``cash_flow``) for
        reporting periods in ``[start, end]``.

        Without ``as_of``, every version the vendor ever reported (restatements included).
        With ``as_of``, the point-in-time view: per symbol and period, the latest version
        announced on or before that date (``actual_ann_date``), as the catalog's
        ``<dataset>_asof(date)`` macros answer.
        """
        dataset = check_statement_dataset(dataset)
        wanted = check_symbols(symbols)
        first, last = _optional_range(start, end)
        cutoff = None if as_of is None else check_date(as_of, name="as_of")
        keys = [
            key
            for key in self._reader.partition_keys(dataset)
            if (first is None or int(key.values["year"]) >= first.year)
            and (last is None or int(key.values["year"]) <= last.year)
        ]
        where = RowFilter(entities=wanted, date_column="reporting_period", lo=first, hi=last)
        frame = _frame(self._reader.read(dataset, keys, where), [])
        if cutoff is not None:
            frame = (
                frame.filter(pl.col("actual_ann_date") <= cutoff)
                .sort(["actual_ann_date", "statement_type"], descending=True)
                .unique(["symbol", "reporting_period"], keep="first", maintain_order=True)
            )
        return frame.sort(["symbol", "reporting_period", "actual_ann_date", "statement_type"])

    # -- internals -------------------------------------------------------------------------

    def _present(self, dataset: str, keys: list[PartitionKey]) -> list[PartitionKey]:
        listed = set(self._reader.partition_keys(dataset))
        return [k for k in keys if k in listed]


def _optional_range(
    start: DateLike | None, end: DateLike | None
) -> tuple[dt.date | None, dt.date | None]:
    first = None if start is None else check_date(start, name="start")
    last = None if end is None else check_date(end, name="end")
    if first is not None and last is not None and first > last:
        raise BadInputError(f"start {first} is after end {last}: swap them")
    return first, last


def _suffix(market: str) -> str:
    """An instruments partition: a market, or a vendor suffix for vendor-only products."""
    from etl.names import VENDOR_SUFFIXES

    text = market.strip()
    if text in VENDOR_SUFFIXES:
        return text
    return check_market(text)


def _frame(table: pa.Table, order: list[str]) -> pl.DataFrame:
    if table.num_columns and table.column(0).num_chunks > 1:
        table = table.combine_chunks()  # one buffer per column converts in half the time
    sorted_already = not order or table.num_rows < 2 or _one_run_sorted(table, order)
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame if sorted_already else frame.sort(order)


def _one_run_sorted(table: pa.Table, order: list[str]) -> bool:
    """True when the leading key holds one value and the next ascends strictly: one
    symbol's rows as read in partition order, which need no sort (checked on the Arrow
    columns: a polars Series method is a query of its own, ~0.1 ms each)."""
    if len(order) != 2:
        return False
    lead, then = table.column(order[0]), table.column(order[1])
    bounds = pc.min_max(lead)
    if bounds["min"] != bounds["max"] or lead.null_count or then.null_count:
        return False
    if not pa.types.is_timestamp(then.type):
        return False
    values = np.asarray(then.combine_chunks().cast(pa.int64()).to_numpy(zero_copy_only=False))
    return bool((values[1:] > values[:-1]).all())
