"""What an emulator saw: requests, limit violations and injected faults.

Served at ``GET /_emulator/stats`` so that a test (or an operator) can assert that a client
kept to the vendor's limits: ``violations`` counts every request that arrived over a limit,
whatever the client did with the answer. Injected ``rate_limit_burst`` answers are faults,
not violations.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

__all__ = ["Stats"]


class Stats:
    """Thread-safe counters; :meth:`snapshot` is the JSON document of the stats endpoint."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._requests = 0
            self._violations = 0
            self._faults: Counter[str] = Counter()
            self._paths: dict[str, Counter[str]] = {}
            self._statuses: Counter[str] = Counter()
            self._ws: Counter[str] = Counter()
            self._ws_pushed: Counter[str] = Counter()
            self._ws_started: list[int] = []

    def request(self, path: str) -> int:
        """Count one vendor request to ``path`` (a route template); returns its number."""
        with self._lock:
            self._requests += 1
            self._paths.setdefault(path, Counter())["requests"] += 1
            return self._requests

    def violation(self, path: str, reason: str) -> None:
        with self._lock:
            self._violations += 1
            per = self._paths.setdefault(path, Counter())
            per["violations"] += 1
            per[f"violations_{reason}"] += 1

    def fault(self, name: str) -> None:
        with self._lock:
            self._faults[name] += 1

    def status(self, code: int) -> None:
        with self._lock:
            self._statuses[str(code)] += 1

    def ws_connection(self) -> int:
        """Count one WebSocket handshake; returns its number (ws faults' WHEN counts these)."""
        with self._lock:
            self._ws["connections"] += 1
            return self._ws["connections"]

    def ws_refused(self, status: int) -> None:
        with self._lock:
            self._ws["refused"] += 1
            self._ws[f"refused_{status}"] += 1

    def ws_closed(self, pushed: dict[str, int]) -> None:
        """A connection ended; ``pushed`` counts what it pushed, by kind (trades, quotes...)."""
        with self._lock:
            self._ws["closed"] += 1
            self._ws_pushed.update(pushed)

    def ws_started(self, after_ms: int) -> None:
        """A connection's first push with symbols subscribed: it pushes the trades after
        ``after_ms`` (market time) from then on. The evidence of what a client was sent,
        with the tape, for tests that kill the client (what it lost vs. what it was sent)."""
        with self._lock:
            self._ws_started.append(after_ms)

    def ws_pushed(self, kind: str, n: int = 1) -> None:
        with self._lock:
            self._ws_pushed[kind] += n

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self._requests,
                "violations": self._violations,
                "by_path": {p: dict(sorted(c.items())) for p, c in sorted(self._paths.items())},
                "faults_applied": sum(self._faults.values()),
                "faults_by_name": dict(sorted(self._faults.items())),
                "statuses": dict(sorted(self._statuses.items())),
                "ws": {
                    **dict(sorted(self._ws.items())),
                    "pushed": dict(self._ws_pushed),
                    "started_ms": list(self._ws_started),
                },
            }
