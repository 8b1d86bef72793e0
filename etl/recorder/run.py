"""The recorder's loop: connections, heartbeats, reconnects, commits, gaps and their repair.

One asyncio task per connection (Infoway: one per ``business``), one committer, one repairer,
one status printer. The committer never waits on anything but its own write: a repair (a REST
backfill that may take many seconds) runs in its own task, so what is received is still
committed every second while it runs.

A connection that closes, errors, or stays silent for two heartbeat periods is a gap: from the
last message before it to the first message after the reconnect (stream time), written to the
gap ledger (``dataset`` ticks/quotes, ``freq`` ``stream``) and repaired over REST once the
stream has passed the gap's last minute: a backfill task of those symbols' 1m bars for the
gap's trade dates, under the vendor's shared rate governor. REST bars replace live ones (the
lake's precedence), so the repair also settles every live bar of those days up to the stream's
last closed minute. Its REST bars of later minutes are dropped, judged on the stream's time
(the vendor's present), not the host's clock: the vendor's present minute is still forming, and
its partial REST bar would replace a whole live bar. The next repair, or the end-of-day fill,
settles those minutes.

Reconnects back off exponentially with jitter (1 s doubling to 30 s, reset by a good
connection). A refused handshake (HTTP 401/403) before anything was received is a bad key or
address: exit 3, naming the variable, nothing written.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TextIO

import polars as pl
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI, WebSocketException

from etl.errors import AuthError
from etl.lake import Lake
from etl.recorder.down import DOWN_REASON, claim, release
from etl.recorder.feeds import Feed
from etl.recorder.stage import LATENESS, MINUTE_MS, Stage, _zone
from etl.timefmt import iso_utc

__all__ = ["Gap", "Recorder"]

log = logging.getLogger(__name__)

COMMIT_EVERY: Final = 1.0  # seconds; the contract allows 2
BACKOFF_FIRST: Final = 1.0
BACKOFF_MAX: Final = 30.0
LIVE_WINDOW_MS: Final = 60_000  # a symbol with no message in a minute of stream is not live


@dataclass
class Gap:
    feed: int
    symbols: Sequence[str]
    start_ms: int  # the last message before (stream time)
    reason: str
    end_ms: int | None = None  # the first message after
    repaired: bool = False
    task_id: int | None = None


@dataclass
class Recorder:
    lake: Lake
    vendor: str
    feeds: Sequence[Feed]
    stage: Stage
    clock: Callable[[], dt.datetime]
    # (symbols, first, last trade date, bars closed by) -> (task id, task status)
    repair: Callable[[Sequence[str], dt.date, dt.date, dt.datetime], Any] | None = None
    duration: float | None = None
    status_every: float = 10.0
    status_out: TextIO = sys.stderr
    # symbol -> its last message in the lake (epoch ms): where a killed recorder's downtime began
    lake_end: dict[str, int] = field(default_factory=dict)
    messages: int = 0
    reconnects: int = 0
    gaps: list[Gap] = field(default_factory=list)
    last_by_symbol: dict[str, int] = field(default_factory=dict)
    last_recv: float | None = None
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    auth_error: AuthError | None = None
    stopped_early: bool = False  # stopped before ``duration`` ran out (SIGTERM, SIGINT)
    connected_ever: bool = False  # a feed's handshake succeeded at least once
    down: dict[int, str] = field(default_factory=dict)  # feed index -> why it is not connected
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _open_gap: dict[int, Gap] = field(default_factory=dict)
    _repairing: asyncio.Lock = field(default_factory=asyncio.Lock)
    _commit_lock: threading.Lock = field(default_factory=threading.Lock)
    _fresh: set[int] = field(default_factory=set)  # connections with no message yet
    _clock_ms: int = -1
    _clock_at: dt.datetime | None = None

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        self.started_at = self.clock()
        loop = asyncio.get_running_loop()
        self._signals()
        self._downtime()
        tasks = [asyncio.create_task(self._connection(i, f)) for i, f in enumerate(self.feeds)]
        tasks.append(asyncio.create_task(self._committer()))
        tasks.append(asyncio.create_task(self._repairer()))
        tasks.append(asyncio.create_task(self._status()))
        try:
            if self.duration is not None:
                try:
                    await asyncio.wait_for(self._stop.wait(), self.duration)
                    self.stopped_early = True  # a signal (or a refused key) came first
                except TimeoutError:
                    pass
            else:
                await self._stop.wait()
        finally:
            self._stop.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)
            self._commit()
            if self.auth_error is None:
                await self._repair_due(final=True)
            self.finished_at = self.clock()
            release(self.lake.paths, self.vendor)  # a clean stop (a kill leaves the marker)
        if self.auth_error is not None:
            raise self.auth_error

    def _downtime(self) -> None:
        """Mark this recorder running; if a killed one left its symbols unrecorded, the
        time from the lake's last message of them to this connection's first is a gap
        (closed and repaired like a disconnect's)."""
        symbols = [s for f in self.feeds for s in f.symbols]
        down = claim(self.lake.paths, self.vendor, symbols)
        for index, feed in enumerate(self.feeds):
            syms = [s for s in feed.symbols if s in down and s in self.lake_end]
            if syms:
                gap = Gap(index, syms, max(self.lake_end[s] for s in syms), DOWN_REASON)
                self._open_gap[index] = gap
                self.gaps.append(gap)

    def _signals(self) -> None:
        """SIGTERM/SIGINT stop the recorder (again after a repair task, whose runner
        installs its own handlers and removes them when it ends)."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop)

    # -- connections ----------------------------------------------------------------------

    async def _connection(self, index: int, feed: Feed) -> None:
        delay = BACKOFF_FIRST
        ever = False
        while not self._stop.is_set():
            received = 0
            reason = "disconnect"
            try:
                async with connect(
                    feed.url, ping_interval=None, open_timeout=10, close_timeout=2,
                    max_size=1 << 22,
                ) as ws:  # fmt: skip
                    if ever:
                        self.reconnects += 1
                    ever = self.connected_ever = True
                    if self.down.pop(index, None) is not None:
                        log.warning("%s feed %d: connected", self.vendor, index)
                    self.stage.connected(feed.symbols)
                    for frame in feed.subscribe():
                        await ws.send(frame)
                    pinger = asyncio.create_task(self._heartbeat(ws, feed))
                    try:
                        received, reason = await self._receive(index, ws, feed)
                    finally:
                        pinger.cancel()
            except InvalidStatus as exc:
                status = exc.response.status_code
                if status in (401, 403) and not ever:
                    self.auth_error = _auth(self.vendor, status)
                    self._stop.set()
                    return
                reason = f"handshake refused: HTTP {status}"
            except (OSError, TimeoutError, WebSocketException, InvalidURI) as exc:
                reason = f"disconnect: {type(exc).__name__}"
            except asyncio.CancelledError:
                self.stage.disconnected(feed.symbols)
                raise
            self.stage.disconnected(feed.symbols)
            if self._stop.is_set():
                return
            if received:
                delay = BACKOFF_FIRST
            gap = self._open_gap.get(index)
            if gap is None and self.stage.stream_ms:
                gap = Gap(index, list(feed.symbols), self._last_of(feed), reason)
                self._open_gap[index] = gap
                self.gaps.append(gap)
            # the first failure of a streak is said on stderr (a feed that cannot connect
            # must not look like a quiet market); its retries go to the log file only
            level = logging.INFO if index in self.down else logging.WARNING
            self.down[index] = reason
            log.log(level, "%s feed %d: %s; reconnecting in %.1f s", self.vendor, index, reason,
                    delay)  # fmt: skip
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, BACKOFF_MAX)

    def _last_of(self, feed: Feed) -> int:
        seen = [self.last_by_symbol[s] for s in feed.symbols if s in self.last_by_symbol]
        return max(seen) if seen else self.stage.stream_ms

    async def _heartbeat(self, ws: Any, feed: Feed) -> None:
        while True:
            await asyncio.sleep(feed.heartbeat)
            await ws.send(feed.ping())

    async def _receive(self, index: int, ws: Any, feed: Feed) -> tuple[int, str]:
        """Frames until the connection ends; (frames received, why it ended)."""
        received = 0
        self._fresh.add(index)
        silence = 2 * feed.heartbeat
        while True:
            try:
                text = await asyncio.wait_for(ws.recv(), silence)
            except TimeoutError:
                await ws.close()
                return received, f"stall: nothing for {silence:.0f} s"
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd is not None else None
                why = f"closed by the vendor ({code})" if code else "dropped (no close frame)"
                return received, why
            received += 1
            self.last_recv = time.monotonic()
            close = self.on_frame(index, feed, text)
            if close is not None:
                with contextlib.suppress(WebSocketException, OSError):
                    await ws.close()
                return received, close

    def on_frame(self, index: int, feed: Feed, text: str | bytes) -> str | None:
        """One received frame of connection ``index``: its rows staged; a vendor close
        reason if the frame announces one. The hot path of the recorder (bench/record.py
        measures it)."""
        self.messages += 1
        rows, close = feed.parse(text)
        if not rows:
            return close
        now = self._now()
        stage = self.stage
        for row in rows:
            if row is None:
                continue
            kind = row[0]
            if kind == "kline":  # stamped with its bar's open, not an event time
                stage.add(row, now)
                continue
            ts = int(row[2])
            if index in self._fresh:  # the connection's first message
                self._fresh.discard(index)
                stage.first_message(feed.symbols, ts)
            if kind == "tick":
                stage.add_tick(row[1], ts, row[3], row[4], row[5], row[6], now)
            else:
                stage.add(row, now)
            self.last_by_symbol[row[1]] = ts
            if self._open_gap:
                gap = self._open_gap.pop(index, None)
                if gap is not None:
                    gap.end_ms = ts
                    self._record_gap(gap)
        return close

    def _now(self) -> dt.datetime:
        """The clock, read at most once a millisecond: a burst of frames shares one
        ``recv_at`` (reading the clock per frame was a tenth of a trade's cost)."""
        tick = time.monotonic_ns() // 1_000_000
        if tick != self._clock_ms:
            self._clock_ms, self._clock_at = tick, self.clock()
        assert self._clock_at is not None
        return self._clock_at

    # -- committing, gaps, repairs --------------------------------------------------------

    async def _committer(self) -> None:
        """Commit every :data:`COMMIT_EVERY` seconds, counted from each commit's start: a
        slow write (a loaded disk) shortens the wait after it instead of adding to it, so a
        row waits at most one period plus two writes, never a repair's length."""
        loop = asyncio.get_running_loop()
        while True:
            began = loop.time()
            await asyncio.to_thread(self._commit)
            await asyncio.sleep(max(0.0, COMMIT_EVERY - (loop.time() - began)))

    async def _repairer(self) -> None:
        while True:
            await asyncio.sleep(COMMIT_EVERY)
            await self._repair_due(final=False)

    def _commit(self) -> None:
        # A commit cancelled with its task goes on in its thread: the last one waits for it.
        with self._commit_lock:
            if self.stage.pending:
                self.stage.commit(self.clock())

    def _record_gap(self, gap: Gap, state: str = "open") -> None:
        start = dt.datetime.fromtimestamp(gap.start_ms / 1000, dt.UTC)
        until = None if gap.end_ms is None else dt.datetime.fromtimestamp(gap.end_ms / 1000, dt.UTC)
        dataset = "ticks" if self.stage.bars_from == "ticks" else "quotes"
        rows = pl.DataFrame(
            {
                "dataset": [dataset] * len(gap.symbols),
                "freq": ["stream"] * len(gap.symbols),
                "symbol": list(gap.symbols),
                "ts": [start] * len(gap.symbols),
                "trade_date": [start.astimezone(_zone(s)).date() for s in gap.symbols],
                "state": [state] * len(gap.symbols),
                "reason": [gap.reason] * len(gap.symbols),
                "until": [until] * len(gap.symbols),
                "vendor": [self.vendor] * len(gap.symbols),
                "task_id": [gap.task_id] * len(gap.symbols),
            },
            schema_overrides={"task_id": pl.Int64, "until": pl.Datetime("us", "UTC")},
        )
        self.lake.write("gap_ledger", rows, now=self.clock())

    async def _repair_due(self, *, final: bool) -> None:
        """Repair closed gaps whose last minute the stream has passed (REST has it by then)."""
        if self.repair is None or self._repairing.locked():
            return
        async with self._repairing:
            for gap in self.gaps:
                if gap.repaired or gap.end_ms is None:
                    continue
                ready = gap.end_ms - gap.end_ms % MINUTE_MS + 2 * MINUTE_MS
                if self.stage.stream_ms < ready:
                    continue
                start = dt.datetime.fromtimestamp(gap.start_ms / 1000, dt.UTC)
                end = dt.datetime.fromtimestamp(gap.end_ms / 1000, dt.UTC)
                zone = _zone(gap.symbols[0])
                try:
                    gap.task_id, status = await self.repair(
                        gap.symbols, start.astimezone(zone).date(), end.astimezone(zone).date(),
                        self.closed_by(),
                    )  # fmt: skip
                    if status in ("interrupted", "cancelled"):
                        self.stop()  # a SIGTERM during the repair went to its task
                        continue
                    if status != "completed":
                        continue  # failed: the gap stays open and is tried again
                except Exception as exc:  # the gap stays open; the next pass retries
                    log.warning("%s: repair of a gap failed: %s", self.vendor, exc)
                    continue
                finally:
                    if not self._stop.is_set():
                        self._signals()
                gap.repaired = True
                await asyncio.to_thread(self._record_gap, gap, "repaired")

    def closed_by(self) -> dt.datetime:
        """The end of the stream's last closed minute: the instant up to which a repair may
        store REST bars. The stage closes a minute once the stream is :data:`LATENESS` past
        its end; the vendor's REST, asked after this, is at or past the stream's time, so
        every bar ending by then is final there too. Stream time, never the local clock."""
        ms = self.stage.stream_ms - LATENESS
        return dt.datetime.fromtimestamp((ms - ms % MINUTE_MS) / 1000, dt.UTC)

    # -- reporting ------------------------------------------------------------------------

    async def _status(self) -> None:
        before, t0 = self.messages, time.monotonic()
        while True:
            await asyncio.sleep(self.status_every)
            now = time.monotonic()
            rate = (self.messages - before) / max(now - t0, 1e-9)
            before, t0 = self.messages, now
            self.status_out.write(self.status_line(rate) + "\n")
            self.status_out.flush()

    def status_line(self, rate: float) -> str:
        symbols = [s for f in self.feeds for s in f.symbols]
        live = sum(
            1 for s in symbols
            if self.stage.stream_ms - self.last_by_symbol.get(s, -LIVE_WINDOW_MS * 2)
            <= LIVE_WINDOW_MS
        )  # fmt: skip
        age = "never" if self.last_recv is None else f"{time.monotonic() - self.last_recv:.1f}s"
        repaired = sum(g.repaired for g in self.gaps)
        down = ""
        if self.down:
            why = self.down[min(self.down)]
            down = f"{len(self.down)}/{len(self.feeds)} connections down ({why}), "
        return (
            f"record {self.vendor}: {rate:.0f} msg/s, {live}/{len(symbols)} symbols live, "
            f"last message {age} ago, {self.reconnects} reconnects, {down}"
            f"{repaired}/{len(self.gaps)} gaps repaired, {self.messages} messages"
        )

    def never_connected(self) -> str | None:
        """Why the run recorded nothing if no feed ever connected (its last reason), else
        None: a run that could not reach the vendor is a failure, not a quiet market."""
        if self.connected_ever or self.auth_error is not None:
            return None
        reasons = sorted(set(self.down.values())) or ["no connection attempt finished"]
        return f"{self.vendor}: never connected to the feed ({'; '.join(reasons)})"

    def document(self, channels: Sequence[str]) -> dict[str, Any]:
        def iso(t: dt.datetime | None) -> str | None:
            return iso_utc(t)

        def ms(v: int | None) -> str | None:
            return None if v is None else iso(dt.datetime.fromtimestamp(v / 1000, dt.UTC))

        return {
            "vendor": self.vendor,
            "channels": list(channels),
            "symbols": [s for f in self.feeds for s in f.symbols],
            "messages": self.messages,
            "ticks_written": self.stage.written["ticks"],
            "quotes_written": self.stage.written["quotes"],
            "bars_written": self.stage.written["bars"],
            "reconnects": self.reconnects,
            "gaps": [
                {
                    "symbols": list(g.symbols),
                    "start": ms(g.start_ms),
                    "end": ms(g.end_ms),
                    "reason": g.reason,
                    "repaired": g.repaired,
                    "task_id": g.task_id,
                }
                for g in self.gaps
            ],
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
        }


def _auth(vendor: str, status: int) -> AuthError:
    if vendor == "mdapi":
        return AuthError(
            "mdapi refused the connection (HTTP 403): this address is not allow-listed, or "
            "it holds 6 connections already; ask the vendor to allow this server's IP",
            vendor=vendor,
        )
    return AuthError(
        f"{vendor} refused the key (HTTP {status}): set ETL_{vendor.upper()}_API_KEY to a "
        "valid key",
        vendor=vendor,
    )
