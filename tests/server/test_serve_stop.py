"""Stopping ``etl serve``: SIGTERM (systemd, a supervisor) and Ctrl-C are its normal end."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from tests.server.serve_helpers import add_user, serve_env, serving


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_exits_0_and_json_stays_one_document(
    tmp_path: Path, stop: signal.Signals
) -> None:
    """uvicorn re-raises the signal it caught: the server died of SIGTERM (143) or printed an
    "interrupted" error document after its ready line (130). A server leaves nothing to
    resume, so a stop is exit 0, and stdout keeps the ready document alone."""
    root = tmp_path / "data"
    root.mkdir()
    env = serve_env(root, tmp_path / "cfg")
    add_user(env, "admin", "password-1")
    with serving(env) as server:
        assert httpx.get(server.url).status_code == 200  # it serves until stopped
        server.proc.send_signal(stop)
        assert server.proc.wait(30) == 0, "".join(server.stderr)
        assert server.proc.stdout is not None
        rest = server.proc.stdout.read()
    assert rest.strip() == "", f"stdout after the ready document: {rest!r}"
    assert set(server.ready) == {"url", "base_url", "pid"}
