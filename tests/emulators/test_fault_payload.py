"""The generic row faults on canonical bars, before any vendor encodes them."""

from __future__ import annotations

import datetime as dt
import itertools
import math

import pytest

from etl.emulators.faults import ActiveFaults, parse_faults
from etl.emulators.payload import Bar, apply_bar_faults, drift_row, drift_rows

DAY = dt.date(2024, 1, 2)


def make_bars(n: int = 20) -> list[Bar]:
    return [
        Bar(i * 60_000_000, DAY, 10.0 + i, 11.0 + i, 9.0 + i, 10.5 + i, 100.0, 1000.0)
        for i in range(n)
    ]


def active(spec: str, request_no: int = 1, seed: int = 0) -> ActiveFaults:
    return ActiveFaults(request_no, seed, parse_faults(spec))


def test_duplicates_are_exact_copies_next_to_the_original() -> None:
    on = active("duplicate_bars")
    out = apply_bar_faults(make_bars(), on, "600000.SH")
    assert len(out) == 22  # 10 % of 20 bars appear twice
    assert sorted(set(out), key=lambda b: b.ts_us) == make_bars()
    assert [f.name for f in on.applied] == ["duplicate_bars"]


def test_conflicting_duplicates_differ_in_close_only_and_stay_valid() -> None:
    out = apply_bar_faults(make_bars(), active("duplicate_bars:conflict"), "x")
    pairs = [(a, b) for a, b in itertools.pairwise(out) if a.ts_us == b.ts_us]
    assert len(pairs) == 2
    for a, b in pairs:
        assert a.close != b.close and b.low <= b.close <= b.high
        assert (a.open, a.high, a.low, a.volume) == (b.open, b.high, b.low, b.volume)


def test_missing_bars_keep_both_ends() -> None:
    bars = make_bars()
    out = apply_bar_faults(bars, active("missing_bars"), "x")
    assert len(out) == 18 and out[0] == bars[0] and out[-1] == bars[-1]
    assert apply_bar_faults(bars[:2], active("missing_bars"), "x") == bars[:2]  # no inside


def test_out_of_order_shuffles_and_reversed_reverses() -> None:
    bars = make_bars()
    shuffled = apply_bar_faults(bars, active("out_of_order_bars"), "x")
    assert shuffled != bars and sorted(shuffled, key=lambda b: b.ts_us) == bars
    assert apply_bar_faults(bars, active("out_of_order_bars:reversed"), "x") == bars[::-1]
    two = make_bars(2)
    assert apply_bar_faults(two, active("out_of_order_bars"), "x") == two[::-1]  # never sorted


@pytest.mark.parametrize(
    ("variant", "check"),
    [
        ("high_low", lambda b: b.high < b.low),  # high below low
        ("negative", lambda b: b.low < 0),  # a negative price
        ("nan", lambda b: math.isnan(b.close)),  # NaN
    ],
)
def test_bad_prices_each_kind(variant: str, check: object) -> None:
    out = apply_bar_faults(make_bars(), active(f"bad_prices:{variant}"), "x")
    assert sum(1 for b in out if check(b)) == 2  # type: ignore[operator]


def test_bad_prices_default_mixes_all_three_kinds() -> None:
    out = apply_bar_faults(make_bars(30), active("bad_prices"), "x")
    assert sum(b.high < b.low for b in out) == 1
    assert sum(b.low < 0 for b in out) == 1
    assert sum(math.isnan(b.close) for b in out) == 1


def test_choices_depend_on_seed_request_and_stream_only() -> None:
    bars = make_bars(50)
    same = apply_bar_faults(bars, active("missing_bars", 3), "a")
    assert same == apply_bar_faults(bars, active("missing_bars", 3), "a")
    assert same != apply_bar_faults(bars, active("missing_bars", 4), "a")  # another request
    assert same != apply_bar_faults(bars, active("missing_bars", 3), "b")  # another code
    assert same != apply_bar_faults(bars, active("missing_bars", 3, seed=1), "a")


def test_nothing_to_do_is_not_counted_as_applied() -> None:
    on = active("duplicate_bars,bad_prices,out_of_order_bars")
    assert apply_bar_faults([], on, "x") == []
    assert on.applied == []


def test_drift_renames_in_place_or_adds_a_field() -> None:
    row = {"trade_date": "2024-01-02", "open": 1.0}
    (rename,) = parse_faults("schema_drift:rename")
    (extra,) = parse_faults("schema_drift:extra")
    kw = {"extra": ("turnover_rate", 0.0), "rename": ("trade_date", "kline_time")}
    assert list(drift_row(row, rename, **kw)) == ["kline_time", "open"]  # type: ignore[arg-type]
    assert drift_row(row, extra, **kw) == {**row, "turnover_rate": 0.0}  # type: ignore[arg-type]
    on = active("schema_drift:rename")
    assert drift_rows([row], on, **kw) == [{"kline_time": "2024-01-02", "open": 1.0}]  # type: ignore[arg-type]
    assert row == {"trade_date": "2024-01-02", "open": 1.0}  # the input is left alone
