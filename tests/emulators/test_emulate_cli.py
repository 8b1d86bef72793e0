"""``etl emulate`` as a real subprocess: the ready line, answering, exit codes."""

from __future__ import annotations

import signal
import subprocess
import sys

import httpx
import pytest
from emu_helpers import login
from typer.testing import CliRunner

from etl.cli import app
from etl.emulators.testing import spawn_emulate

ETL = [sys.executable, "-m", "etl"]


def test_ready_json_then_serves_until_sigterm() -> None:
    args = ("--now", "2024-06-28T12:00:00Z", "--faults", "http_500@3", "--option", "token_ttl=60")
    with spawn_emulate("amazingdata", *args) as proc:
        assert set(proc.ready) == {"vendor", "base_url", "ws_url"}
        assert proc.ready["vendor"] == "amazingdata" and proc.ready["ws_url"] is None
        assert proc.base_url.startswith("http://127.0.0.1:") and proc.base_url.endswith("/api/v1")
        with login(proc.base_url) as client:  # request 1
            token = client.post("/auth/login", json={"username": "a", "password": "b"}).json()
            assert token["data"]["expires_in"] == 60  # request 2; --option reached it
            assert client.get("/auth/me").status_code == 500  # request 3: --faults
            days = client.get("/base/calendar", params={"market": "SH", "start_date": "20240628",
                                                         "end_date": "20240705"})  # fmt: skip
            assert days.json()["data"] == ["20240628", "20240701", "20240702", "20240703",
                                           "20240704", "20240705"]  # fmt: skip
        assert proc.stats()["requests"] == 4
        assert proc.stop(signal.SIGTERM) == 0


def test_plain_ready_line_and_sigint_exit_zero() -> None:
    proc = subprocess.Popen(
        [*ETL, "emulate", "amazingdata", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("http://127.0.0.1:") and line.endswith("/api/v1")
        reply = httpx.post(line + "/auth/login", json={"username": "u", "password": "p"})
        assert reply.status_code == 200
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=15)
        assert proc.returncode == 0 and out == ""  # exactly one line on stdout
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_credentials_come_from_the_environment() -> None:
    env = {"ETL_AMAZINGDATA_USERNAME": "svc", "ETL_AMAZINGDATA_PASSWORD": "s3cret"}
    with spawn_emulate("amazingdata", env=env) as proc:
        wrong = httpx.post(proc.base_url + "/auth/login", json={"username": "svc", "password": "x"})
        right = httpx.post(
            proc.base_url + "/auth/login", json={"username": "svc", "password": "s3cret"}
        )
        assert (wrong.status_code, right.status_code) == (401, 200)


def test_bad_input_exits_2_before_listening() -> None:
    for args, message in [
        (["nope"], "no emulator for vendor 'nope': use one of amazingdata"),
        (["amazingdata", "--faults", "bad_prices:foo"], "valid: high_low, negative, nan"),
    ]:
        done = subprocess.run(
            [*ETL, "emulate", *args], capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 2, (args, done.stderr)
        assert message in done.stderr and done.stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["amazingdata", "--faults", "http_500@0"], "bad WHEN '0'"),
        (["amazingdata", "--now", "yesterday"], "invalid --now 'yesterday'"),
        (["amazingdata", "--option", "colour=red"], "unknown amazingdata emulator option"),
        (["amazingdata", "--option", "token_ttl"], "invalid --option 'token_ttl'"),
        (["amazingdata", "--port", "70000"], "invalid --port 70000"),
    ],
)
def test_bad_options_exit_2_in_process(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["emulate", *args])
    assert result.exit_code == 2 and message in result.stderr
