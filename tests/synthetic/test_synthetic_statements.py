"""Synthetic financial statements: columns, identities, versions and announcement timing."""

from __future__ import annotations

import datetime as dt
from functools import cache

import pytest

from etl import schema
from etl.errors import BadInputError
from etl.synthetic import STATEMENT_DATASETS, STATEMENT_ITEMS, statements, universe

pytestmark = pytest.mark.filterwarnings(
    "ignore:Series.values returning an ndarray:DeprecationWarning"
)

NOW = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


@cache
def _sample() -> list[str]:
    """Every eighth A share, plus a bank and a BJ share (built lazily: see pytestmark)."""
    shares = [i.symbol for i in universe(0).all if i.type == "stock" and i.market in ("SH", "SZ")]
    return [*shares[::8], "600000.SH", "430047.BJ"]


# Identities that must hold exactly: (dataset, left, right-hand terms (+1 add, -1 subtract)).
IDENTITIES = [
    ("balance_sheet", "total_assets", [("total_cur_assets", 1), ("tot_noncur_assets", 1)]),
    ("balance_sheet", "total_assets", [("total_liab", 1), ("tot_share_equity_incl_min_int", 1)]),
    ("balance_sheet", "total_liab", [("total_cur_liab", 1), ("total_noncur_liab", 1)]),
    (
        "balance_sheet",
        "tot_share_equity_incl_min_int",
        [("tot_share_equity_excl_min_int", 1), ("minority_equity", 1)],
    ),
    ("balance_sheet", "total_liab_share_equity", [("total_assets", 1)]),
    (
        "cash_flow",
        "end_bal_cash_cash_equ",
        [("beg_bal_cash_cash_equ", 1), ("net_incr_cash_and_cash_equ", 1)],
    ),
    ("income", "net_pro_incl_min_int_inc", [("total_profit", 1), ("income_tax", -1)]),
]

# report_type -> (month/day of the period end, latest announcement: months after it).
PERIODS = {"1": ((3, 31), (4, 30)), "2": ((6, 30), (8, 31)), "3": ((9, 30), (10, 31))}


@pytest.mark.parametrize("dataset", STATEMENT_DATASETS)
def test_columns_are_the_schema_columns(dataset: str) -> None:
    declared = [c for c in schema.get(dataset).column_names if c not in ("vendor", "ingested_at")]
    rows = statements(dataset, "600000.SH", NOW)
    assert rows and all(list(r) == declared for r in rows)
    items = [c.name for c in schema.get(dataset).columns if c.type == "float64"]
    assert list(STATEMENT_ITEMS[dataset]) == items


@pytest.mark.parametrize(("dataset", "left", "terms"), IDENTITIES)
def test_identities_hold_exactly(dataset: str, left: str, terms: list[tuple[str, int]]) -> None:
    checked = 0
    for symbol in _sample():
        for row in statements(dataset, symbol, NOW):
            total = sum(sign * float(row[name]) for name, sign in terms)  # type: ignore[arg-type]
            assert row[left] == total, (symbol, row["reporting_period"], left)
            checked += 1
    assert checked > 1000


def test_values_are_whole_yuan_and_eps_has_two_decimals() -> None:
    for dataset in STATEMENT_DATASETS:
        for row in statements(dataset, "000002.SZ", NOW):
            for item in STATEMENT_ITEMS[dataset]:
                value = row[item]
                assert isinstance(value, float)
                digits = 2 if item == "basic_eps" else 0
                assert round(value, digits) == value


def test_one_version_per_period_announced_in_its_window() -> None:
    for symbol in _sample():
        inst = universe(0).get(symbol)
        assert inst is not None and inst.list_date is not None
        rows = statements("income", symbol, NOW)
        first = [r for r in rows if r["statement_type"] == "1"]
        periods = [r["reporting_period"] for r in first]
        assert len(periods) == len(set(periods))
        for r in first:
            period, ann = r["reporting_period"], r["actual_ann_date"]
            assert isinstance(period, dt.date) and isinstance(ann, dt.date)
            assert r["ann_date"] == ann and period < ann
            assert period.year >= max(inst.list_date.year, 2013)
            kind = str(r["report_type"])
            if kind == "4":  # annual: by April 30 of the next year
                assert (period.month, period.day) == (12, 31)
                assert ann <= dt.date(period.year + 1, 4, 30)
            else:
                (pm, pd), (am, ad) = PERIODS[kind]
                assert (period.month, period.day) == (pm, pd)
                assert ann <= dt.date(period.year, am, ad)


def test_restatements_are_later_and_differ() -> None:
    restated = 0
    periods = 0
    for symbol in _sample():
        rows = statements("balance_sheet", symbol, NOW)
        firsts = {r["reporting_period"]: r for r in rows if r["statement_type"] == "1"}
        periods += len(firsts)
        for r in rows:
            if r["statement_type"] != "4":
                continue
            restated += 1
            original = firsts[r["reporting_period"]]
            assert r["actual_ann_date"] > original["actual_ann_date"]  # type: ignore[operator]
            assert r["report_type"] == original["report_type"]
            assert r["total_assets"] != original["total_assets"]
            ratio = float(r["total_assets"]) / float(original["total_assets"])  # type: ignore[arg-type]
            assert 0.95 < ratio < 1.05  # slightly different
    assert 0.04 < restated / periods < 0.12  # about 8 %


def test_only_versions_announced_by_now_exist() -> None:
    symbol = "600000.SH"
    everything = statements("income", symbol, dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
    cut = dt.date(2022, 5, 1)
    at_cut = statements("income", symbol, dt.datetime.combine(cut, dt.time(16), tzinfo=dt.UTC))
    assert at_cut == [r for r in everything if r["actual_ann_date"] <= cut]  # type: ignore[operator]
    assert 0 < len(at_cut) < len(everything)


def test_reporting_period_filter_is_inclusive() -> None:
    rows = statements(
        "cash_flow", "600000.SH", NOW, start=dt.date(2020, 3, 31), end=dt.date(2020, 12, 31)
    )
    assert {r["reporting_period"] for r in rows} == {
        dt.date(2020, 3, 31), dt.date(2020, 6, 30), dt.date(2020, 9, 30), dt.date(2020, 12, 31),
    }  # fmt: skip


def test_cash_flow_net_profit_is_the_income_statement_net_profit() -> None:
    income = statements("income", "600036.SH", NOW)
    cash = statements("cash_flow", "600036.SH", NOW)
    assert [r["net_pro_incl_min_int_inc"] for r in income] == [r["net_profit"] for r in cash]


@pytest.mark.parametrize(
    ("symbol", "comp_type"),
    [
        ("600000.SH", "2"),  # 浦发银行: a bank
        ("601318.SH", "3"),  # 中国平安: an insurer
        ("600519.SH", "1"),  # 贵州茅台: non-financial
    ],
)
def test_identity_columns(symbol: str, comp_type: str) -> None:
    row = statements("balance_sheet", symbol, NOW)[0]
    inst = universe(0).get(symbol)
    assert inst is not None
    assert (row["security_name"], row["currency"], row["comp_type_code"]) == (
        inst.name,
        "CNY",
        comp_type,
    )


def test_etfs_indices_and_foreign_stocks_have_no_statements() -> None:
    for symbol in ("510300.SH", "000300.SH", "00700.HK"):
        assert statements("income", symbol, NOW) == []
    with pytest.raises(BadInputError):
        statements("income", "999999.SH", NOW)
    with pytest.raises(BadInputError):
        statements("klines", "600000.SH", NOW)
