"""The synthetic instrument universe: a pure function of the seed.

``now`` never changes the universe; it only decides what is already visible: an instrument
listed after today is not yet known, and a stock's future delisting is not yet announced.
Futures show their expiry from the start, as exchanges publish it at listing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import cache, lru_cache
from typing import Final

import numpy as np
import numpy.typing as npt

from etl.calendars import market_spec, trading_days
from etl.names import MARKETS, parse_symbol
from etl.synthetic import catalogue as cat
from etl.synthetic.futures import VARIETIES, contracts
from etl.synthetic.hashing import key_of, uniform

__all__ = [
    "Instrument",
    "Universe",
    "instrument_for_any",
    "instruments",
    "local_today",
    "universe",
]

_CURRENCY: Final = {
    "SH": "CNY", "SZ": "CNY", "BJ": "CNY", "HK": "HKD", "US": "USD", "IN": "INR", "JP": "JPY",
    "CFE": "CNY", "SHF": "CNY", "DCE": "CNY", "CZC": "CNY", "INE": "CNY", "CC": "USDT",
}  # fmt: skip
_FUTURES_MARKETS: Final = frozenset({"CFE", "SHF", "DCE", "CZC", "INE"})
_CALENDAR_FIRST: Final = dt.date(2005, 1, 4)  # before this, dates are not snapped to sessions
_CALENDAR_LAST: Final = dt.date(2026, 12, 31)
# A handful of A shares list within the two years before the project's present (late 2026),
# and about 3 % of the older ones were delisted in the past.
_RECENT_IPOS: Final = 12
_RECENT_FROM: Final = dt.date(2024, 12, 2)
_RECENT_TO: Final = dt.date(2026, 9, 30)
_DELIST_SHARE: Final = 0.035
_DELIST_FROM: Final = dt.date(2016, 1, 4)
_DELIST_TO: Final = dt.date(2025, 6, 30)


@dataclass(frozen=True)
class Instrument:
    """One instrument. ``level`` is a typical price where one is known (indices, futures);
    ``variety``/``contract_month`` (``year * 12 + month - 1``) are set for futures."""

    symbol: str
    market: str
    name: str
    type: str  # stock etf index future crypto forex other
    currency: str | None
    list_date: dt.date | None
    delist_date: dt.date | None
    level: float | None = None
    variety: str | None = None
    contract_month: int | None = None

    def listed_on(self, day: dt.date) -> bool:
        """Whether ``day`` is within the listed life (both ends inclusive)."""
        if self.list_date is not None and day < self.list_date:
            return False
        return self.delist_date is None or day <= self.delist_date


@dataclass(frozen=True)
class Universe:
    """Every instrument that ever exists for one seed, in a stable order."""

    seed: int
    all: tuple[Instrument, ...]
    by_symbol: Mapping[str, Instrument]

    def get(self, symbol: str) -> Instrument | None:
        return self.by_symbol.get(symbol)

    def visible(self, symbol: str, now: dt.datetime) -> Instrument | None:
        """The instrument as known at ``now``, or None if it is not listed yet."""
        inst = self.by_symbol.get(symbol)
        return None if inst is None else _as_of(inst, now)


def local_today(market: str, now: dt.datetime) -> dt.date:
    """The exchange-local date at ``now`` (vendor-only products: Asia/Shanghai)."""
    zone = market_spec(market if market in MARKETS else "FX").zone
    return now.astimezone(zone).date()


def _as_of(inst: Instrument, now: dt.datetime) -> Instrument | None:
    today = local_today(inst.market, now)
    if inst.list_date is not None and inst.list_date > today:
        return None
    if inst.type != "future" and inst.delist_date is not None and inst.delist_date > today:
        return replace(inst, delist_date=None)  # not announced yet
    return inst


def instruments(now: dt.datetime, *, seed: int = 0, market: str | None = None) -> list[Instrument]:
    """Instruments listed at ``now`` (optionally of one market), as known at ``now``."""
    found = []
    for inst in universe(seed).all:
        if market is not None and inst.market != market:
            continue
        seen = _as_of(inst, now)
        if seen is not None:
            found.append(seen)
    return found


@lru_cache(maxsize=8)
def universe(seed: int = 0) -> Universe:
    """Build (once per seed) the whole universe."""
    items: list[Instrument] = []
    items += _a_shares(seed)
    items += [_literal(n, "etf", n.code.rsplit(".", 1)[1]) for n in cat.ETFS]
    items += [_literal(n, "index", n.code.rsplit(".", 1)[1]) for n in cat.INDICES]
    for market, rows in cat.OVERSEAS.items():
        items += [_literal(n, "stock", market, code=f"{n.code}.{market}") for n in rows]
    items += [_literal(n, "crypto", "CC", code=f"{n.code}.CC") for n in cat.CRYPTO]
    items += [
        _literal(n, "forex", "FX", code=f"{n.code}.FX", currency=n.code[3:]) for n in cat.FOREX
    ]
    items += _futures()
    by_symbol = {inst.symbol: inst for inst in items}
    assert len(by_symbol) == len(items), "a symbol is generated twice"
    return Universe(seed, tuple(items), by_symbol)


def _date(text: str | None) -> dt.date | None:
    return None if text is None else dt.date.fromisoformat(text)


def _literal(
    n: cat.Named, kind: str, market: str, *, code: str | None = None, currency: str | None = None
) -> Instrument:
    listed = _date(n.list_date)
    return Instrument(
        symbol=code or n.code,
        market=market,
        name=n.name,
        type=kind,
        currency=currency or _CURRENCY.get(market),
        list_date=_snap(market, listed, forward=True) if listed else None,
        delist_date=None,
        level=n.level,
    )


@cache
def _sessions_of(market: str) -> npt.NDArray[np.datetime64]:
    return trading_days(market, _CALENDAR_FIRST, _CALENDAR_LAST)


def _snap(market: str, day: dt.date, *, forward: bool) -> dt.date:
    """The session on or after (``forward``) or on or before ``day``, where the calendar
    knows sessions; listing and last days fall on trading days."""
    if not _CALENDAR_FIRST <= day <= _CALENDAR_LAST:
        return day
    days = _sessions_of(market)
    target = np.datetime64(day, "D")
    if forward:
        i = min(int(np.searchsorted(days, target, side="left")), len(days) - 1)
    else:
        i = max(int(np.searchsorted(days, target, side="right")) - 1, 0)
    return dt.date.fromisoformat(str(days[i]))


def _pick_dates(seed: int, tag: str, n: int, first: dt.date, last: dt.date) -> list[dt.date]:
    """``n`` hashed dates in ``[first, last]``, ascending."""
    span = (last - first).days
    u = uniform(key_of(seed, "dates", tag), np.arange(n))
    return sorted(first + dt.timedelta(days=int(x * (span + 1))) for x in u)


def _a_shares(seed: int) -> list[Instrument]:
    named = {n.code: n for n in cat.CN_NAMED_STOCKS}
    used_names = {n.name for n in cat.CN_NAMED_STOCKS}
    stocks: list[Instrument] = []
    for board in cat.BOARDS:
        block = {c: n for c, n in named.items() if c.startswith(board.prefix)}
        taken = {c.split(".")[0] for c in block if c.endswith("." + board.market)}
        scores = uniform(key_of(seed, "codes", board.prefix), np.arange(1000))
        order = [int(i) for i in np.argsort(scores, kind="stable")]
        codes = [f"{board.prefix}{i:03d}" for i in order if f"{board.prefix}{i:03d}" not in taken]
        codes = sorted(codes[: board.size - len(taken)])
        first, last = _date(board.first_listing), _date(board.last_listing)
        assert first is not None and last is not None
        dates = _pick_dates(seed, board.prefix, len(codes), first, last)
        for code, listed in zip(codes, dates, strict=True):
            symbol = f"{code}.{board.market}"
            name = _cn_name(seed, symbol, used_names)
            stocks.append(_stock(symbol, board.market, name, listed))
    for n in cat.CN_NAMED_STOCKS:
        named_listed = _date(n.list_date)
        assert named_listed is not None
        stocks.append(_stock(n.code, n.code.rsplit(".", 1)[1], n.name, named_listed))
    stocks.sort(key=lambda s: s.symbol)
    return _with_life_events(seed, stocks, set(named))


def _stock(symbol: str, market: str, name: str, listed: dt.date) -> Instrument:
    return Instrument(
        symbol, market, name, "stock", "CNY", _snap(market, listed, forward=True), None
    )


def _cn_name(seed: int, symbol: str, used: set[str]) -> str:
    heads, tails = cat.CN_NAME_HEADS, cat.CN_NAME_TAILS
    for attempt in range(100):
        u = uniform(key_of(seed, "name", symbol, attempt), np.arange(3))
        name = (
            heads[int(u[0] * len(heads))]
            + heads[int(u[1] * len(heads))]
            + tails[int(u[2] * len(tails))]
        )
        if name not in used and name[0] != name[1]:
            used.add(name)
            return name
    raise AssertionError(f"no free name for {symbol}")  # pragma: no cover


def _with_life_events(seed: int, stocks: list[Instrument], keep: Iterable[str]) -> list[Instrument]:
    """Move a few generated stocks to recent IPOs and delist ~3 % of the older ones."""
    protected = set(keep)
    free = [s for s in stocks if s.symbol not in protected and s.market in ("SH", "SZ")]
    scores = uniform(key_of(seed, "ipo"), np.arange(len(free)))
    recent = {free[int(i)].symbol for i in np.argsort(scores, kind="stable")[:_RECENT_IPOS]}
    recent_dates = iter(_pick_dates(seed, "recent", _RECENT_IPOS, _RECENT_FROM, _RECENT_TO))
    delist_u = uniform(key_of(seed, "delist"), np.arange(len(stocks)))
    when_u = uniform(key_of(seed, "delist-date"), np.arange(len(stocks)))
    out = []
    for i, stock in enumerate(stocks):
        s = stock
        if s.symbol in recent:
            s = replace(s, list_date=_snap(s.market, next(recent_dates), forward=True))
        elif (
            s.symbol not in protected
            and s.list_date is not None
            and s.list_date < dt.date(2013, 1, 1)
            and delist_u[i] < _DELIST_SHARE / 0.75  # ~75 % of stocks listed before 2013
        ):
            first = max(s.list_date + dt.timedelta(days=3 * 365), _DELIST_FROM)
            span = (_DELIST_TO - first).days
            day = first + dt.timedelta(days=int(when_u[i] * span))
            s = replace(s, delist_date=_snap(s.market, day, forward=False))
        out.append(s)
    return out


def _futures() -> list[Instrument]:
    out = []
    for v in VARIETIES:
        for c in contracts(v.code):
            out.append(
                Instrument(
                    symbol=c.symbol,
                    market=c.exchange,
                    name=f"{v.name}{c.code[len(v.code) :]}",
                    type="future",
                    currency="CNY",
                    list_date=c.list_date,
                    delist_date=c.expiry,
                    level=v.level,
                    variety=v.code,
                    contract_month=c.month,
                )
            )
    return out


def instrument_for_any(symbol: str, *, seed: int = 0) -> Instrument:
    """The universe's instrument, or a made-up one for any valid symbol outside it.

    Emulators serve vendor-only products (``XAUUSD.INFOWAY``, ``HX_HSI.MDAPI``) and codes the
    universe lacks; such an instrument has no listing dates and never suspends.
    """
    found = universe(seed).get(symbol)
    if found is not None:
        return found
    parsed = parse_symbol(symbol)
    market = parsed.exchange
    if market in _FUTURES_MARKETS:
        kind = "future"
    elif market == "CC":
        kind = "crypto"
    elif market == "FX":
        kind = "forex"
    elif market in MARKETS:
        kind = "stock"
    else:
        kind = "other"
    currency = parsed.code[3:6] if kind == "forex" else _CURRENCY.get(market)
    return Instrument(str(parsed), market, str(parsed), kind, currency or None, None, None)
