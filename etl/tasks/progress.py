"""The progress bar a long task shows on stderr (stdout stays clean for ``--json``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

__all__ = ["ProgressUI"]


class ProgressUI:
    """A rich progress bar on stderr; silent when disabled (tests, --quiet, not a terminal).

    rich is imported only for a bar that may be drawn: a task run with no terminal (cron,
    ``--json`` piped, a server) reaches its first request without it (issue 10, start-up)."""

    def __init__(self, enabled: bool = True, console: Console | None = None) -> None:
        if console is None and enabled:
            from rich.console import Console

            console = Console(stderr=True)
        self.console = console
        self.enabled = enabled and console is not None and console.is_terminal
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        # The task run this bar belongs to hears of rate-limit waits through here (a run is
        # what the adapters' governors cannot see, the bar is what Runtime hands out).
        self.on_rate_wait: Callable[[str, float], None] | None = None
        # ... and of each request as it is sent (vendor, method, path): the run counts them.
        self.on_request: Callable[[str, str, str], None] | None = None

    def rate_wait(self, vendor: str, seconds: float) -> None:
        if self.on_rate_wait is not None:
            self.on_rate_wait(vendor, seconds)

    def request_sent(self, vendor: str, method: str, path: str) -> None:
        if self.on_request is not None:
            self.on_request(vendor, method, path)

    def start(self, total: float, label: str, completed: float = 0) -> None:
        if not self.enabled:
            return
        if self._progress is None:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[note]}", style="dim"),
                console=self.console,
                transient=False,
            )
            self._progress.start()
        self._task = self._progress.add_task(label, total=total or None, note="")
        self._progress.update(self._task, completed=completed)  # work may be fractional

    def update(self, completed: float, message: str | None = None) -> None:
        if self._progress is None or self._task is None:
            return
        if message:
            self._progress.update(self._task, completed=completed, note=message[:60])
        else:
            self._progress.update(self._task, completed=completed)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self._task = None
