"""``etl jobs list`` warns where a schedule loses data: mdapi keeps only its latest 600 1m bars
(10 hours), so a 1m job every 12 hours loses two hours of bars each time."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path

from etl.config import load_settings
from etl.scheduler import load_jobs
from etl.scheduler.status import depth_warnings
from etl.tasks.runtime import Runtime
from tests.conftest import ETL, etl_env
from tests.scheduler._helpers import write_job

REPO = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2024, 6, 28, 10, 0, tzinfo=dt.UTC)
MDAPI_1M = (
    'action = "fill-missing"\nvendor = "mdapi"\nsymbols = ["BTCUSDT.CC"]\n'
    'dataset = "klines"\nfreq = "1m"\nwindow = "last 2 days"'
)
WARNING_12H = (
    "warning: job mdapi-12h: runs up to 12h00m apart, but mdapi keeps only the latest 600 1m "
    "bars (~10h00m): bars are lost between runs; schedule it at least every 10h00m"
)


def test_jobs_list_warns_about_a_1m_mdapi_job_every_12_hours(tmp_path: Path) -> None:
    jobs, data = tmp_path / "jobs", tmp_path / "data"
    write_job(jobs, "mdapi-12h", MDAPI_1M, "0 */12 * * *")
    write_job(jobs, "mdapi-4h", MDAPI_1M, "5 */4 * * *")  # the shipped schedule: fine
    listed = subprocess.run(
        [*ETL, "jobs", "list", "--jobs-dir", str(jobs), "--json"],
        capture_output=True, text=True, env=etl_env(data), timeout=60,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert listed.stderr.splitlines() == [WARNING_12H]
    doc = {j["name"]: j for j in json.loads(listed.stdout)["jobs"]}
    assert doc["mdapi-12h"]["warnings"] == [WARNING_12H.removeprefix("warning: ")]
    assert doc["mdapi-4h"]["warnings"] == []
    assert doc["mdapi-4h"]["next_run"] is not None


def test_a_window_shorter_than_the_gap_between_runs_is_warned(tmp_path: Path) -> None:
    write_job(tmp_path, "weekly-2d", MDAPI_1M.replace("mdapi", "sim"), "0 7 * * 6")
    caps = Runtime(settings=load_settings(env={})).capabilities()
    job = load_jobs(tmp_path, caps).get("weekly-2d")
    assert depth_warnings(job, caps, NOW) == [
        "job weekly-2d: its window (last 2 days) covers 2d00h but runs are up to 7d00h apart: "
        "days between runs are never looked at"
    ]


def test_no_shipped_job_loses_data_between_runs() -> None:
    caps = Runtime(settings=load_settings(env={})).capabilities()
    jobs = load_jobs(REPO / "jobs", caps)
    for job in jobs.jobs.values():
        assert depth_warnings(job, caps, NOW) == [], job.name


def test_a_vendor_without_credentials_is_warned_before_any_run(tmp_path: Path) -> None:
    jobs, data = tmp_path / "jobs", tmp_path / "data"
    body = 'action = "instruments-sync"\nmarket = "SH"'
    write_job(jobs, "alone", f'{body}\nvendor = "amazingdata"', "0 7 * * 6")
    write_job(jobs, "chain", f'{body}\nvendors = ["amazingdata", "sim"]', "0 7 * * 6")
    listed = subprocess.run(
        [*ETL, "jobs", "list", "--jobs-dir", str(jobs)],
        capture_output=True, text=True, env=etl_env(data), timeout=60,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    needs = (
        "amazingdata needs username and password: set ETL_AMAZINGDATA_USERNAME and "
        "ETL_AMAZINGDATA_PASSWORD (or [vendors.amazingdata] username and "
        "[vendors.amazingdata] password in etl.toml)"
    )
    assert listed.stderr.splitlines() == [
        f"warning: job alone: {needs}; its runs will exit 3",
        f"warning: job chain: {needs}; its runs will skip it",
    ]
