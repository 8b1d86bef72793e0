"""Fixtures for the emulator tests: AmazingData servers and logged-in clients.

Limits are per user (5 requests/s), so every client fixture logs in as a new user: tests
that share a module-scoped server never eat each other's budget.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from emu_helpers import NOW, login

from etl.emulators import AmazingDataEmulator, EmulatorServer
from etl.emulators.testing import options, running


@pytest.fixture(scope="module")
def ad_server() -> Iterator[EmulatorServer]:
    """One AmazingData emulator at NOW, shared by a module's read-only tests."""
    with running(AmazingDataEmulator, now=NOW) as server:
        yield server


@pytest.fixture
def ad(ad_server: EmulatorServer) -> Iterator[httpx.Client]:
    """A client of the shared emulator, logged in as a user of its own."""
    with login(ad_server.base_url) as client:
        yield client


@pytest.fixture
def start_ad() -> Iterator[Any]:
    """Start a dedicated AmazingData emulator with options: ``start_ad(faults=...)``."""
    servers: list[EmulatorServer] = []

    def start(**kw: Any) -> EmulatorServer:
        kw.setdefault("now", NOW)
        server = EmulatorServer(AmazingDataEmulator(options(**kw))).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
