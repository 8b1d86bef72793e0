"""Helpers shared by the emulator tests (imported by name: conftest modules are not)."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

NOW = dt.datetime(2024, 6, 28, 12, 0, tzinfo=dt.UTC)  # a Friday, 20:00 in Shanghai
_users = itertools.count(1)


@contextmanager
def login(
    base_url: str, username: str | None = None, password: str = "secret"
) -> Iterator[httpx.Client]:
    """An httpx client logged in to AmazingData (a fresh user name unless one is given)."""
    with httpx.Client(base_url=base_url, timeout=10) as client:
        user = username or f"user{next(_users)}"
        reply = client.post("/auth/login", json={"username": user, "password": password})
        assert reply.status_code == 200, reply.text
        client.headers["Authorization"] = f"Bearer {reply.json()['data']['access_token']}"
        yield client
