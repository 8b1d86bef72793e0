"""Bad input in names, dates and symbol files exits 2 with a message naming the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from etl.errors import BadInputError
from etl.names import parse_date, parse_range, parse_symbols


def test_a_symbol_file_that_is_not_utf8_is_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "symbols.txt"
    path.write_bytes(b"600000.SH\n\xff\xfe000001.SZ\n")
    with pytest.raises(BadInputError, match="not UTF-8"):
        parse_symbols(f"@{path}")


def test_an_endless_symbol_file_is_read_with_a_bound() -> None:
    # Regression: `--symbols @/dev/zero` read forever.
    with pytest.raises(BadInputError, match="larger than"):
        parse_symbols("@/dev/zero")


@pytest.mark.parametrize("text", ["9999-12-31", "0001-01-01", "2200-01-01"])
def test_dates_outside_what_the_lake_holds_are_bad_input(text: str) -> None:
    with pytest.raises(BadInputError, match="out of range"):
        parse_date(text, option="--end")
    with pytest.raises(BadInputError):
        parse_range("2024-01-02", text)


def test_dates_inside_the_range_parse() -> None:
    assert str(parse_date("2199-12-31")) == "2199-12-31"
    assert str(parse_date("1990-12-19")) == "1990-12-19"
