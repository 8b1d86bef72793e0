"""Record jobs (``action = "record"``): their session windows come from the market's calendar
(weekends, holidays, half days, lunch breaks and DST included), their trigger fires at each
window's start (at once from inside one), and each mistake in the file is named with its fix."""

from __future__ import annotations

import datetime as dt
import json
import pickle
import subprocess
from pathlib import Path

import pytest

from etl.config import load_settings
from etl.scheduler import load_jobs
from etl.scheduler.session import SessionRule, SessionTrigger
from etl.tasks.runtime import Runtime
from etl.vendors.base import Capabilities
from tests.conftest import ETL, etl_env

UTC = dt.UTC


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


CN = SessionRule(("SH", "SZ"), before_open_minutes=10, after_close_minutes=5)


def test_a_trading_day_window_spans_the_lunch_break_with_both_margins() -> None:
    # Friday 2024-06-28: SSE 09:30-11:30, 13:00-15:00 Shanghai (01:30-07:00 UTC)
    window = (at("2024-06-28T01:20"), at("2024-06-28T07:05"))
    assert CN.window_at(at("2024-06-28T00:00")) == window  # before it: the next one
    assert CN.window_at(at("2024-06-28T04:00")) == window  # at lunch: still inside
    assert CN.window_at(at("2024-06-28T07:04:59")) == window
    assert CN.windows(dt.date(2024, 6, 28), dt.date(2024, 6, 28)) == [window]


def test_a_weekend_has_no_window_and_friday_after_the_close_leads_to_monday() -> None:
    assert CN.windows(dt.date(2024, 6, 29), dt.date(2024, 6, 30)) == []
    monday = (at("2024-07-01T01:20"), at("2024-07-01T07:05"))
    assert CN.window_at(at("2024-06-28T07:05")) == monday  # the end is exclusive
    assert CN.window_at(at("2024-06-29T12:00")) == monday


def test_a_holiday_week_is_skipped() -> None:
    # National Day 2024: SSE closed 1-7 October; Monday 30 September trades
    assert CN.windows(dt.date(2024, 10, 1), dt.date(2024, 10, 7)) == []
    assert CN.window_at(at("2024-09-30T08:00")) == (at("2024-10-08T01:20"), at("2024-10-08T07:05"))


def test_a_half_day_closes_early_and_new_york_moves_with_dst() -> None:
    us = SessionRule(("US",), before_open_minutes=15, after_close_minutes=30)
    # Friday after Thanksgiving 2024: NYSE closes at 13:00 New York (18:00 UTC)
    assert us.windows(dt.date(2024, 11, 29), dt.date(2024, 11, 29)) == [
        (at("2024-11-29T14:15"), at("2024-11-29T18:30"))
    ]
    # 2024-03-10 DST starts: 09:30 New York is 14:30 UTC before, 13:30 UTC after
    assert us.window_at(at("2024-03-08T00:00"))[0] == at("2024-03-08T14:15")  # type: ignore[index]
    assert us.window_at(at("2024-03-11T00:00"))[0] == at("2024-03-11T13:15")  # type: ignore[index]


def test_forex_weekdays_merge_into_one_window_per_week() -> None:
    fx = SessionRule(("FX",), before_open_minutes=5, after_close_minutes=5)
    # FX trades 00:00-24:00 Shanghai, Monday to Friday: one recording Monday to Friday
    assert fx.window_at(at("2024-06-26T00:00")) == (at("2024-06-23T15:55"), at("2024-06-28T16:05"))


def test_hours_replace_the_calendars_hours_on_its_trading_days() -> None:
    auction = SessionRule(("SH",), hours=(dt.time(9, 15), dt.time(9, 25, 30)))
    assert auction.windows(dt.date(2024, 6, 28), dt.date(2024, 7, 1)) == [
        (at("2024-06-28T01:15"), at("2024-06-28T01:25:30")),
        (at("2024-07-01T01:15"), at("2024-07-01T01:25:30")),
    ]


def test_the_trigger_fires_at_each_start_and_at_once_inside_a_window() -> None:
    trigger = SessionTrigger(CN)
    assert trigger.get_next_fire_time(None, at("2024-06-27T20:00")) == at("2024-06-28T01:20")
    inside = at("2024-06-28T03:00")
    assert trigger.get_next_fire_time(None, inside) == inside  # started mid-session: now
    # once fired, the next fire is the next window's start (never twice in one window)
    assert trigger.get_next_fire_time(inside, inside) == at("2024-07-01T01:20")
    assert trigger.get_next_fire_time(at("2024-06-28T01:20"), at("2024-06-28T01:20")) == at(
        "2024-07-01T01:20"
    )
    copy = pickle.loads(pickle.dumps(trigger))
    assert copy.rule == CN and copy.fingerprint() == trigger.fingerprint()
    other = SessionTrigger(SessionRule(("SH", "SZ"), 10, 6))
    assert other.fingerprint() != trigger.fingerprint()


# -- job files -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def caps() -> dict[str, Capabilities]:
    return Runtime(settings=load_settings(env={})).capabilities()


RECORD = """
name = "rec"
action = "record"
vendor = "infoway"
symbols = ["600000.SH", "000001.SZ"]
channels = ["trades", "klines"]
[schedule]
before_open_minutes = 10
after_close_minutes = 5
"""


def load_one(tmp_path: Path, caps: dict[str, Capabilities], text: str) -> tuple[object, str]:
    folder = tmp_path / "jobs"
    folder.mkdir(exist_ok=True)
    (folder / "rec.toml").write_text(text)
    found = load_jobs(folder, caps)
    return found.jobs.get("rec"), "\n".join(str(e) for e in found.errors)


def test_a_record_job_file_parses_into_its_session_rule(
    tmp_path: Path, caps: dict[str, Capabilities]
) -> None:
    job, errors = load_one(tmp_path, caps, RECORD)
    assert errors == ""
    assert job.schedule.session == CN  # type: ignore[attr-defined]
    assert job.channels == ("trades", "klines")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (("before_open_minutes = 10", 'cron = "0 9 * * 1-5"'),
         "schedule.cron: a record job follows its market's sessions: remove it"),
        (("before_open_minutes = 10", "before_open_minutes = -1"),
         "schedule.before_open_minutes: must be a whole number of minutes from 0 to 720"),
        (("after_close_minutes = 5", 'after_close_minutes = "5"'),
         "schedule.after_close_minutes: must be a whole number of minutes"),
        (("before_open_minutes = 10", 'hours = "15:00-09:30"'),
         "schedule.hours: '15:00-09:30' ends before it starts"),
        (("before_open_minutes = 10", 'hours = "morning"'),
         'schedule.hours: must be "HH:MM-HH:MM"'),
        (('"trades", "klines"', '"quotes"'), "channels: infoway has no channel 'quotes'"),
        (('vendor = "infoway"', 'vendor = "amazingdata"'),
         "vendor: amazingdata has no real-time feed; use one of infoway, mdapi, stocktv"),
        (('"600000.SH", "000001.SZ"', '"RELIANCE.IN"'),
         "symbols: infoway's feed does not carry RELIANCE.IN"),
        (('symbols = ["600000.SH", "000001.SZ"]', 'symbols = ["BTCUSDT.CC"]'),
         "schedule.hours: missing: CC trades around the clock"),
        (('symbols = ["600000.SH", "000001.SZ"]', 'symbols = ["EURUSD.INFOWAY"]'),
         'schedule.calendar: missing: INFOWAY has no exchange calendar'),
        (('channels = ["trades", "klines"]', 'dataset = "klines"'),
         "dataset: a record job takes no dataset"),
        (('symbols = ["600000.SH", "000001.SZ"]', ""),
         'symbols: missing: a record job needs market = "SH" or symbols'),
    ],
)  # fmt: skip
def test_each_mistake_in_a_record_job_is_named_with_its_fix(
    tmp_path: Path, caps: dict[str, Capabilities], change: tuple[str, str], words: str
) -> None:
    old, new = change
    assert old in RECORD
    job, errors = load_one(tmp_path, caps, RECORD.replace(old, new))
    assert job is None and words in errors, errors


def test_jobs_list_shows_a_record_job_with_its_session_and_next_start(tmp_path: Path) -> None:
    folder = tmp_path / "jobs"
    folder.mkdir()
    (folder / "rec.toml").write_text(RECORD)
    data = tmp_path / "data"
    done = subprocess.run(
        [*ETL, "jobs", "list", "--jobs-dir", str(folder), "--json"],
        capture_output=True, text=True, env=etl_env(data), timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    [entry] = json.loads(done.stdout)["jobs"]
    assert entry["action"] == "record"
    assert entry["selection"] == "trades,klines of 600000.SH,000001.SZ"
    assert entry["schedule"]["session"] == (
        "sessions of SH/SZ, from 10 min before the open to 5 min after the close"
    )
    start = dt.datetime.fromisoformat(entry["next_run"])
    window = CN.window_at(dt.datetime.now(UTC))
    assert window is not None and window[0] <= start < window[1]  # its start, or now inside
    assert "ETL_INFOWAY_API_KEY" in done.stderr  # not configured: said now, not at 09:20
    human = subprocess.run(
        [*ETL, "jobs", "list", "--jobs-dir", str(folder)],
        capture_output=True, text=True, env=etl_env(data), timeout=120,
    )  # fmt: skip
    assert "rec: record trades,klines of 600000.SH,000001.SZ from infoway" in human.stdout
    assert "sessions of SH/SZ, from 10 min before the open" in human.stdout


def test_the_readme_record_job_is_a_valid_job(
    tmp_path: Path, caps: dict[str, Capabilities]
) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    blocks = [b.split("```", 1)[0] for b in readme.split("```toml\n")[1:]]
    [block] = [b for b in blocks if 'action = "record"' in b]
    folder = tmp_path / "jobs"
    folder.mkdir()
    (folder / "record-infoway-cn.toml").write_text(block)
    found = load_jobs(folder, caps)
    assert [str(e) for e in found.errors] == []
    assert found.jobs["record-infoway-cn"].schedule.session == CN
