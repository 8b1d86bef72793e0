"""Canonical names: symbols, markets, frequencies, datasets and dates (docs/contract.md "Names").

Everything the user types passes through here before any request or write. A symbol that
passes :func:`parse_symbol` contains only ``[A-Z0-9_.-]``, so it is safe as a Parquet value
and as a bound SQL parameter; it is never used as a path component.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from etl.errors import BadInputError

__all__ = [
    "DATASETS",
    "FREQS",
    "INTRADAY_FREQS",
    "MARKETS",
    "VENDOR_SUFFIXES",
    "Freq",
    "Symbol",
    "parse_dataset",
    "parse_date",
    "parse_freq",
    "parse_market",
    "parse_symbol",
    "parse_symbols",
]

FREQS: Final = ("1m", "5m", "15m", "30m", "1h", "1d", "1w", "1M")
INTRADAY_FREQS: Final = ("1m", "5m", "15m", "30m", "1h")
MARKETS: Final = (
    "SH", "SZ", "BJ", "HK", "US", "IN", "JP", "CFE", "SHF", "DCE", "CZC", "INE", "CC", "FX",
)  # fmt: skip
# Products that only one vendor has are named <CODE>.<VENDOR> (docs/contract.md).
VENDOR_SUFFIXES: Final = ("INFOWAY", "STOCKTV", "MDAPI", "AMAZINGDATA", "SIM")
DATASETS: Final = (
    "instruments", "calendar", "klines", "balance_sheet", "income", "cash_flow",
    "future_varieties", "main_contracts", "ticks", "quotes", "adj_factors",
)  # fmt: skip

# A list of every symbol of every market is ~1 MB; 16 MiB leaves room without reading forever.
MAX_SYMBOL_FILE: Final = 16 * 2**20
# Dates the calendars and the lake can hold (datetime overflows past 9999; exchange
# calendars start in 1990): anything outside is a typo, refused before any work.
FIRST_DATE: Final = dt.date(1900, 1, 1)
LAST_DATE: Final = dt.date(2199, 12, 31)
_SYMBOL_RE: Final = re.compile(r"^(?P<code>[A-Z0-9_-]{1,40})\.(?P<exchange>[A-Z]{2,12})$")
_MINUTES: Final = {"1m": 1, "5m": 5, "15m": 15, "30m": 30, "1h": 60}


@dataclass(frozen=True, order=True)
class Symbol:
    """A canonical ``CODE.EXCHANGE`` symbol; ``exchange`` is a market or a vendor suffix."""

    code: str
    exchange: str

    def __str__(self) -> str:
        return f"{self.code}.{self.exchange}"

    @property
    def market(self) -> str | None:
        """The calendar market, or None for a vendor-only product (``HX_HSI.MDAPI``)."""
        return self.exchange if self.exchange in MARKETS else None


@dataclass(frozen=True)
class Freq:
    """A bar frequency; intraday ones have a fixed length, 1d/1w/1M follow the calendar."""

    name: str

    @property
    def minutes(self) -> int | None:
        return _MINUTES.get(self.name)

    @property
    def intraday(self) -> bool:
        return self.name in _MINUTES

    def __str__(self) -> str:
        return self.name


def parse_symbol(text: str) -> Symbol:
    """Parse one canonical symbol, or raise :class:`BadInputError` saying what is wrong."""
    raw = text.strip()
    match = _SYMBOL_RE.match(raw)
    if match is None:
        hint = ""
        if _SYMBOL_RE.match(raw.upper()):
            hint = f"; symbols are upper case: {raw.upper()}"
        raise BadInputError(
            f"invalid symbol {raw!r}: expected CODE.EXCHANGE with CODE of [A-Z0-9_-] "
            f"(e.g. 600000.SH, TSLA.US, BTCUSDT.CC){hint}"
        )
    exchange = match["exchange"]
    if exchange not in MARKETS and exchange not in VENDOR_SUFFIXES:
        raise BadInputError(
            f"invalid symbol {raw!r}: unknown exchange {exchange!r}; use one of "
            f"{', '.join(MARKETS)} or a vendor suffix ({', '.join(VENDOR_SUFFIXES)})"
        )
    return Symbol(match["code"], exchange)


def parse_symbols(arg: str, *, cwd: Path | None = None) -> list[Symbol]:
    """Parse ``--symbols``: a comma list, or ``@file`` with one symbol a line.

    Blank lines and ``#`` comments in the file are skipped; duplicates are dropped while
    keeping the first-seen order, since users concatenate lists.
    """
    text = arg.strip()
    if text.startswith("@"):
        path = Path(text[1:]).expanduser()
        if cwd is not None and not path.is_absolute():
            path = cwd / path
        lines = _read_symbol_file(path)
        items = [ln.split("#", 1)[0].strip() for ln in lines]
    else:
        items = [part.strip() for part in text.split(",")]
    items = [item for item in items if item]
    if not items:
        raise BadInputError("--symbols is empty: give a comma list or @file")
    seen: dict[Symbol, None] = {}
    for item in items:
        seen.setdefault(parse_symbol(item), None)
    return list(seen)


def _read_symbol_file(path: Path) -> list[str]:
    """The lines of an ``@file``, read with a bound (``@/dev/zero`` must not hang)."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_SYMBOL_FILE + 1)
    except OSError as exc:
        raise BadInputError(f"cannot read symbol file {str(path)!r}: {exc.strerror}") from exc
    if len(data) > MAX_SYMBOL_FILE:
        raise BadInputError(
            f"symbol file {str(path)!r} is larger than {MAX_SYMBOL_FILE // 2**20} MiB: "
            "give a file of symbols, one a line"
        )
    try:
        return data.decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise BadInputError(
            f"symbol file {str(path)!r} is not UTF-8 text (byte {exc.start}): "
            "save it as UTF-8, one symbol a line"
        ) from None


def parse_freq(text: str) -> Freq:
    if text not in FREQS:
        hint = ""
        if text.lower() in ("1mo", "1mon", "month", "monthly"):
            hint = " (the monthly frequency is 1M, upper case)"
        raise BadInputError(f"invalid frequency {text!r}: use one of {' '.join(FREQS)}{hint}")
    return Freq(text)


def parse_market(text: str) -> str:
    market = text.strip()
    if market not in MARKETS:
        raise BadInputError(f"invalid market {text!r}: use one of {' '.join(MARKETS)}")
    return market


def parse_dataset(text: str) -> str:
    if text not in DATASETS:
        raise BadInputError(f"invalid dataset {text!r}: use one of {', '.join(DATASETS)}")
    return text


def parse_date(text: str, *, option: str = "date") -> dt.date:
    """Parse an ISO ``YYYY-MM-DD`` date; ``option`` names the flag in the error."""
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()):
            raise ValueError(text)
        day = dt.date.fromisoformat(text.strip())
    except ValueError:
        raise BadInputError(
            f"invalid {option} {text!r}: dates are ISO YYYY-MM-DD, e.g. 2024-01-02"
        ) from None
    if not FIRST_DATE <= day <= LAST_DATE:
        raise BadInputError(
            f"{option} {day} is out of range: give a date from {FIRST_DATE} to {LAST_DATE}"
        )
    return day


def parse_range(start: str, end: str) -> tuple[dt.date, dt.date]:
    """Parse ``--start``/``--end`` (both inclusive trade dates) and check their order."""
    first = parse_date(start, option="--start")
    last = parse_date(end, option="--end")
    if first > last:
        raise BadInputError(f"--start {first} is after --end {last}: swap them")
    return first, last
