"""``etl backfill --dry-run`` against a real Infoway emulator: the plan it prints is the
requests the real backfill then makes, and the dry run itself asks for no bar and writes
nothing a reader could see (no lake file, no task record)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path

import pytest

from etl.emulators.testing import fetch_stats, reset_stats, spawn_emulate, vendor_calls
from tests.conftest import ETL, etl_env, sim_stocks

pytestmark = pytest.mark.integration

EMULATOR_NOW = "2024-06-28T12:00:00Z"


def _etl(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ETL, *args], capture_output=True, text=True, env=etl_env(root, **env), timeout=300
    )


@pytest.mark.parametrize(
    ("freq", "start", "end"),
    [("1m", "2024-06-10", "2024-06-21"), ("1d", "2024-01-02", "2024-06-27")],
)
def test_the_dry_run_plan_is_what_the_backfill_asks(
    tmp_path: Path, freq: str, start: str, end: str
) -> None:
    symbols = sim_stocks("US", 3, dt.date(2020, 1, 1))
    args = ["backfill", "--vendor", "infoway", "--dataset", "klines", "--freq", freq,
            "--symbols", symbols, "--start", start, "--end", end, "--json"]  # fmt: skip
    with spawn_emulate("infoway", "--now", EMULATOR_NOW) as emulator:
        env = {"ETL_INFOWAY_BASE_URL": emulator.base_url, "ETL_INFOWAY_API_KEY": "test-key"}
        reset_stats(emulator.base_url)
        dry = _etl(tmp_path, env, *args, "--dry-run")
        assert dry.returncode == 0, dry.stderr
        plan = json.loads(dry.stdout)
        assert plan["dry_run"] is True and plan["requests"] >= plan["calls"] >= 1
        assert vendor_calls(fetch_stats(emulator.base_url), "batch_kline") == 0
        assert not list(tmp_path.rglob("*.parquet")) and not (tmp_path / "tasks").exists()

        sent = vendor_calls(fetch_stats(emulator.base_url))
        real = _etl(tmp_path, env, *args)
        assert real.returncode == 0, real.stderr
        done = json.loads(real.stdout)
        assert vendor_calls(fetch_stats(emulator.base_url), "batch_kline") == plan["requests"]
        # the task's record says what it sent (its kline pages and the rest)
        assert done["requests"] == vendor_calls(fetch_stats(emulator.base_url)) - sent
        # the same backfill again: only units holding a slot still absent (a suspended day)
        # are asked again, and the dry run says how many; --refetch asks for everything
        again = json.loads(_etl(tmp_path, env, *args, "--dry-run").stdout)
        assert again["requests"] < plan["requests"]
        rerun = _etl(tmp_path, env, *args)
        assert rerun.returncode == 0, rerun.stderr
        after_rerun = vendor_calls(fetch_stats(emulator.base_url), "batch_kline")
        assert after_rerun == plan["requests"] + again["requests"]
        forced = _etl(tmp_path, env, *args, "--refetch")
        assert forced.returncode == 0, forced.stderr
        assert (
            vendor_calls(fetch_stats(emulator.base_url), "batch_kline")
            == after_rerun + plan["requests"]
        )
    assert done["status"] == "completed"
    # the plan counts the calendar's bars; a suspended day has none, so a few fewer arrive
    assert 0.95 * plan["rows_expected"] <= done["rows_written"] <= plan["rows_expected"]


def test_bad_input_exits_2_before_anything(tmp_path: Path) -> None:
    done = subprocess.run(
        [*ETL, "backfill", "--vendor", "sim", "--dataset", "klines", "--freq", "1d",
         "--symbols", "600000.SH", "--start", "2024-06-28", "--end", "2024-06-03", "--dry-run"],
        capture_output=True, text=True, env=etl_env(tmp_path), timeout=120,
    )  # fmt: skip
    assert done.returncode == 2 and "--start" in done.stderr, done.stderr
    assert not list(tmp_path.rglob("*.parquet"))
