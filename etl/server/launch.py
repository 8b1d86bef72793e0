"""Starting tasks in worker processes and answering at once with their id.

The server writes the job (with the upstream configuration's decrypted secrets) to the
worker's standard input and waits only for its first line: the id of the task record it
created (or took, to resume). From then on the task record is the one channel: the server,
``etl tasks`` and the web page all read it.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from etl.config import VendorSettings
from etl.errors import BadInputError
from etl.server.context import ServerContext
from etl.server.envelope import ApiError

__all__ = ["start_worker"]

_STARTUP_SECONDS = 120.0
_workers: set[asyncio.Task[int]] = set()


def _vendor_doc(vendor: VendorSettings) -> dict[str, Any]:
    return {
        "name": vendor.name,
        "base_url": vendor.base_url,
        "username": vendor.username,
        "password": vendor.password.reveal() if vendor.password else None,
        "api_key": vendor.api_key.reveal() if vendor.api_key else None,
    }


async def start_worker(
    ctx: ServerContext, action: str, *, params: dict[str, Any] | None = None,
    task_id: int | None = None, vendor: VendorSettings | None = None,
) -> int:  # fmt: skip
    """Start a worker for ``action`` (``cache`` or ``resume``); the task id it announced."""
    job = {
        "action": action,
        "root": str(ctx.root),
        "params": params,
        "task_id": task_id,
        "parent": os.getpid(),
        "vendor": _vendor_doc(vendor) if vendor else None,
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "etl.server.worker",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=ctx.env,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps(job).encode() + b"\n")
    await proc.stdin.drain()
    proc.stdin.close()
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), _STARTUP_SECONDS)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise ApiError(500, "the task's worker did not start") from None
    reaper = asyncio.create_task(proc.wait())
    _workers.add(reaper)
    reaper.add_done_callback(_workers.discard)
    try:
        doc = json.loads(line)
    except ValueError:
        doc = {"error": {"message": "the task's worker failed to start", "exit": 1}}
    if "task_id" in doc:
        return int(doc["task_id"])
    error = doc.get("error") or {}
    if error.get("exit") in (2, 3):
        raise BadInputError(str(error.get("message")))
    raise ApiError(500, str(error.get("message") or "the task's worker failed"))
