"""Helpers for tests of ``etl serve``: accounts, and the server as a real process."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx

ETL = [sys.executable, "-m", "etl"]


def serve_env(root: Path, config_home: Path, **extra: str) -> dict[str, str]:
    """The environment of a test's server: its data root, a key folder of its own, and no
    developer's ETL_* settings."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")}
    env.update(ETL_DATA_DIR=str(root), XDG_CONFIG_HOME=str(config_home), **extra)
    return env


def add_user(env: dict[str, str], name: str, password: str, role: str = "admin") -> None:
    done = subprocess.run(
        [*ETL, "users", "add", name, "--role", role],
        input=password + "\n", capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


@dataclass
class Served:
    proc: subprocess.Popen[str]
    ready: dict[str, Any]
    stderr: list[str]

    @property
    def base_url(self) -> str:
        return str(self.ready["base_url"])

    @property
    def url(self) -> str:
        return str(self.ready["url"])

    def login(self, username: str, password: str) -> dict[str, str]:
        answer = httpx.post(
            self.base_url + "/auth/login", json={"username": username, "password": password}
        )
        assert answer.status_code == 200, answer.text
        return {"Authorization": "Bearer " + answer.json()["data"]["access_token"]}


def _first_line(stream: IO[str], timeout: float) -> str | None:
    found: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: found.put(stream.readline()), daemon=True).start()
    try:
        return found.get(timeout=timeout)
    except queue.Empty:
        return None


@contextmanager
def serving(env: dict[str, str], *args: str, timeout: float = 60.0) -> Iterator[Served]:
    """``etl serve --port 0 --json`` as a real process, until the block ends (SIGTERM)."""
    proc = subprocess.Popen(
        [*ETL, "serve", "--port", "0", "--json", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    lines: list[str] = []
    assert proc.stdout is not None and proc.stderr is not None
    err = proc.stderr
    reader = threading.Thread(target=lambda: lines.extend(iter(err.readline, "")), daemon=True)
    reader.start()
    try:
        line = _first_line(proc.stdout, timeout)
        if not line:
            proc.kill()
            proc.wait(10)
            raise RuntimeError("etl serve did not get ready: " + "".join(lines))
        yield Served(proc, json.loads(line), lines)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        reader.join(10)
        proc.stdout.close()
        err.close()
