"""The CLI fetches through the data root's upstream configurations (``etl serve``'s
``/configs/sdk``): ``--config-id N``, or the default one for a vendor with no credentials set,
so that a server and a cron job on one data root agree."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from serve_helpers import ETL, serve_env

from etl.emulators.testing import running
from etl.localkeys import load_key
from etl.upstreams import UpstreamStore

pytestmark = pytest.mark.integration

PASSWORD = "cron-upstream-pass-6c1d"


def _check(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ETL, "vendors", "check", "amazingdata", "--json", *args], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_cli_uses_the_stored_configurations(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    env = serve_env(root, tmp_path / "config")
    store = UpstreamStore(root, lambda: load_key(env, root))
    with running("amazingdata", username="cron", password=PASSWORD) as emu:
        good = store.create({"name": "emulator", "base_url": emu.base_url, "username": "cron",
                             "password": PASSWORD})  # fmt: skip
        bad = store.create({"name": "wrong", "base_url": emu.base_url, "username": "cron",
                            "password": "not-it-at-all"})  # fmt: skip
        assert good.is_default and not bad.is_default
        by_default = _check(env)
        assert by_default.returncode == 0, by_default.stderr
        assert json.loads(by_default.stdout)["success"] is True
        chosen = _check(env, "--config-id", str(bad.id))
        assert chosen.returncode == 3 and json.loads(chosen.stdout)["success"] is False
        # credentials in the environment come before the default configuration
        env_wins = _check({**env, "ETL_AMAZINGDATA_BASE_URL": emu.base_url,
                           "ETL_AMAZINGDATA_USERNAME": "cron",
                           "ETL_AMAZINGDATA_PASSWORD": "also-wrong-1"})  # fmt: skip
        assert env_wins.returncode == 3
        unknown = _check(env, "--config-id", "99")
        assert unknown.returncode == 2 and "no upstream configuration 99" in unknown.stderr
    for done in (by_default, chosen, env_wins, unknown):
        assert PASSWORD not in done.stdout + done.stderr
