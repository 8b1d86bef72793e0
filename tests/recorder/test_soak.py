"""`etl record`'s memory stays flat over an hour of 50 symbols (compressed by replay speed)
with a dropped connection, a stall or a vendor close every few market minutes, each repaired
over REST. Not in `make test` (`make soak`); RECORD_SOAK_MINUTES shortens it (default 60
market minutes, 60 s of real time at RECORD_SPEED=60).

Bound: the peak RSS of the last third of the run is within 15 % + 16 MiB of the first
third's (start-up excluded). A recorder keeping every row, bar or gap it has committed would
grow by tens of MiB an hour at this rate; a flat one moves by allocator noise only."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.record import soak

pytestmark = [pytest.mark.soak, pytest.mark.integration]


def test_recorder_memory_is_flat_over_a_compressed_hour_with_faults(data_root: Path) -> None:
    minutes = float(os.environ.get("RECORD_SOAK_MINUTES", "60"))
    speed = float(os.environ.get("RECORD_SPEED", "60"))
    result = soak(data_root, minutes=minutes, speed=speed, n_symbols=50, fault_every=4.0)
    first, last = result.flat()
    summary = result.summary()
    assert result.violations == 0, summary
    applied = sum(result.faults.values())
    # a fault every few minutes (a reconnect's backoff skips some of the 4-minute slots)
    assert applied >= max(1, int(minutes / 4.0 / 2)), summary
    gaps = result.document["gaps"]
    # every fault is a gap (the last one may still be being detected when the run stops)
    assert len(gaps) >= applied - 1, summary
    assert sum(g["repaired"] for g in gaps) >= len(gaps) - 1, summary  # the last may be open
    assert result.document["ticks_written"] > 0
    assert last <= first * 1.15 + 16, summary
