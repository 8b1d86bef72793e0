"""Synthetic OHLCV bars: which bars exist, and their values.

A bar exists where the calendar grid has one, within the instrument's listed life, off its
suspension days, and only once it has fully ended before ``now``. Every value is a pure
function of (seed, symbol, freq, bar time), so a range split into pieces gives the same bars
as the whole range.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from etl.calendars.markets import CFE_TREASURY_VARIETIES
from etl.errors import BadInputError, CapabilityError
from etl.names import INTRADAY_FREQS, MARKETS, parse_freq
from etl.synthetic.actions import actions, raw_scale
from etl.synthetic.frames import Frame, frame
from etl.synthetic.futures import main_months, variety
from etl.synthetic.hashing import key_of, normal, uniform
from etl.synthetic.prices import (
    WICK_PER_SQRT_MINUTE,
    PriceProfile,
    price_at,
    profile,
    wick_noise,
)
from etl.synthetic.universe import Instrument, instrument_for_any, local_today, universe

__all__ = [
    "DAILY_ONLY_MARKETS",
    "SUSPENSION_RATE",
    "Bars",
    "calendar_market",
    "completed_through",
    "klines",
    "klines_for_any",
    "spot_price",
    "suspended",
]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Days = npt.NDArray[np.datetime64]

# Commodity exchanges: night sessions differ per product, so only day bars and longer exist.
DAILY_ONLY_MARKETS: Final = frozenset({"SHF", "DCE", "CZC", "INE"})
SUSPENSION_RATE: Final = 0.003  # share of a stock's sessions suspended (whole days)
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_SHANGHAI_OFFSET_US: Final = 8 * 3_600_000_000


@dataclass(frozen=True)
class Bars:
    """Bars of one symbol and frequency, ascending by ``ts`` (UTC microseconds, bar open).

    ``volume``/``amount`` are None where the market reports none (FX); ``settle`` is set for
    futures at 1d and longer, ``open_interest`` for futures at every frequency.
    """

    symbol: str
    freq: str
    ts: I64
    trade_date: Days
    open: F64
    high: F64
    low: F64
    close: F64
    volume: F64 | None
    amount: F64 | None
    settle: F64 | None
    open_interest: F64 | None

    def __len__(self) -> int:
        return len(self.ts)


def calendar_market(inst: Instrument) -> str:
    """The calendar an instrument trades on; vendor-only products trade like FX."""
    return inst.market if inst.market in MARKETS else "FX"


def klines(
    symbol: str, freq: str, start: dt.date, end: dt.date, now: dt.datetime, *, seed: int = 0
) -> Bars:
    """Bars of a universe symbol with trade dates in ``[start, end]``, complete at ``now``.

    Raises :class:`BadInputError` for a symbol not listed at ``now`` and
    :class:`CapabilityError` for a frequency its market does not have.
    """
    inst = universe(seed).visible(symbol, now)
    if inst is None:
        raise BadInputError("unknown symbol", symbol=symbol)
    return _generate(inst, freq, start, end, now, seed=seed)


def klines_for_any(
    symbol: str, freq: str, start: dt.date, end: dt.date, now: dt.datetime, *, seed: int = 0
) -> Bars:
    """Like :func:`klines`, for any valid symbol: one outside the universe gets bars too
    (calendar of its market; FX days and hours for vendor-only products)."""
    return _generate(instrument_for_any(symbol, seed=seed), freq, start, end, now, seed=seed)


def spot_price(symbol: str, at: dt.datetime, *, seed: int = 0) -> float:
    """The price of any valid symbol at the instant ``at``, on its tick: what a bar opening
    at ``at`` opens at. For real-time quotes (emulator WebSockets); ignores sessions."""
    inst = instrument_for_any(symbol, seed=seed)
    prof = profile(inst, seed)
    t = np.array([_now_us(at)], dtype=np.int64)
    price = price_at(seed, prof, t, _expiry_us(inst)) * raw_scale(actions(inst, seed), t)
    return float(np.maximum(_round(price, prof.decimals), 10.0**-prof.decimals)[0])


def suspended(seed: int, symbol: str, days: Days) -> npt.NDArray[np.bool_]:
    """Whether a stock is suspended (for the whole day) on each of ``days``."""
    u = uniform(key_of(seed, symbol, "suspend"), np.asarray(days, "datetime64[D]").astype(np.int64))
    out: npt.NDArray[np.bool_] = u < SUSPENSION_RATE
    return out


def _now_us(now: dt.datetime) -> int:
    if now.tzinfo is None:
        raise BadInputError(f"now must be timezone-aware, got {now.isoformat()}")
    return (now - _EPOCH) // dt.timedelta(microseconds=1)


def _generate(
    inst: Instrument, freq: str, start: dt.date, end: dt.date, now: dt.datetime, *, seed: int
) -> Bars:
    f = parse_freq(freq)
    market = calendar_market(inst)
    if market in DAILY_ONLY_MARKETS and f.name in INTRADAY_FREQS:
        raise CapabilityError(
            f"{market} has day bars and longer only, not {f.name}", symbol=inst.symbol
        )
    fr = frame(market, f.name, start, end, treasury=inst.variety in CFE_TREASURY_VARIETIES)
    keep, last = _alive(inst, fr, seed)
    t1 = fr.t1[keep] if f.intraday else fr.day_close[last]
    done = t1 <= _now_us(now)
    keep = keep[done]
    last, t1 = last[done], t1[done]
    first = fr.first[keep]
    t0 = fr.t0[keep] if f.intraday else fr.day_open[first]
    if f.intraday:
        minutes = (t1 - t0).astype(np.float64) / 60_000_000
    else:
        minutes = fr.cum_minutes[last + 1] - fr.cum_minutes[first]
    chosen = _Chosen(
        ts=np.asarray(fr.ts[keep], dtype=np.int64),
        trade_date=np.asarray(fr.trade_date[keep], dtype="datetime64[D]"),
        t0=t0,
        t1=t1,
        last_day=fr.days[last],
        minutes=minutes,
    )
    return _values(inst, profile(inst, seed), f.name, chosen, seed=seed)


def _alive(inst: Instrument, fr: Frame, seed: int) -> tuple[I64, I64]:
    """Bars within the listed life and off suspension days: their indices, and for each the
    last session it covers (a week or month bar stops at the delisting day)."""
    mask = np.ones(len(fr), dtype=np.bool_)
    if inst.list_date is not None:
        mask &= fr.trade_date >= np.datetime64(inst.list_date, "D")
    last = fr.last
    if inst.delist_date is not None:
        final = np.datetime64(inst.delist_date, "D")
        mask &= fr.trade_date <= final
        final_day = np.searchsorted(fr.days, final, side="right") - 1
        last = np.minimum(last, final_day)
    if inst.type == "stock":
        mask &= ~suspended(seed, inst.symbol, fr.trade_date)
    keep = np.flatnonzero(mask).astype(np.int64)
    out_last: I64 = np.asarray(last[keep], dtype=np.int64)
    return keep, out_last


def _round(x: F64, decimals: int) -> F64:
    out: F64 = np.round(x, decimals)
    return out


@dataclass(frozen=True)
class _Chosen:
    """The bars that exist: their grid time and date, the instants their open and close
    are taken at, the last session each covers and its trading minutes."""

    ts: I64
    trade_date: Days
    t0: I64
    t1: I64
    last_day: Days
    minutes: F64


def _values(inst: Instrument, prof: PriceProfile, freq: str, bars: _Chosen, *, seed: int) -> Bars:
    ts, t0, t1, minutes = bars.ts, bars.t0, bars.t1, bars.minutes
    sym = inst.symbol
    expiry_us = _expiry_us(inst)
    instants = np.concatenate([t0, t1])
    # The path is the backward-adjusted price; a stock's raw price drops on each ex-date.
    both = price_at(seed, prof, instants, expiry_us) * raw_scale(actions(inst, seed), instants)
    o, c = both[: len(ts)], both[len(ts) :]
    wick = WICK_PER_SQRT_MINUTE * prof.vol * np.sqrt(np.maximum(minutes, 1.0))
    up = 0.05 + 0.95 * (wick_noise(seed, sym, freq, "high", ts) + 1.0) / 2.0
    down = 0.05 + 0.95 * (wick_noise(seed, sym, freq, "low", ts) + 1.0) / 2.0
    high = np.maximum(o, c) * np.exp(wick * 0.6 * up)
    low = np.minimum(o, c) * np.exp(-wick * 0.6 * down)
    dec = prof.decimals
    tick = 10.0**-dec
    o, c = np.maximum(_round(o, dec), tick), np.maximum(_round(c, dec), tick)
    high = np.maximum(_round(high, dec), np.maximum(o, c))
    low = np.minimum(np.maximum(_round(low, dec), tick), np.minimum(o, c))

    weight = _oi_weight(inst, bars.last_day) if inst.type == "future" else None
    volume = amount = None
    if prof.volume_per_minute is not None:
        noise = np.exp(0.5 * normal(key_of(seed, sym, freq, "volume"), ts))
        raw = prof.volume_per_minute * minutes * noise
        if weight is not None:
            raw = raw * weight**0.8
        volume = _lots(raw, prof.lot)
        price = prof.turnover_price if prof.turnover_price is not None else (high + low + c) / 3.0
        amount = _round(volume * price * prof.multiplier, 2)
    settle = oi = None
    if inst.type == "future":
        if freq not in INTRADAY_FREQS:
            drift = 1.0 + 0.002 * wick_noise(seed, sym, freq, "settle", ts)
            settle = np.clip(_round(c * drift, dec), low, high)
        assert weight is not None and prof.open_interest is not None
        oi = _open_interest(seed, sym, prof.open_interest, weight, t1)
    return Bars(
        symbol=sym,
        freq=freq,
        ts=ts,
        trade_date=bars.trade_date,
        open=o,
        high=high,
        low=low,
        close=c,
        volume=volume,
        amount=amount,
        settle=settle,
        open_interest=oi,
    )


def _lots(raw: F64, lot: float) -> F64:
    if lot <= 0:
        out: F64 = np.maximum(np.round(raw, 4), 0.0001)
        return out
    lots: F64 = np.maximum(np.round(raw / lot), 1.0) * lot
    return lots


def _expiry_us(inst: Instrument) -> int | None:
    """The expiry day's 15:00 Asia/Shanghai in UTC microseconds (futures only)."""
    if inst.type != "future" or inst.delist_date is None:
        return None
    midnight = (inst.delist_date - _EPOCH.date()).days * 86_400_000_000
    return midnight - _SHANGHAI_OFFSET_US + 15 * 3_600_000_000


def _oi_weight(inst: Instrument, days: Days) -> F64:
    """Open interest and volume relative to the main contract: 1 for the main contract and
    at most 0.5 for any other, so the main contract always holds the largest interest."""
    if inst.variety is None or inst.contract_month is None:
        return np.full(len(days), 0.3)
    v = variety(inst.variety)
    if len(days) == 0:
        return np.zeros(0, dtype=np.float64)
    main = main_months(v.code, days)
    gap = np.abs(main - inst.contract_month).astype(np.float64)
    weight = np.where(gap == 0, 1.0, 0.5 * 0.8 ** np.maximum(gap - 1.0, 0.0))
    expiring = inst.contract_month < main  # rolled away: interest drains
    out: F64 = np.where(expiring, weight * 0.5, weight)
    return out


def _open_interest(seed: int, symbol: str, typical: float, weight: F64, t1: I64) -> F64:
    """Open interest at each bar's end: a daily level and a small intraday wobble, both
    keyed by the end instant, so a 1d bar and the day's last 1m bar agree."""
    day = np.floor_divide(t1 + _SHANGHAI_OFFSET_US, 86_400_000_000)
    daily = 1.0 + 0.04 * (uniform(key_of(seed, symbol, "oi-day"), day) * 2.0 - 1.0)
    wobble = 1.0 + 0.01 * (uniform(key_of(seed, symbol, "oi-bar"), t1) * 2.0 - 1.0)
    out: F64 = np.maximum(np.round(typical * weight * daily * wobble), 1.0)
    return out


def completed_through(
    market: str,
    freq: str,
    start: dt.date,
    end: dt.date,
    now: dt.datetime,
    *,
    treasury: bool = False,
) -> dt.date:
    """The last date up to which every bar of the calendar in ``[start, end]`` has ended at
    ``now`` (``start - 1 day`` if none has): what a vendor can confirm as complete. Never
    later than the exchange-local date at ``now``."""
    fr = frame(market, freq, start, end, treasury=treasury)
    pending = np.flatnonzero(fr.t1 > _now_us(now))
    done = end
    if len(pending):
        first_pending = dt.date.fromisoformat(str(fr.trade_date[pending[0]]))
        done = first_pending - dt.timedelta(days=1)
    return max(min(done, local_today(market, now)), start - dt.timedelta(days=1))
