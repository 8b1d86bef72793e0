"""A worker process of ``etl serve``: runs one task, so a long fill never blocks the server.

``python -m etl.server.worker`` reads one JSON job on standard input (the upstream
configuration's secrets travel there, never in the environment or the command line), creates
or takes the task record, writes ``{"task_id": N}`` (or ``{"error": ...}``) as its only line
on standard output, and then runs the task like ``etl`` would. It asks the kernel for SIGTERM
when the server dies, so a server that stops leaves its tasks ``interrupted`` and resumable,
never running without a parent.
"""

from __future__ import annotations

import asyncio
import ctypes
import datetime as dt
import json
import logging
import os
import signal
import sys
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any, TextIO

from etl.config import Secret, load_settings
from etl.errors import EtlError, exit_code_for
from etl.tasks.records import TaskRecord, TaskStore
from etl.tasks.runtime import Runtime

__all__ = ["main"]

_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the server stops its workers itself
        return
    if os.getppid() != parent:  # the server died before the request above
        sys.exit(130)


class _Announce:
    """Writes the task id once, as the only line of standard output."""

    def __init__(self, stream: TextIO) -> None:
        self.stream: TextIO | None = stream

    def send(self, doc: dict[str, Any]) -> None:
        if self.stream is not None:
            self.stream.write(json.dumps(doc) + "\n")
            self.stream.flush()
            self.stream.close()
            self.stream = None


class _AnnouncingStore(TaskStore):
    def __init__(self, root: Path, *, secrets: list[str], announce: _Announce) -> None:
        super().__init__(root, secrets=secrets)
        self.announce = announce

    def create(self, kind: str, params: dict[str, Any], *, now: dt.datetime) -> TaskRecord:
        record = super().create(kind, params, now=now)
        self.announce.send({"task_id": record.id})
        return record


@dataclass
class _WorkerRuntime(Runtime):
    announce: _Announce | None = None

    @cached_property
    def store(self) -> _AnnouncingStore:
        secrets = [s for v in self.settings.vendors.values() for s in v.secrets()]
        assert self.announce is not None
        return _AnnouncingStore(self.root, secrets=secrets, announce=self.announce)


def _runtime(job: dict[str, Any], announce: _Announce) -> _WorkerRuntime:
    settings = load_settings(data_dir=Path(job["root"]))
    upstream = job.get("vendor")
    if upstream:
        name = upstream["name"]
        base = settings.vendor(name)
        vendor = replace(
            base,
            base_url=upstream.get("base_url") or base.base_url,
            username=upstream.get("username"),
            password=Secret(upstream["password"]) if upstream.get("password") else None,
            api_key=Secret(upstream["api_key"]) if upstream.get("api_key") else None,
        )
        settings = replace(settings, vendors={**settings.vendors, name: vendor})
    return _WorkerRuntime(settings=settings, progress=False, announce=announce)


async def _run(rt: _WorkerRuntime, job: dict[str, Any]) -> TaskRecord:
    from etl.tasks.cache import CacheRequest, cache_task
    from etl.tasks.resume import resume_task

    if job["action"] == "resume":
        record = rt.store.get(int(job["task_id"]))
        if record.status == "running":
            raise EtlError(f"task {record.id} is running in process {record.pid}")
        assert rt.announce is not None
        rt.announce.send({"task_id": record.id})
        return await resume_task(rt, record)
    return await cache_task(rt, CacheRequest.from_params(job["params"]))


def main() -> int:
    job = json.loads(sys.stdin.readline())
    sys.stdin.close()
    _die_with_parent(int(job["parent"]))
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    announce = _Announce(sys.stdout)
    try:
        rt = _runtime(job, announce)
        record = asyncio.run(_run(rt, job))
    except (EtlError, KeyboardInterrupt) as exc:
        code = exit_code_for(exc)
        message = str(exc) if isinstance(exc, EtlError) else "interrupted"
        announce.send({"error": {"type": type(exc).__name__, "message": message, "exit": code}})
        return code
    except Exception as exc:
        logging.getLogger("etl.server.worker").exception("worker failed")
        announce.send(
            {"error": {"type": type(exc).__name__, "message": "worker failed", "exit": 1}}
        )
        return 1
    if record.status in ("interrupted", "cancelled"):
        return 130
    return 1 if record.status == "failed" or record.error_count else 0


if __name__ == "__main__":
    sys.exit(main())
