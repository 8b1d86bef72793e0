"""etl.Warehouse: the datasets' columns, the right rows, clear errors, and no writes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

import etl
from etl import schema as schemas
from etl.errors import BadInputError
from etl.lake import Lake
from tests.conftest import NOW, kline_rows

DAYS_2023 = [dt.date(2023, 12, 28), dt.date(2023, 12, 29)]
DAYS_2024 = [dt.date(2024, 1, 2), dt.date(2024, 1, 3)]


@pytest.fixture
def lake_root(data_root: Path) -> Path:
    lake = Lake(data_root)
    lake.write("klines", kline_rows(["600000.SH", "000001.SZ"], DAYS_2023, close=10.0), now=NOW)
    lake.write("klines", kline_rows(["600000.SH", "000001.SZ"], DAYS_2024, close=11.0), now=NOW)
    lake.write("klines", kline_rows(["600000.SH"], DAYS_2024, close=12.0, freq="1w"), now=NOW)
    return data_root


def test_one_symbol_across_years(lake_root: Path) -> None:
    bars = etl.Warehouse(lake_root).bars(["600000.SH"], "1d", "2023-01-01", "2024-12-31")
    assert bars.columns == list(schemas.get("klines").column_names)
    assert bars["symbol"].to_list() == ["600000.SH"] * 4
    assert bars["trade_date"].to_list() == DAYS_2023 + DAYS_2024
    assert bars["close"].to_list() == [10.0, 10.0, 11.0, 11.0]
    assert bars["freq"].to_list() == ["1d"] * 4
    assert bars.schema["ts"] == pl.Datetime("us", "UTC")


def test_one_day_every_symbol(lake_root: Path) -> None:
    bars = etl.Warehouse(lake_root).bars(None, "1d", dt.date(2024, 1, 3), dt.date(2024, 1, 3))
    assert bars.select("symbol", "trade_date").rows() == [
        ("000001.SZ", dt.date(2024, 1, 3)),
        ("600000.SH", dt.date(2024, 1, 3)),
    ]


def test_range_ends_are_inclusive_and_freqs_apart(lake_root: Path) -> None:
    wh = etl.Warehouse(lake_root)
    assert wh.bars("600000.SH", "1d", "2023-12-29", "2024-01-02")["trade_date"].to_list() == [
        dt.date(2023, 12, 29),
        dt.date(2024, 1, 2),
    ]
    assert wh.bars("600000.SH", "1w", "2024-01-01", "2024-01-31")["close"].to_list() == [12.0] * 2


def test_nothing_stored_is_an_empty_frame_with_the_columns(lake_root: Path) -> None:
    wh = etl.Warehouse(lake_root)
    for frame in (
        wh.bars("TSLA.US", "1d", "2024-01-01", "2024-01-31"),
        wh.bars("600000.SH", "1m", "2024-01-01", "2024-01-31"),
        wh.bars("600000.SH", "1d", "2010-01-01", "2010-12-31"),
    ):
        assert frame.height == 0
        assert frame.columns == list(schemas.get("klines").column_names)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda wh: wh.bars("600000.sh", "1d", "2024-01-01", "2024-01-02"), "upper case"),
        (lambda wh: wh.bars("600000.SH", "1D", "2024-01-01", "2024-01-02"), "frequency"),
        (lambda wh: wh.bars("600000.SH", "1d", "2024-01-02", "2024-01-01"), "swap them"),
        (lambda wh: wh.bars("600000.SH", "1d", "2024/01/01", "2024-01-02"), "YYYY-MM-DD"),
        (
            lambda wh: wh.bars("600000.SH", "1d", dt.datetime(2024, 1, 1), "2024-01-02"),
            "not a datetime",
        ),
        (lambda wh: wh.bars([], "1d", "2024-01-01", "2024-01-02"), "symbols is empty"),
        (lambda wh: wh.calendar("XX"), "invalid market"),
        (lambda wh: wh.statements("profit"), "balance_sheet, income, cash_flow"),
    ],
)
def test_bad_arguments_say_what_to_write(lake_root: Path, call: object, message: str) -> None:
    wh = etl.Warehouse(lake_root)
    with pytest.raises(BadInputError, match=message):
        call(wh)  # type: ignore[operator]


def test_a_missing_data_root_is_named(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="no data root"):
        etl.Warehouse(tmp_path / "nowhere")


def test_calendar_and_instruments(data_root: Path) -> None:
    lake = Lake(data_root)
    days = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(5)]
    lake.write(
        "calendar",
        pl.DataFrame(
            {
                "market": ["SH"] * 5,
                "trade_date": days,
                "is_open": [False, True, True, True, True],
                "is_half_day": [False] * 5,
                "vendor": ["test"] * 5,
            }
        ),
        now=NOW,
    )
    lake.write(
        "instruments",
        pl.DataFrame(
            {
                "symbol": ["600000.SH", "600000.SH", "000001.SZ"],
                "market": ["SH", "SH", "SZ"],
                "name": ["浦发银行"] * 2 + ["平安银行"],
                "type": ["stock"] * 3,
                "vendor_code": ["600000.SH", "600000", "000001.SZ"],
                "vendor": ["sim", "infoway", "sim"],
            }
        ),
        now=NOW,
    )
    wh = etl.Warehouse(data_root)
    cal = wh.calendar("SH", "2024-01-02", "2024-01-04")
    assert cal.columns == list(schemas.get("calendar").column_names)
    assert cal.select("market", "trade_date", "is_open").rows() == [
        ("SH", d, True) for d in days[1:4]
    ]
    assert wh.calendar("SZ").height == 0
    sh = wh.instruments("SH")
    assert sh.select("symbol", "vendor", "vendor_code").rows() == [
        ("600000.SH", "infoway", "600000"),
        ("600000.SH", "sim", "600000.SH"),
    ]
    assert wh.instruments()["symbol"].to_list() == ["000001.SZ", "600000.SH", "600000.SH"]
    assert wh.instruments(symbols="000001.SZ")["market"].to_list() == ["SZ"]


def _income(
    symbol: str, period: str, kind: str, announced: str, profit: float
) -> dict[str, object]:
    return {
        "symbol": symbol,
        "reporting_period": dt.date.fromisoformat(period),
        "statement_type": kind,
        "actual_ann_date": dt.date.fromisoformat(announced),
        "ann_date": dt.date.fromisoformat(announced),
        "net_pro_excl_min_int_inc": profit,
        "vendor": "test",
    }


def test_statements_as_of_see_only_what_was_announced(data_root: Path) -> None:
    rows = [
        # (symbol, period, statement type, announced, profit)
        _income("600000.SH", "2023-12-31", "1", "2024-03-28", 100.0),  # original
        _income("600000.SH", "2023-12-31", "4", "2024-08-30", 90.0),  # restated later
        _income("600000.SH", "2024-03-31", "1", "2024-04-29", 30.0),
        _income("000001.SZ", "2023-12-31", "1", "2024-03-15", 50.0),
    ]
    Lake(data_root).write("income", pl.DataFrame(rows), now=NOW)
    wh = etl.Warehouse(data_root)
    everything = wh.statements("income")
    assert everything.height == 4
    assert everything.columns == list(schemas.get("income").column_names)

    def profits(as_of: str) -> list[tuple[str, dt.date, float]]:
        frame = wh.statements("income", ["600000.SH"], as_of=as_of)
        return frame.select("symbol", "reporting_period", "net_pro_excl_min_int_inc").rows()

    assert profits("2024-03-27") == []
    assert profits("2024-04-30") == [
        ("600000.SH", dt.date(2023, 12, 31), 100.0),
        ("600000.SH", dt.date(2024, 3, 31), 30.0),
    ]
    assert profits("2024-08-30") == [
        ("600000.SH", dt.date(2023, 12, 31), 90.0),
        ("600000.SH", dt.date(2024, 3, 31), 30.0),
    ]
    periods = wh.statements("income", start="2024-01-01", end="2024-12-31")
    assert periods["reporting_period"].to_list() == [dt.date(2024, 3, 31)]


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_mtime_ns, p.stat().st_size) for p in root.rglob("*")
    }


def test_reading_writes_nothing(lake_root: Path) -> None:
    before = _tree(lake_root)
    wh = etl.Warehouse(lake_root)
    wh.bars(None, "1d", "2020-01-01", "2024-12-31")
    wh.calendar("SH")
    wh.instruments()
    wh.statements("balance_sheet", as_of="2024-01-01")
    assert _tree(lake_root) == before


def test_the_arrow_table_is_the_frame(lake_root: Path) -> None:
    """``bar_table`` gives ``bars``' rows in its order (symbol, ts), across partitions."""
    wh = etl.Warehouse(lake_root)
    for symbols in (["600000.SH"], ["600000.SH", "000001.SZ"]):
        frame = wh.bars(symbols, "1d", "2023-01-01", "2024-12-31")
        table = pl.from_arrow(wh.bar_table(symbols, "1d", "2023-01-01", "2024-12-31"))
        assert isinstance(table, pl.DataFrame) and table.equals(frame)
        assert table["symbol"].to_list() == sorted(table["symbol"].to_list())
