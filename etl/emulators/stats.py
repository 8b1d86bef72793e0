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

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self._requests,
                "violations": self._violations,
                "by_path": {p: dict(sorted(c.items())) for p, c in sorted(self._paths.items())},
                "faults_applied": sum(self._faults.values()),
                "faults_by_name": dict(sorted(self._faults.items())),
                "statuses": dict(sorted(self._statuses.items())),
            }
