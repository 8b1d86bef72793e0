"""Canonical rows an emulator encodes, and the generic ``modify`` faults applied to them.

A vendor emulator turns :mod:`etl.synthetic` bars into :class:`Bar` rows *in the vendor's
documented order*, calls :func:`apply_bar_faults`, then encodes them in its wire form. The
faults only change values and order; how a NaN or a negative price is written, or what a
``schema_drift`` renames, stays in the vendor module (:func:`drift_row` takes the names).

Every choice (which bars, which kind of bad price) is a hash of (seed, request number,
fault, stream), so a run with the same SPEC and the same requests repeats exactly.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

import numpy as np

from etl.emulators.faults import ActiveFaults, Fault
from etl.synthetic import Bars
from etl.synthetic.hashing import uniform

__all__ = ["Bar", "apply_bar_faults", "bars_of", "drift_row", "drift_rows"]

_SHARE: Final = 0.1  # share of the bars a fault touches (at least one)
_BAD_KINDS: Final = ("high_low", "negative", "nan")


@dataclass(frozen=True)
class Bar:
    """One bar before encoding: ``ts_us`` is the UTC open instant in microseconds, and
    ``trade_date`` the exchange-local session date. Values are floats or None."""

    ts_us: int
    trade_date: dt.date
    open: float
    high: float
    low: float
    close: float
    volume: float | None = None
    amount: float | None = None
    settle: float | None = None
    open_interest: float | None = None

    @property
    def ts(self) -> dt.datetime:
        return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=self.ts_us)


def bars_of(bars: Bars) -> list[Bar]:
    """Synthetic bars (ascending) as :class:`Bar` rows."""

    def col(values: Any, i: int) -> float | None:
        return None if values is None else float(values[i])

    days = bars.trade_date.astype("datetime64[D]").astype(object)
    return [
        Bar(
            ts_us=int(bars.ts[i]),
            trade_date=days[i],
            open=float(bars.open[i]),
            high=float(bars.high[i]),
            low=float(bars.low[i]),
            close=float(bars.close[i]),
            volume=col(bars.volume, i),
            amount=col(bars.amount, i),
            settle=col(bars.settle, i),
            open_interest=col(bars.open_interest, i),
        )
        for i in range(len(bars))
    ]


def _picks(active: ActiveFaults, fault: Fault, stream: str, n: int) -> list[int]:
    """Indices of about 10 % of ``n`` rows (at least one), ascending."""
    if n <= 0:
        return []
    u = uniform(active.key(fault, stream), np.arange(n))
    k = max(1, round(n * _SHARE))
    return sorted(int(i) for i in np.argsort(u, kind="stable")[:k])


def apply_bar_faults(bars: Sequence[Bar], active: ActiveFaults, stream: str = "") -> list[Bar]:
    """Apply the bar faults on for this request to ``bars`` (given in the vendor's
    documented order). ``stream`` tells apart the lists of one answer (the code). Order:
    missing, duplicate, bad prices, then reordering (which also moves the duplicates)."""
    out = list(bars)
    for f in active.modifiers("missing_bars"):
        inner = _picks(active, f, stream, len(out) - 2)
        if inner:
            drop = {i + 1 for i in inner}
            out = [b for i, b in enumerate(out) if i not in drop]
            active.mark(f)
    for f in active.modifiers("duplicate_bars"):
        chosen = set(_picks(active, f, stream, len(out)))
        if chosen:
            doubled: list[Bar] = []
            for i, b in enumerate(out):
                doubled.append(b)
                if i in chosen:
                    doubled.append(_conflicting(b) if f.variant == "conflict" else b)
            out = doubled
            active.mark(f)
    for f in active.modifiers("bad_prices"):
        kinds = (f.variant,) if f.variant else _BAD_KINDS
        chosen_list = _picks(active, f, stream, len(out))
        for j, i in enumerate(chosen_list):
            out[i] = _spoiled(out[i], kinds[j % len(kinds)])
        if chosen_list:
            active.mark(f)
    for f in active.modifiers("out_of_order_bars"):
        if len(out) < 2:
            continue
        if f.variant == "reversed":
            out.reverse()
        else:
            u = uniform(active.key(f, stream), np.arange(len(out)))
            order = [int(i) for i in np.argsort(u, kind="stable")]
            if order == sorted(order):
                order[0], order[1] = order[1], order[0]
            out = [out[i] for i in order]
        active.mark(f)
    return out


def _conflicting(b: Bar) -> Bar:
    """A copy with another close, still inside its high/low where the bar has a range."""
    for candidate in (round((b.high + b.low) / 2, 6), b.high, b.low):
        if candidate != b.close:
            return replace(b, close=candidate)
    close = round(b.close * 1.001 + 0.01, 6)  # a flat bar: widen it to keep the copy valid
    return replace(b, close=close, high=max(b.high, close))


def _spoiled(b: Bar, kind: str) -> Bar:
    if kind == "negative":
        return replace(b, low=-abs(b.low) if b.low else -1.0)
    if kind == "nan":
        return replace(b, close=math.nan)
    high, low = b.low, b.high  # high < low: swap, and split a flat bar
    if high >= low:
        high = round(low * 0.99 - 0.01, 6)
    return replace(b, high=high, low=low)


def drift_row(
    row: Mapping[str, Any],
    fault: Fault,
    *,
    extra: tuple[str, Any],
    rename: tuple[str, str],
) -> dict[str, Any]:
    """``schema_drift`` on one encoded row: ``extra`` adds the field ``extra[0]``; ``rename``
    renames ``rename[0]`` to ``rename[1]`` in place (the key order stays)."""
    if fault.variant == "rename":
        old, new = rename
        return {new if k == old else k: v for k, v in row.items()}
    out = dict(row)
    out[extra[0]] = extra[1]
    return out


def drift_rows(
    rows: Sequence[Mapping[str, Any]],
    active: ActiveFaults,
    *,
    extra: tuple[str, Any],
    rename: tuple[str, str],
) -> list[dict[str, Any]]:
    """Apply every ``schema_drift`` on for this request to encoded rows (see drift_row)."""
    out = [dict(r) for r in rows]
    for f in active.modifiers("schema_drift"):
        out = [drift_row(r, f, extra=extra, rename=rename) for r in out]
        if out:
            active.mark(f)
    return out
