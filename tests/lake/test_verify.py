"""``etl verify``: a flipped bit, a truncation and a deleted file are each found, named with
what they held; ``--repair`` takes them out, and fill-missing makes the lake exact again while
``etl sql`` answers for everything else meanwhile."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tests.conftest import ETL, etl_env, sim_stocks

pytestmark = pytest.mark.integration

START, END = "2022-01-04", "2024-06-28"
COLUMNS = ["symbol", "ts", "open", "high", "low", "close", "volume", "amount"]


def _etl(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ETL, *args], env=etl_env(root), capture_output=True, text=True,
                          timeout=300, check=False)  # fmt: skip


def _ok(root: Path, *args: str) -> Any:
    done = _etl(root, *args, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def _bars(root: Path) -> pl.DataFrame:
    files = sorted((root / "lake" / "klines").rglob("*.parquet"))
    return pl.read_parquet(files).select(COLUMNS).sort("symbol", "ts")


def _file(root: Path, year: int) -> Path:
    (found,) = (root / "lake" / "klines" / "freq=1d" / f"year={year}").glob("*.parquet")
    return found


def test_damage_is_found_repaired_and_refetched(data_root: Path) -> None:
    symbols = sim_stocks("SH", 3, dt.date(2020, 1, 1))
    selection = ["--vendor", "sim", "--dataset", "klines", "--freq", "1d", "--symbols", symbols,
                 "--start", START, "--end", END]  # fmt: skip
    _ok(data_root, "calendar", "sync", "--vendor", "sim", "--market", "SH", "--start", START,
        "--end", END)  # fmt: skip
    _ok(data_root, "backfill", *selection)
    want = _bars(data_root)
    assert _ok(data_root, "verify")["ok"] is True

    # one flipped bit in the middle of 2022's file, 2023's cut in half, 2024's deleted
    flipped, cut, gone = _file(data_root, 2022), _file(data_root, 2023), _file(data_root, 2024)
    data = bytearray(flipped.read_bytes())
    data[len(data) // 2] ^= 0x10
    flipped.write_bytes(bytes(data))
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    gone.unlink()

    found = _etl(data_root, "verify", "--json")
    assert found.returncode == 1, found.stderr
    doc = json.loads(found.stdout)
    by_file = {f["file"]: f for f in doc["findings"]}
    assert set(by_file) == {flipped.name, cut.name, gone.name}
    assert "digest" in by_file[flipped.name]["problem"]
    assert by_file[gone.name]["problem"] == "listed by the manifest but missing"
    assert all(f["rows"] and f["min_time"] for f in by_file.values())  # what each held

    # etl sql answers meanwhile, leaving out the file it cannot read
    meanwhile = _etl(data_root, "sql", "SELECT count(*) AS n FROM klines", "--json")
    assert meanwhile.returncode == 0 and "skipping unreadable file" in meanwhile.stderr

    repaired = _ok(data_root, "verify", "--repair")
    assert all(f["repaired"] for f in repaired["findings"])
    quarantine = data_root / "lake" / ".quarantine" / "klines"
    assert {p.name for p in quarantine.rglob("*.parquet")} == {flipped.name, cut.name}
    assert _ok(data_root, "verify")["ok"] is True

    _ok(data_root, "fill-missing", *selection)
    assert _bars(data_root).equals(want)


def test_a_data_root_that_is_not_there_exits_2_and_is_not_made(tmp_path: Path) -> None:
    typo = tmp_path / "dat"
    done = subprocess.run([*ETL, "verify", "--data-dir", str(typo)], env=etl_env(tmp_path),
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 2 and "check --data-dir" in done.stderr, done.stderr
    assert not typo.exists()
