"""Checking the Warehouse's arguments before anything is read.

Analysts pass strings and dates from notebooks; each mistake gets a :class:`BadInputError`
that says what to write instead, the same words the command line uses.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Final, Literal, TypeAlias

from etl.errors import BadInputError
from etl.names import parse_date, parse_freq, parse_market, parse_symbol

__all__ = [
    "STATEMENT_DATASETS",
    "Adjust",
    "DateLike",
    "check_adjust",
    "check_date",
    "check_freq",
    "check_market",
    "check_range",
    "check_statement_dataset",
    "check_symbols",
]

DateLike: TypeAlias = "str | dt.date"
Adjust: TypeAlias = Literal["qfq", "hfq"]
STATEMENT_DATASETS: Final = ("balance_sheet", "income", "cash_flow")


def check_date(value: DateLike, *, name: str) -> dt.date:
    """An ISO ``YYYY-MM-DD`` string or a ``datetime.date`` (not a datetime: a bar's date is
    the exchange's session date, and a datetime's time zone would make it ambiguous)."""
    if isinstance(value, dt.datetime):
        raise BadInputError(
            f"{name} must be a date, not a datetime ({value.isoformat()}): "
            f"pass {value.date().isoformat()!r} or value.date()"
        )
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        return parse_date(value, option=name)
    raise BadInputError(f"{name} must be an ISO date string or a datetime.date, got {value!r}")


def check_range(start: DateLike, end: DateLike) -> tuple[dt.date, dt.date]:
    first, last = check_date(start, name="start"), check_date(end, name="end")
    if first > last:
        raise BadInputError(f"start {first} is after end {last}: swap them")
    return first, last


def check_symbols(symbols: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """Canonical symbols, first-seen order, no duplicates; None means every symbol."""
    if symbols is None:
        return None
    items = [symbols] if isinstance(symbols, str) else list(symbols)
    if not items:
        raise BadInputError("symbols is empty: pass a list of symbols, or None for every symbol")
    seen: dict[str, None] = {}
    for item in items:
        if not isinstance(item, str):
            raise BadInputError(f"symbols must be strings like '600000.SH', got {item!r}")
        seen.setdefault(str(parse_symbol(item)), None)
    return tuple(seen)


def check_freq(freq: str) -> str:
    return parse_freq(freq).name


def check_market(market: str) -> str:
    return parse_market(market)


def check_adjust(adjust: str | None) -> Adjust | None:
    if adjust is None:
        return None
    if adjust == "qfq":
        return "qfq"
    if adjust == "hfq":
        return "hfq"
    raise BadInputError(
        f"invalid adjust {adjust!r}: use None (raw prices), 'qfq' (forward-adjusted, "
        "anchored on anchor) or 'hfq' (backward-adjusted)"
    )


def check_statement_dataset(dataset: str) -> str:
    if dataset not in STATEMENT_DATASETS:
        raise BadInputError(
            f"invalid statement {dataset!r}: use one of {', '.join(STATEMENT_DATASETS)}"
        )
    return dataset
