"""The adjusted read's shortcuts give the general path's values bit for bit, leave the lake's
rows as stored, and a new factor commit is seen by the next read.

``Warehouse.bars`` adjusts a one-symbol read through that symbol's cached factors (cut by
``as_of``, spread over the days in runs) and, when it combined the read's parts itself,
scales the price columns in place; a read of several symbols goes through symbol codes and
new columns; ``adjust_bars`` on frames (owning nothing, one binary search per bar) is the
reference. Two vendors' factors, the later sync chosen per symbol, on bars of three years
(three parts to combine), read through mirrors and through the Parquet files.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import etl
from etl.lake import Lake
from etl.lake import reader as lake_reader
from etl.warehouse.adjust import SCALED, adjust_bars
from tests.conftest import NOW, kline_rows

SYMBOLS = ["000001.SZ", "300750.SZ", "600000.SH"]
DAYS = [dt.date(year, month, day) for year in (2021, 2022, 2023)
        for month in range(1, 13) for day in (5, 15, 25)]  # fmt: skip
SHORT = "300750.SZ"  # its bars end earlier: a qfq anchor of its own
START, END = DAYS[0], DAYS[-1]
CASES = [  # (anchor, as_of)
    (None, None),
    (dt.date(2022, 6, 15), None),
    (None, dt.date(2022, 3, 1)),
    (None, dt.date(2022, 6, 15)),  # on an ex-date: it counts
    (dt.date(2023, 1, 5), dt.date(2022, 8, 20)),
    (None, dt.date(2020, 1, 1)),  # before every ex-date
]


def _bars() -> pl.DataFrame:
    rng = np.random.default_rng(7)
    frames = []
    for symbol in SYMBOLS:
        days = DAYS[:-20] if symbol == SHORT else DAYS
        frame = kline_rows([symbol], days)
        close = 10 * np.exp(np.cumsum(rng.normal(0, 0.02, len(days))))
        # settle: null throughout (the first symbol), on every bar (a price column with a
        # view of its own), on some bars (no view: scaled as any read scales it)
        settle: list[float | None] = [None] * len(days)
        if symbol == SYMBOLS[1]:
            settle = list(close * 1.001)
        elif symbol == SYMBOLS[2]:
            settle = [None if i % 3 else c for i, c in enumerate(close * 0.999)]
        frames.append(
            frame.with_columns(
                pl.Series("open", close * (1 + rng.normal(0, 0.01, len(days)))),
                pl.Series("high", close * 1.02),
                pl.Series("low", close * 0.98),
                pl.Series("close", close),
                pl.Series("volume", rng.integers(1_000, 90_000, len(days)).astype(float)),
                pl.Series("settle", settle, dtype=pl.Float64),
            )
        )
    return pl.concat(frames)


def _bar_hashes(root: Path) -> dict[str, str]:
    """Every file of the bars: Parquet, manifests, mirrors and the history."""
    lake = root / "lake"
    folders = [lake / "klines", lake / ".manifest" / "klines", lake / ".mirror" / "klines"]
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for folder in folders
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _through_views(wh: etl.Warehouse) -> bool:
    """The warehouse read some symbol's adjusted bars through a history's views."""
    return any(h._views for h in wh._reader._histories.values())


def _through_mirror_views(wh: etl.Warehouse) -> bool:
    """The warehouse read some symbol's adjusted bars through a yearly mirror's views."""
    return any(m.derived for m in wh._reader._mirrors._items.values())


def _factors(vendor: str, symbols: list[str], ex_dates: list[dt.date], seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for symbol in symbols:
        factor = 1.0
        for ex in ex_dates:
            factor /= 1 - rng.uniform(0.005, 0.05)
            rows.append((symbol, ex, factor, None, vendor))
    return pl.DataFrame(
        rows,
        schema={"symbol": pl.String, "ex_date": pl.Date, "backward_factor": pl.Float64,
                "forward_factor": pl.Float64, "vendor": pl.String},
        orient="row",
    )  # fmt: skip


@pytest.fixture(params=["mirrors", "parquet"])
def lake_root(request: pytest.FixtureRequest, data_root: Path) -> Path:
    lake = Lake(data_root)
    lake.write("klines", _bars(), now=NOW)
    exes = [dt.date(2021, 6, 10), dt.date(2022, 1, 5), dt.date(2022, 6, 15), dt.date(2023, 7, 3)]
    lake.write("adj_factors", _factors("infoway", SYMBOLS, exes, 1), now=NOW)
    # synced later for two symbols: theirs are chosen, the third keeps infoway's
    later = NOW + dt.timedelta(hours=1)
    lake.write("adj_factors", _factors("amazingdata", SYMBOLS[1:], exes[1:], 2), now=later)
    if request.param == "mirrors":
        lake.compact(None, now=NOW)
    return data_root


@pytest.mark.parametrize("mode", ["qfq", "hfq"])
def test_one_symbol_reads_equal_the_general_path(lake_root: Path, mode: str) -> None:
    wh = etl.Warehouse(lake_root)
    raw = wh.bars(SYMBOLS, "1d", START, END)
    factors = wh.adj_factors()
    assert set(factors["vendor"]) == {"infoway", "amazingdata"}
    for anchor, as_of in CASES:
        many = wh.bars(SYMBOLS, "1d", START, END, adjust=mode, anchor=anchor, as_of=as_of)
        reference = adjust_bars(raw, factors, mode, anchor=anchor, as_of=as_of)  # type: ignore[arg-type]
        assert many.equals(reference), (anchor, as_of)
        for symbol in SYMBOLS:
            one = wh.bars(symbol, "1d", START, END, adjust=mode, anchor=anchor, as_of=as_of)
            assert one.equals(many.filter(pl.col("symbol") == symbol)), (symbol, anchor, as_of)
            # one year: one part, nothing to combine, the columns are copied not scaled
            year = wh.bars(symbol, "1d", "2022-01-01", "2022-12-31", adjust=mode,
                           anchor=anchor, as_of=as_of)  # fmt: skip
            within = many.filter(
                (pl.col("symbol") == symbol) & (pl.col("trade_date").dt.year() == 2022)
            )
            # the closed years: every row from the history, through its views
            closed = wh.bars(symbol, "1d", START, "2022-12-31", adjust=mode, anchor=anchor,
                             as_of=as_of)  # fmt: skip
            before = many.filter(
                (pl.col("symbol") == symbol) & (pl.col("trade_date").dt.year() <= 2022)
            )
            # the newest year: from its mirror alone, through the mirror's views
            newest = wh.bars(symbol, "1d", "2023-01-01", END, adjust=mode, anchor=anchor,
                             as_of=as_of)  # fmt: skip
            last_year = many.filter(
                (pl.col("symbol") == symbol) & (pl.col("trade_date").dt.year() == 2023)
            )
            if mode == "hfq" or anchor is not None:  # qfq's default anchor is the read's end
                assert year.equals(within), (symbol, anchor, as_of)
                assert closed.equals(before), (symbol, anchor, as_of)
                assert newest.equals(last_year), (symbol, anchor, as_of)
    adjusted = wh.bars(SYMBOLS, "1d", START, END, adjust=mode)
    assert not adjusted["close"].equals(raw["close"])  # the factors did something
    assert not adjusted["settle"].equals(raw["settle"])
    # a compacted lake answers one symbol's closed years through its history's views (the
    # newest year is not in the history), the other from Parquet: both were compared above
    assert _through_views(wh) == (lake_root / "lake" / ".mirror").is_dir()
    assert _through_mirror_views(wh) == (lake_root / "lake" / ".mirror").is_dir()
    # scaling in place touched nothing stored: the raw rows read again are as before
    assert wh.bars(SYMBOLS, "1d", START, END).equals(raw)
    assert etl.Warehouse(lake_root).bars(SYMBOLS, "1d", START, END).equals(raw)


def test_a_new_factor_commit_is_seen_by_the_next_read(
    data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A listing is cached only once its folder is 2 s old (etl.lake.reader._settled); with
    # no wait the factor cache is kept from the first read on, which is what is tested here.
    monkeypatch.setattr(lake_reader, "_SETTLE_NS", 0)
    symbol = SYMBOLS[0]
    lake = Lake(data_root)
    lake.write("klines", _bars(), now=NOW)
    lake.write("adj_factors", _factors("infoway", SYMBOLS, [dt.date(2021, 6, 10)], 1), now=NOW)
    lake.compact(None, now=NOW)
    wh = etl.Warehouse(data_root)
    end = dt.date(2022, 12, 31)  # the closed years: read from the history, with its views
    first = wh.bars(symbol, "1d", START, end, adjust="hfq")
    cached = wh._factors
    assert cached is not None  # the factors are cached: the next read must not trust it blindly
    assert _through_views(wh)  # and where each factor applies among the symbol's bars
    assert wh.bars(symbol, "1d", START, end, adjust="hfq").equals(first)
    assert wh._factors is cached  # and the cache was used
    every_year = wh.bars(symbol, "1d", START, END, adjust="hfq")  # the newest year from its own
    before = _bar_hashes(data_root)
    assert any(name.endswith("history.arrow") for name in before)
    # a later ex-date of the same vendor: the same partition, committed again
    exes = [dt.date(2021, 6, 10), dt.date(2022, 3, 1)]
    lake.write("adj_factors", _factors("infoway", SYMBOLS, exes, 1), now=NOW)
    after = wh.bars(symbol, "1d", START, end, adjust="hfq")
    assert after.equals(etl.Warehouse(data_root).bars(symbol, "1d", START, end, adjust="hfq"))
    whole = wh.bars(symbol, "1d", START, END, adjust="hfq")
    assert whole.equals(etl.Warehouse(data_root).bars(symbol, "1d", START, END, adjust="hfq"))
    assert not whole.equals(every_year)
    assert _bar_hashes(data_root) == before  # no bar file, mirror or history rewritten
    late = pl.col("trade_date") >= dt.date(2022, 3, 1)
    assert after.filter(~late).equals(first.filter(~late))
    stored = _factors("infoway", SYMBOLS, exes, 1).filter(pl.col("symbol") == symbol)
    ratio = after.filter(late)["close"] / first.filter(late)["close"]
    expected = stored["backward_factor"][1] / stored["backward_factor"][0]
    assert (ratio - expected).abs().max() <= 1e-12 * expected  # type: ignore[operator]


def test_cross_sections_reuse_symbol_codes_bit_for_bit(
    lake_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cross-section finds each row's factors through symbol codes kept per column of
    symbols (the same symbols in the same order have the same codes): every day, whether
    its symbols were seen before or not, equals the reference."""
    monkeypatch.setattr(lake_reader, "_SETTLE_NS", 0)  # the factor index is kept at once
    wh = etl.Warehouse(lake_root)
    factors = wh.adj_factors()
    anchor = dt.date(2022, 6, 15)
    # the same three symbols on three days, then two (SHORT's bars ended), then three again
    for day in [DAYS[5], DAYS[40], DAYS[70], DAYS[-1], DAYS[6]]:
        raw = wh.bars(None, "1d", day, day)
        for mode, at in (("hfq", None), ("qfq", anchor)):
            got = wh.bars(None, "1d", day, day, adjust=mode, anchor=at)
            want = adjust_bars(raw, factors, mode, anchor=at, as_of=None)  # type: ignore[arg-type]
            assert got.equals(want), (day, mode)
        assert len(raw) == (2 if day == DAYS[-1] else 3)
    assert wh._factors is not None
    kept = wh._factors[1]._by_column
    if (lake_root / "lake" / ".mirror").is_dir():  # a day from a mirror: one column
        assert len(kept) == 2  # one entry per list of symbols seen


@pytest.mark.parametrize("mode", ["qfq", "hfq"])
def test_a_read_across_the_history_and_the_newest_year(
    data_root: Path, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ten years read as two parts, the closed years from the history and the newest from
    its mirror, each scaled through its views into one new buffer per column: equal to the
    reference, whether the parts lay their columns out alike or not (a settle price only
    from the newest year on has a view there and none in the history: the general way).
    The multipliers of each part's rows are kept per (as_of, anchor): a later read of
    other rows of the same parts slices them."""
    monkeypatch.setattr(lake_reader, "_SETTLE_NS", 0)  # the factor index is kept at once
    rng = np.random.default_rng(11)
    days = [dt.date(year, month, 8) for year in range(2014, 2024) for month in (2, 5, 9, 12)]
    symbols = ["000002.SZ", "600036.SH"]
    frames = []
    for symbol in symbols:
        close = 20 * np.exp(np.cumsum(rng.normal(0, 0.02, len(days))))
        settle: list[float | None] = list(close * 1.001)
        if symbol == symbols[1]:  # settled from the newest year on only
            settle = [s if d.year == 2023 else None for d, s in zip(days, settle, strict=True)]
        frames.append(
            kline_rows([symbol], days).with_columns(
                pl.Series("open", close * 1.01),
                pl.Series("high", close * 1.03),
                pl.Series("low", close * 0.97),
                pl.Series("close", close),
                pl.Series("volume", rng.integers(1_000, 90_000, len(days)).astype(float)),
                pl.Series("settle", settle, dtype=pl.Float64),
            )
        )
    lake = Lake(data_root)
    lake.write("klines", pl.concat(frames), now=NOW)
    exes = [dt.date(year, 6, 20) for year in range(2015, 2024)]
    lake.write("adj_factors", _factors("infoway", symbols, exes, 5), now=NOW)
    lake.compact(None, now=NOW)
    wh = etl.Warehouse(data_root)
    factors = wh.adj_factors()
    first, last = days[0], days[-1]
    keys = wh._bar_keys("1d", first, last)
    for symbol in symbols:
        where = lake_reader.RowFilter(entities=(symbol,), date_column="trade_date", lo=first,
                                      hi=last)  # fmt: skip
        _, views = wh._reader.read_views("klines", keys, where, SCALED)
        assert views is not None and len(views) == 2  # the history's rows, then the mirror's
        assert (views[1].absent != views[0].absent) == (symbol == symbols[1])
        raw = wh.bars(symbol, "1d", first, last)
        for anchor, as_of in [*CASES, (None, dt.date(2019, 3, 1)), (dt.date(2016, 1, 4), None)]:
            got = wh.bars(symbol, "1d", first, last, adjust=mode, anchor=anchor, as_of=as_of)
            want = adjust_bars(raw, factors, mode, anchor=anchor, as_of=as_of)  # type: ignore[arg-type]
            assert got.equals(want), (symbol, anchor, as_of)
            # and a range cut inside both parts
            cut = wh.bars(symbol, "1d", "2016-03-01", "2023-06-30", adjust=mode, anchor=anchor,
                          as_of=as_of)  # fmt: skip
            inside = raw.filter(pl.col("trade_date").is_between(dt.date(2016, 3, 1),
                                                                dt.date(2023, 6, 30)))  # fmt: skip
            want = adjust_bars(inside, factors, mode, anchor=anchor, as_of=as_of)  # type: ignore[arg-type]
            assert cut.equals(want), (symbol, anchor, as_of)
        adjusted = wh.bars(symbol, "1d", first, last, adjust=mode)
        assert not adjusted["close"].equals(raw["close"])
        assert not adjusted["settle"].drop_nulls().equals(raw["settle"].drop_nulls())
    assert _through_views(wh) and _through_mirror_views(wh)
    assert wh._factors is not None
    kept = wh._factors[1]._multiplied._items
    # per symbol and part (2 x 2), one entry per (as_of, anchor) seen
    assert 4 <= len(kept) <= 4 * (len(CASES) + 2)
    assert wh.bars(symbols, "1d", first, last).equals(etl.Warehouse(data_root).bars(
        symbols, "1d", first, last))  # fmt: skip
