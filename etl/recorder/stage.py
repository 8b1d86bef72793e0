"""What the recorder received, staged in memory and committed through the lake.

Rows wait here at most one commit interval (the contract: whatever was received is committed
at least every 2 s, so a SIGKILL loses at most that). 1m bars are built from the stream on
the stream's time: a minute closes when a later message of its symbol arrives, or when the
connection's stream time passes its end by :data:`LATENESS`; never by the local clock. A
minute is stored only if the connection saw it from its start to its end (it began at or
after the connection's first message and closed before the connection ended): a partial
minute is left to the REST repair, and the forming minute is never stored.

Sums of decimal wire values (volume, turnover) are rounded to :data:`VOLUME_PLACES` /
:data:`AMOUNT_PLACES` so that floating-point drift in the last bit does not make a live bar
differ from the vendor's REST bar.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Final

import polars as pl

from etl.calendars import market_spec
from etl.lake import Lake
from etl.names import parse_symbol

__all__ = ["Stage"]

MINUTE_MS: Final = 60_000
LATENESS: Final = 5_000  # ms of stream time another symbol's message may lead by
VOLUME_PLACES: Final = 8
AMOUNT_PLACES: Final = 4
_UTC: Final = dt.UTC
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_US: Final = dt.timedelta(microseconds=1)
_NEVER: Final = 1 << 62
_TICK_COLUMNS: Final = (
    ("symbol", pl.String), ("ts_ms", pl.Int64), ("seq", pl.Int64), ("price", pl.Float64),
    ("volume", pl.Float64), ("amount", pl.Float64), ("side", pl.String), ("recv_at", pl.Int64),
)  # fmt: skip


@lru_cache(maxsize=65_536)
def _zone(symbol: str) -> Any:
    market = parse_symbol(symbol).market or "FX"
    return market_spec(market).zone


@dataclass(slots=True)
class _Minute:
    start: int  # ms
    open: float
    high: float
    low: float
    close: float
    volume: list[float] = field(default_factory=list)
    amount: list[float] = field(default_factory=list)
    cum_start: float | None = None  # quotes: cumulative volume before the minute's first
    cum_end: float | None = None  # quotes: cumulative volume after the minute's last quote
    fresh: bool = True


@dataclass
class Stage:
    """Rows and bars waiting for the next commit, for one recorder process."""

    lake: Lake
    vendor: str
    bars_from: str  # "ticks", "quotes" (cumulative volume) or "klines" (pushed bars)
    # (symbol, ts ms, seq, price, volume, amount, side, recv_at us): one tuple per trade, so
    # that a commit in another thread swaps the list between two appends, never inside one
    ticks: list[tuple[Any, ...]] = field(default_factory=list)
    quotes: dict[tuple[str, int], tuple[Any, ...]] = field(default_factory=dict)
    bars: list[dict[str, Any]] = field(default_factory=list)
    forming: dict[str, _Minute] = field(default_factory=dict)
    pushed: dict[str, dict[str, Any]] = field(default_factory=dict)  # Infoway kline pushes
    last_cum: dict[str, float | None] = field(default_factory=dict)
    seq: dict[str, int] = field(default_factory=dict)  # symbol -> next seq at its last_ts
    last_ts: dict[str, int] = field(default_factory=dict)  # stored (restart) or seen
    whole_from: dict[str, int | None] = field(default_factory=dict)  # per symbol: minutes
    # from the first message of its connection on are whole
    stream_ms: int = 0
    written: dict[str, int] = field(default_factory=lambda: {"ticks": 0, "quotes": 0,
                                                              "bars": 0})  # fmt: skip
    recent: list[int] = field(default_factory=list)
    # the earliest end of a forming minute: below it no minute can close (add() is hot)
    close_due: int = 0
    _recv_at: dt.datetime | None = None  # the last recv_at seen
    _recv_us: int = 0  # and its epoch microseconds

    # -- the connection -------------------------------------------------------------------

    def connected(self, symbols: Sequence[str]) -> None:
        for sym in symbols:
            self.whole_from[sym] = None

    def first_message(self, symbols: Sequence[str], ts: int) -> None:
        """The connection's first message: minutes starting from here are seen whole."""
        for sym in symbols:
            self.whole_from[sym] = ts

    def disconnected(self, symbols: Sequence[str]) -> None:
        """Minutes still forming are partial: dropped (the REST repair fills them)."""
        for sym in symbols:
            self.forming.pop(sym, None)
            self.pushed.pop(sym, None)
            self.last_cum.pop(sym, None)
            self.whole_from[sym] = None

    # -- receiving ------------------------------------------------------------------------

    def add(self, row: tuple[Any, ...], recv_at: dt.datetime) -> None:
        kind = row[0]
        if kind == "tick":
            self.add_tick(row[1], int(row[2]), row[3], row[4], row[5], row[6], recv_at)
            return
        sym, ts = row[1], int(row[2])
        if kind != "kline" and ts > self.stream_ms:  # a pushed bar carries its open
            self.stream_ms = ts
        if kind == "quote":
            self.quotes[(sym, ts)] = (sym, ts, row[3], recv_at)
            if self.bars_from == "quotes":
                f = row[3]
                if f.get("last") is not None:
                    self._bar_quote(sym, ts, f["last"], f.get("cum_volume"))
        elif kind == "kline" and self.bars_from == "klines":
            self._bar_pushed(sym, ts, row[3])
        if self.stream_ms - LATENESS >= self.close_due:
            self._close_all(self.stream_ms - LATENESS)

    def add_tick(
        self, sym: str, ts: int, price: float, vol: float | None, amt: float | None,
        side: str | None, recv_at: dt.datetime,
    ) -> None:  # fmt: skip
        """One trade. The hot path (hundreds of thousands a second: bench/record.py), so
        no call or object it can avoid: minutes are updated in place, the recv_at of a
        burst converted once."""
        if ts > self.stream_ms:  # noqa: PLR1730 - max() is a call, this is the hot path
            self.stream_ms = ts
        last = self.last_ts.get(sym)
        if last is None or ts > last:
            n = 0
        elif ts == last:
            n = self.seq[sym]
        else:
            return  # already in the lake (a restart resumes where the lake ends)
        self.seq[sym] = n + 1
        self.last_ts[sym] = ts
        if recv_at is self._recv_at:
            us = self._recv_us
        else:
            us = self._recv_us = (recv_at - _EPOCH) // _US
            self._recv_at = recv_at
        self.ticks.append((sym, ts, n, price, vol, amt, side, us))
        if self.bars_from == "ticks":
            start = ts - ts % MINUTE_MS
            cur = self.forming.get(sym)
            if cur is None or cur.start != start:
                cur = self._roll(sym, start, price)
            else:
                if price > cur.high:
                    cur.high = price
                elif price < cur.low:
                    cur.low = price
                cur.close = price
            if vol is not None:
                cur.volume.append(vol)
            if amt is not None:
                cur.amount.append(amt)
        if self.stream_ms - LATENESS >= self.close_due:
            self._close_all(self.stream_ms - LATENESS)

    def _bar_quote(self, sym: str, ts: int, price: float, cum: float | None) -> None:
        start = ts - ts % MINUTE_MS
        before = self.last_cum.get(sym)
        cur = self._roll(sym, start, price)
        if cur.fresh:
            cur.cum_start, cur.fresh = before, False
        cur.cum_end = cum
        self.last_cum[sym] = cum

    def _bar_pushed(self, sym: str, start: int, bar: dict[str, Any]) -> None:
        prev = self.pushed.get(sym)
        if prev is not None and prev["start"] < start:
            self._emit_pushed(sym, prev)
        self.pushed[sym] = {"start": start, **bar}

    def _roll(self, sym: str, start: int, price: float) -> _Minute:
        cur = self.forming.get(sym)
        if cur is not None and cur.start != start:
            self._close(sym, cur)  # the stream passed its end: closed
            cur = None
        if cur is None:
            cur = _Minute(start, price, price, price, price)
            self.forming[sym] = cur
            self.close_due = min(self.close_due, start + MINUTE_MS)
        cur.high, cur.low, cur.close = max(cur.high, price), min(cur.low, price), price
        return cur

    def _close_all(self, through: int) -> None:
        due = _NEVER
        for sym, cur in list(self.forming.items()):
            end = cur.start + MINUTE_MS
            if end <= through:
                self._close(sym, cur)
                del self.forming[sym]
            elif end < due:
                due = end
        self.close_due = due

    def _close(self, sym: str, cur: _Minute) -> None:
        since = self.whole_from.get(sym)
        if since is None or cur.start < since:
            return  # the connection did not see this minute from its start
        if self.bars_from == "quotes":
            if cur.cum_end is None:
                volume = None
            elif cur.cum_start is None:
                return  # no quote before this minute: its volume is unknown
            elif cur.cum_end < cur.cum_start:  # the day's count restarted with this minute
                volume = round(cur.cum_end, VOLUME_PLACES)
            else:
                volume = round(cur.cum_end - cur.cum_start, VOLUME_PLACES)
            amount = None
        else:
            volume = round(math.fsum(cur.volume), VOLUME_PLACES) if cur.volume else None
            amount = round(math.fsum(cur.amount), AMOUNT_PLACES) if cur.amount else None
        self._append_bar(sym, cur.start, cur.open, cur.high, cur.low, cur.close, volume, amount)

    def _emit_pushed(self, sym: str, bar: dict[str, Any]) -> None:
        since = self.whole_from.get(sym)
        if since is None or bar["start"] < since:
            return
        self._append_bar(sym, bar["start"], bar["o"], bar["h"], bar["l"], bar["c"],
                         bar.get("v"), bar.get("vw"))  # fmt: skip

    def _append_bar(
        self, sym: str, start: int, o: float, h: float, lo: float, c: float,
        volume: float | None, amount: float | None,
    ) -> None:  # fmt: skip
        ts = dt.datetime.fromtimestamp(start / 1000, _UTC)
        if sym.endswith(".FX"):
            volume = amount = None  # FX has no volume (the adapters store null too)
        self.bars.append({
            "symbol": sym, "freq": "1m", "ts": ts,
            "trade_date": ts.astimezone(_zone(sym)).date(),
            "open": o, "high": h, "low": lo, "close": c, "volume": volume, "amount": amount,
            "settle": None, "open_interest": None, "vendor": self.vendor,
            "request_id": None, "source": "live",
        })  # fmt: skip

    # -- committing -----------------------------------------------------------------------

    @property
    def pending(self) -> int:
        return len(self.ticks) + len(self.quotes) + len(self.bars)

    def commit(self, now: dt.datetime) -> int:
        """Write what is staged (ticks, quotes, closed bars); returns the rows written.

        Runs in a thread while the loop goes on adding: each buffer is swapped for an empty
        one in one step, so a row added meanwhile waits for the next commit, never lost."""
        written = 0
        if self.ticks:
            rows, self.ticks = self.ticks, []
            frame = pl.DataFrame(
                [pl.Series(name, [r[i] for r in rows], dtype)
                 for i, (name, dtype) in enumerate(_TICK_COLUMNS)]
            ).with_columns(pl.col("recv_at").cast(pl.Datetime("us", "UTC")))  # fmt: skip
            frame = self._dated(frame)
            result = self.lake.write("ticks", frame, now=now)
            self.written["ticks"] += result.rows_added
            written += result.rows_written
        if self.quotes:
            quotes, self.quotes = self.quotes, {}
            rows = list(quotes.values())
            flat = [{"symbol": s, "ts_ms": t, "recv_at": r, **f} for s, t, f, r in rows]
            frame = self._dated(pl.DataFrame(flat, infer_schema_length=None))
            result = self.lake.write("quotes", frame, now=now)
            self.written["quotes"] += result.rows_added
            written += result.rows_written
        if self.bars:
            bars, self.bars = self.bars, []
            frame = pl.DataFrame(bars, schema=_BAR_SCHEMA)
            # the live bar kept first: klines' copy is replaced when REST repairs the day,
            # and live_vs_rest sets the two side by side
            self.lake.write("live_klines", frame.select(_LIVE_COLUMNS), now=now)
            result = self.lake.write("klines", frame, now=now)
            self.written["bars"] += result.rows_added
            written += result.rows_written
        return written

    def _dated(self, frame: pl.DataFrame) -> pl.DataFrame:
        ts = pl.from_epoch(pl.col("ts_ms"), time_unit="ms").dt.replace_time_zone("UTC")
        frame = frame.with_columns(ts.cast(pl.Datetime("us", "UTC")).alias("ts"))
        zones = {s: str(_zone(s)) for s in frame["symbol"].unique().to_list()}
        parts = []
        for zone, syms in _by_zone(zones).items():
            part = frame.filter(pl.col("symbol").is_in(syms))
            local = pl.col("ts").dt.convert_time_zone(zone).dt.date()
            parts.append(part.with_columns(local.alias("trade_date")))
        out = pl.concat(parts, how="vertical_relaxed").drop("ts_ms")
        return out.with_columns(pl.lit(self.vendor).alias("vendor"))


_F64: Final = pl.Float64()
_STR: Final = pl.String()
_BAR_SCHEMA: Final = pl.Schema({
    "symbol": _STR, "freq": _STR, "ts": pl.Datetime("us", "UTC"), "trade_date": pl.Date(),
    "open": _F64, "high": _F64, "low": _F64, "close": _F64, "volume": _F64, "amount": _F64,
    "settle": _F64, "open_interest": _F64, "vendor": _STR, "request_id": _STR, "source": _STR,
})  # fmt: skip


_LIVE_COLUMNS: Final = ("symbol", "freq", "ts", "trade_date", "open", "high", "low", "close",
                        "volume", "amount", "vendor")  # fmt: skip


def _by_zone(zones: dict[str, str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for sym, zone in zones.items():
        out.setdefault(zone, []).append(sym)
    return out
