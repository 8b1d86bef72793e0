"""ArcticDB's side of bench/fastread.py, run by a Python that has `arcticdb` (not a project
dependency): the same 1d bars, one symbol per ArcticDB symbol, in an LMDB library.

    ARCTIC_PYTHON ... _arctic_reads.py LAKE_ROOT ARCTIC_DIR SYMBOL DAY

Prints one JSON line of p50 milliseconds.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

import pandas as pd
import polars as pl
from arcticdb import Arctic
from arcticdb.version_store.library import ReadRequest


def p50(fn, n=200):  # type: ignore[no-untyped-def]
    fn()
    times = []
    for _ in range(n):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000


def drop_caches() -> bool:
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        return False
    return True


def main() -> None:
    lake, where, symbol, day = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    files = sorted(str(p) for p in (lake / "lake" / "klines").glob("freq=1d/*/*.parquet"))
    frame = (
        pl.scan_parquet(files, hive_partitioning=False)
        .select("symbol", "ts", "open", "high", "low", "close", "volume", "amount")
        .collect()
        .to_pandas()
    )
    uri = f"lmdb://{where}?map_size=8GB"
    lib = Arctic(uri).get_library("bars", create_if_missing=True)
    began = time.perf_counter()
    for name, part in frame.groupby("symbol", sort=False):
        lib.write(str(name), part.drop(columns="symbol").set_index("ts"))
    written = time.perf_counter() - began
    warm = p50(lambda: lib.read(symbol).data)
    at = pd.Timestamp(day, tz="UTC") - pd.Timedelta(hours=8)
    names = sorted(frame["symbol"].unique())
    asks = [ReadRequest(n, date_range=(at, at)) for n in names]
    cross = p50(lambda: lib.read_batch(asks), 3)
    doc = {"arctic_write_s": written, "one_symbol_warm_ms": warm, "one_day_5000_ms": cross}
    if drop_caches():
        cold = []
        for i in range(10):
            drop_caches()
            fresh = Arctic(uri).get_library("bars")
            began = time.perf_counter()
            _ = fresh.read(f"{600000 + 37 * i:06d}.SH").data
            cold.append((time.perf_counter() - began) * 1000)
        doc["one_symbol_cold_ms"] = statistics.median(cold)
    print(json.dumps(doc))


if __name__ == "__main__":
    main()
