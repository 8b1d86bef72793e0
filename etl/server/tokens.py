"""Bearer tokens (JWT, HS256, PyJWT) and the throttle on wrong passwords.

A token says who (``sub``: the account id), for which warehouse (``aud``: the data root's
random instance id, so a token of one warehouse is refused by another sharing the same
local key), when it was issued and when it expires (``expires_in`` seconds). It is signed
with a key derived from the local key (:mod:`etl.localkeys`), never stored in the data root.
Anything else (another key, expired, malformed, an account since removed or disabled) is
refused with 401.

Wrong passwords are throttled per (account, address) and per address: after
:data:`FREE_FAILURES` failures a wait doubles with each further one (1 s, 2 s, ... up to 15
minutes); a login tried during the wait gets 429 with ``Retry-After`` and is not checked.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import jwt

__all__ = ["FREE_FAILURES", "Throttle", "TokenSigner"]

ALGORITHM: Final = "HS256"
REMEMBERED: Final = 4096  # verified tokens kept (a token string is ~250 bytes)
FREE_FAILURES: Final = 5
MAX_WAIT: Final = 900.0
FORGET_AFTER: Final = 3600.0  # failures older than this are forgotten


class TokenSigner:
    def __init__(self, key: bytes, audience: str, ttl: int, clock: Callable[[], float]) -> None:
        self._key = key
        self.audience = audience
        self.ttl = ttl
        self._clock = clock
        self._verified: dict[str, dict[str, Any]] = {}  # token -> its claims, while valid
        self._lock = threading.Lock()

    def issue(self, user_id: int, username: str) -> str:
        now = int(self._clock())
        claims = {
            "sub": str(user_id),
            "name": username,
            "aud": self.audience,
            "iat": now,
            "exp": now + self.ttl,
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)

    def verify(self, token: str) -> dict[str, Any] | None:
        """The claims of a valid token, else None (whatever is wrong with it).

        A token seen valid is remembered (up to :data:`REMEMBERED` of them) until it
        expires, so that a client's requests after the first skip the signature check; the
        account behind it is still looked up on every request by the caller."""
        with self._lock:
            seen = self._verified.get(token)
        if seen is not None:
            if seen["exp"] > self._clock():
                return seen
            with self._lock:
                self._verified.pop(token, None)
            return None
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                options={"require": ["exp", "iat", "sub", "aud"]},
            )
        except jwt.PyJWTError:
            return None
        with self._lock:
            if len(self._verified) >= REMEMBERED:
                self._verified.clear()  # simplest bound; the next checks repopulate it
            self._verified[token] = claims
        return claims


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0


class Throttle:
    """Failure counts in memory (a restart forgets them; the wait is for online guessing)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str], _Failures] = {}

    def _keys(self, username: str, address: str) -> list[tuple[str, str]]:
        return [(username, address), ("", address)]

    def _wait(self, failures: _Failures, free: int, now: float) -> float:
        if failures.count < free:
            return 0.0
        wait = min(MAX_WAIT, 2.0 ** (failures.count - free))
        return max(0.0, failures.last + wait - now)

    def retry_after(self, username: str, address: str) -> float:
        """Seconds to wait before this login may be checked (0: go ahead)."""
        now = self._clock()
        with self._lock:
            waits = []
            for key, free in zip(
                self._keys(username, address), (FREE_FAILURES, FREE_FAILURES * 4), strict=True
            ):
                found = self._seen.get(key)
                if found is None:
                    continue
                if now - found.last > FORGET_AFTER:
                    del self._seen[key]
                    continue
                waits.append(self._wait(found, free, now))
            return max(waits, default=0.0)

    def failed(self, username: str, address: str) -> None:
        now = self._clock()
        with self._lock:
            for key in self._keys(username, address):
                found = self._seen.setdefault(key, _Failures())
                found.count += 1
                found.last = now

    def succeeded(self, username: str, address: str) -> None:
        with self._lock:
            self._seen.pop((username, address), None)
