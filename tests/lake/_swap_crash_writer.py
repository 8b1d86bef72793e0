"""One commit that SIGKILLs itself at its N-th file system step after the journal is begun.

Run as ``python tests/lake/_swap_crash_writer.py ROOT N MODE`` (MODE ``exchange`` or
``fallback``, which forces the two-rename swap). Steps counted: every rename, replace,
unlink, rmdir and link the commit makes from writing its journal on. Prints ``done S`` (the
number of steps) when the commit finished before step N.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import sys
from pathlib import Path
from typing import Any

from tests.lake.test_swap_crash import commit_rows

STEPS = {"n": 0, "armed": False, "kill_at": 0}


def _counted(name: str) -> None:
    real = getattr(os, name)

    def step(*args: Any, **kwargs: Any) -> Any:
        if STEPS["armed"]:
            STEPS["n"] += 1
            if STEPS["n"] == STEPS["kill_at"]:
                os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)

    setattr(os, name, step)


def main() -> None:
    from etl.lake import Lake, store, swap

    root, kill_at, mode = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    STEPS["kill_at"] = kill_at
    for name in ("rename", "replace", "unlink", "rmdir", "link"):
        _counted(name)
    real_journal = swap.write_journal

    def journal(*args: Any) -> None:
        STEPS["armed"] = True
        real_journal(*args)

    store.write_journal = journal  # type: ignore[attr-defined]
    lake = Lake(root, rename_exchange=(mode == "exchange"))
    lake.write("klines", commit_rows(1), now=dt.datetime(2024, 6, 2, tzinfo=dt.UTC))
    print(f"done {STEPS['n']}", flush=True)


if __name__ == "__main__":
    main()
