"""detect-missing's peak memory on 1m bars x 1 year: 1,000 symbols in a lake holding every
bar but 0.1 % (58 M expected bars) and in an empty lake, and a market of 5,000 symbols in an
empty lake (290 M bars, every one absent), each in a fresh process; the baseline is a fresh
process reading the same lake's distinct keys with DuckDB alone.

    python -m bench detect_memory    (BENCH_SYMBOLS / BENCH_MARKET_SYMBOLS: smaller runs)
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from bench.data import klines_frame
from etl.lake import Lake

NOW = dt.datetime(2024, 6, 30, tzinfo=dt.UTC)
START, END = dt.date(2023, 1, 1), dt.date(2023, 12, 31)
CHUNK = 100  # symbols written per commit

_PROBE = """
import datetime as dt, json, sys, time
from pathlib import Path
root, n, mode = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
symbols = tuple(f"{600000 + i:06d}.SH" for i in range(n))
t0 = time.perf_counter()
if mode == "detect":
    from etl.tasks.detect import detect
    from etl.tasks.expected import Selection
    sel = Selection("klines", dt.date(2023, 1, 1), dt.date(2023, 12, 31), "1m", symbols)
    report = detect(root, sel, dt.datetime(2024, 6, 30, tzinfo=dt.UTC))
    doc = report.document(None, "completed")
    out = {"expected": doc["expected_rows"], "present": doc["present_rows"],
           "gap_runs": len(doc["gaps"]), "missing_symbols": doc["missing_count"]}
else:
    import duckdb
    glob = f"{root}/lake/klines/freq=1m/*/*.parquet"
    rows = duckdb.sql(f"SELECT count(*) FROM (SELECT DISTINCT symbol, ts FROM read_parquet('{glob}'))").fetchall()
    out = {"present": rows[0][0]}
out["seconds"] = round(time.perf_counter() - t0, 2)
# VmHWM is this process's own peak (ru_maxrss keeps the forking parent's across exec)
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0]
out["peak_rss_mib"] = round(int(hwm.split()[1]) / 1024)
print(json.dumps(out))
"""


def _probe(root: Path, n: int, mode: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(root), str(n), mode],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run() -> list[dict[str, object]]:
    n = int(os.environ.get("BENCH_SYMBOLS", "1000"))
    work = Path(tempfile.mkdtemp(prefix="bench-detect-mem-"))
    try:
        empty = work / "empty"
        (empty / "lake").mkdir(parents=True)
        full = work / "full"
        rng = np.random.default_rng(5)
        removed = 0
        t0 = time.perf_counter()
        for first in range(0, n, CHUNK):
            frame = klines_frame(min(CHUNK, n - first), "1m", START, END, seed=first)
            frame = frame.with_columns(
                ((pl.col("symbol").str.slice(0, 6).cast(pl.Int64) + first).cast(pl.String)
                 + ".SH").alias("symbol")
            )  # fmt: skip
            keep = rng.random(frame.height) >= 0.001
            removed += int((~keep).sum())
            Lake(full).write("klines", frame.filter(pl.Series(keep)), now=NOW)
            del frame
        write_s = time.perf_counter() - t0
        rows = []
        market = int(os.environ.get("BENCH_MARKET_SYMBOLS", "5000"))
        cases = (
            (n, "every bar but 0.1 %", full),
            (n, "empty lake: every bar absent", empty),
            (market, "empty lake: every bar absent", empty),
        )
        for symbols, case, root in cases:
            got = _probe(root, symbols, "detect")
            raw = _probe(root, n, "raw") if root is full else {}
            rows.append({
                "case": f"{symbols:,} symbols x 1 year of 1m, {case}",
                "removed": removed if root is full else None,
                **{f"detect_{k}": v for k, v in got.items()},
                **{f"raw_keys_{k}": v for k, v in raw.items()},
                "lake_write_s": round(write_s, 1),
            })  # fmt: skip
        return rows
    finally:
        shutil.rmtree(work, ignore_errors=True)
