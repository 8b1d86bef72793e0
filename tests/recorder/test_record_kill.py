"""A recorder SIGKILLed at 10 random moments and restarted each time (issue 12, "Done when"):
after each kill the lake reads with no duplicate key (ticks, quotes, klines), what was lost
is at most what was received in the last 2 s before the kill (a tail of the stream, never
a hole), and each restart recorded the
time the recorder was down as a "recorder down" gap from where the lake ended.

The evidence: the emulator's tape (the trades it pushes are ``trades_between`` the market
time a connection's pushing began, which the emulator records, and the market time now) and
its replay clock (``speed`` market seconds per real second), so a trade's market time says
when it was pushed. Every trade pushed to a recorder 2 s or more before its kill must be in
the lake; the rest may be lost. The kill moments are random message counts (events from the
recorder's status lines), so they fall anywhere in the 1 s commit cycle."""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
from collections import Counter
from pathlib import Path

import polars as pl
import pytest

from etl.emulators.tape import trades_between
from etl.emulators.testing import running
from etl.recorder.down import DOWN_REASON
from tests.conftest import sim_stocks
from tests.recorder.test_record_e2e import Recording

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OPEN = dt.datetime(2024, 6, 28, 1, 30, tzinfo=dt.UTC)  # 09:30 Shanghai: 2 h to the lunch break
SPEED = 90  # market seconds per second: the morning session lasts 80 s of the test
KILLS = 10
BOUND_S = 2.0  # the contract: a SIGKILL loses at most the last 2 s received
SYMBOLS = sim_stocks("SH", 5, dt.date(2015, 1, 1)).split(",") + sim_stocks(
    "SZ", 5, dt.date(2015, 1, 1)
).split(",")
KEYS = {"ticks": ("symbol", "ts", "seq"), "quotes": ("symbol", "ts"),
        "klines": ("symbol", "freq", "ts")}  # fmt: skip


def read(root: Path, dataset: str) -> pl.DataFrame:
    """The dataset as a reader sees it: every committed file (none half-written)."""
    area = "state" if dataset == "gap_ledger" else "lake"
    files = sorted((root / area / dataset).rglob("*.parquet"))
    if not files:
        return pl.DataFrame()
    return pl.read_parquet(files, hive_partitioning=True, missing_columns="insert")


def test_sigkill_at_10_random_moments_loses_at_most_the_last_2_s_and_never_doubles(
    data_root: Path,
) -> None:
    seed = int(os.environ.get("ETL_TEST_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    print(f"seed {seed} (ETL_TEST_SEED={seed} repeats this run)")
    windows: list[float] = []
    downs: set[dt.datetime] = set()  # where each restart found the lake ending
    with running("infoway", now=OPEN, speed=SPEED, api_key="k") as server:
        for kill in range(KILLS):
            before = read(data_root, "ticks")
            ends = (
                dict(before.group_by("symbol").agg(pl.col("ts").max()).iter_rows())
                if before.height
                else {}
            )
            stored = [f["ts"].max() for f in (before, read(data_root, "quotes")) if f.height]
            if stored:  # the killed recorder's downtime begins at the lake's last message
                downs.add(max(stored))  # type: ignore[type-var]
            began_connections = len(server.stats()["ws"]["started_ms"])
            launched = dt.datetime.now(dt.UTC)
            rec = Recording(
                data_root, server, "--vendor", "infoway", "--symbols", ",".join(SYMBOLS),
                "--channels", "trades,depth", "--status-every", "0.1",
            )  # fmt: skip
            rec.wait_messages(rng.randint(40, 900))  # a random moment, as an event
            killed_wall = dt.datetime.now(dt.UTC)
            killed_ms = int(server.emulator.now().timestamp() * 1000)
            rec.proc.send_signal(signal.SIGKILL)
            code, _ = rec.finish()
            assert code == -signal.SIGKILL, "".join(rec.stderr)[-1500:]

            # 1. the lake reads, with no duplicate key in any dataset the recorder writes
            for dataset, key in KEYS.items():
                frame = read(data_root, dataset)
                if frame.height:
                    assert frame.select(key).is_duplicated().sum() == 0, (kill, dataset)
            ticks = read(data_root, "ticks")
            if not ticks.height:  # killed before its first commit: a lost second at most
                ticks = pl.DataFrame(schema={"symbol": pl.String, "price": pl.Float64,
                                             "ts": pl.Datetime("us", "UTC"),
                                             "recv_at": pl.Datetime("us", "UTC")})  # fmt: skip

            # 2. what was received 2 s or more before the kill is stored (the rest may be
            # lost). A trade's push time is known (its market time on the replay clock); its
            # receipt is later by the recorder's lag, which a loaded machine stretches: the
            # lag is read from the stored trades (recv_at against push time) and added.
            [after_ms, *again] = server.stats()["ws"]["started_ms"][began_connections:]
            assert not again, "the recorder reconnected: the pushes are not one stream"

            mine = ticks.filter(pl.col("recv_at") >= launched)
            lag = max(  # receipt minus push, each trade's push on the wall clock
                (
                    (recv - killed_wall).total_seconds()
                    + (killed_ms - t.timestamp() * 1000) / SPEED / 1000
                    for t, recv in mine.select("ts", "recv_at").iter_rows()
                ),
                default=0.0,
            )
            sure_ms = killed_ms - int((BOUND_S + max(lag, 0.0)) * SPEED * 1000)
            stored = Counter(
                (s, int(t.timestamp() * 1000), p)
                for s, t, p in ticks.select("symbol", "ts", "price").iter_rows()
            )
            pushed = Counter(
                (t.symbol, t.t_ms, t.price)
                for s in SYMBOLS
                for t in trades_between(s, after_ms, killed_ms, server.emulator.seed)
            )
            lost = pushed - stored
            # one stream, committed in order: what is lost comes after everything stored
            last_stored = max((int(t.timestamp() * 1000) for t in mine["ts"]), default=0)
            assert all(ms >= last_stored for _, ms, _ in lost), (kill, "a hole, not a tail")
            assert all(ms > sure_ms for _, ms, _ in lost), (
                f"kill {kill}: {sum(1 for _, ms, _ in lost if ms <= sure_ms)} trades received "
                f"more than {BOUND_S} s before the kill are not in the lake (lag {lag:.2f} s)"
            )
            oldest = min((ms for _, ms, _ in lost), default=killed_ms)
            windows.append((killed_ms - oldest) / SPEED / 1000)

            # 3. every restart after a kill recorded the downtime as a gap, from the lake's end
            ledger = read(data_root, "gap_ledger")
            found = (
                set(ledger.filter(pl.col("reason") == DOWN_REASON)["ts"])
                if ledger.height
                else set()
            )
            assert downs <= found, (kill, downs - found)

            # 4. the restarted recorder started where the lake ended: nothing of this run is
            # older than what the lake held when it started
            for symbol, first in mine.group_by("symbol").agg(pl.col("ts").min()).iter_rows():
                assert symbol not in ends or first >= ends[symbol], (kill, symbol)
        assert server.stats()["violations"] == 0
    assert read(data_root, "ticks").height > 0
    print(
        f"{KILLS} kills: lost at most the last {max(windows):.2f} s pushed before a kill "
        f"(bound {BOUND_S} s); per kill: {', '.join(f'{w:.2f}' for w in windows)}"
    )
