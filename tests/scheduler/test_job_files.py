"""Job files: every shipped one validates against the live vendor registry, and each kind of
mistake gets its documented message, naming the file and the field."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from etl.config import load_settings
from etl.scheduler import load_jobs
from etl.tasks.runtime import Runtime
from etl.vendors.base import Capabilities
from tests.conftest import ETL, etl_env

REPO = Path(__file__).resolve().parents[2]
SHIPPED = {
    "adj-factors", "calendars", "cn-stocks-1d", "compact-nightly", "future-varieties",
    "futures-main-contracts", "instruments-amazingdata", "instruments-mdapi", "mdapi-1m",
    "statements-balance-sheet", "statements-cash-flow", "statements-income",
}  # fmt: skip


@pytest.fixture(scope="module")
def caps() -> dict[str, Capabilities]:
    return Runtime(settings=load_settings(env={})).capabilities()


def test_every_shipped_job_file_validates(caps: dict[str, Capabilities]) -> None:
    jobs = load_jobs(REPO / "jobs", caps)
    assert [str(e) for e in jobs.errors] == []
    assert set(jobs.jobs) == SHIPPED
    for job in jobs.jobs.values():  # one file per job, named after it
        assert job.file.stem == job.name


VALID = """
name = "bad"
action = "fill-missing"
vendor = "sim"
market = "SH"
dataset = "klines"
freq = "1d"
window = "last 10 sessions"
[schedule]
cron = "30 17 * * 1-5"
"""


def edit(old: str, new: str) -> str:
    assert old in VALID
    return VALID.replace(old, new)


# (file text, field, literal fragment of the message after "<file>: <field>: ")
CASES = [
    # a cron field out of range
    (edit('"30 17 * * 1-5"', '"61 * * * *"'), "schedule.cron",
     "invalid cron expression '61 * * * *'"),
    # the wrong number of cron fields
    (edit('"30 17 * * 1-5"', '"* * *"'), "schedule.cron",
     "invalid cron expression '* * *': expected 5 fields (minute hour day month weekday) or 6 "
     "with seconds first, got 3"),
    # day of month and day of week both restricted: cron ORs them, APScheduler would AND them
    (edit('"30 17 * * 1-5"', '"0 9 1 * 1"'), "schedule.cron",
     "invalid cron expression '0 9 1 * 1': restrict the day of month or the day of week, not both"),
    # a vendor the registry does not know
    (edit('vendor = "sim"', 'vendor = "nosuch"'), "vendor", "unknown vendor 'nosuch'; registered:"),
    # a registered vendor that does not serve the selection (StockTV: IN, JP, US only)
    (edit('vendor = "sim"', 'vendor = "stocktv"'), "vendor",
     "stocktv does not serve klines 1d for SH; vendors that can:"),
    # an unknown dataset
    (edit('dataset = "klines"', 'dataset = "bars"'), "dataset",
     "fill-missing cannot take 'bars'; use one of klines, balance_sheet, income, cash_flow"),
    # an unknown market
    (edit('market = "SH"', 'market = "XX"'), "market", "unknown market 'XX'; use one of SH SZ"),
    # an unknown frequency
    (edit('freq = "1d"', 'freq = "2m"'), "freq", "unknown frequency '2m'; use one of 1m 5m"),
    # missing keys
    (edit('name = "bad"\n', ""), "name", "missing (required)"),
    (edit('[schedule]\ncron = "30 17 * * 1-5"\n', ""), "schedule", "missing (required)"),
    (edit('window = "last 10 sessions"\n', ""), "window", "missing: e.g. window = "),
    (edit('vendor = "sim"\n', ""), "vendor", "missing: fill-missing needs vendor"),
    (edit('freq = "1d"\n', ""), "freq", "missing (required for klines)"),
    # an unknown action
    (edit('"fill-missing"', '"refresh"'), "action", "unknown action 'refresh'; use one of"),
    # a misspelt key
    (edit('vendor = "sim"', 'vendro = "sim"'), "vendro", "unknown key; known keys:"),
    # a symbol that is not canonical
    (edit('market = "SH"', 'symbols = ["600000.sh"]'), "symbols", "invalid symbol '600000.sh'"),
    # a time zone that does not exist
    (edit('cron = "30 17 * * 1-5"', 'cron = "0 1 * * *"\ntimezone = "Asia/Peking"'),
     "schedule.timezone", "unknown time zone 'Asia/Peking'"),
    # trading days of which market?
    (edit('market = "SH"', 'symbols = ["HX_HSI.MDAPI"]').replace(
        'cron = "30 17 * * 1-5"', 'cron = "0 1 * * *"\ntrading_days_only = true'),
     "schedule.trading_days_only", "needs a market calendar"),
    # a window outside the grammar
    (edit('"last 10 sessions"', '"recent"'), "window", "unknown window 'recent'"),
    # reporting periods of klines
    (edit('"last 10 sessions"', '"last 8 periods"'), "window",
     "'last 8 periods' counts reporting periods: statements only"),
    # grace must be positive
    (edit('cron = "30 17 * * 1-5"', 'cron = "0 1 * * *"\ngrace_seconds = -5'),
     "schedule.grace_seconds", "must be a positive whole number of seconds, got -5"),
    # a market and symbols at once
    (edit('market = "SH"', 'market = "SH"\nsymbols = ["600000.SH"]'), "symbols",
     "give market(s) or symbols, not both"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "field", "fragment"), CASES)
def test_bad_job_file_names_file_and_field(
    tmp_path: Path, caps: dict[str, Capabilities], text: str, field: str, fragment: str
) -> None:
    (tmp_path / "bad.toml").write_text(text)
    jobs = load_jobs(tmp_path, caps)
    assert jobs.jobs == {}
    [error] = jobs.errors
    assert f"bad.toml: {field}: {fragment}" in str(error)


def test_invalid_toml_and_duplicate_names(tmp_path: Path, caps: dict[str, Capabilities]) -> None:
    (tmp_path / "a.toml").write_text(VALID)
    (tmp_path / "b.toml").write_text(VALID)  # same name "bad"
    (tmp_path / "c.toml").write_text("name = ")
    jobs = load_jobs(tmp_path, caps)
    assert list(jobs.jobs) == ["bad"]
    messages = sorted(str(e) for e in jobs.errors)
    assert "b.toml: name: duplicate job name 'bad' (also in a.toml)" in messages[0]
    assert "c.toml: not valid TOML" in messages[1]


def test_cli_reports_every_broken_file_and_exits_2(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    (jobs / "good.toml").write_text(VALID.replace('"bad"', '"good"'))
    (jobs / "broken.toml").write_text(edit('"fill-missing"', '"refresh"'))
    env = etl_env(tmp_path / "data")
    listed = subprocess.run(
        [*ETL, "jobs", "list", "--jobs-dir", str(jobs)], capture_output=True, text=True, env=env
    )
    assert listed.returncode == 2
    assert "good: fill-missing klines 1d SH last 10 sessions from sim" in listed.stdout
    assert "broken.toml: action: unknown action 'refresh'" in listed.stderr
    unknown = subprocess.run(
        [*ETL, "jobs", "run", "nosuch", "--jobs-dir", str(jobs)],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert unknown.returncode == 2
    assert "unknown job 'nosuch'" in unknown.stderr and "jobs: good" in unknown.stderr
    own = subprocess.run(
        [*ETL, "jobs", "run", "broken", "--jobs-dir", str(jobs)],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert own.returncode == 2 and "broken.toml: action: unknown action" in own.stderr
    missing = subprocess.run(
        [*ETL, "jobs", "list", "--jobs-dir", str(tmp_path / "none")],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert missing.returncode == 2 and "no jobs folder" in missing.stderr
