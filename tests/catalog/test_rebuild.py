"""`etl catalog rebuild` recomputes the lake's metadata from what is on disk: a partition
deleted by hand disappears from it, and a killed build's temporary files are removed."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

from etl.dataroot import DataRoot, PartitionKey
from etl.lake import Lake
from tests.conftest import ETL, NOW, etl_env, kline_rows


def run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ETL, *args], env=etl_env(root), capture_output=True, text=True, timeout=120
    )


def test_rebuild_drops_manifests_of_deleted_partitions(data_root: Path) -> None:
    lake = Lake(data_root)
    days = [dt.date(2023, 12, 28), dt.date(2024, 1, 2)]
    lake.write("klines", kline_rows(["600000.SH"], days), now=NOW)
    paths = DataRoot(data_root)
    gone = PartitionKey.of(freq="1d", year=2023)
    shutil.rmtree(paths.partition("klines", gone))
    stale = data_root / ".catalog.duckdb.deadbeef.tmp"  # left by a killed rebuild
    stale.write_bytes(b"half a catalog")
    proc = run(data_root, "catalog", "rebuild")
    assert proc.returncode == 0, proc.stderr
    assert not paths.manifest("klines", gone).exists()
    assert paths.manifest("klines", PartitionKey.of(freq="1d", year=2024)).exists()
    assert not stale.exists()
    proc = run(data_root, "sql", "SELECT partition FROM lake_partitions", "--format", "csv")
    assert proc.stdout.split() == ["partition", "freq=1d/year=2024"]


def test_a_data_dir_that_is_a_file_or_cannot_be_made_is_bad_input(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    for root in (afile, tmp_path / "no" / "such" / "place"):
        proc = run(root, "compact")
        assert proc.returncode == 2, proc.stderr
        assert "data root" in proc.stderr and "--data-dir" in proc.stderr
    assert not (tmp_path / "no").exists()
