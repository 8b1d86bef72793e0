"""Fill planning: every slot is either requested or marked unfillable, within vendor limits."""

from __future__ import annotations

import datetime as dt

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from etl.tasks.expected import Selection
from etl.tasks.plan import plan_fill
from etl.vendors.base import Capabilities, DatasetCapability, RateLimits

NOW = dt.datetime(2024, 6, 28, 12, tzinfo=dt.UTC)
BASE = dt.date(2024, 1, 2)


def caps(
    per_call: int,
    span: int | None = None,
    rows: int | None = None,
    since: dt.date | None = None,
    depth: int | None = None,
) -> Capabilities:
    cap = DatasetCapability(
        "klines", frozenset({"SH", "SZ"}), frozenset({"1d", "1m"}), since=since,
        symbols_per_call=per_call, rows_per_call=rows,
        span_days_per_call={"1d": span, "1m": span} if span else {},
        depth={"1d": depth} if depth else {},
    )  # fmt: skip
    return Capabilities("v", (cap,), RateLimits(per_second=5))


def slots(pairs: list[tuple[str, int]]) -> pl.DataFrame:
    rows = []
    for symbol, offset in pairs:
        day = BASE + dt.timedelta(days=offset)
        rows.append(
            {
                "symbol": symbol,
                "ts": dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC),
                "trade_date": day,
                "state": "missing",
                "reason": None,
            }
        )
    return pl.DataFrame(
        rows,
        schema={
            "symbol": pl.String,
            "ts": pl.Datetime("us", "UTC"),
            "trade_date": pl.Date,
            "state": pl.String,
            "reason": pl.String,
        },
    )


SEL = Selection("klines", BASE, BASE + dt.timedelta(days=150), "1d", ("A.SH", "B.SH", "C.SZ"))
slot_st = st.lists(
    st.tuples(st.sampled_from(["A.SH", "B.SH", "C.SZ"]), st.integers(0, 150)),
    min_size=1,
    max_size=60,
    unique=True,
)


@settings(max_examples=80, deadline=None)
@given(
    pairs=slot_st,
    per_call=st.sampled_from([1, 2, 50]),
    span=st.sampled_from([None, 7, 31]),
    rows=st.sampled_from([None, 20, 500]),
)
def test_every_slot_is_covered_within_limits(pairs, per_call, span, rows) -> None:  # type: ignore[no-untyped-def]
    plan = plan_fill(SEL, slots(pairs), "v", caps(per_call, span, rows), NOW)
    assert plan.unfillable.height == 0
    for symbol, offset in pairs:
        day = BASE + dt.timedelta(days=offset)
        assert any(symbol in c.symbols and c.start <= day <= c.end for c in plan.calls), (
            symbol,
            day,
        )
    for call in plan.calls:
        assert 1 <= len(call.symbols) <= per_call
        assert len({s.rsplit(".", 1)[1] for s in call.symbols}) == 1  # one market per call
        if span:
            assert call.requests >= -(-((call.end - call.start).days + 1) // span)
    assert plan.slots == len(pairs)


def test_unlimited_vendor_merges_each_symbol_into_one_call() -> None:
    pairs = [("A.SH", 0), ("A.SH", 40), ("A.SH", 90), ("B.SH", 0), ("B.SH", 90)]
    plan = plan_fill(SEL, slots(pairs), "v", caps(50), NOW)
    # A and B both span day 0..90, so they share one two-symbol call
    assert [(c.symbols, c.start, c.end, c.requests) for c in plan.calls] == [
        (("A.SH", "B.SH"), BASE, BASE + dt.timedelta(days=90), 1)
    ]


def test_paging_vendor_keeps_distant_gaps_apart() -> None:
    # 20 bars per call: fetching 90 days to fill two single days would cost 4 calls, not 2
    plan = plan_fill(SEL, slots([("A.SH", 0), ("A.SH", 90)]), "v", caps(1, rows=20), NOW)
    assert [(c.start, c.end) for c in plan.calls] == [
        (BASE, BASE),
        (BASE + dt.timedelta(days=90), BASE + dt.timedelta(days=90)),
    ]
    assert plan.requests == 2


def test_documented_history_makes_slots_unfillable_a_depth_window_does_not() -> None:
    since = BASE + dt.timedelta(days=30)
    plan = plan_fill(SEL, slots([("A.SH", 0), ("A.SH", 60)]), "v", caps(1, since=since), NOW)
    [row] = plan.unfillable.to_dicts()
    assert row["trade_date"] == BASE and "history" in row["reason"]
    assert [c.start for c in plan.calls] == [BASE + dt.timedelta(days=60)]

    # a latest-20-bars window is the vendor's to apply: the slot is asked for (one call), and
    # the answer says whether it is beyond (regression: marked unfillable on our clock)
    plan = plan_fill(SEL, slots([("A.SH", 0)]), "v", caps(1, depth=20), NOW)
    assert plan.unfillable.height == 0 and [c.start for c in plan.calls] == [BASE]


def test_unserved_market_names_the_vendors_that_can() -> None:
    other = caps(1)
    sel = Selection("klines", BASE, BASE, "1d", ("7203.JP",))
    pl_slots = slots([("A.SH", 0)]).with_columns(pl.lit("7203.JP").alias("symbol"))
    plan = plan_fill(sel, pl_slots, "v", caps(1), NOW, others={"w": other})
    assert "does not serve klines 1d for JP" in plan.unfillable["reason"][0]


def test_long_ranges_are_cut_into_pages_or_bounded_units() -> None:
    # A paging vendor (20 rows per call): 150 calendar days of 1d = ~100 sessions -> ~5 pages
    sel = Selection("klines", BASE, BASE + dt.timedelta(days=150), "1d", ("A.SH",))
    every_day = [("A.SH", d) for d in range(0, 151)]
    plan = plan_fill(sel, slots(every_day), "v", caps(1, rows=20), NOW)
    assert len(plan.calls) >= 5
    assert all(c.requests == 1 for c in plan.calls)
    # contiguous and covering: each window starts the day after the previous one ends
    assert plan.calls[0].start == BASE and plan.calls[-1].end == BASE + dt.timedelta(days=150)
    for a, b in zip(plan.calls, plan.calls[1:], strict=False):
        assert b.start == a.end + dt.timedelta(days=1)
    # a vendor serving only its latest bars is never cut: every call would return the same
    assert len(plan_fill(sel, slots(every_day), "v", caps(1, rows=20, depth=500), NOW).calls) == 1


def test_a_span_limited_vendor_gets_one_request_per_call() -> None:
    # 31 calendar days a request (AmazingData's minute bars): a 150-day hole is 5 calls of one
    # request each, not one call of 5 requests (regression: a kill lost all 5's answers).
    sel = Selection("klines", BASE, BASE + dt.timedelta(days=150), "1d", ("A.SH", "B.SH"))
    every_day = [(s, d) for s in ("A.SH", "B.SH") for d in range(0, 151)]
    plan = plan_fill(sel, slots(every_day), "v", caps(50, span=31), NOW)
    assert [c.requests for c in plan.calls] == [1] * 5
    assert all(c.symbols == ("A.SH", "B.SH") for c in plan.calls)
    assert all((c.end - c.start).days < 31 for c in plan.calls)
    assert plan.calls[0].start == BASE and plan.calls[-1].end == BASE + dt.timedelta(days=150)
    assert plan.requests == 5  # as many as the vendor's own cut of the whole range
