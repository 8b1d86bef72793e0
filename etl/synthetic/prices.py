"""The latent price path and the per-instrument constants that shape a bar.

A symbol's price is one continuous function of time, ``level * exp(x(t))``, where ``x`` is a
few sinusoids (symbol-specific periods and phases) plus smoothly interpolated hashed noise at
minute, hour, day and week scales. A bar's open is the path at its first instant and its
close the path at its last, so bars of every frequency agree with each other (the 1d open is
the first 1m open) and any range gives the same values. All futures contracts of a variety
follow the variety's path, plus a basis that vanishes at expiry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from etl.synthetic.futures import variety
from etl.synthetic.hashing import key_of, mix64, normal, signed
from etl.synthetic.universe import Instrument

__all__ = ["PriceProfile", "log_path", "price_at", "profile"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

US_PER_SECOND: Final = 1_000_000
_DAY_US: Final = 86_400 * US_PER_SECOND
# (period in days, log amplitude): the slow swings of a path. Their sum, with the noise
# below at its +-3.5 sd bound, keeps x within about +-0.6 for vol 1.
_SINES: Final = ((45.0, 0.06), (160.0, 0.12), (700.0, 0.25))
# (scale in seconds, log amplitude): value noise, interpolated between hashed knots.
_NOISE: Final = ((60, 0.0015), (3_600, 0.004), (86_400, 0.012), (604_800, 0.03))
# Log half-range of a bar's wick per sqrt(minute) of trading, for vol 1.
WICK_PER_SQRT_MINUTE: Final = 0.0015

# Typical price ranges (log-uniform) of stocks where no level is given: chosen so that the
# path keeps A shares within 2-200 CNY, HK 1-500 HKD, US 5-1000 USD.
_STOCK_LEVELS: Final = {
    "SH": (4.0, 110.0), "SZ": (4.0, 110.0), "BJ": (4.0, 60.0), "HK": (1.9, 270.0),
    "US": (9.0, 550.0), "IN": (150.0, 3000.0), "JP": (600.0, 9000.0),
}  # fmt: skip
_OTHER_LEVELS: Final = {
    "etf": (1.0, 5.0), "index": (1000.0, 12000.0), "future": (2000.0, 6000.0),
    "crypto": (0.5, 500.0), "forex": (0.8, 1.6), "other": (10.0, 3000.0),
}  # fmt: skip
# Shares a minute (log-uniform range) by market; A shares where not listed.
_STOCK_VOLUMES: Final = {"US": (5e3, 5e5), "JP": (1e3, 5e4), "IN": (2e3, 1e5), "HK": (1e3, 1e5)}
_VOL: Final = {"etf": 0.6, "index": 0.5, "crypto": 1.15, "forex": 0.15, "other": 0.8}
_CN_LOT: Final = 100.0


@dataclass(frozen=True)
class PriceProfile:
    """Everything about an instrument that shapes its bars."""

    path_key: str  # whose latent path (futures: the variety's)
    level: float
    vol: float
    decimals: int
    multiplier: float  # amount = volume x price x multiplier
    volume_per_minute: float | None  # None: the market reports no volume (FX)
    lot: float  # volume granularity; 0 = fractional (crypto)
    turnover_price: float | None  # indices: average share price behind their volume
    basis_per_month: float  # futures: log basis per month to expiry
    open_interest: float | None  # futures: typical open interest of the main contract


def _unit(*parts: int | str) -> float:
    return (mix64(key_of(0, *parts)) >> 11) / float(1 << 53)


def _log_uniform(lo: float, hi: float, u: float) -> float:
    return math.exp(math.log(lo) + (math.log(hi) - math.log(lo)) * u)


def profile(inst: Instrument, seed: int = 0) -> PriceProfile:
    """The constants of ``inst``'s bars (a pure function of the seed and the instrument)."""

    def u(tag: str) -> float:
        return _unit(seed, inst.symbol, tag)

    if inst.type == "future" and inst.variety is not None:
        v = variety(inst.variety)
        vol = {"index": 0.5, "treasury": 0.04, "commodity": 0.5}[v.kind]
        return PriceProfile(
            path_key=v.symbol_key,
            level=v.level,
            vol=vol,
            decimals=v.decimals,
            multiplier=v.multiplier,
            volume_per_minute=v.open_interest * 0.0025,
            lot=1.0,
            turnover_price=None,
            basis_per_month=(u("basis") * 0.007 - 0.004) * (vol / 0.5),
            open_interest=v.open_interest,
        )
    kind = inst.type
    if inst.level is not None:
        level = inst.level
    else:
        if kind == "stock":
            lo, hi = _STOCK_LEVELS.get(inst.market, (5.0, 100.0))
        else:
            lo, hi = _OTHER_LEVELS.get(kind, (10.0, 1000.0))
        level = _log_uniform(lo, hi, u("level"))
    vol = 0.8 + 0.5 * u("vol") if kind == "stock" else _VOL.get(kind, 0.5)
    if kind == "forex" and inst.symbol.endswith("JPY.FX"):
        vol = 0.2
    return PriceProfile(
        path_key=inst.symbol,
        level=level,
        vol=vol,
        decimals=_decimals(inst),
        multiplier=1.0,
        volume_per_minute=_volume_per_minute(inst, level, u("volume")),
        lot=_CN_LOT
        if inst.market in ("SH", "SZ", "BJ", "HK")
        else (0.0 if kind == "crypto" else 1.0),
        turnover_price=8.0 + 12.0 * u("turnover") if kind == "index" else None,
        basis_per_month=(u("basis") * 0.007 - 0.004) if kind == "future" else 0.0,
        open_interest=50_000.0 if kind == "future" else None,
    )


def _decimals(inst: Instrument) -> int:
    if inst.type == "forex":
        return 3 if inst.symbol.endswith("JPY.FX") else 5
    if inst.type == "etf" or inst.market == "HK":
        return 3
    if inst.type == "future":
        return 1
    return 2


def _volume_per_minute(inst: Instrument, level: float, u: float) -> float | None:
    kind = inst.type
    if kind == "forex":
        return None
    if kind == "index":
        return _log_uniform(5e6, 5e7, u)
    if kind == "etf":
        return _log_uniform(5e4, 1e6, u)
    if kind == "crypto":
        return _log_uniform(5e5, 2e6, u) / level  # ~1 M USDT a minute
    if kind == "future":
        return _log_uniform(50.0, 500.0, u)
    if kind == "stock":
        lo, hi = _STOCK_VOLUMES.get(inst.market, (3e3, 3e5))
        return _log_uniform(lo, hi, u)
    return _log_uniform(100.0, 10_000.0, u)


def log_path(seed: int, path_key: str, vol: float, t_us: I64) -> F64:
    """``x(t)`` of the path named ``path_key`` at UTC microseconds ``t_us``."""
    t_us = np.asarray(t_us, dtype=np.int64)
    seconds = t_us.astype(np.float64) / US_PER_SECOND
    out = np.zeros(t_us.shape, dtype=np.float64)
    for i, (days, amp) in enumerate(_SINES):
        period = days * 86_400.0 * (0.75 + 0.5 * _unit(seed, path_key, "period", i))
        phase = 2.0 * math.pi * _unit(seed, path_key, "phase", i)
        out += amp * np.sin(seconds * (2.0 * math.pi / period) + phase)
    for j, (scale, amp) in enumerate(_NOISE):
        step = scale * US_PER_SECOND
        knot = np.floor_divide(t_us, step)
        frac = (t_us - knot * step).astype(np.float64) / step
        key = key_of(seed, path_key, "noise", j)
        both = normal(key, np.concatenate([knot, knot + 1]))
        g0, g1 = both[: len(knot)], both[len(knot) :]
        smooth = frac * frac * (3.0 - 2.0 * frac)
        out += amp * (g0 + (g1 - g0) * smooth)
    result: F64 = out * vol
    return result


def price_at(seed: int, prof: PriceProfile, t_us: I64, expiry_us: int | None = None) -> F64:
    """Unrounded prices at ``t_us``; futures add a basis that decays to 0 at ``expiry_us``."""
    x = log_path(seed, prof.path_key, prof.vol, t_us)
    if expiry_us is not None and prof.basis_per_month:
        months = np.maximum(expiry_us - np.asarray(t_us, dtype=np.int64), 0) / (30 * _DAY_US)
        x = x + prof.basis_per_month * months
    out: F64 = prof.level * np.exp(x)
    return out


def wick_noise(seed: int, symbol: str, freq: str, tag: str, ts: I64) -> F64:
    """A hashed value in [-1, 1) per bar, for wicks, volumes and settlement offsets."""
    return signed(key_of(seed, symbol, freq, tag), ts)
