"""The symbols a market selection expects, from the lake's instruments: when instruments of
the market are known but none was listed in the range (a vendor whose list is today's, such
as AmazingData, knows no contract of the past), the refusal says so instead of claiming none
is known."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from etl.errors import BadInputError
from etl.lake import Lake
from etl.tasks.expected import Selection, market_symbols
from tests.conftest import NOW


def _today_contracts(root: Path) -> None:
    Lake(root).write("instruments", pl.DataFrame({
        "symbol": ["IF2612.CFE", "IF2701.CFE"], "market": ["CFE", "CFE"],
        "name": ["沪深300股指期货2612", "沪深300股指期货2701"], "type": ["future", "future"],
        "list_date": [dt.date(2026, 4, 20), dt.date(2026, 11, 23)],
        "delist_date": [dt.date(2026, 12, 18), dt.date(2027, 1, 15)],
        "vendor_code": ["IF2612.CFE", "IF2701.CFE"], "vendor": ["amazingdata", "amazingdata"],
    }), now=NOW)  # fmt: skip


def test_known_instruments_none_listed_in_the_range_says_so(data_root: Path) -> None:
    _today_contracts(data_root)
    past = Selection("klines", dt.date(2024, 1, 2), dt.date(2024, 1, 31), "1d", (), "CFE")
    with pytest.raises(BadInputError) as refused:
        market_symbols(data_root, past, "amazingdata")
    message = refused.value.bare_message
    assert "none of the 2 instruments known for market CFE" in message, message
    assert "between 2024-01-02 and 2024-01-31" in message
    now = Selection("klines", dt.date(2026, 12, 1), dt.date(2026, 12, 4), "1d", (), "CFE")
    assert market_symbols(data_root, now) == ["IF2612.CFE", "IF2701.CFE"]


def test_a_market_with_no_instruments_names_the_sync_to_run(data_root: Path) -> None:
    _today_contracts(data_root)
    sel = Selection("klines", dt.date(2024, 1, 2), dt.date(2024, 1, 31), "1d", (), "SH")
    with pytest.raises(BadInputError, match="no instruments known for market SH: run `etl "
                       "instruments sync --vendor sim --market SH` first"):  # fmt: skip
        market_symbols(data_root, sel, "sim")
