"""Infoway's plan, cached in the data root: the rate applies from the first request, and
/package/info is asked once per day per data root, not once per command."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path

from etl.config import Secret, VendorSettings
from etl.emulators.infoway import InfowayEmulator
from etl.emulators.testing import running
from etl.vendors.base import VendorContext
from etl.vendors.infoway import InfowayAdapter
from etl.vendors.plans import MAX_AGE, PlanCache

NOW = dt.datetime(2024, 6, 28, 12, 0, tzinfo=dt.UTC)
KEY = "plan-cache-key-1"
PREMIUM = {"packageName": "Premium", "apiNumPerSec": 10, "maxYearHisData": 5,
           "expireTime": 1893456000000}  # fmt: skip


def _adapter(root: Path, base_url: str, now: dt.datetime = NOW) -> InfowayAdapter:
    settings = VendorSettings("infoway", base_url=base_url, api_key=Secret(KEY))
    context = VendorContext(
        settings, now=lambda: now, state_dir=root / "gov", plans=PlanCache.of(root, "infoway")
    )
    return InfowayAdapter(context)


def _calendar(adapter: InfowayAdapter) -> None:
    async def go() -> None:
        try:
            await adapter.calendar("SH", dt.date(2024, 6, 3), dt.date(2024, 6, 7))
        finally:
            await adapter.aclose()

    asyncio.run(go())


def test_package_info_is_asked_once_and_its_rate_applies_from_the_start(tmp_path: Path) -> None:
    with running(InfowayEmulator, now=NOW, api_key=KEY) as server:
        first = _adapter(tmp_path, server.base_url)
        assert first.capabilities().rate.per_second == 1.0  # nothing known yet: Free's rate
        _calendar(first)
        assert server.stats()["by_path"]["/package/info"]["requests"] == 1
        cached = json.loads(PlanCache.of(tmp_path, "infoway").path.read_text())
        assert cached["data"]["apiNumPerSec"] == 10
        assert cached["read_at"] == "2024-06-28T12:00:00Z"
        # A new command on the same data root: the plan's rate before any request, no re-read.
        second = _adapter(tmp_path, server.base_url)
        assert second.capabilities().rate.per_second == 10.0
        assert second.http.governor is not None
        assert second.http.governor.limits[0].requests == 10
        _calendar(second)
        assert server.stats()["by_path"]["/package/info"]["requests"] == 1
        # A day later the cached plan is stale: it still sets the rate, and is asked again.
        later = _adapter(tmp_path, server.base_url, now=NOW + MAX_AGE)
        assert later.capabilities().rate.per_second == 10.0
        _calendar(later)
        assert server.stats()["by_path"]["/package/info"]["requests"] == 2


def test_a_plan_past_its_expiry_is_stale(tmp_path: Path) -> None:
    cache = PlanCache.of(tmp_path, "infoway")
    written = cache.write(PREMIUM, NOW)
    expiry = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    assert written.fresh(NOW + dt.timedelta(hours=23), expiry)
    assert not written.fresh(NOW + MAX_AGE, expiry)
    assert not written.fresh(NOW + dt.timedelta(hours=1), NOW)  # expired an hour ago
    assert not written.fresh(NOW - dt.timedelta(hours=1), expiry)  # clock set back


def test_an_unreadable_cache_is_asked_again(tmp_path: Path) -> None:
    cache = PlanCache.of(tmp_path, "infoway")
    cache.path.parent.mkdir(parents=True)
    cache.path.write_text("{not json")
    assert cache.read() is None
    with running(InfowayEmulator, now=NOW, api_key=KEY) as server:
        adapter = _adapter(tmp_path, server.base_url)
        _calendar(adapter)
        assert server.stats()["by_path"]["/package/info"]["requests"] == 1
    assert cache.read() is not None
