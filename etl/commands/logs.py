"""Where a command's log lines go, how many, and where an unexpected error's traceback lands.

Every command logs to stderr: warnings by default, ``-v`` info, ``-vv`` debug.
``--log-file PATH`` adds a file that receives every line, debug included, whatever ``-v``
says. Each handler redacts the configured secrets (and anything secret-looking) before it
writes, whatever logger the record came from.

A bug (an exception that is not an :class:`~etl.errors.EtlError`) is not a message for the
user: its traceback goes to the log file (``--log-file``, else a new file under the data
root's ``logs/``, else the system's temporary folder) and stderr gets one line that names
the file.

:func:`setup_logging` may run any number of times in one process (each command of a test,
the scheduler after a reload): it replaces what it installed, never stacks a second copy.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = ["LogOptions", "log_traceback", "set_log_options", "setup_logging"]

_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Libraries that say too much: their records pass only at this level or above.
_QUIET: Final = {"httpx": logging.WARNING, "httpcore": logging.WARNING, "apscheduler": logging.INFO}


@dataclass
class LogOptions:
    """What the command line asked for (``-v``, ``--log-file``) and what was found since
    (the data root, the secrets to redact)."""

    verbose: int = 0
    log_file: Path | None = None
    data_root: Path | None = None
    secrets: tuple[str, ...] = ()


OPTIONS = LogOptions()


def set_log_options(*, verbose: int = 0, log_file: Path | None = None) -> None:
    """Add ``-v`` counts and a ``--log-file`` (given before or after the command's name)."""
    OPTIONS.verbose += verbose
    if log_file is not None:
        OPTIONS.log_file = log_file
    setup_logging()


class _Marked:
    """Marks the handlers and filters this module installed, so a second call replaces them."""

    etl_installed = True


class _StderrHandler(logging.StreamHandler, _Marked):  # type: ignore[type-arg]
    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr  # follow a replaced stderr (tests, redirections)
        super().emit(record)


class _FileHandler(logging.FileHandler, _Marked):
    pass


def setup_logging(*, secrets: Iterable[str] | None = None, data_root: Path | None = None) -> None:
    """Install (or re-install) the stderr handler, the ``--log-file`` handler and the
    redaction on both; idempotent."""
    if secrets is not None:
        OPTIONS.secrets = tuple(sorted({s for s in secrets if s}))
    if data_root is not None:
        OPTIONS.data_root = data_root
    root = logging.getLogger()
    old_file = next((h for h in root.handlers if isinstance(h, _FileHandler)), None)
    for handler in list(root.handlers):
        if getattr(handler, "etl_installed", False) and handler is not old_file:
            root.removeHandler(handler)
    stderr_level = (logging.WARNING, logging.INFO)[min(OPTIONS.verbose, 1)]
    if OPTIONS.verbose >= 2:
        stderr_level = logging.DEBUG
    handlers: list[logging.Handler] = [_StderrHandler()]
    handlers[0].setLevel(stderr_level)
    file_handler = old_file
    wanted = OPTIONS.log_file.resolve() if OPTIONS.log_file else None
    if file_handler is not None and Path(file_handler.baseFilename) != wanted:
        root.removeHandler(file_handler)
        file_handler.close()
        file_handler = None
    if wanted is not None and file_handler is None:
        wanted.parent.mkdir(parents=True, exist_ok=True)
        file_handler = _FileHandler(wanted, encoding="utf-8", delay=True)
        file_handler.setLevel(logging.DEBUG)
    if file_handler is not None:
        handlers.append(file_handler)
    from etl.vendors.redact import RedactingFilter

    for handler in handlers:
        handler.setFormatter(logging.Formatter(_FORMAT))
        handler.filters = [RedactingFilter(OPTIONS.secrets)]
        if handler not in root.handlers:
            root.addHandler(handler)
    lowest = min(h.level for h in handlers)
    root.setLevel(lowest)
    for name, level in _QUIET.items():
        logging.getLogger(name).setLevel(max(level, lowest) if OPTIONS.verbose < 2 else lowest)


def _crash_file() -> Path:
    """A new file for one traceback: under the data root's ``logs/`` if it can be written,
    else in the temporary folder."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    name = f"etl-error-{stamp}-{os.getpid()}.log"
    if OPTIONS.data_root is not None:
        from etl.dataroot import DataRoot

        folder = DataRoot(OPTIONS.data_root).logs
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / name
            path.touch(0o600)
        except OSError:
            pass
        else:
            return path
    import tempfile

    return Path(tempfile.gettempdir()) / name


def log_traceback(exc: BaseException) -> Path:
    """Write ``exc``'s traceback (redacted) where the user can find it; return the file."""
    import traceback

    from etl.vendors.redact import redact_text

    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    text = f"{stamp} unexpected error in pid {os.getpid()}: {' '.join(sys.argv)}\n"
    text = redact_text(text + "".join(traceback.format_exception(exc)), OPTIONS.secrets)
    path = OPTIONS.log_file or _crash_file()
    with path.open("a", encoding="utf-8") as f:
        f.write(text)
    return path
