"""catalog.duckdb opens in the DuckDB shell the project installs, and says what etl sql says.

A regression test: the catalog was written by the duckdb library (2.0, storage format 69) with
views using a 2.0-only option, and the newest shell a user could install (``duckdb-cli``, a
1.x) refused the file ("can only read versions between 64 and 68"). Every view and macro is
asked through the real shell, on a lake where some datasets have files and some have none.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from etl import schema as schemas
from etl.catalog import ReadOnlySession, build_catalog, ensure_catalog, refresh_catalog
from etl.commands.shell import find_shell
from etl.lake import Lake
from tests.conftest import ETL, NOW, kline_rows

DAYS = [dt.date(2024, 1, 2), dt.date(2024, 1, 3), dt.date(2024, 1, 4)]


def shell(catalog: Path, sql: str) -> list[str]:
    """Rows of ``sql`` as the installed ``duckdb`` shell prints them (CSV, no header)."""
    done = subprocess.run(
        [str(find_shell()), "-readonly", str(catalog), "-csv", "-noheader", "-c", sql],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"duckdb shell: {sql}\n{done.stderr}"
    return done.stdout.splitlines()


@pytest.fixture
def lake_root(data_root: Path) -> Path:
    """klines in the lake; every other dataset without a file."""
    Lake(data_root).write("klines", kline_rows(["600000.SH", "000001.SZ"], DAYS), now=NOW)
    build_catalog(data_root, now=NOW)
    return data_root


def test_the_shell_is_the_projects_own() -> None:
    # the console script installed beside this Python by the duckdb-cli dependency
    assert find_shell().parent == Path(sys.executable).parent


def test_every_view_answers_in_the_shell_as_in_etl_sql(lake_root: Path) -> None:
    catalog = lake_root / "catalog.duckdb"
    names = shell(catalog, "SELECT view_name FROM duckdb_views() WHERE NOT internal ORDER BY 1")
    # one view per dataset of schemas/, plus the warehouse's own (partitions, coverage, ...)
    assert set(schemas.schemas()) <= set(names)
    assert {"lake_partitions", "lake_files", "coverage", "tasks", "freshness"} <= set(names)
    with ReadOnlySession(lake_root) as session:
        for name in names:
            want = session.query(f"SELECT count(*) FROM {name}").rows[0][0]
            assert shell(catalog, f"SELECT count(*) FROM {name}") == [str(want)], name
    assert shell(catalog, "SELECT count(*) FROM klines") == ["6"]
    assert shell(catalog, "SELECT count(*) FROM income") == ["0"]  # no file: typed, empty


def test_the_asof_macros_answer_in_the_shell(lake_root: Path) -> None:
    catalog = lake_root / "catalog.duckdb"
    for name, dataset in schemas.schemas().items():
        if dataset.asof:
            assert shell(catalog, f"SELECT count(*) FROM {name}_asof('2024-04-30')") == ["0"]


def test_a_datasets_first_file_rebuilds_the_catalog(data_root: Path) -> None:
    build_catalog(data_root, now=NOW)
    catalog = data_root / "catalog.duckdb"
    assert shell(catalog, "SELECT count(*) FROM klines") == ["0"]
    assert not ensure_catalog(data_root, now=NOW)  # nothing changed: no rebuild
    Lake(data_root).write("klines", kline_rows(["600000.SH"], DAYS), now=NOW)
    assert refresh_catalog(data_root, now=NOW)  # what every task run ends with
    assert shell(catalog, "SELECT count(*) FROM klines") == ["3"]


def test_refresh_never_creates_a_catalog(data_root: Path) -> None:
    assert not refresh_catalog(data_root, now=NOW)
    assert not (data_root / "catalog.duckdb").exists()


def test_etl_duckdb_opens_the_data_roots_catalog_read_only(lake_root: Path) -> None:
    run = [*ETL, "duckdb", "--data-dir", str(lake_root)]
    count = subprocess.run(
        [*run, "-csv", "-noheader", "-c", "SELECT count(*) FROM klines"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (count.returncode, count.stdout.strip()) == (0, "6"), count.stderr
    before = (lake_root / "catalog.duckdb").read_bytes()
    write = subprocess.run(
        [*run, "-c", "CREATE TABLE mine (i INTEGER)"], capture_output=True, text=True, timeout=60
    )
    assert write.returncode == 1
    assert "read-only" in write.stderr
    assert (lake_root / "catalog.duckdb").read_bytes() == before
