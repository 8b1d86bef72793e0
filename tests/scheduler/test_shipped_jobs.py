"""Each shipped job of jobs/ runs once against the vendor emulators (the clock frozen on a
Friday evening after the close), leaving completed task records tagged with the job.

Vendors without an emulator in etl/emulators yet (at the time of writing: mdapi) run their
jobs with ``vendor`` replaced by ``sim``, the offline vendor behind every emulator; the
replacement is printed. Once the emulator is registered the job runs against it unchanged.

One more change, for time: AmazingData completes each code of its lists with one ``info``
request, and its emulator allows 5 requests/s, so the full weekly instruments job (SH, SZ, BJ
and ~700 CFFEX contracts) takes about two minutes. Here it runs for BJ only (same code path,
six codes). The SH, SZ and BJ lists the later jobs select from are synced from ``sim`` (the
same synthetic universe as the emulator) by the module fixture, so each job's test stands on
its own: run alone, in any order, or on another worker than the instruments job's (regression:
the statements jobs failed with "no instruments known for market BJ" unless the
instruments-amazingdata test had run before them in the same process).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from etl.catalog import ensure_catalog
from etl.config import load_settings
from etl.emulators import EMULATORS
from etl.emulators.testing import fetch_stats, running
from etl.scheduler import load_jobs
from etl.scheduler.run import JobRuntime, new_run_id, run_job
from etl.tasks.runtime import Runtime
from etl.tasks.sync import sync_instruments
from etl.vendors import ADAPTERS

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

REPO = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2024, 6, 28, 10, 0, tzinfo=dt.UTC)  # Friday 18:00 in Shanghai
# Reference data first: fills over a market take their symbols from the instruments.
ORDER = [
    "instruments-amazingdata", "instruments-mdapi", "calendars", "cn-stocks-1d", "mdapi-1m",
    "adj-factors", "futures-main-contracts", "future-varieties", "statements-balance-sheet",
    "statements-income", "statements-cash-flow", "compact-nightly",
]  # fmt: skip
CREDENTIALS = {
    "amazingdata": {"USERNAME": "analyst", "PASSWORD": "pw-for-tests"},
    "mdapi": {},
}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """jobs/ copied, emulators up for the vendors that have one, the rest rewritten to sim."""
    tmp = tmp_path_factory.mktemp("shipped")
    jobs = tmp / "jobs"
    shutil.copytree(REPO / "jobs", jobs)
    env: dict[str, str] = {}
    with ExitStack() as stack:
        for vendor, creds in CREDENTIALS.items():
            if vendor in EMULATORS and vendor in ADAPTERS:
                server = stack.enter_context(running(vendor, now=NOW))
                env[f"ETL_{vendor.upper()}_BASE_URL"] = server.base_url
                env.update({f"ETL_{vendor.upper()}_{k}": v for k, v in creds.items()})
                continue
            for file in jobs.glob("*.toml"):  # no emulator yet: the same job on sim
                text = file.read_text()
                if f'vendor = "{vendor}"' in text:
                    print(f"{file.name}: {vendor} has no emulator yet; running it on sim")
                    file.write_text(text.replace(f'vendor = "{vendor}"', 'vendor = "sim"'))
        narrow = jobs / "instruments-amazingdata.toml"
        narrow.write_text(
            narrow.read_text().replace(
                'vendor = "amazingdata"\n', 'vendor = "amazingdata"\nmarket = "BJ"\n'
            )
        )
        settings = load_settings(data_dir=tmp / "data", env=env, cwd=tmp)
        rt = Runtime(settings=settings, clock=lambda: NOW, progress=False)
        for market in ("SH", "SZ", "BJ"):
            assert asyncio.run(sync_instruments(rt, "sim", market)).status == "completed"
        yield tmp, env


# ORDER is the order a fresh warehouse would run them in; each test needs only the fixture.
@pytest.mark.parametrize("name", ORDER)
def test_shipped_job_runs_once(setup: tuple[Path, dict[str, str]], name: str) -> None:
    tmp, env = setup
    settings = load_settings(data_dir=tmp / "data", env=env, cwd=tmp)
    caps = Runtime(settings=settings).capabilities()
    jobs = load_jobs(tmp / "jobs", caps)
    assert [str(e) for e in jobs.errors] == []
    assert set(jobs.jobs) == set(ORDER)
    job = jobs.get(name)
    ensure_catalog(settings.data_dir, now=NOW)
    rt = JobRuntime(
        settings=settings, clock=lambda: NOW, progress=False, job=name, run_id=new_run_id()
    )

    result = run_job(job, rt)

    assert result.exit_code == 0, result.summary()
    assert result.records, result.summary()
    for record in result.records:
        assert record.status == "completed", result.summary()
        assert record.error_count == 0, record.errors[:3]
        assert record.params["job"] == name and record.params["job_run"] == rt.run_id
    if job.action == "fill-missing":  # nothing the vendors can serve is left open
        left = result.records[-1].result["left"]
        assert left.get("missing", 0) == 0 and left.get("failed", 0) == 0, left
    if job.action in ("fill-missing", "backfill", "main-contracts-snapshot"):
        assert sum(r.rows_written for r in result.records) > 0, result.summary()
    for key, url in env.items():
        if key.endswith("_BASE_URL"):
            assert fetch_stats(url)["violations"] == 0
