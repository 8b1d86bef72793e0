"""Helpers for tests that need a vendor: an emulator in a thread, or ``etl emulate`` as a
real subprocess. Importable from any test package (adapter tests included)::

    with running(AmazingDataEmulator, now=NOW, faults="http_500@1") as server:
        adapter_settings = VendorSettings("amazingdata", base_url=server.base_url, ...)
        ...
        assert server.stats()["violations"] == 0

    with spawn_emulate("amazingdata", "--now", "2024-06-28T12:00:00Z") as proc:
        httpx.get(proc.base_url + "/auth/me")
"""

from __future__ import annotations

import dataclasses
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import IO, Any
from urllib.parse import urlsplit

import httpx

from etl.emulators import emulator_class
from etl.emulators.base import Emulator, EmulatorOptions
from etl.emulators.server import EmulatorServer

__all__ = [
    "EmulateProcess",
    "fetch_stats",
    "options",
    "reset_stats",
    "running",
    "spawn_emulate",
    "vendor_calls",
]

_FIELDS = frozenset(f.name for f in dataclasses.fields(EmulatorOptions)) - {"extra"}


def options(**kw: Any) -> EmulatorOptions:
    """EmulatorOptions from keywords; names that are not common options become ``extra``
    (``options(now=NOW, token_ttl=2)``)."""
    common = {k: v for k, v in kw.items() if k in _FIELDS}
    extra = {k: v for k, v in kw.items() if k not in _FIELDS}
    return EmulatorOptions(**common, extra=extra)


@contextmanager
def running(
    emulator: type[Emulator] | str, *, port: int = 0, **kw: Any
) -> Iterator[EmulatorServer]:
    """An emulator served from a background thread for the ``with`` block."""
    cls = emulator_class(emulator) if isinstance(emulator, str) else emulator
    with EmulatorServer(cls(options(**kw)), port=port) as server:
        yield server


def _root(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def fetch_stats(url: str) -> dict[str, Any]:
    """``GET /_emulator/stats`` of the emulator behind ``url`` (base or root URL)."""
    doc: dict[str, Any] = httpx.get(_root(url) + "/_emulator/stats", timeout=10).json()
    return doc


def vendor_calls(stats: dict[str, Any], ending: str = "") -> int:
    """The requests a :func:`fetch_stats` document counts on the vendor's paths (its ``/_``
    control paths left out), only those whose path ends with ``ending`` when given
    (``"batch_kline"``: Infoway's kline pages)."""
    by_path: dict[str, dict[str, int]] = stats["by_path"]
    return sum(
        c["requests"] for p, c in by_path.items() if not p.startswith("/_") and p.endswith(ending)
    )


def reset_stats(url: str) -> None:
    httpx.post(_root(url) + "/_emulator/reset", timeout=10).raise_for_status()


@dataclasses.dataclass
class EmulateProcess:
    """A running ``etl emulate``: its ready document and the process."""

    proc: subprocess.Popen[str]
    ready: dict[str, Any]

    @property
    def base_url(self) -> str:
        return str(self.ready["base_url"])

    def stats(self) -> dict[str, Any]:
        return fetch_stats(self.base_url)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Signal the process and wait: its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        return self.proc.returncode


def _ready_line(stream: IO[str], timeout: float) -> str | None:
    found: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: found.put(stream.readline()), daemon=True).start()
    try:
        return found.get(timeout=timeout)
    except queue.Empty:
        return None


@contextmanager
def spawn_emulate(
    vendor: str,
    *args: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> Iterator[EmulateProcess]:
    """Run ``python -m etl emulate VENDOR --json ARGS`` and wait for its ready line.

    ``env`` is added to the current environment minus every ``ETL_*`` variable, so a
    developer's own vendor credentials never leak into a test. Stops it on exit.
    """
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")}
    clean.update(env or {})
    cmd = [sys.executable, "-m", "etl", "emulate", vendor, "--json", *args]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean
    )
    handle = None
    try:
        assert proc.stdout is not None
        line = _ready_line(proc.stdout, timeout)
        if not line:
            proc.kill()
            _, err = proc.communicate(timeout=10)
            raise RuntimeError(f"etl emulate {vendor} did not get ready: {err.strip()}")
        handle = EmulateProcess(proc, json.loads(line))
        yield handle
    finally:
        if handle is not None:
            handle.stop()
        elif proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
