"""A lake writer for the crash test: commits forever, printing each finished commit.

Run as ``python tests/lake/_crash_writer.py ROOT FIRST``; it prints ``ready`` once started,
and the test SIGKILLs it at a random moment after that. Commit ``i`` writes close = i for a
window of keys that overlaps its neighbours, so every commit both adds and replaces rows, and
small buckets are compacted along the way.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import polars as pl

SYMBOLS = [f"6000{i:02d}.SH" for i in range(10)]
START = dt.date(2023, 11, 1)
DAYS = [
    START + dt.timedelta(days=i) for i in range(120) if (START + dt.timedelta(days=i)).weekday() < 5
]


def commit_keys(i: int) -> tuple[list[str], list[dt.date]]:
    symbols = [SYMBOLS[(i + k) % len(SYMBOLS)] for k in range(4)]
    first = (i * 7) % (len(DAYS) - 12)
    return symbols, DAYS[first : first + 12]


def commit_rows(i: int) -> pl.DataFrame:
    from tests.conftest import kline_rows

    symbols, days = commit_keys(i)
    return kline_rows(symbols, days, close=float(i))


def main() -> None:
    from etl.lake import Lake

    root, first = Path(sys.argv[1]), int(sys.argv[2])
    lake = Lake(root, compact_min_files=3)
    commit_rows(first)  # the row builder's imports too: what follows "ready" is commits
    print("ready", flush=True)
    i = first
    while True:
        now = dt.datetime(2024, 6, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=i)
        lake.write("klines", commit_rows(i), now=now)
        print(f"done {i}", flush=True)
        if i % 5 == 4:
            # no history: its build waits for the folders to settle (2 s), and the kills
            # are meant to land inside commits
            lake.compact("klines", now=now, histories=False)
            print(f"compacted {i}", flush=True)
        i += 1


if __name__ == "__main__":
    main()
