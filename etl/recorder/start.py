"""Building a recorder from the command line's selection, and resuming where the lake ends."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Sequence
from typing import Any, TextIO

import polars as pl

from etl.errors import BadInputError
from etl.names import Symbol
from etl.recorder.feeds import DEFAULT_CHANNELS, check_selection, feed_for
from etl.recorder.run import Recorder
from etl.recorder.stage import Stage

__all__ = ["bars_source", "build", "record", "select_symbols"]


def _codes(rt: Any, vendor: str, symbols: Sequence[Symbol]) -> dict[str, str]:
    """Canonical -> the code the feed uses: the instruments map (StockTV: the pid), else
    the vendor's naming rule; an unknown symbol is bad input (exit 2), naming the fix."""
    from etl.tasks.runtime import instrument_map

    imap = instrument_map(rt.root, vendor)
    out: dict[str, str] = {}
    for sym in symbols:
        text = str(sym)
        if vendor == "stocktv":
            pid = imap.ids.get(text)
            if pid is None:
                raise BadInputError(
                    f"unknown symbol {text} for stocktv: run `etl instruments sync --vendor "
                    "stocktv` first (the feed names instruments by pid)"
                )
            out[text] = str(pid)
        elif vendor == "mdapi":
            code = imap.code_for(text)
            if code is None and sym.exchange == "CC":
                code = sym.code.lower()
            elif code is None and sym.exchange == "FX":
                code = f"fx_s{sym.code.lower()}"
            if code is None:
                raise BadInputError(
                    f"unknown symbol {text} for mdapi: run `etl instruments sync --vendor mdapi`"
                )
            out[text] = code
        else:
            code = imap.code_for(text)
            synced = sum(1 for s in imap.codes if s.endswith(f".{sym.exchange}"))
            if code is None and synced:  # the market's list is in the lake and lacks it
                raise BadInputError(
                    f"unknown symbol {text} for {vendor}: not among the {synced} synced "
                    f"instruments of {sym.exchange}; check it, or run `etl instruments sync "
                    f"--vendor {vendor} --market {sym.exchange}` again"
                )
            if code is None:
                code = {"CC": sym.code, "FX": sym.code, "INFOWAY": sym.code}.get(
                    sym.exchange, text.replace("_", ".") if sym.exchange == "US" else text
                )
            out[text] = code
    return out


def select_symbols(
    rt: Any, vendor: str, symbols: Sequence[Symbol] | None, market: str | None
) -> list[Symbol]:
    """The symbols to record: those given, or every synced instrument of ``market`` (the
    vendor's instruments list); none synced is bad input naming the command to run."""
    if symbols:
        return list(symbols)
    from etl.names import parse_market, parse_symbol
    from etl.tasks.runtime import instrument_map

    mkt = parse_market(market or "")
    imap = instrument_map(rt.root, vendor)
    syms = [parse_symbol(s) for s in sorted(imap.codes) if s.endswith(f".{mkt}")]
    if not syms:
        raise BadInputError(
            f"no {vendor} instruments of {mkt} are synced: run `etl instruments sync "
            f"--vendor {vendor} --market {mkt}` first, or give --symbols"
        )
    return syms


def bars_source(vendor: str, channels: Sequence[str]) -> str:
    """What live 1m bars are built from: trades if recorded, else Infoway's pushed bars;
    quotes (their cumulative volume) for mdapi and StockTV."""
    if vendor != "infoway":
        return "quotes"
    if "trades" in channels:
        return "ticks"
    return "klines" if "klines" in channels else "none"


def _recent_files(stage: Stage, dataset: str) -> list[Any]:
    """The files of ``dataset``'s last three trade dates (a restart within a session)."""
    folder = stage.lake.paths.dataset(dataset)
    days = sorted(p for p in folder.glob("date=*") if p.is_dir())[-3:] if folder.is_dir() else []
    return [f for d in days for f in sorted(d.glob("*.parquet"))]


def resume_points(stage: Stage) -> dict[str, int]:
    """Where the lake ends, per symbol: trades older than the last stored one are not
    stored again, and ``seq`` continues after the trades stored at that instant. Returns
    each symbol's last stored message (trade or quote, epoch ms): where a killed recorder's
    downtime began. Only the last three trade dates are read (a restart within a session)."""
    ms = pl.col("ts").dt.epoch("ms")
    ends: dict[str, int] = {}
    files = _recent_files(stage, "ticks")
    if files:
        stored = (
            pl.scan_parquet(files)
            .select("symbol", ms.alias("ms"), "seq")
            .group_by("symbol")
            .agg(
                pl.col("ms").max().alias("last"),
                pl.col("seq").filter(pl.col("ms") == pl.col("ms").max()).max().alias("seq"),
            )
            .collect()
        )
        for sym, last, seq in stored.iter_rows():
            stage.last_ts[sym] = ends[sym] = int(last)
            stage.seq[sym] = int(seq) + 1
    files = _recent_files(stage, "quotes")
    if files:
        quoted = pl.scan_parquet(files).group_by("symbol").agg(ms.max().alias("last")).collect()
        for sym, last in quoted.iter_rows():
            ends[sym] = max(ends.get(sym, 0), int(last))
    return ends


def build(
    rt: Any,
    vendor: str,
    symbols: Sequence[Symbol],
    channels: Sequence[str] | None,
    *,
    duration: float | None,
    status_every: float = 10.0,
    status_out: TextIO = sys.stderr,
) -> tuple[Recorder, list[str]]:
    """Check everything (exit 2 / 3 before connecting) and build the recorder."""
    chosen = list(channels or DEFAULT_CHANNELS.get(vendor, ()))
    check_selection(vendor, symbols, chosen)
    settings = rt.settings.vendor(vendor)
    key = settings.api_key.reveal() if settings.api_key else None
    codes = _codes(rt, vendor, symbols)
    names = [str(s) for s in symbols]
    feeds = feed_for(vendor, names, chosen, codes, ws_url=settings.ws_url, api_key=key)
    stage = Stage(rt.lake, vendor, bars_source(vendor, chosen))
    ends = resume_points(stage)

    async def repair(
        syms: Sequence[str], first: dt.date, last: dt.date, closed_by: dt.datetime
    ) -> tuple[int, str]:
        from etl.tasks.backfill import BackfillRequest, backfill

        req = BackfillRequest(vendor, "klines", tuple(syms), "1m", first, last, closed_by=closed_by)
        record = await backfill(rt, req)
        return int(record.id), str(record.status)

    recorder = Recorder(
        rt.lake, vendor, feeds, stage, rt.clock, repair=repair, duration=duration,
        status_every=status_every, status_out=status_out,
        lake_end={s: ends[s] for s in names if s in ends},
    )  # fmt: skip
    return recorder, chosen


def record(rt: Any, recorder: Recorder) -> None:
    import asyncio

    asyncio.run(recorder.run())
