"""What a task's summary line, ``--json`` and exit code say about its items, from the
command line (the embedded ``sim`` vendor: no emulator). Regressions: a backfill whose
range began before the vendor's history said ``completed, 2/2 ok``, the reason only in the
gap ledger; ``items`` was never filled in. Beyond a vendor's depth is said item by item but
exits 0 (nothing a rerun would change); a vendor that does not serve an item exits 1."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path

from tests.conftest import ETL, etl_env

SYMBOLS = "AAPL.US,MSFT.US"


def etl(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ETL, *args], capture_output=True, text=True, env=etl_env(root), timeout=120
    )


def klines(command: str, start: str, end: str, *extra: str) -> list[str]:
    return [command, "--vendor", "sim", "--dataset", "klines", "--freq", "1d",
            "--symbols", SYMBOLS, "--start", start, "--end", end, *extra]  # fmt: skip


def test_a_range_older_than_the_vendor_serves_is_said(tmp_path: Path) -> None:
    # sim's history starts 2005-01-04: December 2004 is beyond it, January 2005 is served
    done = etl(tmp_path, *klines("backfill", "2004-12-01", "2005-02-01"))
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip().splitlines()[0]
    assert "completed, 2 symbols: 2 partly done (beyond depth 2)" in line, line
    assert "sim serves klines since 2005-01-04" in done.stderr  # the vendor's own words

    doc = json.loads(etl(tmp_path, "tasks", "show", "1", "--json").stdout)
    assert doc["items"]["partly_done"] == 2 and doc["items"]["done"] == 0, doc["items"]
    assert doc["items"]["why"] == {"partly_done": {"beyond depth": 2}}

    # a fill of what is left records the slots as unfillable, and says so ...
    first = etl(tmp_path, *klines("fill-missing", "2004-12-01", "2005-02-01", "--json"))
    assert first.returncode == 0, first.stderr
    items = json.loads(first.stdout)["items"]
    assert items["unavailable"] == 2 and items["why"]["unavailable"] == {"beyond depth": 2}
    # ... once: the next fill finds only slots a run already settled, all done
    again = etl(tmp_path, *klines("fill-missing", "2004-12-01", "2005-02-01", "--json"))
    assert again.returncode == 0, again.stderr
    items = json.loads(again.stdout)["items"]
    assert items["total"] == items["done"] == 2, items


def test_a_healthy_backfill_says_every_symbol_done(tmp_path: Path) -> None:
    done = etl(tmp_path, *klines("backfill", "2024-01-02", "2024-02-01", "--json"))
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["items"]["done"] == doc["success_count"] == 2, doc
    assert doc["items"]["why"] == {}


def test_sim_counts_the_calls_it_answers_as_requests(tmp_path: Path) -> None:
    """Regression: every sim task said "0 requests" (sim has no wire), while its --dry-run
    planned some. Each call sim answers is a request, as the plan counts it."""
    plan = etl(tmp_path, *klines("backfill", "2024-01-02", "2024-02-01", "--dry-run", "--json"))
    assert plan.returncode == 0, plan.stderr
    planned = json.loads(plan.stdout)["requests"]
    done = etl(tmp_path, *klines("backfill", "2024-01-02", "2024-02-01"))
    assert done.returncode == 0, done.stderr
    doc = json.loads(etl(tmp_path, "tasks", "show", "1", "--json").stdout)
    assert doc["requests"] == planned > 0, (doc["requests"], planned)
    noun = "request" if planned == 1 else "requests"
    assert f", {planned} {noun}" in done.stdout.splitlines()[0], done.stdout
    again = etl(tmp_path, *klines("backfill", "2024-01-02", "2024-02-01", "--json"))
    assert json.loads(again.stdout)["requests"] == 0  # all stored: nothing asked


def test_a_range_wholly_beyond_the_vendors_answer_is_unavailable(tmp_path: Path) -> None:
    """Regression: nothing stored, every bar older than what the vendor's answer reaches
    (Infoway: the latest 500 1d bars), and the line said "partly done (beyond depth);
    0 rows written". The item is unavailable, on the vendor's answer (requests made)."""
    from etl.emulators.testing import running

    now = dt.datetime(2026, 12, 4, 12, tzinfo=dt.UTC)
    with running("infoway", now=now) as server:
        env = etl_env(tmp_path, ETL_INFOWAY_BASE_URL=server.base_url,
                      ETL_INFOWAY_API_KEY="items-key-1")  # fmt: skip
        for command in ("backfill", "fill-missing"):
            args = [command, "--vendor", "infoway", "--dataset", "klines", "--freq", "1d",
                    "--symbols", SYMBOLS, "--start", "2024-01-02", "--end", "2024-06-28",
                    "--json"]  # fmt: skip
            done = subprocess.run(
                [*ETL, *args], capture_output=True, text=True, env=env, timeout=120
            )
            assert done.returncode == 0, done.stderr
            doc = json.loads(done.stdout)
            assert doc["rows_written"] == 0 and doc["requests"] > 0, doc
            assert doc["items"]["unavailable"] == 2, (command, doc["items"])
            assert doc["items"]["why"] == {"unavailable": {"beyond depth": 2}}
