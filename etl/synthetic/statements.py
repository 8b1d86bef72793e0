"""Synthetic financial statements of A-share stocks, every version as it was announced.

Each quarter end from the listing year (2013 at the earliest) gets one consolidated version
(statement_type "1") announced inside the legal window, and about 8 % of periods a restated
version ("4") announced later with slightly different numbers. Only versions announced by
``now`` exist, so an as-of query over the lake can be tested against a moving ``now``.

Every item is a whole number of yuan held in float64: sums of integers below 2**53 are exact,
so the accounting identities hold exactly (``==``), not just within a cent. Flows (income,
cash flow) are year-to-date, as Chinese reports are.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

import numpy as np
import numpy.typing as npt

from etl.errors import BadInputError
from etl.synthetic.hashing import key_of, mix64, signed, uniform
from etl.synthetic.universe import Instrument, local_today, universe

__all__ = [
    "RESTATEMENT_RATE",
    "STATEMENT_DATASETS",
    "STATEMENT_ITEMS",
    "has_statements",
    "statements",
]

F64 = npt.NDArray[np.float64]
Row = dict[str, object]

STATEMENT_DATASETS: Final = ("balance_sheet", "income", "cash_flow")
# Item columns, in the order of schemas/<dataset>.toml.
STATEMENT_ITEMS: Final[dict[str, tuple[str, ...]]] = {
    "balance_sheet": (
        "total_assets", "total_cur_assets", "tot_noncur_assets", "total_liab",
        "total_cur_liab", "total_noncur_liab", "tot_share_equity_incl_min_int",
        "tot_share_equity_excl_min_int", "minority_equity", "total_liab_share_equity",
        "currency_cap", "tot_share",
    ),
    "income": (
        "tot_opera_rev", "opera_rev", "tot_opera_cost", "less_opera_cost", "rd_exp",
        "opera_profit", "total_profit", "income_tax", "net_pro_incl_min_int_inc",
        "net_pro_excl_min_int_inc", "net_pro_after_ded_nr_gl", "basic_eps",
    ),
    "cash_flow": (
        "net_cash_flows_opera_act", "net_cash_flows_inv_act", "net_cash_flows_fin_act",
        "net_incr_cash_and_cash_equ", "beg_bal_cash_cash_equ", "end_bal_cash_cash_equ",
        "cash_recp_sg_and_rs", "cash_paid_inv", "free_cash_flow", "net_profit",
        "depre_fa_oga_pba", "amort_intan_assets",
    ),
}  # fmt: skip
RESTATEMENT_RATE: Final = 0.08
_FIRST_YEAR: Final = 2013
_LAST_YEAR: Final = 2027
_STATEMENT_MARKETS: Final = frozenset({"SH", "SZ", "BJ"})
# Announcement windows (CSRC rules): (month, first day, last day) and the year offset.
_WINDOWS: Final = {
    1: ((4, 10), (4, 30), 0),  # Q1 report by April 30
    2: ((7, 15), (8, 31), 0),  # interim report by August 31
    3: ((10, 10), (10, 31), 0),  # Q3 report by October 31
    4: ((3, 1), (4, 30), 1),  # annual report by April 30 of the next year
}


@dataclass(frozen=True)
class _Version:
    period: dt.date
    report_type: str
    statement_type: str
    ann_date: dt.date
    actual_ann_date: dt.date
    items: dict[str, dict[str, float]]  # dataset -> item -> value


def has_statements(inst: Instrument) -> bool:
    """Only A-share stocks (not ETFs or indices) report statements here."""
    return inst.type == "stock" and inst.market in _STATEMENT_MARKETS


def statements(
    dataset: str,
    symbol: str,
    now: dt.datetime,
    *,
    seed: int = 0,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> list[Row]:
    """Rows of ``dataset`` for ``symbol`` announced by ``now``: schema column names (lower
    case, no vendor/ingested_at), ordered by reporting period then announcement date.
    ``start``/``end`` filter the reporting period, inclusive; None leaves that end open."""
    if dataset not in STATEMENT_DATASETS:
        raise BadInputError(
            f"unknown statement dataset {dataset!r}: use one of {', '.join(STATEMENT_DATASETS)}"
        )
    inst = universe(seed).visible(symbol, now)
    if inst is None:
        raise BadInputError("unknown symbol", symbol=symbol)
    if not has_statements(inst):
        return []
    today = local_today(inst.market, now)
    comp = _comp_type(inst.name)
    rows: list[Row] = []
    for v in _versions(seed, symbol):
        if v.actual_ann_date > today:
            continue
        if (start is not None and v.period < start) or (end is not None and v.period > end):
            continue
        row: Row = {
            "symbol": symbol,
            "security_name": inst.name,
            "reporting_period": v.period,
            "statement_type": v.statement_type,
            "report_type": v.report_type,
            "ann_date": v.ann_date,
            "actual_ann_date": v.actual_ann_date,
            "comp_type_code": comp,
            "currency": "CNY",
        }
        row.update(v.items[dataset])
        rows.append(row)
    return rows


def _comp_type(name: str) -> str:
    if "银行" in name:
        return "2"
    if "保险" in name or name == "中国平安":
        return "3"
    if "证券" in name:
        return "4"
    return "1"


def _quarter_end(year: int, q: int) -> dt.date:
    month = 3 * q
    return dt.date(year, month, 31 if month in (3, 12) else 30)


def _announced(seed: int, symbol: str, year: int, q: int) -> dt.date:
    (m0, d0), (m1, d1), offset = _WINDOWS[q]
    first, last = dt.date(year + offset, m0, d0), dt.date(year + offset, m1, d1)
    u = (mix64(key_of(seed, symbol, "ann", year, q)) >> 11) / float(1 << 53)
    return first + dt.timedelta(days=int(u * ((last - first).days + 1)))


@lru_cache(maxsize=2048)
def _versions(seed: int, symbol: str) -> tuple[_Version, ...]:
    """Every version the company will ever announce (``now`` filters them later)."""
    inst = universe(seed).get(symbol)
    assert inst is not None and inst.list_date is not None
    periods: list[tuple[int, int, dt.date]] = []
    for year in range(max(inst.list_date.year, _FIRST_YEAR), _LAST_YEAR + 1):
        for q in (1, 2, 3, 4):
            ann = _announced(seed, symbol, year, q)
            if ann < inst.list_date or (inst.delist_date and ann > inst.delist_date):
                continue  # not a listed company when it would have announced
            periods.append((year, q, ann))
    if not periods:
        return ()
    p_index = np.array([y * 4 + q - 1 for y, q, _ in periods], dtype=np.int64)
    years = np.array([y for y, _, _ in periods], dtype=np.float64)
    quarters = np.array([q for _, q, _ in periods], dtype=np.float64)
    base = _items(seed, symbol, p_index, years, quarters, restated=False)
    again = _items(seed, symbol, p_index, years, quarters, restated=True)
    restate = uniform(key_of(seed, symbol, "restate?"), p_index) < RESTATEMENT_RATE
    delay = uniform(key_of(seed, symbol, "restate-delay"), p_index)
    out: list[_Version] = []
    for i, (year, q, ann) in enumerate(periods):
        period = _quarter_end(year, q)
        out.append(_Version(period, str(q), "1", ann, ann, _row_items(base, i)))
        if restate[i]:
            later = ann + dt.timedelta(days=30 + int(delay[i] * 370))
            if inst.delist_date is None or later <= inst.delist_date:
                out.append(_Version(period, str(q), "4", ann, later, _row_items(again, i)))
    out.sort(key=lambda v: (v.period, v.actual_ann_date))
    return tuple(out)


def _row_items(columns: dict[str, dict[str, F64]], i: int) -> dict[str, dict[str, float]]:
    return {ds: {k: float(v[i]) for k, v in cols.items()} for ds, cols in columns.items()}


def _items(
    seed: int, symbol: str, p: npt.NDArray[np.int64], years: F64, q: F64, *, restated: bool
) -> dict[str, dict[str, F64]]:
    """All items of every period at once; ``restated`` perturbs the primary figures by up
    to 3 % and recomputes everything derived from them, so identities still hold."""

    def const(tag: str) -> float:
        return (mix64(key_of(seed, symbol, "fin-const", tag)) >> 11) / float(1 << 53)

    def r(tag: str) -> F64:
        return uniform(key_of(seed, symbol, "fin", tag), p)

    def s(tag: str) -> F64:
        return signed(key_of(seed, symbol, "fin", tag), p)

    def adj(tag: str) -> F64 | float:
        return (
            1.0 + 0.03 * signed(key_of(seed, symbol, "fin-restated", tag), p) if restated else 1.0
        )

    size0 = float(np.exp(np.log(1e9) + (np.log(3e11) - np.log(1e9)) * const("size")))
    growth = 1.02 + 0.13 * const("growth")
    elapsed = years - _FIRST_YEAR
    ytd = q / 4.0
    # Balance sheet (at the period end).
    ta = _whole(size0 * growth ** (elapsed + ytd) * (1.0 + 0.04 * s("ta")) * adj("ta"))
    tca = _whole(ta * (0.3 + 0.4 * r("ca")))
    lev = np.clip(0.2 + 0.6 * const("lev") + 0.05 * s("lev"), 0.05, 0.95)
    tl = _whole(ta * lev * adj("tl"))
    tcl = _whole(tl * (0.5 + 0.4 * r("cl")))
    eq = ta - tl
    min_share = 0.12 * const("minority")
    minority = _whole(eq * min_share)
    cash = _whole(tca * (0.1 + 0.3 * r("cash")))
    shares = _whole(np.round(_log_uniform(1e8, 1e10, const("shares")) * (1 + 0.02 * elapsed), -4))
    # Income statement (year to date).
    rev = _whole(ta * (0.3 + 0.9 * const("turnover")) * ytd * (1 + 0.05 * s("rev")) * adj("rev"))
    cost = _whole(rev * (0.8 + 0.17 * const("cost") + 0.04 * s("cost")) * adj("cost"))
    op = rev - cost + _whole(rev * 0.01 * s("other"))
    tp = op + _whole(rev * 0.004 * s("nonop"))
    tax = _whole(np.maximum(tp, 0.0) * (0.12 + 0.13 * const("tax")))
    npi = tp - tax
    npe = _whole(npi * (1.0 - min_share))
    # Cash-flow statement (year to date; the opening balance is the year's first day's).
    dep = _whole(ta * (0.004 + 0.006 * const("dep")) * q)
    amort = _whole(dep * (0.1 + 0.2 * r("amort")))
    ocf = _whole(npi * (0.6 + 0.9 * r("ocf"))) + dep + amort
    inv = -_whole(ta * (0.005 + 0.02 * r("inv")) * q)
    beg = _whole(size0 * growth**elapsed * (0.05 + 0.1 * const("cash0")))
    fin = _whole(ta * 0.02 * s("fin") * ytd)
    fin = fin + np.maximum(0.0, _whole(0.1 * beg) - (beg + ocf + inv + fin))  # keep cash > 0
    net = ocf + inv + fin
    return {
        "balance_sheet": {
            "total_assets": ta,
            "total_cur_assets": tca,
            "tot_noncur_assets": ta - tca,
            "total_liab": tl,
            "total_cur_liab": tcl,
            "total_noncur_liab": tl - tcl,
            "tot_share_equity_incl_min_int": eq,
            "tot_share_equity_excl_min_int": eq - minority,
            "minority_equity": minority,
            "total_liab_share_equity": tl + eq,
            "currency_cap": cash,
            "tot_share": shares,
        },
        "income": {
            "tot_opera_rev": rev,
            "opera_rev": _whole(rev * (0.97 + 0.03 * r("oprev"))),
            "tot_opera_cost": cost,
            "less_opera_cost": _whole(cost * (0.6 + 0.25 * r("coc"))),
            "rd_exp": _whole(rev * (0.01 + 0.07 * const("rd"))),
            "opera_profit": op,
            "total_profit": tp,
            "income_tax": tax,
            "net_pro_incl_min_int_inc": npi,
            "net_pro_excl_min_int_inc": npe,
            "net_pro_after_ded_nr_gl": _whole(npe * (0.85 + 0.2 * r("deducted"))),
            "basic_eps": np.round(npe / shares, 2),
        },
        "cash_flow": {
            "net_cash_flows_opera_act": ocf,
            "net_cash_flows_inv_act": inv,
            "net_cash_flows_fin_act": fin,
            "net_incr_cash_and_cash_equ": net,
            "beg_bal_cash_cash_equ": beg,
            "end_bal_cash_cash_equ": beg + net,
            "cash_recp_sg_and_rs": _whole(rev * (1.0 + 0.15 * r("receipts"))),
            "cash_paid_inv": _whole(-inv * (1.2 + 0.8 * r("paid-inv"))),
            "free_cash_flow": ocf + inv,
            "net_profit": npi,
            "depre_fa_oga_pba": dep,
            "amort_intan_assets": amort,
        },
    }


def _whole(x: F64 | float) -> F64:
    return np.asarray(np.round(np.asarray(x, dtype=np.float64)), dtype=np.float64)


def _log_uniform(lo: float, hi: float, u: float) -> float:
    return float(np.exp(np.log(lo) + (np.log(hi) - np.log(lo)) * u))
