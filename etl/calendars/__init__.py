"""Exchange calendars: which days and minutes each market trades (see markets.py)."""

from etl.calendars.bars import BarGrid, bar_grid
from etl.calendars.markets import (
    MARKET_SPECS,
    MarketSpec,
    market_of_symbol,
    market_spec,
    zone_of_symbol,
)
from etl.calendars.sessions import Sessions, sessions, trading_days

__all__ = [
    "MARKET_SPECS",
    "BarGrid",
    "MarketSpec",
    "Sessions",
    "bar_grid",
    "market_of_symbol",
    "market_spec",
    "sessions",
    "trading_days",
    "zone_of_symbol",
]
