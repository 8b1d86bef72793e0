"""Running a task: status transitions, throttled progress saves, stop requests, progress bar.

A task stops only at safe points (between units, or between the pages of a paging vendor;
then after the pending commit), whichever asked:
``etl tasks cancel`` (status ``cancelled``), Ctrl-C or SIGTERM (status ``interrupted``, exit
130). Either way what was committed stays committed and the task can be resumed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, Literal

from etl.errors import EtlError, Interrupted
from etl.tasks.progress import ProgressUI
from etl.tasks.records import TaskRecord, TaskStore
from etl.timefmt import iso_utc

__all__ = ["TaskRun", "open_run"]

Clock = Callable[[], dt.datetime]
SAVE_EVERY = 0.5  # seconds between progress saves: often enough for a live view
RATE_WAIT_NOTE = 2.0  # a request held this long by a rate limit is worth a word


class TaskRun:
    """The live side of one task record."""

    def __init__(self, store: TaskStore, record: TaskRecord, clock: Clock, ui: ProgressUI) -> None:
        self.store = store
        self.record = record
        self.clock = clock
        self.ui = ui
        self.stop_reason: Literal["cancel", "signal"] | None = None
        self._last_save = 0.0
        # The progress, in the caller's units of work (the pipeline: estimated requests); the
        # record's ``progress`` and the bar both show done / total.
        self._work_total = 0.0
        self._work_done = 0.0
        self._rate_note = False
        self._journal: int | None = None  # the request journal's file descriptor
        ui.on_rate_wait = self.rate_wait
        ui.on_request = self.request_sent

    @property
    def id(self) -> int:
        return self.record.id

    # -- progress --------------------------------------------------------------------------

    def begin(
        self,
        work: float,
        work_done: float = 0,
        *,
        total_count: int | None = None,
        label: str = "",
    ) -> None:
        """Start counting: ``work`` in all (units, or what the caller weighs them by),
        ``work_done`` of it already done (by an earlier run of the task)."""
        self._work_total = max(float(work), 0.0)
        self._work_done = float(work_done)
        if total_count is not None:
            self.record.total_count = total_count
        self.ui.start(self._work_total, label or self.record.kind, completed=self._work_done)
        self._refresh(force=True)

    def advance(self, work: float = 1, message: str | None = None, *, save: bool = False) -> None:
        """``work`` more done; ``save``: write the record now (a commit's state says it)."""
        self._work_done += work
        if message:
            self.record.message = message
        self.ui.update(self._work_done, message)
        self._refresh(force=save)

    def note(self, message: str) -> None:
        self.record.message = message or None
        self.ui.update(self._work_done, message)
        self._refresh()

    def complete(self) -> None:
        """The task ended with nothing left to do: 100 %, on the record and the bar (a
        unit that failed counts nothing until then)."""
        self._work_done = max(self._work_done, self._work_total)
        self.ui.update(self._work_done)
        self.record.progress = 1.0

    def rate_wait(self, vendor: str, seconds: float) -> None:
        """Say (record and progress bar) that nothing goes out because of ``vendor``'s rate
        limit, and for how long; clear it when a request goes."""
        if seconds >= RATE_WAIT_NOTE:
            self._rate_note = True
            self.note(f"waiting for {vendor}'s rate limit ({seconds:.0f} s)")
        elif seconds == 0.0 and self._rate_note:
            self._rate_note = False
            self.note("")

    def error(self, symbol: str | None, start: object, end: object, reason: str) -> None:
        self.record.add_error(symbol, _text(start), _text(end), reason)
        self._refresh()

    def _refresh(self, force: bool = False) -> None:
        if self._work_total:
            self.record.progress = round(min(self._work_done / self._work_total, 1.0), 4)
        now = time.monotonic()
        if force or now - self._last_save >= SAVE_EVERY:
            self._last_save = now
            self.record.updated_at = iso_utc(self.clock())
            self.store.save(self.record)

    def save(self) -> None:
        self._refresh(force=True)

    # -- stopping --------------------------------------------------------------------------

    def request_stop(self, reason: Literal["cancel", "signal"] = "signal") -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
            self.note("stopping at the next safe point")

    def should_stop(self) -> bool:
        if self.stop_reason is None and self.store.cancel_requested(self.id):
            self.request_stop("cancel")
        return self.stop_reason is not None

    # -- requests --------------------------------------------------------------------------

    def open_journal(self) -> None:
        """Open the task's request journal (one byte per request sent, appended as it goes
        out): the record's ``requests`` is its length, so the requests of a run that was
        SIGKILLed before it saved its record are counted by the next run."""
        path = self.store.requests_path(self.id)
        self._journal = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.record.requests = max(self.record.requests, os.fstat(self._journal).st_size)

    def close_journal(self) -> None:
        if self._journal is not None:
            os.close(self._journal)
            self._journal = None

    def request_sent(self, vendor: str, method: str, path: str) -> None:
        """Count one request, as it is sent (the adapters' ``on_request``, through the
        runtime): in the journal first, then in the record."""
        del vendor, method, path  # the count is what is kept; the vendor logs the request
        if self._journal is None:  # not this run's: sent before it opened or after it ended
            return
        os.write(self._journal, b".")
        self.record.requests += 1

    @contextmanager
    def stop_signals(self, loop: asyncio.AbstractEventLoop | None = None) -> Iterator[None]:
        """Turn SIGINT/SIGTERM into a stop request for the duration of the block."""
        installed: list[signal.Signals] = []
        previous: dict[signal.Signals, Any] = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                if loop is not None:
                    previous[sig] = _loop_handler(loop, sig)
                    loop.add_signal_handler(sig, self.request_stop)
                else:
                    previous[sig] = signal.signal(sig, lambda *_: self.request_stop())
                installed.append(sig)
            except (ValueError, RuntimeError, NotImplementedError):
                continue  # not the main thread: the caller's own handling applies
        try:
            yield
        finally:
            for sig in installed:
                if loop is not None:
                    with suppress(Exception):
                        _restore_loop_handler(loop, sig, previous[sig])
                else:
                    signal.signal(sig, previous[sig])


def _loop_handler(loop: asyncio.AbstractEventLoop, sig: signal.Signals) -> Any:
    """The handler ``loop`` has for ``sig`` (an ``asyncio.Handle``), or None. asyncio has no
    public way to ask; its Unix loops keep them in ``_signal_handlers``."""
    handlers = getattr(loop, "_signal_handlers", None)
    return handlers.get(sig) if isinstance(handlers, dict) else None


def _restore_loop_handler(
    loop: asyncio.AbstractEventLoop, sig: signal.Signals, handle: Any
) -> None:
    """Put back the handler a task's block replaced: a recorder's stop outlives the repair
    task it runs (regression: removing the handler reset SIGTERM to the default between the
    repair's end and the recorder's new handler, and a SIGTERM then killed `etl record`)."""
    callback = getattr(handle, "_callback", None)
    if handle is not None and callback is not None and not handle.cancelled():
        loop.add_signal_handler(sig, callback, *getattr(handle, "_args", ()))
    else:
        loop.remove_signal_handler(sig)


@contextmanager
def open_run(
    store: TaskStore,
    record: TaskRecord,
    *,
    clock: Clock,
    ui: ProgressUI,
) -> Iterator[TaskRun]:
    """Mark ``record`` running under its lock; on exit set its final status.

    Ends ``completed`` (errors, if any, are in the record and make the CLI exit 1),
    ``cancelled``/``interrupted`` after a stop request, ``failed`` on an error that ends
    the whole task.
    """
    lock = store.hold(record.id)
    run = TaskRun(store, record, clock, ui)
    store.clear_cancel(record.id)
    run.open_journal()
    record.status = "running"
    record.pid = os.getpid()
    record.started_at = record.started_at or iso_utc(clock())
    record.finished_at = None
    record.error_message = None
    run.save()
    try:
        yield run
        if run.stop_reason == "cancel":
            record.status = "cancelled"
        elif run.stop_reason == "signal":
            record.status = "interrupted"
        else:
            record.status = "completed"
            run.complete()
    except Interrupted as exc:
        record.status = "interrupted"
        record.error_message = exc.bare_message
    except KeyboardInterrupt:
        record.status = "interrupted"
        record.error_message = "interrupted"
    except EtlError as exc:
        record.status = "failed"
        record.error_message = str(exc)
        raise
    except Exception as exc:
        record.status = "failed"
        record.error_message = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        if record.status in ("completed", "failed", "cancelled"):
            record.finished_at = iso_utc(clock())
        record.message = None if record.status == "completed" else record.message
        run.ui.stop()
        run.close_journal()
        run.save()
        store.clear_cancel(record.id)
        lock.release()


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return iso_utc(value)
    return str(value)
