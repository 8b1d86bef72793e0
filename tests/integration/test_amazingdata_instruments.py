"""``instruments sync --vendor amazingdata`` is incremental, against the emulator: the first sync
asks ``/base/codes/{code}/info`` for every code (one call each, ~N/5 s: 20 minutes for every
A share), and later syncs only for codes the stored instruments map does not know yet.

CFFEX lists new contracts every month, so a sync a month later has new codes to ask about.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from etl.config import Secret, Settings, VendorSettings
from etl.emulators import AmazingDataEmulator, EmulatorOptions
from etl.emulators.testing import running
from etl.emulators.wire import Outcome, Request
from etl.tasks.records import TaskRecord
from etl.tasks.runtime import Runtime
from etl.tasks.sync import sync_instruments

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

MAY = dt.datetime(2024, 5, 28, 12, 0, tzinfo=dt.UTC)
JUNE = dt.datetime(2024, 6, 28, 12, 0, tzinfo=dt.UTC)
# CFFEX contracts listed between the two dates (the next month's, and T-bond 2503s).
NEW_IN_JUNE = {"IC2408.CFE", "IF2408.CFE", "IH2408.CFE", "IM2408.CFE",
               "T2503.CFE", "TF2503.CFE", "TL2503.CFE", "TS2503.CFE"}  # fmt: skip


class _Logged(AmazingDataEmulator):
    """The emulator, noting the path of every vendor request."""

    def __init__(self, options: EmulatorOptions | None = None) -> None:
        super().__init__(options)
        self.paths: list[str] = []

    def answer(self, request: Request) -> Outcome:
        if not request.path.startswith("/_emulator/"):
            self.paths.append(request.path.removeprefix(self.base_path))
        return super().answer(request)


def sync(root: Path, now: dt.datetime) -> tuple[TaskRecord, list[str]]:
    """One ``instruments sync --vendor amazingdata --market CFE`` at ``now``: its record and
    the paths it asked."""
    with running(_Logged, now=now) as server:
        vendor = VendorSettings(
            "amazingdata", base_url=server.base_url, username="u", password=Secret("p")
        )
        settings = Settings(root, {"amazingdata": vendor}, jobs_dir=root / "jobs")
        rt = Runtime(settings, clock=lambda: now, progress=False)
        record = asyncio.run(sync_instruments(rt, "amazingdata", "CFE"))
        emulator = server.emulator
        assert isinstance(emulator, _Logged)
        assert server.stats()["violations"] == 0
    assert (record.status, record.error_count) == ("completed", 0)
    return record, emulator.paths


def stored(root: Path) -> pl.DataFrame:
    files = sorted((root / "lake" / "instruments").rglob("*.parquet"))
    return pl.read_parquet(files).drop("ingested_at").sort("symbol")


def info_asked(paths: list[str]) -> set[str]:
    return {p.split("/")[3] for p in paths if p.endswith("/info")}


def test_a_second_sync_asks_only_for_new_codes(data_root: Path) -> None:
    first, paths = sync(data_root, MAY)
    may = stored(data_root)
    assert first.rows_written == may.height == 28 == len(info_asked(paths))
    assert may["name"].null_count() == 0 and may["vendor_extra"].null_count() == 0

    # The same day again: today's list only, no info call, and nothing to rewrite.
    again, paths = sync(data_root, MAY)
    assert paths == ["/auth/login", "/base/codes"]
    assert again.rows_written == 0 and stored(data_root).equals(may)

    # A month later: the new contracts are asked about, and only they.
    later, paths = sync(data_root, JUNE)
    assert info_asked(paths) == NEW_IN_JUNE
    june = stored(data_root)
    assert later.rows_written == len(NEW_IN_JUNE) and june.height == 28 + len(NEW_IN_JUNE)
    new = june.filter(pl.col("symbol").is_in(NEW_IN_JUNE))
    assert new["name"].null_count() == 0 and new["list_date"].null_count() == 0
    assert new.filter(pl.col("list_date") > JUNE.date()).height == 0
    # Known contracts keep their rows as the first sync stored them.
    assert june.filter(pl.col("symbol").is_in(may["symbol"])).equals(may)
