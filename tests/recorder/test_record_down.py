"""A recorder SIGKILLed and restarted: the time it was down, from the lake's last stored
message to the restarted recorder's first, is a gap in the ledger ("recorder down"), repaired
over REST like a disconnect, so `klines` holds REST bars over it. A recorder stopped cleanly
(SIGTERM) leaves no such gap for the next one: a schedule's night is not a loss."""

from __future__ import annotations

import datetime as dt
import queue
import signal
import time
from pathlib import Path

import polars as pl
import pytest

from etl.emulators.testing import running
from etl.recorder.down import DOWN_REASON
from tests.recorder.test_record_e2e import OPEN, SYMBOLS, Recording, lake

pytestmark = pytest.mark.integration


def wait_line(rec: Recording, text: str, timeout: float = 60.0) -> None:
    """Until a status line of ``rec`` contains ``text`` (an event, not a sleep)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if text in rec.lines.get(timeout=1):
                return
        except queue.Empty:
            if rec.proc.poll() is not None:
                break
    raise AssertionError(f"never {text!r}: {''.join(rec.stderr[-5:])}")


def iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat().replace("+00:00", "Z")


def test_a_killed_recorders_downtime_is_a_repaired_gap_and_a_clean_stop_leaves_none(
    data_root: Path,
) -> None:
    args = ("--vendor", "infoway", "--symbols", ",".join(SYMBOLS), "--channels", "trades",
            "--status-every", "0.1")  # fmt: skip
    markers = data_root / "state" / "recorders"
    with running("infoway", now=OPEN, speed=120, api_key="k") as server:
        first = Recording(data_root, server, *args)
        first.wait_messages(100)
        assert [p.name for p in markers.iterdir()] == [f"infoway.{first.proc.pid}.json"]
        first.proc.send_signal(signal.SIGKILL)
        assert first.finish()[0] == -signal.SIGKILL
        ticks = lake(data_root, "ticks")
        down_ms = int(ticks["ts"].max().timestamp() * 1000)  # type: ignore[union-attr]
        assert not (data_root / "state" / "gap_ledger").exists()  # no fault: no gap yet

        second = Recording(data_root, server, *args)
        wait_line(second, " 1/1 gaps repaired")
        code, doc = second.stop()
        assert code == 0, "".join(second.stderr)[-1500:]
        [gap] = doc["gaps"]
        assert gap["reason"] == DOWN_REASON and gap["repaired"] and gap["task_id"]
        assert gap["start"] == iso(down_ms) < gap["end"]
        assert sorted(gap["symbols"]) == sorted(SYMBOLS)
        assert not list(markers.iterdir())  # a clean stop removes its marker

        ledger = lake(data_root, "gap_ledger").filter(pl.col("reason") == DOWN_REASON)
        assert set(ledger["symbol"]) == set(SYMBOLS)
        assert set(ledger["state"]) == {"repaired"}  # the open row, replaced
        start = dt.datetime.fromtimestamp(down_ms / 1000, dt.UTC)
        assert set(ledger["ts"]) == {start}
        end = dt.datetime.fromisoformat(gap["end"].replace("Z", "+00:00"))
        # every minute of the downtime is a REST bar in klines
        first_minute = start.replace(second=0, microsecond=0)
        minutes = pl.datetime_range(
            first_minute, end.replace(second=0, microsecond=0), "1m", time_zone="UTC",
            eager=True,
        )  # fmt: skip
        bars = lake(data_root, "klines")
        for symbol in SYMBOLS:
            rest = set(
                bars.filter((pl.col("symbol") == symbol) & (pl.col("source") == "rest"))["ts"]
            )
            assert set(minutes) <= rest, symbol

        third = Recording(data_root, server, *args)
        third.wait_messages(50)
        code, doc = third.stop()
        assert code == 0 and doc["gaps"] == [], doc["gaps"]
        assert server.stats()["violations"] == 0
