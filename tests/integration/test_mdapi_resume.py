"""An mdapi backfill SIGKILLed at random moments, then resumed, against a real emulator
process: the lake equals an uninterrupted run's and each kill costs at most the calls it
could not have committed.

mdapi serves only the latest N bars of a product, one product a call, so a backfill is one
call per product (a unit each). A worker stores each answer before it takes another unit,
and mdapi has no rate over all products (its limits are per product), so its pace is the
pipeline's cap of units at once: a kill loses at most the calls of the units running, one
each, whether in flight or being committed."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest

from etl.emulators.mdapi_data import PRODUCTS
from etl.emulators.testing import fetch_stats, reset_stats, spawn_emulate, vendor_calls
from tests.conftest import ETL, etl_env, stored_klines
from tests.integration._kills import kill_and_resume

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KILLS = 3
UNITS_AT_ONCE = 2  # mdapi's rate has no in_flight: the pipeline's default cap
PAGE = "/redis.php"


def test_killed_mdapi_backfill_resumes_after_its_stored_products(tmp_path: Path) -> None:
    symbols = ",".join(p.symbol for p in PRODUCTS)
    args = ["backfill", "--vendor", "mdapi", "--dataset", "klines", "--freq", "1h",
            "--symbols", symbols, "--start", "2024-06-18", "--end", "2024-06-27",
            "--json"]  # fmt: skip
    with spawn_emulate("mdapi", "--now", "2024-06-28T12:00:00Z") as emulator:
        env = {"ETL_MDAPI_BASE_URL": emulator.base_url}

        def calls() -> int:
            return vendor_calls(fetch_stats(emulator.base_url), PAGE)

        roots = []
        for name in ("calm", "rough"):  # each with the code map an instruments sync stores
            root = tmp_path / name
            sync = subprocess.run(
                [*ETL, "instruments", "sync", "--vendor", "mdapi", "--json"],
                capture_output=True, text=True, env=etl_env(root, **env), timeout=120,
            )  # fmt: skip
            assert sync.returncode == 0, sync.stderr
            roots.append(root)
        calm, rough = roots
        reset_stats(emulator.base_url)
        done = subprocess.run([*ETL, *args], capture_output=True, text=True,
                              env=etl_env(calm, **env), timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stderr
        baseline = calls()
        assert baseline >= len(PRODUCTS), baseline

        reset_stats(emulator.base_url)
        run = kill_and_resume(rough, env, args, calls, kills=KILLS, rng=random.Random(5),
                              ahead=(3, 10))  # fmt: skip
        total = fetch_stats(emulator.base_url)
    assert run.kills == KILLS
    assert run.final["status"] == "completed"
    assert total["violations"] == 0
    want, got = stored_klines(calm, "1h"), stored_klines(rough, "1h")
    assert got.height > 0
    assert got.select("symbol", "ts").is_duplicated().sum() == 0
    assert got.equals(want)
    assert run.final["rows_written"] == got.height, (run.final["rows_written"], got.height)
    made = vendor_calls(total, PAGE)
    print(f"mdapi kline calls: uninterrupted {baseline}, with {KILLS} kills {made}")
    assert baseline <= made <= baseline + KILLS * UNITS_AT_ONCE, (made, baseline)
