"""Live 1m bars built on the stream's time: a whole minute rebuilds the REST bar exactly, a
partial or forming minute is never stored, quotes give volume by their cumulative count."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from etl.emulators.tape import day_tape
from etl.lake import Lake
from etl.recorder.stage import Stage

DAY = dt.date(2024, 6, 28)
RECV = dt.datetime(2024, 6, 28, 3, tzinfo=dt.UTC)


def test_ticks_rebuild_whole_minutes_and_leave_partial_and_forming_ones(data_root: Path) -> None:
    tape = day_tape("600000.SH", DAY, 0).trades
    stage = Stage(Lake(data_root), "infoway", "ticks")
    stage.connected(["600000.SH"])
    start = 30  # mid-minute: the first minute seen is partial
    stage.first_message(["600000.SH"], tape[start].t_ms)
    used = tape[start:200]
    for t in used:
        stage.add(("tick", t.symbol, t.t_ms, t.price, t.volume, t.amount, None), RECV)
    bars = {b["ts"]: b for b in stage.bars}
    seen = sorted({t.bar_us for t in used})
    forming = seen[-1]
    for bar_us in seen:
        ts = dt.datetime.fromtimestamp(bar_us / 1e6, dt.UTC)
        rest = next(t.bar for t in tape if t.bar_us == bar_us)
        if bar_us < used[0].t_ms * 1000 or bar_us == forming:
            assert ts not in bars  # partial (before the first message) or still forming
            continue
        got = bars[ts]
        want = (rest.open, rest.high, rest.low, rest.close, rest.volume, rest.amount)
        assert (got["open"], got["high"], got["low"], got["close"], got["volume"],
                got["amount"]) == want  # fmt: skip
        assert got["source"] == "live"
    stage.commit(RECV)
    stored = pl.read_parquet(sorted((data_root / "lake" / "ticks").rglob("*.parquet")))
    assert stored.height == len(used)
    assert stored.select("ts", "seq").is_duplicated().sum() == 0


def test_a_disconnect_drops_the_forming_minute(data_root: Path) -> None:
    tape = day_tape("600000.SH", DAY, 0).trades
    stage = Stage(Lake(data_root), "infoway", "ticks")
    stage.connected(["600000.SH"])
    stage.first_message(["600000.SH"], tape[0].t_ms)
    for t in tape[:25]:
        stage.add(("tick", t.symbol, t.t_ms, t.price, t.volume, t.amount, None), RECV)
    before = len(stage.bars)
    stage.disconnected(["600000.SH"])
    stage.connected(["600000.SH"])
    later = tape[60]
    stage.first_message(["600000.SH"], later.t_ms)
    stage.add(("tick", later.symbol, later.t_ms, later.price, later.volume, later.amount,
               None), RECV)  # fmt: skip
    assert len(stage.bars) == before  # the minute cut by the disconnect is not a bar


def test_quotes_give_volume_from_the_cumulative_count(data_root: Path) -> None:
    tape = day_tape("BTCUSDT.CC", DAY, 0).trades
    stage = Stage(Lake(data_root), "mdapi", "quotes")
    stage.connected(["BTCUSDT.CC"])
    stage.first_message(["BTCUSDT.CC"], tape[100].second * 1000)
    for t in tape[100:160]:
        fields = {"last": t.price, "cum_volume": t.cum_volume}
        stage.add(("quote", t.symbol, t.second * 1000, fields), RECV)
    assert stage.bars
    for got in stage.bars:
        rest = next(t.bar for t in tape if t.bar_us == int(got["ts"].timestamp() * 1e6))
        assert (got["open"], got["high"], got["low"], got["close"], got["volume"]) == (
            rest.open, rest.high, rest.low, rest.close, rest.volume)  # fmt: skip
