"""The Infoway load of issue 10 through the CLI (bench/infoway_cli.py): 10 stocks, 1m over 11
sessions and 1d over six months, two `etl backfill` commands against the emulator's Premium
plan. Regression: the second command waited 50 s (the governor assumed 1 request/s until it
had read /package/info, while the shared rate state still held the first command's 60
requests), and `fill-missing --dry-run` estimated at 1 request/s on a 10/s plan."""

from __future__ import annotations

import pytest

from bench.infoway_cli import RATE, measure

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Issue 10 asks for 2x the rate budget end to end; a machine running other work gets 3x here
# (BENCHMARKS.md has the figure measured on its own).
LOADED_MARGIN = 3.0


def test_two_backfills_keep_to_the_plan_rate_from_the_first_request() -> None:
    got = measure()
    assert got["violations"] == 0, got
    assert got["rows_written"] > 0, got
    assert got["ratio_to_bound"] <= LOADED_MARGIN, got
    # The second command starts from the cached plan: no stall behind the first one's requests.
    assert got["first_request_s"][1] < 5.0, got
    assert got["dry_run_rate_per_s"] == RATE, got  # not the 1/s guess
    assert got["dry_run_seconds"] == pytest.approx(got["dry_run_requests"] / RATE, abs=0.1)
