"""What committing a backfill page by page costs: Infoway 1m through `etl backfill` (Pro plan,
20 requests/s) end to end against the rate bound, then the lake's write cost of the same rows
as the backfill commits them (pages of 500 bars, newest first, symbol by symbol) against one
commit of all rows, and a commit's time against the vendor's interval between pages.

    python -m bench backfill_commits
"""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl

from etl.emulators.testing import running
from etl.lake import Lake

NOW = dt.datetime(2024, 6, 28, 12, tzinfo=dt.UTC)
RATE = 20.0  # the emulator's Pro plan: apiNumPerSec
SYMBOLS = "AAPL.US,MSFT.US,AMZN.US,NVDA.US,META.US,TSLA.US"
PAGE = 500


def _backfill(root: Path, url: str) -> tuple[float, dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")}
    env.update(ETL_DATA_DIR=str(root), ETL_INFOWAY_BASE_URL=url, ETL_INFOWAY_API_KEY="bench")
    began = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "etl", "backfill", "--vendor", "infoway", "--dataset", "klines",
         "--freq", "1m", "--symbols", SYMBOLS, "--start", "2024-05-01", "--end", "2024-06-27",
         "--json"],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    took = time.perf_counter() - began
    if proc.returncode != 0:
        raise RuntimeError(f"backfill exited {proc.returncode}: {proc.stderr}")
    return took, json.loads(proc.stdout)


def _pages(rows: pl.DataFrame) -> Iterator[pl.DataFrame]:
    for _, part in rows.sort("symbol", "ts", descending=[False, True]).group_by(
        "symbol", maintain_order=True
    ):
        for i in range(0, part.height, PAGE):
            yield part.slice(i, PAGE)


def run() -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp, running("infoway", now=NOW, plan="Pro") as server:
        root = Path(tmp) / "e2e"
        took, doc = _backfill(root, server.base_url)
        stats = server.stats()
        kline_calls = sum(
            c["requests"] for p, c in stats["by_path"].items() if p.endswith("batch_kline")
        )
        state = json.loads(next((root / "tasks").glob("*.state")).read_bytes())
        files = sorted((root / "lake" / "klines").glob("freq=1m/*/*.parquet"))
        rows = pl.read_parquet(files).drop("ingested_at", strict=False)
        if "freq" not in rows.columns:  # a partition column, only in the path
            rows = rows.with_columns(pl.lit("1m").alias("freq"))
        now = NOW
        once = Lake(Path(tmp) / "once")
        t0 = time.perf_counter()
        once.write("klines", rows, now=now)
        one_commit = time.perf_counter() - t0
        paged = Lake(Path(tmp) / "paged")
        each = []
        for page in _pages(rows):
            t0 = time.perf_counter()
            paged.write("klines", page, now=now)
            each.append(time.perf_counter() - t0)
    requests = int(stats["requests"])
    return [
        {
            "case": "etl backfill, 6 US symbols 1m over 8 weeks, Pro 20/s",
            "kline_calls": kline_calls,
            "commits": state.get("seq"),
            "rows_written": doc["rows_written"],
            "seconds": round(took, 2),
            "bound_s": round(requests / RATE, 2),
            "ratio_to_bound": round(took / (requests / RATE), 2),
            "violations": stats["violations"],
        },
        {
            "case": f"lake writes of the same {rows.height} rows",
            "one_commit_s": round(one_commit, 3),
            "page_commits": len(each),
            "page_commits_total_s": round(sum(each), 2),
            "ratio_to_one_commit": round(sum(each) / one_commit, 1),
            "page_commit_ms_median": round(statistics.median(each) * 1000, 1),
            "page_commit_ms_p95": round(sorted(each)[int(len(each) * 0.95)] * 1000, 1),
            "vendor_page_interval_ms": round(1000 / RATE, 1),
        },
    ]
