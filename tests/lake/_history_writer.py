"""A history writer for the crash test: rewrites the klines 1d history forever, printing
each one written.

Run as ``python tests/lake/_history_writer.py ROOT HISTORY``; the test SIGKILLs it at random
moments. Each round removes the history first, so that compaction writes it again (it
leaves alone one that copies the current folders), and the kills land in the write.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path


def main() -> None:
    from etl.lake import Lake

    root, target = Path(sys.argv[1]), Path(sys.argv[2])
    lake = Lake(root)
    now = dt.datetime(2025, 1, 2, tzinfo=dt.UTC)
    i = 0
    print("ready", flush=True)
    while True:
        target.unlink(missing_ok=True)
        written = lake.compact("klines", now=now)[0].mirrors_written
        print(f"wrote {i} {written}", flush=True)
        i += 1


if __name__ == "__main__":
    main()
