"""Per-market facts: time zone, calendar source and regular session hours.

One entry per market of docs/contract.md, named by its canonical code (the exchange_calendars
way: domain facts as named constants, each with where it comes from).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final
from zoneinfo import ZoneInfo

from etl.errors import BadInputError
from etl.names import MARKETS

__all__ = ["MARKET_SPECS", "MarketSpec", "market_of_symbol", "market_spec", "zone_of_symbol"]

Segment = tuple[dt.time, dt.time]


@dataclass(frozen=True)
class MarketSpec:
    """How to know a market's sessions.

    ``xcal`` names an exchange_calendars calendar whose schedule (opens, lunch breaks, early
    closes) is used as is. Otherwise ``days`` picks the trading days ("xcal:<name>" borrows
    another calendar's days, "daily" or "weekdays") and ``segments`` gives the local hours.
    """

    market: str
    tz: str
    xcal: str | None = None
    days: str | None = None
    segments: tuple[Segment, ...] = ()
    intraday_judged: bool = True  # False: intraday sessions vary by product; do not guess

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)


def _t(text: str) -> dt.time:
    return dt.time.fromisoformat(text)


_CN_AM_PM: Final = ((_t("09:30"), _t("11:30")), (_t("13:00"), _t("15:00")))
# SHFE/DCE/CZCE/INE day session (2024 rules); night sessions differ per product, so intraday
# expectations are not judged for these markets.
_CN_COMMODITY_DAY: Final = (
    (_t("09:00"), _t("10:15")),
    (_t("10:30"), _t("11:30")),
    (_t("13:30"), _t("15:00")),
)
_WHOLE_DAY: Final = ((_t("00:00"), dt.time.max),)

MARKET_SPECS: Final[dict[str, MarketSpec]] = {
    "SH": MarketSpec("SH", "Asia/Shanghai", xcal="XSHG"),
    "SZ": MarketSpec("SZ", "Asia/Shanghai", xcal="XSHG"),  # SZSE shares SSE's holidays
    "BJ": MarketSpec("BJ", "Asia/Shanghai", xcal="XSHG"),  # BSE likewise (since 2021-11-15)
    "HK": MarketSpec("HK", "Asia/Hong_Kong", xcal="XHKG"),
    "US": MarketSpec("US", "America/New_York", xcal="XNYS"),
    "IN": MarketSpec("IN", "Asia/Kolkata", xcal="XBOM"),  # NSE shares BSE's holidays
    "JP": MarketSpec("JP", "Asia/Tokyo", xcal="XTKS"),
    # CFFEX: SSE's trading days; index futures 09:30-11:30, 13:00-15:00 (treasury futures
    # close at 15:15, see CFE_TREASURY_SEGMENTS).
    "CFE": MarketSpec("CFE", "Asia/Shanghai", days="xcal:XSHG", segments=_CN_AM_PM),
    "SHF": MarketSpec(
        "SHF", "Asia/Shanghai", days="xcal:XSHG", segments=_CN_COMMODITY_DAY, intraday_judged=False
    ),
    "DCE": MarketSpec(
        "DCE", "Asia/Shanghai", days="xcal:XSHG", segments=_CN_COMMODITY_DAY, intraday_judged=False
    ),
    "CZC": MarketSpec(
        "CZC", "Asia/Shanghai", days="xcal:XSHG", segments=_CN_COMMODITY_DAY, intraday_judged=False
    ),
    "INE": MarketSpec(
        "INE", "Asia/Shanghai", days="xcal:XSHG", segments=_CN_COMMODITY_DAY, intraday_judged=False
    ),
    # docs/vendors/README.md (convention): crypto every day, forex Monday to Friday, each day
    # 00:00-24:00 Asia/Shanghai.
    "CC": MarketSpec("CC", "Asia/Shanghai", days="daily", segments=_WHOLE_DAY),
    "FX": MarketSpec("FX", "Asia/Shanghai", days="weekdays", segments=_WHOLE_DAY),
}
assert set(MARKET_SPECS) == set(MARKETS)

# CFFEX treasury futures (T, TF, TS, TL) trade until 15:15.
CFE_TREASURY_VARIETIES: Final = frozenset({"T", "TF", "TS", "TL"})
CFE_TREASURY_SEGMENTS: Final = ((_t("09:30"), _t("11:30")), (_t("13:00"), _t("15:15")))

# Zones for symbols outside the calendar markets (docs/vendors/README.md, convention).
_VENDOR_ZONE: Final = "Asia/Shanghai"


def market_spec(market: str) -> MarketSpec:
    try:
        return MARKET_SPECS[market]
    except KeyError:
        raise BadInputError(
            f"unknown market {market!r}: use one of {' '.join(MARKET_SPECS)}"
        ) from None


def market_of_symbol(symbol: str) -> str | None:
    """The calendar market of a canonical symbol, or None for vendor-only products."""
    exchange = symbol.rsplit(".", 1)[-1]
    return exchange if exchange in MARKET_SPECS else None


def zone_of_symbol(symbol: str) -> ZoneInfo:
    market = market_of_symbol(symbol)
    return MARKET_SPECS[market].zone if market else ZoneInfo(_VENDOR_ZONE)
