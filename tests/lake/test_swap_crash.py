"""A commit SIGKILLed at every file system step of its swap, with ``RENAME_EXCHANGE`` and with
the two-rename fallback forced (as on NFS or SMB): no partition is ever lost or doubled, and
the next writer settles the journal so the manifest matches the folder again."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from etl.dataroot import DataRoot, PartitionKey
from etl.lake import Lake
from tests.conftest import kline_rows

WRITER = Path(__file__).with_name("_swap_crash_writer.py")
ROOT_DIR = Path(__file__).resolve().parents[2]
SYMBOLS = ["600000.SH", "600001.SH", "600002.SH"]
DAYS = [dt.date(2024, 1, 2) + dt.timedelta(days=i) for i in range(20)]
KEY = PartitionKey.of(freq="1d", year=2024)


def commit_rows(i: int) -> pl.DataFrame:
    """Commit 0 stores every key with close 0; commit 1 rewrites half of them with close 1
    and adds a symbol, so it both replaces a file and writes a new one."""
    if i == 0:
        return kline_rows(SYMBOLS, DAYS, close=0.0)
    return kline_rows([*SYMBOLS[:2], "600009.SH"], DAYS[:10], close=1.0)


def stored(root: Path) -> pl.DataFrame:
    files = sorted(DataRoot(root).partition("klines", KEY).glob("*.parquet"))
    return pl.read_parquet(files).select("symbol", "ts", "close").sort("symbol", "ts")


def expected(after: bool) -> pl.DataFrame:
    rows = commit_rows(0)
    if after:
        new = commit_rows(1)
        rows = pl.concat([rows.join(new, on=["symbol", "ts"], how="anti"), new])
    return rows.select("symbol", "ts", "close").sort("symbol", "ts")


def manifest_matches_folder(root: Path) -> bool:
    paths = DataRoot(root)
    doc = json.loads(paths.manifest("klines", KEY).read_bytes())
    on_disk = {p.name for p in paths.partition("klines", KEY).glob("*.parquet")}
    return {f["name"] for f in doc["files"]} == on_disk


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["fallback", "exchange"])
def test_sigkill_at_every_step_of_the_swap(tmp_path: Path, mode: str) -> None:
    base = tmp_path / "base"
    Lake(base).write("klines", commit_rows(0), now=dt.datetime(2024, 6, 1, tzinfo=dt.UTC))
    before, after = expected(False), expected(True)
    step, finished = 1, False
    outcomes = []
    while not finished:
        assert step < 60, "the commit never finished"
        root = tmp_path / f"kill{step}"
        shutil.copytree(base, root)
        proc = subprocess.run(
            [sys.executable, str(WRITER), str(root), str(step), mode],
            capture_output=True, text=True, cwd=ROOT_DIR, timeout=60,
            env={"PYTHONPATH": str(ROOT_DIR), "PATH": "/usr/bin:/bin"},
        )  # fmt: skip
        finished = proc.returncode == 0 and proc.stdout.startswith("done")
        assert finished or proc.returncode == -9, proc.stderr
        # Readers right after the kill: wholly old or wholly new (or, in the fallback's
        # instant between its renames, absent until the next writer rolls it forward).
        folder = DataRoot(root).partition("klines", KEY)
        if folder.is_dir():
            now = stored(root)
            assert now.equals(before) or now.equals(after), f"step {step}: a mixed partition"
        else:
            assert mode == "fallback", f"step {step}: partition absent after an exchange"
            outcomes.append("absent")
        # The next writer (a commit elsewhere) settles the journal and sweeps the staging.
        lake = Lake(root)
        lake.write(
            "klines",
            kline_rows(["600000.SH"], [dt.date(2023, 12, 29)]),
            now=dt.datetime(2024, 6, 3, tzinfo=dt.UTC),
        )
        settled = stored(root)
        assert settled.equals(before) or settled.equals(after), f"step {step}: lost rows"
        assert manifest_matches_folder(root), f"step {step}: manifest out of step"
        assert not DataRoot(root).manifest_pending("klines", KEY).exists()
        staging = DataRoot(root).staging
        assert not staging.exists() or not any(staging.iterdir()), f"step {step}: leftovers"
        outcomes.append("new" if settled.equals(after) else "old")
        shutil.rmtree(root)
        step += 1
    # Early kills roll back, later ones roll forward; both happened.
    assert "old" in outcomes and "new" in outcomes, outcomes
    # The fallback's window between its two renames was hit (the case that lost data).
    assert ("absent" in outcomes) == (mode == "fallback"), outcomes
