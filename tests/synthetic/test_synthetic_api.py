"""The public surface of etl.synthetic, which the sim vendor, the emulators and the demo use."""

from __future__ import annotations

import datetime as dt

import pytest

import etl.synthetic
from etl.synthetic import klines, spot_price

pytestmark = pytest.mark.filterwarnings(
    "ignore:Series.values returning an ndarray:DeprecationWarning"
)

PUBLIC = [
    "DAILY_ONLY_MARKETS", "RESTATEMENT_RATE", "STATEMENT_DATASETS", "STATEMENT_ITEMS",
    "SUSPENSION_RATE", "VARIETIES", "Bars", "Contract", "Instrument", "Universe", "Variety",
    "calendar_market", "completed_through", "contracts", "has_statements",
    "instrument_for_any", "instruments", "klines", "klines_for_any", "local_today",
    "main_contract", "spot_price", "statements", "suspended", "universe", "variety",
]  # fmt: skip


def test_public_names() -> None:
    assert sorted(etl.synthetic.__all__) == sorted(PUBLIC)
    for name in PUBLIC:
        assert hasattr(etl.synthetic, name), name


def test_spot_price_is_the_open_of_a_bar_starting_then() -> None:
    later = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    bars = klines("IF2403.CFE", "1m", dt.date(2024, 1, 10), dt.date(2024, 1, 10), later)
    at = dt.datetime(2024, 1, 10, 2, 0, tzinfo=dt.UTC)  # 10:00 in Shanghai
    index = 30  # the 31st minute bar opens at 10:00
    assert spot_price("IF2403.CFE", at) == bars.open[index]
    assert spot_price("XAUUSD.INFOWAY", at) > 0
