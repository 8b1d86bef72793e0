"""Adjusted prices end to end: unadjusted daily bars and both vendors' adjustment factors
fetched from the Infoway and AmazingData emulators through ``etl backfill``, then read back
adjusted through ``etl.Warehouse`` and the catalog macro ``klines_adj``.

The expected series is computed independently from the synthetic corporate actions the
emulators serve (etl.synthetic.actions): qfq(t) = raw(t) x the product of the forward factors
of the ex-dates after t up to the anchor; hfq(t) = raw(t) x the cumulative backward factor.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl
import pytest

import etl
from etl.emulators.testing import running
from etl.errors import BadInputError
from etl.synthetic import universe
from etl.synthetic.actions import actions
from etl.warehouse.adjust import adjust_bars
from tests.conftest import ETL, etl_env

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

NOW = dt.datetime(2025, 1, 6, 12, 0, tzinfo=dt.UTC)
SYMBOLS = ["600000.SH", "000001.SZ", "600519.SH"]
START, END = dt.date(2022, 1, 1), dt.date(2024, 12, 31)
Etl = Callable[..., dict[str, object]]


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Etl]]:
    root = tmp_path_factory.mktemp("adjust") / "data"
    with running("infoway", now=NOW) as iw, running("amazingdata", now=NOW) as ad:
        env = etl_env(
            root,
            ETL_INFOWAY_BASE_URL=iw.base_url,
            ETL_INFOWAY_API_KEY="key-for-tests",
            ETL_AMAZINGDATA_BASE_URL=ad.base_url,
            ETL_AMAZINGDATA_USERNAME="analyst",
            ETL_AMAZINGDATA_PASSWORD="pw-for-tests",
        )

        def run(*args: str, code: int = 0) -> dict[str, object]:
            done = subprocess.run(
                [*ETL, *args, "--json"], env=env, capture_output=True, text=True, timeout=120
            )
            assert done.returncode == code, done.stderr
            return json.loads(done.stdout) if done.stdout.strip() else {}

        sel = ["--symbols", ",".join(SYMBOLS), "--start", str(START), "--end", str(END)]
        run("backfill", "--vendor", "amazingdata", "--dataset", "klines", "--freq", "1d", *sel)
        run("backfill", "--vendor", "infoway", "--dataset", "adj_factors", *sel)
        yield root, run
        assert iw.stats()["violations"] == 0 and ad.stats()["violations"] == 0


def _expected_qfq(symbol: str, raw: pl.DataFrame, anchor: dt.date) -> list[float]:
    inst = universe(0).visible(symbol, NOW)
    assert inst is not None
    acts = actions(inst, 0)
    out = []
    for day, close in zip(raw["trade_date"], raw["close"], strict=True):
        factor = 1.0
        for ex, f in zip(acts.ex_dates, acts.forward, strict=True):
            if day < ex <= anchor:
                factor *= f
        out.append(close * factor)
    return out


def _close(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(abs(x - y) <= 1e-9 * abs(y) for x, y in zip(a, b, strict=True))


def test_qfq_and_hfq_equal_the_vendors_series(lake: tuple[Path, Etl]) -> None:
    root, _ = lake
    wh = etl.Warehouse(root)
    moves: dict[str, tuple[float, float]] = {}
    for symbol in SYMBOLS:
        raw = wh.bars(symbol, "1d", START, END)
        inst = universe(0).visible(symbol, NOW)
        assert inst is not None and raw.height > 600
        exes = [d for d in actions(inst, 0).ex_dates if START < d <= END]
        assert exes, f"{symbol} has no ex-date in the window: the test would prove nothing"
        anchor = raw["trade_date"].max()
        assert isinstance(anchor, dt.date)
        qfq = wh.bars(symbol, "1d", START, END, adjust="qfq")
        assert qfq.columns == raw.columns and qfq["ts"].to_list() == raw["ts"].to_list()
        assert _close(qfq["close"].to_list(), _expected_qfq(symbol, raw, anchor))
        # volume scales inversely: price x volume keeps its meaning
        assert _close(
            (qfq["close"] * qfq["volume"]).to_list(), (raw["close"] * raw["volume"]).to_list()
        )
        hfq = wh.bars(symbol, "1d", START, END, adjust="hfq")
        ratio = (hfq["close"] / qfq["close"]).to_list()
        assert max(ratio) - min(ratio) <= 1e-9 * max(ratio)  # hfq = qfq x one constant
        # On an ex-date the raw price drops by the event's factor; the adjusted series moves
        # only as the market did overnight (the synthetic path), so across the ex-dates its
        # overnight moves are smaller than the raw ones.
        raw_moves = adj_moves = 0.0
        for ex in exes:
            i = raw["trade_date"].to_list().index(ex)
            raw_moves += abs(math.log(raw["open"][i] / raw["close"][i - 1]))
            adj_moves += abs(math.log(qfq["open"][i] / qfq["close"][i - 1]))
        moves[symbol] = (raw_moves, adj_moves)
    assert sum(a for _, a in moves.values()) < sum(r for r, _ in moves.values()), moves


def test_infoway_forward_and_amazingdata_backward_factors_agree(lake: tuple[Path, Etl]) -> None:
    root, run = lake
    run("backfill", "--vendor", "amazingdata", "--dataset", "adj_factors",
        "--symbols", ",".join(SYMBOLS), "--start", str(START), "--end", str(END))  # fmt: skip
    wh = etl.Warehouse(root)
    factors = wh.adj_factors(SYMBOLS)
    assert set(factors["vendor"]) == {"infoway", "amazingdata"}
    assert factors.filter(pl.col("vendor") == "amazingdata")["forward_factor"].null_count() > 0
    raw = wh.bars(SYMBOLS, "1d", START, END)
    series = {
        vendor: adjust_bars(
            raw, factors.filter(pl.col("vendor") == vendor), "qfq", anchor=None, as_of=None
        )["close"].to_list()
        for vendor in ("infoway", "amazingdata")
    }
    assert _close(series["infoway"], series["amazingdata"])


def test_as_of_leaves_later_ex_dates_out(lake: tuple[Path, Etl]) -> None:
    root, _ = lake
    wh = etl.Warehouse(root)
    symbol = SYMBOLS[0]
    inst = universe(0).visible(symbol, NOW)
    assert inst is not None
    last_ex = max(d for d in actions(inst, 0).ex_dates if START < d <= END)
    before = last_ex - dt.timedelta(days=1)
    raw = wh.bars(symbol, "1d", START, before)
    # Anchored after the ex-date: standing on `before`, that ex-date was not known yet.
    seen = wh.bars(symbol, "1d", START, before, adjust="qfq", anchor=END, as_of=before)
    future = wh.bars(symbol, "1d", START, before, adjust="qfq", anchor=END)
    assert _close(seen["close"].to_list(), _expected_qfq(symbol, raw, before))
    assert not _close(seen["close"].to_list(), future["close"].to_list())  # it did matter


def test_the_catalog_macro_equals_the_warehouse(lake: tuple[Path, Etl]) -> None:
    root, run = lake
    wh = etl.Warehouse(root)
    anchor = "2023-06-30"
    for mode in ("qfq", "hfq"):
        doc = run(
            "sql",
            f"SELECT symbol, ts, close, volume FROM klines_adj('{mode}', DATE '{anchor}') "
            "WHERE freq = '1d' ORDER BY symbol, ts",
            "--format", "json",
        )  # fmt: skip
        rows = doc if isinstance(doc, list) else doc["rows"]  # type: ignore[index]
        frame = wh.bars(SYMBOLS, "1d", START, END, adjust=mode, anchor=anchor)
        assert [r["symbol"] for r in rows] == frame["symbol"].to_list()
        assert _close([r["close"] for r in rows], frame["close"].to_list())
        assert _close([r["volume"] for r in rows], frame["volume"].to_list())


def test_a_new_ex_date_rewrites_no_bar_file(lake: tuple[Path, Etl]) -> None:
    root, run = lake

    def hashes() -> dict[str, str]:
        return {
            str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((root / "lake" / "klines").rglob("*"))
            if p.is_file()
        }

    before = hashes()
    assert before
    run("backfill", "--vendor", "infoway", "--dataset", "adj_factors",
        "--symbols", "000002.SZ", "--start", "2010-01-01", "--end", str(END))  # fmt: skip
    assert hashes() == before


def test_bad_input_is_refused_before_anything_is_read(lake: tuple[Path, Etl]) -> None:
    root, run = lake
    wh = etl.Warehouse(root)
    with pytest.raises(BadInputError, match="qfq"):
        wh.bars(SYMBOLS[0], "1d", START, END, adjust="forward")
    with pytest.raises(BadInputError, match="anchor"):
        wh.bars(SYMBOLS[0], "1d", START, END, adjust="qfq", anchor="2024-13-01")
    run("backfill", "--vendor", "infoway", "--dataset", "adj_factors",
        "--start", str(START), "--end", str(END), code=2)  # fmt: skip


def test_the_arrow_table_is_the_frame(lake: tuple[Path, Etl]) -> None:
    """``bar_table`` (what ``etl serve`` encodes) holds the very rows, columns and order of
    ``bars``: raw and adjusted, one symbol and several."""
    root, _ = lake
    wh = etl.Warehouse(root)
    for adjust in (None, "qfq", "hfq"):
        for symbols in ([SYMBOLS[0]], list(reversed(SYMBOLS))):
            frame = wh.bars(symbols, "1d", START, END, adjust=adjust)
            table = pl.from_arrow(wh.bar_table(symbols, "1d", START, END, adjust=adjust))
            assert isinstance(table, pl.DataFrame) and frame.height > 600
            assert table.equals(frame), (adjust, symbols)
