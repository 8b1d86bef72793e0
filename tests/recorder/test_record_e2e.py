"""`etl record` end to end against the Infoway emulator replayed at 120 market seconds per
second, with a dropped connection, a stall and a vendor close: trades stored once and exactly
as pushed, every fault a gap in the ledger with its reason, repairs over REST."""

from __future__ import annotations

import datetime as dt
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest

from etl.emulators.tape import trades_between
from etl.emulators.testing import running
from tests.conftest import emulator_env

pytestmark = pytest.mark.integration

OPEN = dt.datetime(2024, 6, 28, 2, 0, tzinfo=dt.UTC)  # 10:00 Shanghai
SYMBOLS = ["600000.SH", "000001.SZ"]


def environment(server: Any, key: str = "k") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")}
    return env | emulator_env(server, key)


class Recording:
    """``etl record`` as a child process; its status lines are read as they come."""

    def __init__(self, root: Path, server: Any, *args: str, key: str = "k", **env: str) -> None:
        cmd = [sys.executable, "-m", "etl", "record", "--data-dir", str(root), "--json", *args]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=environment(server, key) | env,
        )  # fmt: skip
        self.lines: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        self.pump = threading.Thread(target=self._pump, daemon=True)
        self.pump.start()

    def _pump(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)
            self.lines.put(line)

    def wait_messages(self, n: int, timeout: float = 60.0) -> None:
        """Until a status line reports at least ``n`` messages received."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                continue
            found = re.search(r"(\d+) messages$", line.strip())
            if found and int(found.group(1)) >= n:
                return
        raise AssertionError(f"never {n} messages: {''.join(self.stderr[-5:])}")

    def stop(self) -> tuple[int, dict[str, Any]]:
        self.proc.send_signal(signal.SIGTERM)
        return self.finish()

    def finish(self) -> tuple[int, dict[str, Any]]:
        """Wait for the exit; the exit code and the --json document (if any)."""
        assert self.proc.stdout is not None and self.proc.stderr is not None
        out = self.proc.stdout.read()
        self.proc.wait(60)
        self.pump.join(10)
        self.proc.stdout.close()
        self.proc.stderr.close()
        return self.proc.returncode, json.loads(out) if out.strip() else {}


def wait_for(predicate: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition never met")
        time.sleep(0.05)


def lake(root: Path, dataset: str) -> pl.DataFrame:
    area = "state" if dataset == "gap_ledger" else "lake"
    files = sorted((root / area / dataset).rglob("*.parquet"))
    return pl.read_parquet(files, hive_partitioning=True, missing_columns="insert")


def rest_bars(server: Any, symbol: str) -> dict[dt.datetime, tuple[float, ...]]:
    body = {"codes": symbol, "klineType": 1, "klineNum": 500}
    doc = httpx.post(
        f"{server.base_url}/stock/v2/batch_kline", json=body, headers={"apiKey": "k"}
    ).json()
    out = {}
    for b in doc["data"][0]["respList"][1:]:  # the newest may be forming
        ts = dt.datetime.fromtimestamp(int(b["t"]), dt.UTC)
        out[ts] = tuple(float(b[k]) for k in ("o", "h", "l", "c", "v", "vw"))
    return out


def test_infoway_faults_become_repaired_gaps_and_every_trade_is_stored_once(
    data_root: Path,
) -> None:
    faults = "ws_drop:30@1,ws_stall:30@2,ws_close:30@3"
    with running("infoway", now=OPEN, speed=120, faults=faults, api_key="k") as server:
        rec = Recording(
            data_root, server, "--vendor", "infoway", "--symbols", ",".join(SYMBOLS),
            "--heartbeat", "0.5", "--status-every", "0.2",
        )  # fmt: skip
        # Events, not sleeps: every fault applied and a fourth connection pushing.
        wait_for(lambda: server.stats()["ws"].get("connections", 0) >= 4)
        wait_for(lambda: sum(server.stats()["ws"]["pushed"].values()) >= 160)
        code, doc = rec.stop()
        assert code == 0, "".join(rec.stderr)[-1500:]
        stats = server.stats()
        ticks = lake(data_root, "ticks")
        assert stats["violations"] == 0
        # none doubled, every stored trade is one the emulator pushed (its tape), none stored
        # that was not received
        assert ticks.height == doc["ticks_written"] <= stats["ws"]["pushed"]["trades"]
        assert ticks.select("symbol", "ts", "seq").is_duplicated().sum() == 0
        for symbol in SYMBOLS:
            mine = ticks.filter(pl.col("symbol") == symbol).sort("ts", "seq")
            stored = [(r["ts"], r["price"], r["volume"]) for r in mine.iter_rows(named=True)]
            lo, hi = stored[0][0], stored[-1][0]
            tape = trades_between(symbol, int(lo.timestamp() * 1000) - 1,
                                  int(hi.timestamp() * 1000), 0)  # fmt: skip
            pushed = {(dt.datetime.fromtimestamp(t.t_ms / 1000, dt.UTC), t.price, t.volume)
                      for t in tape}  # fmt: skip
            assert set(stored) <= pushed, symbol
        # every fault is a gap in the ledger, with its reason
        assert stats["faults_by_name"] == {"ws_drop": 1, "ws_stall": 1, "ws_close": 1}
        assert doc["reconnects"] >= 3 and len(doc["gaps"]) >= 3
        reasons = " ".join(g["reason"] for g in doc["gaps"])
        assert "stall" in reasons and "no close frame" in reasons and "513" in reasons
        ledger = lake(data_root, "gap_ledger").filter(pl.col("freq") == "stream")
        assert ledger.select("symbol", "ts").n_unique() == len(doc["gaps"]) * len(SYMBOLS)
        assert any(g["repaired"] for g in doc["gaps"])
        assert "repaired" in set(ledger["state"])
        assert stats["violations"] == 0
        assert any("gaps repaired" in line for line in rec.stderr)
        # the repairs' REST bars (whole trade dates, up to the repair) replaced every live bar
        # they cover; live bars that closed after the last repair stay live (regression: the
        # test assumed none closes after it, which a loaded machine disproves)
        bars = lake(data_root, "klines")
        assert "rest" in set(bars["source"])
        assert bars.select("symbol", "freq", "ts").is_duplicated().sum() == 0
        for symbol in SYMBOLS:
            mine = bars.filter(pl.col("symbol") == symbol)
            rest = mine.filter(pl.col("source") == "rest")["ts"]
            live = mine.filter(pl.col("source") == "live")["ts"]
            if live.len() and rest.len():
                assert live.min() > rest.max(), symbol  # type: ignore[operator]


def test_bad_input_exits_2_before_connecting(data_root: Path) -> None:
    with running("infoway", now=OPEN, speed=60) as server:
        for args, words in [
            (["--symbols", "RELIANCE.IN"], "does not carry RELIANCE.IN"),
            (["--symbols", "600000.SH", "--channels", "quotes"], "no channel 'quotes'"),
            (["--symbols", "600000.sh"], "upper case"),
        ]:
            rec = Recording(data_root, server, "--vendor", "infoway", *args)
            code, _ = rec.finish()
            assert code == 2 and words in "".join(rec.stderr), (args, rec.stderr)
        assert server.stats()["ws"].get("connections", 0) == 0


def test_an_unknown_symbol_of_a_synced_market_exits_2_before_connecting(data_root: Path) -> None:
    with running("infoway", now=OPEN, speed=60) as server:
        sync = subprocess.run(
            [sys.executable, "-m", "etl", "instruments", "sync", "--vendor", "infoway",
             "--market", "SH", "--data-dir", str(data_root)],
            env=environment(server), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert sync.returncode == 0, sync.stderr
        rec = Recording(
            data_root, server, "--vendor", "infoway", "--symbols", "999999.SH", "--duration", "5"
        )
        code, _ = rec.finish()
        text = "".join(rec.stderr)
        assert code == 2 and "unknown symbol 999999.SH" in text, text
        assert "instruments sync --vendor infoway --market SH" in text
        assert server.stats()["ws"].get("connections", 0) == 0


def test_a_feed_never_reached_is_said_on_stderr_and_exits_1(data_root: Path) -> None:
    """Regression: with nothing listening at the WebSocket URL the recorder printed status
    lines like a quiet market's, "0 reconnects", and exited 0."""
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with running("infoway", now=OPEN, speed=60) as server:
        rec = Recording(
            data_root, server, "--vendor", "infoway", "--symbols", "600000.SH",
            "--duration", "3", "--status-every", "0.5",
            ETL_INFOWAY_WS_URL=f"ws://127.0.0.1:{port}/ws",
        )  # fmt: skip
        code, doc = rec.finish()
    text = "".join(rec.stderr)
    assert code == 1, text
    assert doc["messages"] == 0 and doc["reconnects"] == 0  # the document is still printed
    assert "never connected to the feed" in text and "ETL_INFOWAY_WS_URL" in text
    assert re.search(r"1/1 connections down \(disconnect: ConnectionRefusedError\)", text), text


def test_a_bad_key_exits_3_naming_the_variable_and_writes_nothing(data_root: Path) -> None:
    with running("infoway", now=OPEN, speed=60, api_key="right") as server:
        rec = Recording(data_root, server, "--vendor", "infoway", "--symbols", "600000.SH",
                        key="wrong-key-123")  # fmt: skip
        assert rec.finish()[0] == 3
        text = "".join(rec.stderr)
        assert "ETL_INFOWAY_API_KEY" in text and "wrong-key-123" not in text
        assert not [p for p in data_root.rglob("*.parquet") if ".schema" not in p.parts]
