"""Where the calendars keep the schedules they build: a file per calendar in the data root.

The edge that knows the data root (:class:`etl.tasks.runtime.Runtime`) names it once with
:func:`keep_sessions_in`; the calendar code deep below (vendors' plans, expected bars) then
finds built schedules there without being handed a path. Without it, schedules are built in
every process, as before. This module imports nothing heavy: ``etl sql`` builds a Runtime
too, and must not load numpy for it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

__all__ = ["keep_sessions_in", "sessions_file"]

# the one setting of the process: calendar name -> its file (empty: none kept)
_where: dict[str, Callable[[str], Path]] = {}


def keep_sessions_in(path_of: Callable[[str], Path] | None) -> None:
    """Keep each calendar's schedule at ``path_of(calendar name)`` (None: keep none)."""
    _where.clear()
    if path_of is not None:
        _where["path_of"] = path_of


def sessions_file(name: str) -> Path | None:
    """The file that keeps calendar ``name``'s schedule, or None if none is named."""
    path_of = _where.get("path_of")
    return path_of(name) if path_of is not None else None
