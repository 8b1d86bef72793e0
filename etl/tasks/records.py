"""Task records: one JSON file per task under ``<data root>/tasks/``, readable at any moment.

Every write replaces the file atomically, so ``etl tasks show`` in another terminal (or the
catalog's ``tasks`` view) never reads half a record. A running task holds an ``flock`` on
``<id>.lock``; a record that says ``running`` while nobody holds its lock belonged to a process
that died (SIGKILL, power loss) and is reported, and saved, as ``interrupted``.

Records never hold secrets: every string is scrubbed of the configured credentials on save.
"""

from __future__ import annotations

import builtins
import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from etl.dataroot import DataRoot
from etl.errors import BadInputError
from etl.fsutil import atomic_write_bytes
from etl.locks import FileLock, file_lock, pid_alive, try_lock
from etl.tasks.items import ItemCounts, counted
from etl.timefmt import iso_utc
from etl.vendors.redact import redact_tree

__all__ = ["STATUSES", "TaskRecord", "TaskStore"]

Status = Literal["pending", "running", "completed", "failed", "cancelled", "interrupted"]
STATUSES: Final = ("pending", "running", "completed", "failed", "cancelled", "interrupted")
FINAL: Final = frozenset({"completed", "failed", "cancelled"})
MAX_ERRORS_KEPT = 1000

PUBLIC_FIELDS: Final = (
    "id", "kind", "status", "progress", "total_count", "success_count", "error_count",
    "rows_written", "error_message", "errors", "params", "created_at", "started_at",
    "finished_at",
)  # fmt: skip


@dataclass
class TaskRecord:
    id: int
    kind: str
    status: Status = "pending"
    progress: float = 0.0
    total_count: int = 0
    success_count: int = 0
    error_count: int = 0
    rows_written: int = 0
    error_message: str | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    created_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    updated_at: str | None = None
    pid: int | None = None
    message: str | None = None  # the latest progress line, for live views
    result: dict[str, Any] = field(default_factory=dict)  # kind-specific summary
    items: dict[str, Any] = field(default_factory=dict)  # ItemCounts.as_dict(): by category
    requests: int = 0  # vendor requests sent, over every run of the task

    def public(self) -> dict[str, Any]:
        """The document of docs/contract.md "JSON documents" (``tasks show ID --json``), plus
        ``items`` (the count by category, see :mod:`etl.tasks.items`), ``requests`` and
        ``result``."""
        doc = {name: getattr(self, name) for name in PUBLIC_FIELDS}
        if self.items:
            doc["items"] = self.items
        doc["requests"] = self.requests
        if self.result:
            doc["result"] = self.result
        return doc

    def counts(self) -> ItemCounts | None:
        return ItemCounts.from_dict(self.items)

    def exit_code(self) -> int:
        """The exit code (docs/contract.md "Commands"): 130 stopped (resumable), 1 failed or an
        item left for a reason the user can act on, else 0."""
        if self.status in ("interrupted", "cancelled"):
            return 130
        if self.status == "failed" or self.error_count:
            return 1
        counts = self.counts()
        return 1 if counts is not None and counts.needs_attention else 0

    def summary(self) -> str:
        """The one line a command prints: what was asked, how far it got, item by item."""
        what = " ".join(str(x) for x in (self.params.get("dataset"), self.params.get("freq")) if x)
        vendor = self.params.get("vendor")
        head = f"task {self.id} {self.kind}" + (f" {what}" if what else "")
        head += f" ({vendor})" if vendor else ""
        counts = self.counts()
        # A record written before items were counted says what it has.
        body = f"{self.success_count}/{self.total_count} ok" if counts is None else counts.text()
        tail = f"{counted(self.rows_written, 'row')} written, {counted(self.requests, 'request')}"
        if self.error_count:
            tail += f", {counted(self.error_count, 'error')}"
        return f"{head}: {self.status}, {body}; {tail}"

    def add_error(
        self, symbol: str | None, start: str | None, end: str | None, reason: str
    ) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append({"symbol": symbol, "start": start, "end": end, "reason": reason})

    @property
    def finished(self) -> bool:
        return self.status in FINAL


class TaskStore:
    """The folder of task records. It receives its root and the secrets to scrub."""

    def __init__(self, root: Path, *, secrets: Iterable[str] = ()) -> None:
        self.layout = DataRoot(Path(root))
        self.dir = self.layout.tasks
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    # -- paths -----------------------------------------------------------------------------

    def path(self, task_id: int) -> Path:
        return self.layout.task_record(task_id)

    def lock_path(self, task_id: int) -> Path:
        return self.layout.task_lock(task_id)

    def state_path(self, task_id: int) -> Path:
        """Resume state (what is already committed); not JSON-globbed by the catalog."""
        return self.layout.task_state(task_id)

    def cancel_path(self, task_id: int) -> Path:
        return self.layout.task_cancel(task_id)

    def requests_path(self, task_id: int) -> Path:
        return self.layout.task_requests(task_id)

    # -- records ---------------------------------------------------------------------------

    def create(self, kind: str, params: dict[str, Any], *, now: dt.datetime) -> TaskRecord:
        self.dir.mkdir(parents=True, exist_ok=True)
        with file_lock(self.layout.task_seq_lock, timeout=30):
            seq_file = self.layout.task_seq
            last = int(seq_file.read_text() or 0) if seq_file.exists() else 0
            existing = [int(p.stem) for p in self.dir.glob("*.json") if p.stem.isdigit()]
            task_id = max([last, *existing]) + 1
            atomic_write_bytes(seq_file, str(task_id).encode())
            record = TaskRecord(
                id=task_id,
                kind=kind,
                params=params,
                created_at=iso_utc(now),
                updated_at=iso_utc(now),
            )
            self.save(record)
        return record

    def save(self, record: TaskRecord) -> None:
        doc = redact_tree(asdict(record), self._secrets)
        data = json.dumps(doc, ensure_ascii=False, default=str)
        atomic_write_bytes(self.path(record.id), data.encode("utf-8"))

    def load(self, task_id: int) -> TaskRecord:
        try:
            doc = json.loads(self.path(task_id).read_bytes())
        except FileNotFoundError:
            raise BadInputError(f"no task {task_id} (see `etl tasks list`)") from None
        known = {f for f in TaskRecord.__dataclass_fields__}
        return TaskRecord(**{k: v for k, v in doc.items() if k in known})

    def get(self, task_id: int) -> TaskRecord:
        """The record, with a dead ``running`` task turned ``interrupted`` (and saved so)."""
        record = self.load(task_id)
        if record.status in ("running", "pending") and self._orphaned(record):
            record.status = "interrupted"
            record.message = (
                "the process running this task stopped; `etl tasks resume` continues it"
            )
            self.save(record)
        return record

    def list(self, limit: int | None = None) -> builtins.list[TaskRecord]:
        if not self.dir.is_dir():
            return []
        ids = sorted(
            (int(p.stem) for p in self.dir.glob("*.json") if p.stem.isdigit()), reverse=True
        )
        return [self.get(i) for i in ids[:limit]]

    def _orphaned(self, record: TaskRecord) -> bool:
        if record.status == "pending":
            return record.pid is not None and not pid_alive(record.pid)
        lock = try_lock(self.lock_path(record.id))
        if lock is None:
            return False  # its process still holds the lock
        lock.release()
        return True

    # -- running ---------------------------------------------------------------------------

    def hold(self, task_id: int) -> FileLock:
        """Take the task's run lock (refuses if another process runs it)."""
        lock = FileLock(self.lock_path(task_id))
        if not lock.acquire(timeout=0):
            raise BadInputError(f"task {task_id} is already running in another process")
        return lock

    def request_cancel(self, task_id: int) -> None:
        atomic_write_bytes(self.cancel_path(task_id), b"cancel")

    def cancel_requested(self, task_id: int) -> bool:
        return self.cancel_path(task_id).exists()

    def clear_cancel(self, task_id: int) -> None:
        self.cancel_path(task_id).unlink(missing_ok=True)

    def load_state(self, task_id: int) -> dict[str, Any]:
        try:
            loaded = json.loads(self.state_path(task_id).read_bytes())
            return loaded if isinstance(loaded, dict) else {}
        except (FileNotFoundError, ValueError):
            return {}

    def save_state(self, task_id: int, state: dict[str, Any]) -> None:
        atomic_write_bytes(self.state_path(task_id), json.dumps(state).encode())

    def load_plan(self, task_id: int) -> builtins.list[Any] | None:
        """The calls the task's first run kept (:meth:`save_plan`), or None."""
        try:
            loaded = json.loads(self.layout.task_plan(task_id).read_bytes())
            return loaded if isinstance(loaded, list) else None
        except (FileNotFoundError, ValueError):
            return None

    def save_plan(self, task_id: int, calls: builtins.list[Any]) -> None:
        atomic_write_bytes(self.layout.task_plan(task_id), json.dumps(calls).encode())

    def spool_put(self, task_id: int, number: int, data: bytes) -> None:
        """Spool entry ``number`` of a task (an answer not yet committed), atomically."""
        atomic_write_bytes(self.layout.task_spool(task_id) / f"{int(number)}.arrow", data)

    def spool_list(self, task_id: int) -> builtins.list[tuple[int, Path]]:
        """The task's spool entries, (number, path) in order."""
        folder = self.layout.task_spool(task_id)
        if not folder.is_dir():
            return []
        found = []
        for path in folder.iterdir():
            stem, _, ext = path.name.partition(".")
            if ext == "arrow" and stem.isdigit():  # not a temporary ``.N.arrow.x.tmp``
                found.append((int(stem), path))
        return sorted(found)

    def spool_drop(self, task_id: int, through: int) -> None:
        """Remove the spool entries numbered ``through`` or less (committed)."""
        for number, path in self.spool_list(task_id):
            if number <= through:
                path.unlink(missing_ok=True)

    def running(self, kinds: Sequence[str] | None = None) -> builtins.list[TaskRecord]:
        return [
            r for r in self.list() if r.status == "running" and (kinds is None or r.kind in kinds)
        ]
