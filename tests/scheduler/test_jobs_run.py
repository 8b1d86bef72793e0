"""``etl jobs run NAME``: what cron calls. One JSON document, one summary line, docs/contract.md's
exit codes, tagged task records, vendor chains, trading days, never two runs of a job."""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
from pathlib import Path

import pytest

from etl.config import load_settings
from etl.emulators.testing import running
from etl.scheduler import load_jobs
from etl.scheduler.run import JobRuntime, run_job
from etl.tasks.runtime import Runtime
from tests.conftest import ETL, etl_env
from tests.scheduler._helpers import job_tasks, slow_job, wait_for, write_job

FILL_1D = 'action = "fill-missing"\ndataset = "klines"\nfreq = "1d"\nwindow = "last 3 sessions"'


def etl(data: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ETL, *args], capture_output=True, text=True, env=etl_env(data, **env), timeout=120
    )


def test_run_prints_one_document_and_one_summary_line(tmp_path: Path) -> None:
    jobs, data = tmp_path / "jobs", tmp_path / "data"
    write_job(
        jobs, "inst", 'action = "instruments-sync"\nvendor = "sim"\nmarket = "SZ"', "0 7 * * 6"
    )
    write_job(jobs, "sz-1d", f'{FILL_1D}\nvendor = "sim"\nmarket = "SZ"', "30 17 * * 1-5")
    assert etl(data, "jobs", "run", "inst", "--jobs-dir", str(jobs)).returncode == 0

    done = etl(data, "jobs", "run", "sz-1d", "--jobs-dir", str(jobs), "--json")

    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)  # the whole of stdout is one JSON document
    assert doc["job"] == "sz-1d" and doc["status"] == "completed" and doc["exit_code"] == 0
    [task] = doc["tasks"]
    assert task["kind"] == "fill-missing" and task["status"] == "completed"
    assert task["params"]["job"] == "sz-1d" and task["params"]["job_run"] == doc["run"]
    assert task["rows_written"] > 0
    [line] = done.stderr.splitlines()
    assert line.startswith("job sz-1d: completed (exit 0), ")
    assert f"SZ sim #{task['id']} completed" in line

    listed = json.loads(etl(data, "jobs", "list", "--jobs-dir", str(jobs), "--json").stdout)
    last = {j["name"]: j["last_run"] for j in listed["jobs"]}
    assert last["sz-1d"]["status"] == "completed" and last["sz-1d"]["task_ids"] == [task["id"]]
    assert last["sz-1d"]["run"] == doc["run"]


def test_exit_codes_for_configuration_and_bad_input(tmp_path: Path) -> None:
    jobs, data = tmp_path / "jobs", tmp_path / "data"
    symbol = 'symbols = ["000001.SZ"]'
    write_job(jobs, "no-login", f'{FILL_1D}\nvendor = "amazingdata"\n{symbol}', "0 18 * * *")
    write_job(
        jobs, "fallback", f'{FILL_1D}\nvendors = ["amazingdata", "sim"]\n{symbol}', "0 18 * * *"
    )
    write_job(jobs, "no-list", f'{FILL_1D}\nvendor = "sim"\nmarket = "SZ"', "0 18 * * *")

    # the only vendor lacks its login: 3, naming the variable to set
    alone = etl(data, "jobs", "run", "no-login", "--jobs-dir", str(jobs))
    assert alone.returncode == 3
    [line] = alone.stderr.splitlines()
    assert "job no-login: not configured (exit 3)" in line and "ETL_AMAZINGDATA_USERNAME" in line

    # a chain goes on to the next vendor, and the run succeeds
    chain = etl(data, "jobs", "run", "fallback", "--jobs-dir", str(jobs), "--json")
    assert chain.returncode == 0, chain.stderr
    first, second = json.loads(chain.stdout)["attempts"]
    assert first["vendor"] == "amazingdata" and first["exit_code"] == 3
    assert second["vendor"] == "sim" and second["status"] == "completed"

    # a market whose instruments were never synced: bad input, 2
    bad = etl(data, "jobs", "run", "no-list", "--jobs-dir", str(jobs))
    assert bad.returncode == 2
    assert "no instruments known for market SZ" in bad.stderr
    assert "etl instruments sync --vendor sim --market SZ" in bad.stderr  # the job's vendor


@pytest.mark.slow
def test_one_job_never_runs_twice_and_sigterm_stops_it_resumably(tmp_path: Path) -> None:
    jobs, data = tmp_path / "jobs", tmp_path / "data"
    write_job(jobs, "slow", slow_job(40, "2023-07-03"), "0 3 * * *")
    first = subprocess.Popen(
        [*ETL, "jobs", "run", "slow", "--jobs-dir", str(jobs), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=etl_env(data),
    )  # fmt: skip
    try:
        wait_for(
            "the first run to be under way",
            lambda: any(t.status == "running" for t in job_tasks(data, "slow")),
        )
        again = etl(data, "jobs", "run", "slow", "--jobs-dir", str(jobs))
        assert again.returncode == 1
        assert f"job slow is already running (pid {first.pid}); not started" in again.stderr
        first.send_signal(signal.SIGTERM)
        out, err = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 130, err
    assert json.loads(out)["status"] == "interrupted"
    assert err.splitlines()[-1].startswith("job slow: interrupted (exit 130)")
    [task] = job_tasks(data, "slow")
    assert task.status == "interrupted"


NOW = dt.datetime(2024, 6, 28, 10, 0, tzinfo=dt.UTC)  # Friday 18:00 in Shanghai


def _runtime(tmp: Path, env: dict[str, str], job: str, now: dt.datetime = NOW) -> JobRuntime:
    settings = load_settings(data_dir=tmp / "data", env=env, cwd=tmp)
    return JobRuntime(settings=settings, clock=lambda: now, progress=False, job=job, run_id="r1")


@pytest.mark.integration
def test_a_chain_gives_the_next_vendor_exactly_what_the_previous_left(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    # AmazingData serves the SH stock, not the HK one: its fill leaves the HK slots
    # unfillable, and sim is asked for those and nothing else.
    body = f'{FILL_1D}\nvendors = ["amazingdata", "sim"]\nsymbols = ["600000.SH", "00005.HK"]'
    write_job(jobs, "mixed", body, "0 18 * * 1-5")
    with running("amazingdata", now=NOW) as server:
        env = {
            "ETL_AMAZINGDATA_BASE_URL": server.base_url,
            "ETL_AMAZINGDATA_USERNAME": "analyst",
            "ETL_AMAZINGDATA_PASSWORD": "pw",
        }
        rt = _runtime(tmp_path, env, "mixed")
        job = load_jobs(jobs, Runtime(settings=rt.settings).capabilities()).get("mixed")
        result = run_job(job, rt)
    assert result.exit_code == 0, result.summary()
    ad, sim = result.records
    assert (ad.params["vendor"], sim.params["vendor"]) == ("amazingdata", "sim")
    # 26, 27, 28 Jun: three SSE sessions, three HKEX sessions
    assert ad.rows_written == 3 and ad.result["left"]["unfillable"] == 3
    assert sim.result["before"]["unfillable"] == 3 and sim.result["before"]["missing"] == 0
    assert sim.rows_written == 3
    assert not any(sim.result["left"].get(s) for s in ("missing", "failed", "unfillable"))


def test_trading_days_only_skips_a_closed_day_without_a_task(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    body = 'action = "instruments-sync"\nvendor = "sim"\nmarket = "SH"'
    write_job(jobs, "inst", body, "0 18 * * *", "trading_days_only = true")
    saturday = dt.datetime(2024, 6, 29, 10, 0, tzinfo=dt.UTC)
    rt = _runtime(tmp_path, {}, "inst", saturday)
    job = load_jobs(jobs, Runtime(settings=rt.settings).capabilities()).get("inst")

    skipped = run_job(job, rt, scheduled=True)
    assert skipped.exit_code == 0 and skipped.records == []
    assert skipped.summary() == (
        "job inst: skipped: 2024-06-29 is not a trading day of SH "
        "(without --scheduled it runs anyway)"
    )
    friday = _runtime(tmp_path, {}, "inst")
    assert run_job(job, friday, scheduled=True).status == "completed"
    # Regression: `etl jobs run` on a Saturday exited 0 and did nothing; a person means now.
    assert run_job(job, rt).status == "completed"
