"""Adjusted prices at read time, from ``adj_factors``.

Bars are stored unadjusted. A bar's backward factor is the cumulative factor of the latest
ex-date on or before its trade date (1.0 before the first): hfq multiplies prices by it, qfq by
it divided by the factor in force on the anchor date, and volume is scaled inversely so that
``price x volume`` keeps its meaning. Only the ratio of two factors of one vendor is used for
qfq, which is why each vendor's factors are stored apart: per symbol, the vendor whose factors
were ingested most recently is used (ties: the vendor name), never a mix of two vendors.

``as_of`` leaves out ex-dates after that date, so a backtest standing on ``as_of`` sees
exactly the corporate actions that were known then. The catalog macro
``klines_adj`` (etl/catalog/ddl.py) computes the same in SQL.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Final, cast

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from etl.lake.history import RowViews
from etl.warehouse.args import Adjust

__all__ = [
    "PRICE_COLUMNS",
    "SCALED",
    "FactorIndex",
    "SymbolFactors",
    "adjust_bars",
    "adjust_one",
    "adjust_parts",
    "adjust_table",
    "chosen_factors",
    "multiplier_of",
    "scaled_in_parts",
]

PRICE_COLUMNS: Final = ("open", "high", "low", "close", "settle")
_EPOCH: Final = dt.date(1970, 1, 1)
SCALED: Final = (*PRICE_COLUMNS, "volume")  # what adjustment changes
_SPAN: Final = 1 << 24  # (symbol code, day number) -> code * _SPAN + day: days fit 24 bits
_MAX_SYMBOLS: Final = 100_000  # one-symbol factors kept per index before starting again
_FLOAT64: Final = pa.float64()
_MAX_COLUMNS: Final = 64  # columns of symbols whose codes are kept (see codes_of)
_MAX_KEPT: Final = 256  # multipliers of whole runs of rows kept per index (MultiplierCache)


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


@dataclass(frozen=True)
class SymbolFactors:
    """One symbol's chosen factors: its ex-dates (days since 1970, ascending) and the
    backward factor in force from each, after a 1.0 for the days before the first. The
    factor in force on a day is then ``factors[searchsorted(ex_days, day, "right")]``: a
    one-symbol read needs no symbol codes and no combined keys (:func:`_multiplier_one`)."""

    ex_days: np.ndarray  # int32, ascending
    factors: np.ndarray  # float64, len(ex_days) + 1
    # the multipliers of whole runs of rows, shared by every symbol of one index (see
    # _multipliers); None: nothing kept
    kept: MultiplierCache | None = field(default=None, compare=False, repr=False)


class MultiplierCache:
    """The multiplier of every row of an entity's rows in one loaded file (its
    ``RowViews.derived``), per (ex-dates known, factor divided by): what a one-symbol
    adjusted read needs and depends only on the symbol, its factors, the mode, the anchor
    and ``as_of``; a read takes its slice. The most recently used :data:`_MAX_KEPT` are
    kept (each ~20 KB for ten years of 1d); the cache belongs to one factor index, which
    is replaced when ``adj_factors`` changes.

    Why: spreading the factors over the rows (a gather of every row's factor, the ``as_of``
    cut, the qfq quotient) was a fifth of what the adjustment added to a read."""

    def __init__(self) -> None:
        self._items: OrderedDict[tuple[int, int, int], tuple[object, np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, owner: dict[str, object], known: int, divisor: int) -> np.ndarray | None:
        key = (id(owner), known, divisor)
        with self._lock:
            found = self._items.get(key)
            if found is None or found[0] is not owner:
                return None
            self._items.move_to_end(key)
            return found[1]

    def put(self, owner: dict[str, object], known: int, divisor: int, rows: np.ndarray) -> None:
        # the entry holds ``owner``, so its id is not reused while the entry is kept
        with self._lock:
            self._items[(id(owner), known, divisor)] = (owner, rows)
            while len(self._items) > _MAX_KEPT:
                self._items.popitem(last=False)


@dataclass(frozen=True)
class FactorIndex:
    """Every symbol's chosen backward factors as one sorted array of (symbol code, ex-day)
    keys: the factor in force for any bars is then one binary search. Built once from the
    stored ``adj_factors`` and kept by :class:`etl.Warehouse` until they change."""

    symbols: pa.Array  # code -> symbol
    codes: dict[str, int]
    keys: np.ndarray  # sorted code * _SPAN + ex-day
    key_codes: np.ndarray
    backward: np.ndarray
    # symbol -> its factors (None: it has none), filled as symbols are read; the index
    # itself is replaced when adj_factors changes, and this with it
    _by_symbol: dict[str, SymbolFactors | None] = field(
        default_factory=dict, compare=False, repr=False
    )
    # a column of symbols (its digest) -> (its bytes, their codes): see codes_of
    _by_column: dict[bytes, tuple[bytes, np.ndarray]] = field(
        default_factory=dict, compare=False, repr=False
    )
    _multiplied: MultiplierCache = field(default_factory=MultiplierCache, compare=False,
                                         repr=False)  # fmt: skip

    @classmethod
    def of(cls, factors: pa.Table) -> FactorIndex:
        """From ``adj_factors`` rows (every vendor's): per symbol, the rows of the vendor
        synced last (ties: the vendor name), as :func:`chosen_factors` decides."""
        symbol_column = factors.column("symbol").cast(pa.string()).combine_chunks()
        encoded = pc.dictionary_encode(symbol_column)
        codes = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
        symbols = encoded.dictionary
        keep = _chosen_rows(factors, codes, len(symbols))
        days = _day_numbers(factors.column("ex_date"))[keep]
        backward = np.asarray(
            factors.column("backward_factor").combine_chunks().to_numpy(zero_copy_only=False),
            dtype=np.float64,
        )[keep]
        codes = codes[keep]
        keys = codes * _SPAN + days
        order = np.argsort(keys, kind="stable")
        names = [str(v) for v in symbols.to_pylist()]
        return cls(symbols, {n: i for i, n in enumerate(names)}, keys[order], codes[order],
                   backward[order])  # fmt: skip

    @property
    def empty(self) -> bool:
        return len(self.keys) == 0

    def of_symbol(self, symbol: str) -> SymbolFactors | None:
        """``symbol``'s factors, None if it has none (every factor 1), kept for the next
        read of the same symbol."""
        try:
            return self._by_symbol[symbol]
        except KeyError:
            pass
        code = self.codes.get(symbol)
        found = None
        if code is not None:
            lo, hi = np.searchsorted(self.keys, [code * _SPAN, (code + 1) * _SPAN])
            if hi > lo:
                ex_days = np.asarray(self.keys[lo:hi] - code * _SPAN, dtype=np.int32)
                found = SymbolFactors(ex_days, np.r_[1.0, self.backward[lo:hi]], self._multiplied)
        if len(self._by_symbol) >= _MAX_SYMBOLS:
            self._by_symbol.clear()
        self._by_symbol[symbol] = found
        return found

    def codes_of(self, symbols: pa.ChunkedArray, only: str | None = None) -> np.ndarray:
        """The code of each symbol (-1 for one without factors); ``only``: the one symbol
        every row is known to have."""
        if only is not None:
            return np.full(len(symbols), self.codes.get(only, -1))
        if not len(symbols):
            return np.zeros(0, dtype=np.int64)
        # one symbol: a dictionary lookup (the ends differ in any cross-section, so the
        # min_max that proves it, 0.1 ms for 5,000 rows, runs only when they are equal)
        if symbols[0] == symbols[-1]:
            ends = pc.min_max(symbols)
            if ends["min"] == ends["max"]:
                return np.full(len(symbols), self.codes.get(str(ends["min"].as_py()), -1))
        content = _string_content(symbols)
        if content is None:
            return self._looked_up(symbols)
        digest = xxhash.xxh3_128_digest(content)
        known = self._by_column.get(digest)
        if known is not None and known[0] == content:
            return known[1]
        codes = self._looked_up(symbols)
        codes.setflags(write=False)  # shared by every read of the same symbols
        if len(self._by_column) >= _MAX_COLUMNS:
            self._by_column.clear()
        self._by_column[digest] = (bytes(content), codes)
        return codes

    def _looked_up(self, symbols: pa.ChunkedArray) -> np.ndarray:
        found = pc.index_in(symbols.cast(pa.string()), value_set=self.symbols)
        filled = found.fill_null(-1)
        if isinstance(filled, pa.ChunkedArray):
            filled = filled.combine_chunks()
        return np.asarray(filled.to_numpy(zero_copy_only=False), dtype=np.int64)

    def in_force(self, codes: np.ndarray, days: np.ndarray) -> np.ndarray:
        """The backward factor in force for each (code, day): the last ex-date on or before
        the day of that symbol (1.0 before its first, and for code -1)."""
        if self.empty:
            return np.ones(len(codes))
        if len(codes) and codes[0] == codes[-1] and (codes == codes[0]).all():
            return self._one_symbol(int(codes[0]), days)
        at = np.searchsorted(self.keys, codes * _SPAN + days, side="right") - 1
        safe = np.maximum(at, 0)
        hit = (at >= 0) & (self.key_codes[safe] == codes)
        return np.where(hit, self.backward[safe], 1.0)

    def _one_symbol(self, code: int, days: np.ndarray) -> np.ndarray:
        """:meth:`in_force` for one symbol: a search among its own few ex-dates."""
        if code < 0:
            return np.ones(len(days))
        lo, hi = np.searchsorted(self.keys, [code * _SPAN, (code + 1) * _SPAN])
        ex_days = self.keys[lo:hi] - code * _SPAN
        at = np.searchsorted(ex_days, days, side="right") - 1
        return np.where(at >= 0, self.backward[lo:hi][np.maximum(at, 0)], 1.0)


def _string_content(symbols: pa.ChunkedArray) -> bytes | None:
    """A one-chunk string column as bytes that are equal exactly when two columns hold
    the same strings in the same order (their value offsets, made to start at 0, then
    their characters), None for another shape (the lookup then runs as it is).

    Why: a day's cross-section looks up the same 5,000 symbols, in the same order, day
    after day (the symbols listed rarely change); hashing them into the index's codes cost
    a fifth of the adjusted read. Their bytes are digested (XXH3-128, microseconds) and the
    codes kept under the digest, checked against the bytes themselves before use."""
    if symbols.num_chunks != 1 or symbols.null_count or not pa.types.is_string(symbols.type):
        return None
    chunk = symbols.chunk(0)
    n = len(chunk)
    buffers = chunk.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int32, count=n + 1, offset=chunk.offset * 4)
    first, last = int(offsets[0]), int(offsets[-1])
    text = b"" if buffers[2] is None else memoryview(buffers[2])[first:last]
    return (offsets - first).tobytes() + bytes(text)


def _chosen_rows(factors: pa.Table, codes: np.ndarray, n_codes: int) -> np.ndarray:
    """Which factor rows count: per symbol, those of the vendor synced last (ties: the
    vendor name)."""
    vendors = factors.column("vendor").combine_chunks()
    if len(pc.unique(vendors)) <= 1:
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


def _day_numbers(dates: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Dates as days since 1970."""
    if isinstance(dates, pa.ChunkedArray):
        dates = dates.combine_chunks()
    return np.asarray(dates.cast(pa.int32()).to_numpy(zero_copy_only=False), dtype=np.int64)


def adjust_table(
    bars: pa.Table,
    index: FactorIndex,
    mode: Adjust,
    *,
    anchor: dt.date | None,
    as_of: dt.date | None,
    only: str | None = None,
    owned: bool = False,
) -> pa.Table:
    """``bars`` (klines columns, any row order) with prices and volume adjusted by
    ``mode``; same columns, same order. ``anchor`` (qfq only): the date whose prices stay
    as stored; None: each symbol's last bar in ``bars``. ``owned``: the caller built
    ``bars`` itself and nothing else holds its buffers (a combine of several chunks), so
    its writable price columns are scaled where they are (no new columns, no new table:
    the rebuild cost a quarter of the adjustment).

    Each price column is scaled once, in numpy, before any DataFrame is built: the
    adjusted read costs little more than the raw one (BENCHMARKS.md)."""
    multiplier = multiplier_of(bars, index, mode, anchor=anchor, as_of=as_of, only=only)
    return bars if multiplier is None else _rescaled(bars, multiplier, owned=owned)


def multiplier_of(
    bars: pa.Table,
    index: FactorIndex,
    mode: Adjust,
    *,
    anchor: dt.date | None,
    as_of: dt.date | None,
    only: str | None = None,
) -> np.ndarray | None:
    """What each bar's prices are multiplied by (and its volume divided by) for
    :func:`adjust_table`; None when every factor is 1 (``x * 1.0`` is ``x``).

    ``as_of`` needs no filtering: with only ex-dates up to ``as_of`` known, the factor in
    force on a day is the one in force on ``min(day, as_of)``."""
    if bars.num_rows == 0 or index.empty:
        return None  # no corporate action known: every factor is 1
    if only is not None:
        factors = index.of_symbol(only)
        return _multiplier_one(bars, factors, mode, anchor=anchor, as_of=as_of)
    codes = index.codes_of(bars.column("symbol"))
    days = _day_numbers(bars.column("trade_date"))
    limit = None if as_of is None else (as_of - _EPOCH).days
    multiplier = index.in_force(codes, days if limit is None else np.minimum(days, limit))
    if mode == "qfq":
        if anchor is None:  # each symbol's last bar
            last = np.full(len(index.codes) + 1, np.iinfo(np.int64).min)
            np.maximum.at(last, codes + 1, days)
            anchor_days = last[codes + 1]
        else:
            anchor_days = np.full(len(codes), (anchor - _EPOCH).days)
        if limit is not None:
            anchor_days = np.minimum(anchor_days, limit)
        multiplier = multiplier / index.in_force(codes, anchor_days)
    return multiplier


def _multiplier_one(
    bars: pa.Table,
    factors: SymbolFactors | None,
    mode: Adjust,
    *,
    anchor: dt.date | None,
    as_of: dt.date | None,
) -> np.ndarray | None:
    """:func:`multiplier_of` for the bars of one symbol with these ``factors``."""
    if factors is None:
        return None  # every factor 1
    days = _day_view(bars.column("trade_date"))
    return _multiplier_days(days, factors, mode, anchor=anchor, as_of=as_of)


def _multiplier_days(
    days: np.ndarray,
    factors: SymbolFactors,
    mode: Adjust,
    *,
    anchor: dt.date | None,
    as_of: dt.date | None,
) -> np.ndarray | None:
    """The multiplier of one symbol's bars on ``days`` (any order, at least one): the same
    factors chosen, the same arithmetic as :func:`multiplier_of`, so the same values bit
    for bit; None when no ex-date is known (up to ``as_of``).

    ``as_of`` cuts the ex-dates instead of the days (the factor in force on
    ``min(day, as_of)`` is the last ex-date on or before both); qfq divides the dozen
    factors by the anchor's before they are spread over the bars (the same quotients as
    dividing bar by bar). The spreading is one binary search per day among the ex-dates:
    with a dozen of them that is as fast as cutting the days into runs, and needs no
    check that the days ascend (a pass over them that cost as much)."""
    ex_days, in_force = factors.ex_days, factors.factors
    limit = 0
    if as_of is not None:
        limit = (as_of - _EPOCH).days
        known = int(ex_days.searchsorted(limit, "right"))
        ex_days, in_force = ex_days[:known], in_force[: known + 1]
    if not len(ex_days):
        return None  # the factor before the first ex-date is 1
    at = ex_days.searchsorted(days, "right")  # the factor in force on each day
    if mode == "qfq":
        if anchor is None:  # the last bar's: the latest of the days' (as_of cut already)
            in_force = in_force / in_force[at.max()]
        else:
            anchor_day = (anchor - _EPOCH).days
            if as_of is not None:
                anchor_day = min(anchor_day, limit)
            in_force = in_force / in_force[ex_days.searchsorted(anchor_day, "right")]
    return np.asarray(in_force[at])


def _multiplier_rows(
    views: RowViews,
    factors: SymbolFactors,
    mode: Adjust,
    *,
    anchor: dt.date | None,
    as_of: dt.date | None,
) -> np.ndarray | None:
    """:func:`_multiplier_days` for rows read with ``views``, through which factor is in
    force on each of the entity's rows (its ex-date row indices, in effect), found once per
    loaded history and stored factors (kept in ``views.derived``): a read takes its slice
    of them instead of searching its days again."""
    found = _multipliers([views], factors, mode, anchor=anchor, as_of=as_of)
    return None if found is None else found[0]


def _multipliers(
    parts: list[RowViews],
    factors: SymbolFactors,
    mode: Adjust,
    *,
    anchor: dt.date | None,
    as_of: dt.date | None,
) -> list[np.ndarray] | None:
    """The multiplier of each part's rows (one symbol's rows read in ``parts``, each with
    its views), as :func:`_multiplier_days` of all their days at once would give them; None
    when no ex-date is known (up to ``as_of``). Each is a slice of the multiplier of every
    row of the part's entity in its file, kept (``factors.kept``) under what it depends on:
    the ex-dates known and the factor divided by (qfq's anchor's; -1 for hfq)."""
    ex_days, in_force = factors.ex_days, factors.factors
    limit = 0
    known = len(ex_days)
    if as_of is not None:
        limit = (as_of - _EPOCH).days
        known = int(ex_days.searchsorted(limit, "right"))
        ex_days, in_force = ex_days[:known], in_force[: known + 1]
    if not len(ex_days):
        return None  # the factor before the first ex-date is 1
    spans = []
    latest = 0
    for views in parts:
        at_all, ascending = _in_force_rows(views, factors)
        first, last = views.start, views.start + len(views.days)
        if mode == "qfq" and anchor is None and last > first:  # the latest day's factor
            latest = max(latest, int(at_all[last - 1] if ascending else at_all[first:last].max()))
        spans.append((views.derived, at_all, first, last))
    divisor = -1
    if mode == "qfq":
        if anchor is None:  # the last bar's (as_of cuts it as it cuts every bar's)
            divisor = min(latest, known)
        else:
            anchor_day = (anchor - _EPOCH).days
            if as_of is not None:
                anchor_day = min(anchor_day, limit)
            divisor = int(ex_days.searchsorted(anchor_day, "right"))
    kept = factors.kept
    scaled: np.ndarray | None = None
    out = []
    for owner, at_all, first, last in spans:
        rows = None if kept is None else kept.get(owner, known, divisor)
        if rows is None:
            if scaled is None:
                scaled = in_force if divisor < 0 else in_force / in_force[divisor]
            at = at_all if known == len(factors.ex_days) else np.minimum(at_all, known)
            rows = np.asarray(scaled[at])
            rows.setflags(write=False)  # shared by every read of these rows
            if kept is not None:
                kept.put(owner, known, divisor, rows)
        out.append(rows[first:last])
    return out


def _in_force_rows(views: RowViews, factors: SymbolFactors) -> tuple[np.ndarray, bool]:
    """Which of ``factors`` is in force on each of the entity's rows, and whether its days
    ascend: found once per loaded file and stored factors (kept in ``views.derived``)."""
    kept = cast("tuple[SymbolFactors, np.ndarray, bool] | None", views.derived.get("adjust"))
    if kept is None or kept[0] is not factors:  # the factors are replaced when they change
        whole = views.whole
        at_all = factors.ex_days.searchsorted(whole, "right")
        ascending = len(whole) < 2 or bool((whole[1:] >= whole[:-1]).all())
        kept = (factors, at_all, ascending)
        views.derived["adjust"] = kept
    return kept[1], kept[2]


def adjust_one(
    bars: pa.Table,
    views: RowViews,
    factors: SymbolFactors | None,
    mode: Adjust,
    *,
    anchor: dt.date | None,
    as_of: dt.date | None,
) -> pa.Table:
    """:func:`adjust_table` for one symbol's ``bars`` as read from a history with their
    numpy ``views`` (etl.lake.history.RowViews): the same values bit for bit.

    Why apart: the bars are one read-only batch of the history's map, so every scaled
    column is new; found through the views, the price columns laid out one after another
    are scaled by one numpy call into one new buffer, in place of three or four Arrow
    calls and a multiplication per column (the adjustment was 1.25x the raw read)."""
    n = bars.num_rows
    if factors is None or n == 0:
        return bars
    multiplier = _multiplier_rows(views, factors, mode, anchor=anchor, as_of=as_of)
    if multiplier is None:
        return bars
    schema = bars.schema
    out = bars
    if views.block is not None:
        block = np.multiply(views.block, multiplier)  # (columns, rows), one new buffer
        names = views.block_names
        if "volume" in names:  # divided, not multiplied (written over its row)
            at = names.index("volume")
            np.divide(views.block[at], multiplier, out=block[at])
        data = pa.py_buffer(block)
        for j, name in enumerate(names):
            i = schema.get_field_index(name)
            scaled = pa.Array.from_buffers(_FLOAT64, n, [None, data], 0, j * n)
            out = out.set_column(i, schema.field(i), scaled)
    for name, values in views.singles.items():
        i = schema.get_field_index(name)
        scaled_values = values / multiplier if name == "volume" else values * multiplier
        scaled = pa.Array.from_buffers(_FLOAT64, n, [None, pa.py_buffer(scaled_values)], 0)
        out = out.set_column(i, schema.field(i), scaled)
    for name in views.others:
        i = schema.get_field_index(name)
        column = _scaled(bars.column(i), multiplier, divide=name == "volume")
        out = out.set_column(i, schema.field(i), column)
    return out


def adjust_parts(
    bars: pa.Table,
    parts: list[RowViews],
    factors: SymbolFactors | None,
    mode: Adjust,
    *,
    anchor: dt.date | None,
    as_of: dt.date | None,
) -> pa.Table:
    """:func:`adjust_one` for one symbol's ``bars`` read in parts (one chunk per part, in
    time order: the closed years from a history, the newest from its mirror), each with
    its ``views``: the same values bit for bit, the scaled columns in one chunk each.

    Why: the raw read combines the parts (a copy of every column) when its frame is made;
    an adjusted read that combined them and then scaled the price columns of the copy
    passed over those columns twice. Here each part's price columns are scaled straight
    into one new buffer (the combined, scaled columns in one pass); the other columns are
    left in their parts for the frame to combine, as the raw read's are."""
    if len(parts) == 1:
        return adjust_one(bars, parts[0], factors, mode, anchor=anchor, as_of=as_of)
    if factors is None or bars.num_rows == 0:
        return bars
    multipliers = _multipliers(parts, factors, mode, anchor=anchor, as_of=as_of)
    if multipliers is None:
        return bars
    first = parts[0]
    same = all(
        v.block_names == first.block_names
        and v.singles.keys() == first.singles.keys()
        and v.absent == first.absent
        and v.others == first.others
        for v in parts[1:]
    )
    if not same:  # a column with a view in one part and not in another: the general way
        combined = bars.combine_chunks()
        return _rescaled(combined, np.concatenate(multipliers), owned=True)
    n = bars.num_rows
    schema = bars.schema
    scaled: dict[int, pa.Array | pa.ChunkedArray] = {}
    if first.block is not None:
        names = first.block_names
        volume = names.index("volume") if "volume" in names else -1
        block = np.empty((len(names), n))  # (columns, rows), one new buffer
        at = 0
        for views, multiplier in zip(parts, multipliers, strict=True):
            assert views.block is not None
            end = at + len(multiplier)
            np.multiply(views.block, multiplier, out=block[:, at:end])
            if volume >= 0:  # divided, not multiplied (written over its row)
                np.divide(views.block[volume], multiplier, out=block[volume, at:end])
            at = end
        data = pa.py_buffer(block)
        for j, name in enumerate(names):
            scaled[schema.get_field_index(name)] = pa.Array.from_buffers(
                _FLOAT64, n, [None, data], 0, j * n
            )
    for name in first.singles:
        values = np.empty(n)
        at = 0
        for views, multiplier in zip(parts, multipliers, strict=True):
            end = at + len(multiplier)
            if name == "volume":
                np.divide(views.singles[name], multiplier, out=values[at:end])
            else:
                np.multiply(views.singles[name], multiplier, out=values[at:end])
            at = end
        scaled[schema.get_field_index(name)] = pa.Array.from_buffers(
            _FLOAT64, n, [None, pa.py_buffer(values)], 0
        )
    whole = np.concatenate(multipliers) if first.others else None
    for name in first.others:
        assert whole is not None
        i = schema.get_field_index(name)
        scaled[i] = _scaled(bars.column(i), whole, divide=name == "volume")
    # the other columns stay in their parts: the frame's making combines them, as it
    # does the raw read's (combining them here, column by column, cost more than the
    # scaling itself)
    out = bars
    for i, column in scaled.items():
        out = out.set_column(i, schema.field(i), column)
    return out


def scaled_in_parts(bars: pa.Table) -> bool:
    """Every column :func:`adjust_table` scales is in several chunks: ``combine_chunks``
    then copies each into a buffer of its own, which nothing else holds (``owned``)."""
    schema = bars.schema
    for name in SCALED:
        i = schema.get_field_index(name)
        if i >= 0 and bars.column(i).num_chunks < 2:
            return False
    return True


def _rescaled(bars: pa.Table, multiplier: np.ndarray, *, owned: bool) -> pa.Table:
    """``bars`` with each price column times ``multiplier`` and volume divided by it: in
    place when ``owned`` allows it, else in new columns of a new table."""
    schema = bars.schema
    out = bars
    for name in SCALED:  # looked up by name: listing all the names costs more than this
        i = schema.get_field_index(name)
        if i < 0:
            continue
        column, divide = bars.column(i), name == "volume"
        if owned and _scale_in_place(column, multiplier, divide=divide):
            continue
        scaled = _scaled(column, multiplier, divide=divide)
        if scaled is not column:
            # column by column: cheaper than listing all sixteen to build a new table
            # (each column listed is a Python object made), and the field keeps its
            # nullability
            out = out.set_column(i, schema.field(i), scaled)
    return out


def _scale_in_place(column: pa.ChunkedArray, multiplier: np.ndarray, *, divide: bool) -> bool:
    """Scale ``column`` in its own buffer if it is one writable float64 chunk without
    nulls (a mapped mirror's buffer is read-only, so a slice of one never qualifies);
    False: left as it was."""
    if column.num_chunks != 1 or column.null_count or not pa.types.is_float64(column.type):
        return False
    one = column.chunk(0)
    data = one.buffers()[1]
    if data is None or not data.is_mutable:
        return False
    values = np.frombuffer(data, dtype=np.float64, count=len(one), offset=one.offset * 8)
    if divide:
        np.divide(values, multiplier, out=values)
    else:
        np.multiply(values, multiplier, out=values)
    return True


def _day_view(dates: pa.ChunkedArray) -> np.ndarray:
    """A date32 column as days since 1970, its buffer viewed without a copy when it is one
    chunk without nulls (as a read's bars are)."""
    if dates.num_chunks != 1 or dates.null_count:
        return _day_numbers(dates)
    one = dates.chunk(0)
    return np.frombuffer(one.buffers()[1], dtype=np.int32, count=len(one), offset=one.offset * 4)


def _scaled(
    column: pa.ChunkedArray, multiplier: np.ndarray, *, divide: bool
) -> pa.ChunkedArray | pa.Array:
    """``column`` times (or divided by) ``multiplier``: in numpy when it has no null (the
    common case, and several times cheaper than a kernel call), untouched when all null."""
    nulls = column.null_count
    if nulls == len(column):
        return column
    if nulls == 0 and column.type == _FLOAT64:
        one = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
        values = one.to_numpy()  # no nulls, float64: a view of the buffer
        scaled = values / multiplier if divide else values * multiplier
        return pa.Array.from_buffers(_FLOAT64, len(scaled), [None, pa.py_buffer(scaled)])
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
    """:func:`adjust_table` for polars frames (``factors``: ``adj_factors`` rows)."""
    index = FactorIndex.of(factors.to_arrow())
    table = adjust_table(bars.to_arrow(), index, mode, anchor=anchor, as_of=as_of)
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame
