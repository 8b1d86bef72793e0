"""Synthetic bars: the calendar grid, listing life, suspensions, ``now``, plausibility and
determinism (whatever range a request is split into)."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etl.calendars import bar_grid
from etl.calendars.markets import CFE_TREASURY_SEGMENTS
from etl.errors import BadInputError, CapabilityError
from etl.synthetic import Bars, klines, klines_for_any, suspended, universe
from etl.synthetic.actions import actions, raw_scale
from etl.synthetic.frames import _frame

pytestmark = pytest.mark.filterwarnings(
    "ignore:Series.values returning an ndarray:DeprecationWarning"
)

LATER = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)  # everything below has ended by then


def _utc(ts: np.ndarray) -> list[str]:
    return [str(x) for x in ts.astype("datetime64[us]").astype("datetime64[m]")]


# (symbol, freq, day, bars that day, first bar UTC, last bar UTC)
GRID_CASES = [
    # SSE: 09:30-11:30, 13:00-15:00 Asia/Shanghai (UTC+8), lunch break skipped.
    ("600000.SH", "1m", dt.date(2024, 1, 10), 240, "2024-01-10T01:30", "2024-01-10T06:59"),
    ("600000.SH", "1h", dt.date(2024, 1, 10), 4, "2024-01-10T01:30", "2024-01-10T06:00"),
    # HKEX: 09:30-12:00, 13:00-16:00 Asia/Hong_Kong; 1h bar at 11:30 is half an hour.
    ("00700.HK", "1h", dt.date(2024, 12, 23), 6, "2024-12-23T01:30", "2024-12-23T07:00"),
    # HKEX Christmas Eve 2024: half day, morning session only (09:30-12:00).
    ("00700.HK", "30m", dt.date(2024, 12, 24), 5, "2024-12-24T01:30", "2024-12-24T03:30"),
    # NYSE day after Thanksgiving 2023: early close 13:00 ET (UTC-5).
    ("AAPL.US", "1h", dt.date(2023, 11, 24), 4, "2023-11-24T14:30", "2023-11-24T17:30"),
    # CFFEX treasury futures trade until 15:15: nine 30m bars, 255 1m bars.
    ("T2403.CFE", "30m", dt.date(2024, 1, 10), 9, "2024-01-10T01:30", "2024-01-10T07:00"),
    ("T2403.CFE", "1m", dt.date(2024, 1, 10), 255, "2024-01-10T01:30", "2024-01-10T07:14"),
    # CFFEX index futures close at 15:00 like shares.
    ("IF2401.CFE", "1m", dt.date(2024, 1, 10), 240, "2024-01-10T01:30", "2024-01-10T06:59"),
    # Crypto: 24 hours from 00:00 Asia/Shanghai.
    ("BTCUSDT.CC", "1h", dt.date(2024, 1, 6), 24, "2024-01-05T16:00", "2024-01-06T15:00"),
    # NSE 1h bars from 09:15 IST (UTC+5:30).
    ("RELIANCE.IN", "1h", dt.date(2024, 1, 10), 7, "2024-01-10T03:45", "2024-01-10T09:45"),
    # 1d bars sit at 00:00 exchange-local: SSE 16:00Z the day before, NYSE 05:00Z.
    ("600000.SH", "1d", dt.date(2024, 1, 2), 1, "2024-01-01T16:00", "2024-01-01T16:00"),
    ("AAPL.US", "1d", dt.date(2024, 1, 2), 1, "2024-01-02T05:00", "2024-01-02T05:00"),
]


@pytest.mark.parametrize(("symbol", "freq", "day", "count", "first", "last"), GRID_CASES)
def test_bars_of_one_day(
    symbol: str, freq: str, day: dt.date, count: int, first: str, last: str
) -> None:
    bars = klines(symbol, freq, day, day, LATER)
    assert len(bars) == count
    stamps = _utc(bars.ts)
    assert (stamps[0], stamps[-1]) == (first, last)


@pytest.mark.parametrize(
    ("symbol", "freq", "start", "end"),
    [
        ("600000.SH", "5m", dt.date(2024, 1, 2), dt.date(2024, 2, 29)),  # Spring Festival
        ("00005.HK", "15m", dt.date(2024, 12, 20), dt.date(2025, 1, 3)),  # half days
        ("AAPL.US", "30m", dt.date(2023, 11, 20), dt.date(2023, 11, 30)),  # Thanksgiving
        ("TF2403.CFE", "5m", dt.date(2024, 1, 2), dt.date(2024, 1, 31)),  # 15:15 close
        ("000300.SH", "1w", dt.date(2023, 1, 1), dt.date(2024, 6, 30)),
        ("EURUSD.FX", "1M", dt.date(2022, 1, 1), dt.date(2024, 6, 30)),
        ("7203.JP", "1d", dt.date(2023, 1, 1), dt.date(2023, 12, 31)),
        ("RB2410.SHF", "1d", dt.date(2023, 10, 16), dt.date(2024, 10, 15)),
    ],
)
def test_bars_sit_exactly_on_the_calendar_grid(
    symbol: str, freq: str, start: dt.date, end: dt.date
) -> None:
    inst = universe(0).get(symbol)
    assert inst is not None
    segments = CFE_TREASURY_SEGMENTS if inst.variety in ("T", "TF", "TS", "TL") else None
    grid = bar_grid(inst.market, freq, start, end, segments=segments)
    bars = klines(symbol, freq, start, end, LATER)
    expected = set(grid.ts.tolist())
    if inst.list_date:
        expected = {
            t
            for t, d in zip(grid.ts.tolist(), grid.trade_date, strict=True)
            if d >= np.datetime64(inst.list_date)
            and (inst.delist_date is None or d <= np.datetime64(inst.delist_date))
        }
    got = set(bars.ts.tolist())
    assert got <= expected
    if inst.type == "stock":
        skipped = expected - got  # suspension days only
        assert len(skipped) <= max(3, len(expected) // 50)
    else:
        assert got == expected
    assert np.array_equal(bars.trade_date, grid.trade_date[np.isin(grid.ts, bars.ts)])


def _assert_plausible(bars: Bars) -> None:
    assert np.all(np.diff(bars.ts) > 0)
    assert np.all(bars.low > 0)
    assert np.all(bars.high >= np.maximum(bars.open, bars.close))
    assert np.all(bars.low <= np.minimum(bars.open, bars.close))
    for column in (bars.open, bars.high, bars.low, bars.close):
        assert np.all(np.isfinite(column))


@pytest.mark.parametrize(
    ("symbol", "decimals"),
    [
        ("600519.SH", 2),  # A shares: fen
        ("00700.HK", 3),
        ("AAPL.US", 2),
        ("510300.SH", 3),  # ETFs quote to 0.001
        ("IF2406.CFE", 1),
        ("T2406.CFE", 3),
        ("BTCUSDT.CC", 2),
        ("EURUSD.FX", 5),
    ],
)
def test_bars_are_plausible_and_on_the_tick(symbol: str, decimals: int) -> None:
    for freq, start, end in (
        ("1d", dt.date(2023, 1, 1), dt.date(2024, 6, 30)),
        ("1m", dt.date(2024, 3, 4), dt.date(2024, 3, 6)),
        ("1M", dt.date(2020, 1, 1), dt.date(2024, 6, 30)),
    ):
        bars = klines(symbol, freq, start, end, LATER)
        assert len(bars) > 0
        _assert_plausible(bars)
        for column in (bars.open, bars.high, bars.low, bars.close):
            assert np.allclose(column, np.round(column, decimals), rtol=0, atol=1e-9)


# market kind -> (lowest, highest) price any 1d bar may reach, per the brief.
LEVELS = [
    ("SH", "stock", 2.0, 200.0),  # A shares 2-200 CNY
    ("SZ", "stock", 2.0, 200.0),
    ("HK", "stock", 1.0, 500.0),
    ("US", "stock", 5.0, 1000.0),
]


@pytest.mark.parametrize(("market", "kind", "lowest", "highest"), LEVELS)
def test_price_levels_suit_the_market(
    market: str, kind: str, lowest: float, highest: float
) -> None:
    picked = [i for i in universe(0).all if i.market == market and i.type == kind][:60]
    for inst in picked:
        bars = klines_for_any(inst.symbol, "1d", dt.date(2010, 1, 1), dt.date(2025, 12, 31), LATER)
        if len(bars):
            # The levels are the market's: corporate actions (dividends, splits) move raw
            # prices away from them on purpose, so they are undone first.
            scale = raw_scale(actions(inst, 0), bars.ts)
            low, high = bars.low / scale, bars.high / scale
            assert low.min() >= lowest * 0.99 and high.max() <= highest * 1.01, inst.symbol


@pytest.mark.parametrize(
    ("symbol", "lowest", "highest"),
    [
        ("IF2406.CFE", 2500.0, 5500.0),  # CSI 300 futures ~3000-5000
        ("T2406.CFE", 95.0, 105.0),  # 10-year treasury ~100
        ("BTCUSDT.CC", 20_000.0, 80_000.0),
        ("EURUSD.FX", 0.95, 1.25),
    ],
)
def test_levels_of_futures_crypto_and_fx(symbol: str, lowest: float, highest: float) -> None:
    bars = klines(symbol, "1d", dt.date(2018, 1, 1), dt.date(2025, 12, 31), LATER)
    assert bars.low.min() >= lowest and bars.high.max() <= highest


def test_volume_amount_settle_and_open_interest_by_kind() -> None:
    day = (dt.date(2024, 3, 4), dt.date(2024, 3, 8))
    stock = klines("600000.SH", "1d", *day, LATER)
    assert stock.volume is not None and stock.amount is not None
    assert np.all(stock.volume > 0) and np.all(stock.volume % 100 == 0)  # board lots
    assert stock.settle is None and stock.open_interest is None
    minute = klines("600000.SH", "1m", *day, LATER)
    assert minute.volume is not None and stock.volume.mean() > 20 * minute.volume.mean()
    fx = klines("EURUSD.FX", "1h", *day, LATER)
    assert fx.volume is None and fx.amount is None
    future = klines("IF2403.CFE", "1d", *day, LATER)
    assert future.settle is not None and future.open_interest is not None
    assert np.all(future.settle >= future.low) and np.all(future.settle <= future.high)
    intraday = klines("IF2403.CFE", "5m", *day, LATER)
    assert intraday.settle is None and intraday.open_interest is not None
    assert np.all(intraday.open_interest > 0)


def test_frequencies_agree_on_open_and_close() -> None:
    day = dt.date(2024, 3, 5)
    daily = klines("600036.SH", "1d", day, day, LATER)
    minute = klines("600036.SH", "1m", day, day, LATER)
    hourly = klines("600036.SH", "1h", day, day, LATER)
    assert daily.open[0] == minute.open[0] == hourly.open[0]
    assert daily.close[0] == minute.close[-1] == hourly.close[-1]
    assert np.array_equal(minute.close[:119], minute.open[1:120])  # continuous in a session


def test_no_bar_outside_the_listed_life() -> None:
    u = universe(0)
    gone = [i for i in u.all if i.type == "stock" and i.delist_date is not None][:5]
    young = [
        i for i in u.all if i.type == "stock" and i.list_date and i.list_date > dt.date(2020, 1, 1)
    ][:5]
    for inst in gone + young:
        assert inst.list_date is not None
        start = max(inst.list_date - dt.timedelta(days=30), dt.date(2005, 1, 4))
        end = (inst.delist_date or inst.list_date) + dt.timedelta(days=30)
        for freq in ("1d", "1w", "1h"):
            bars = klines(inst.symbol, freq, start, end, LATER)
            days = bars.trade_date
            assert np.all(days >= np.datetime64(inst.list_date))
            if inst.delist_date:
                assert np.all(days <= np.datetime64(inst.delist_date))
                assert freq != "1d" or str(days[-1]) <= str(inst.delist_date)


def test_suspension_days_have_no_bars_of_any_frequency() -> None:
    start, end = dt.date(2019, 1, 1), dt.date(2024, 12, 31)
    symbol = "600000.SH"
    daily = klines(symbol, "1d", start, end, LATER)
    grid = bar_grid("SH", "1d", start, end)
    off = grid.trade_date[suspended(0, symbol, grid.trade_date)]
    assert len(off) >= 1  # 0.3 % of ~1450 sessions
    assert not np.isin(off, daily.trade_date).any()
    assert len(daily) == len(grid) - len(off)
    day = dt.date.fromisoformat(str(off[0]))
    for freq in ("1m", "1h"):
        assert len(klines(symbol, freq, day, day, LATER)) == 0


def test_suspensions_are_rare_and_spare_indices_and_futures() -> None:
    days = bar_grid("SH", "1d", dt.date(2010, 1, 1), dt.date(2024, 12, 31)).trade_date
    shares = [i.symbol for i in universe(0).all if i.type == "stock"][:200]
    rate = np.mean([suspended(0, s, days).mean() for s in shares])
    assert 0.002 < rate < 0.004
    index = klines("000300.SH", "1d", dt.date(2015, 1, 1), dt.date(2024, 12, 31), LATER)
    assert len(index) == len(bar_grid("SH", "1d", dt.date(2015, 1, 1), dt.date(2024, 12, 31)))


# now (UTC) -> bars of 600000.SH on 2024-01-10 that exist (Shanghai = UTC+8).
FORMING_CASES = [
    (dt.datetime(2024, 1, 10, 1, 29, tzinfo=dt.UTC), "1m", 0),  # 09:29: nothing yet
    (dt.datetime(2024, 1, 10, 1, 31, tzinfo=dt.UTC), "1m", 1),  # 09:31: the 09:30 bar ended
    (dt.datetime(2024, 1, 10, 2, 45, 30, tzinfo=dt.UTC), "1m", 75),  # 10:45:30: 09:30-10:44
    (dt.datetime(2024, 1, 10, 2, 45, tzinfo=dt.UTC), "1h", 1),  # 10:45: 10:30 bar forming
    (dt.datetime(2024, 1, 10, 6, 59, tzinfo=dt.UTC), "1d", 0),  # 14:59: the day is forming
    (dt.datetime(2024, 1, 10, 7, 0, tzinfo=dt.UTC), "1d", 1),  # 15:00: closed
    (dt.datetime(2024, 1, 10, 7, 0, tzinfo=dt.UTC), "1w", 0),  # the week runs to Friday
]


@pytest.mark.parametrize(("now", "freq", "count"), FORMING_CASES)
def test_a_bar_still_forming_at_now_is_not_returned(
    now: dt.datetime, freq: str, count: int
) -> None:
    day = dt.date(2024, 1, 10)
    start = dt.date(2024, 1, 8) if freq == "1w" else day
    assert len(klines("600000.SH", freq, start, day, now)) == count


def test_completed_bars_do_not_change_when_now_moves() -> None:
    early = dt.datetime(2024, 1, 10, 3, 0, tzinfo=dt.UTC)
    part = klines("600000.SH", "5m", dt.date(2024, 1, 10), dt.date(2024, 1, 10), early)
    full = klines("600000.SH", "5m", dt.date(2024, 1, 10), dt.date(2024, 1, 10), LATER)
    n = len(part)
    assert 0 < n < len(full)
    assert np.array_equal(part.close, full.close[:n]) and np.array_equal(part.ts, full.ts[:n])


def test_errors() -> None:
    with pytest.raises(CapabilityError):
        klines("RB2405.SHF", "1m", dt.date(2024, 1, 2), dt.date(2024, 1, 2), LATER)
    with pytest.raises(BadInputError, match="unknown symbol"):
        klines("999999.SH", "1d", dt.date(2024, 1, 2), dt.date(2024, 1, 2), LATER)
    with pytest.raises(BadInputError, match="frequency"):
        klines("600000.SH", "2h", dt.date(2024, 1, 2), dt.date(2024, 1, 2), LATER)


def test_any_valid_symbol_gets_fx_like_bars() -> None:
    day = dt.date(2024, 1, 9)  # a Tuesday
    gold = klines_for_any("XAUUSD.INFOWAY", "1h", day, day, LATER)
    assert len(gold) == 24 and _utc(gold.ts)[0] == "2024-01-08T16:00"
    _assert_plausible(gold)
    weekend = klines_for_any("HX_HSI.MDAPI", "1d", dt.date(2024, 1, 6), dt.date(2024, 1, 7), LATER)
    assert len(weekend) == 0  # FX days: Monday to Friday
    same = klines_for_any("600000.SH", "1d", day, day, LATER)
    assert np.array_equal(same.close, klines("600000.SH", "1d", day, day, LATER).close)


def _columns(bars: Bars) -> list[np.ndarray | None]:
    return [
        bars.ts, bars.trade_date, bars.open, bars.high, bars.low, bars.close,
        bars.volume, bars.amount, bars.settle, bars.open_interest,
    ]  # fmt: skip


def _same(a: list[Bars], b: Bars) -> None:
    for parts, whole in zip(zip(*(_columns(x) for x in a), strict=True), _columns(b), strict=True):
        if whole is None:
            assert all(p is None for p in parts)
        else:
            assert np.array_equal(np.concatenate(parts), whole)


SPLIT_SYMBOLS = ["600000.SH", "IF2406.CFE", "BTCUSDT.CC", "EURUSD.FX", "00700.HK", "M2409.DCE"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    symbol=st.sampled_from(SPLIT_SYMBOLS),
    freq=st.sampled_from(["1d", "1w", "1M", "1h"]),
    cuts=st.lists(st.integers(min_value=1, max_value=120), max_size=4, unique=True),
)
def test_any_split_of_a_range_gives_the_same_bars(symbol: str, freq: str, cuts: list[int]) -> None:
    start, end = dt.date(2024, 1, 1), dt.date(2024, 4, 30)
    if freq == "1h" and symbol.endswith(".CC"):
        end = dt.date(2024, 2, 15)
    if symbol.endswith(".DCE") and freq == "1h":
        freq = "1d"  # commodities have day bars and longer only
    bounds = sorted(
        {start + dt.timedelta(days=c) for c in cuts if start + dt.timedelta(days=c) <= end}
    )
    pieces, lo = [], start
    for b in bounds:
        pieces.append(klines(symbol, freq, lo, b - dt.timedelta(days=1), LATER))
        lo = b
    pieces.append(klines(symbol, freq, lo, end, LATER))
    _same(pieces, klines(symbol, freq, start, end, LATER))


def test_same_request_same_data_across_calls_and_caches() -> None:
    args = ("600519.SH", "15m", dt.date(2024, 5, 6), dt.date(2024, 5, 10), LATER)
    first = klines(*args)
    _frame.cache_clear()
    again = klines(*args)
    _same([first], again)
    other_seed = klines(*args, seed=1)
    assert not np.array_equal(first.close, other_seed.close)


def test_same_data_in_another_process() -> None:
    code = (
        "import datetime as dt; from etl.synthetic import klines; "
        "b = klines('00700.HK', '1h', dt.date(2024, 3, 1), dt.date(2024, 3, 8), "
        "dt.datetime(2026, 1, 1, tzinfo=dt.UTC)); print(repr(b.close.tolist()))"
    )
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code],
        capture_output=True, text=True, check=True, env={"PYTHONHASHSEED": "123"},
    )  # fmt: skip
    here = klines("00700.HK", "1h", dt.date(2024, 3, 1), dt.date(2024, 3, 8), LATER)
    assert out.stdout.strip() == repr(here.close.tolist())
