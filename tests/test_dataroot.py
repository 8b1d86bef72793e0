"""The data root's layout has one owner (etl/dataroot.py); these pin it down."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from etl.dataroot import DataRoot, PartitionKey
from etl.errors import LakeError

PACKAGE = Path(__file__).resolve().parents[1] / "etl"
# `root / "lake"`, `/ "state" /`, `"tasks" /` ...: a path under the data root built by hand.
BY_HAND = re.compile(r"""/\s*["'](lake|state|tasks)["']|["'](lake|state|tasks)["']\s*/""")


def test_no_module_but_dataroot_builds_data_root_paths() -> None:
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{n}: {line.strip()}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "dataroot.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if BY_HAND.search(line)
    ]
    assert offenders == []


def test_layout(tmp_path: Path) -> None:
    root = DataRoot(tmp_path)
    # (expected path relative to the root, what computes it) -- the README's "The lake" table
    cases = [
        ("catalog.duckdb", root.catalog),
        ("lake/klines/freq=1d/year=2024", root.partition_of("klines", freq="1d", year=2024)),
        ("state/gap_ledger/dataset=klines", root.partition_of("gap_ledger", dataset="klines")),
        ("lake/.manifest/klines/freq=1d/year=2024.json",
         root.manifest("klines", PartitionKey.of(freq="1d", year=2024))),
        ("lake/.locks/klines/freq=1d~year=2024.lock",
         root.lock("klines", PartitionKey.of(freq="1d", year=2024))),
        ("tasks/7.json", root.task_record(7)),
        ("tasks/7.state", root.task_state(7)),
        ("state/jobs/cn-stocks-1d.lock", root.job_lock("cn-stocks-1d")),
    ]  # fmt: skip
    for rel, path in cases:
        assert path == tmp_path / rel


@pytest.mark.parametrize("value", ["../x", "a/b", "", "x" * 65, "a b", "a\x00"])
def test_unsafe_partition_values_never_become_paths(value: str) -> None:
    with pytest.raises(LakeError, match="unsafe partition value"):
        DataRoot(Path("/r")).partition_of("klines", freq=value)


@pytest.mark.parametrize("name", ["../etc", "Klines", "a/b", ""])
def test_unsafe_names_never_become_paths(name: str) -> None:
    with pytest.raises(LakeError, match="unsafe name"):
        DataRoot(Path("/r")).job_lock(name)
