"""`python -m bench [NAME ...]`: run benchmarks and print their figures as JSON lines."""

from __future__ import annotations

import importlib
import json
import sys

ALL = [
    "ingest", "ingest_json", "query", "detect", "layout",
    "amazingdata_rate", "infoway_rate", "infoway_cli", "stocktv_rate", "mdapi_rate", "serve",
    "fastread", "digest", "record", "detect_memory", "backfill_commits", "startup",
    "atomic_write",
]  # fmt: skip


def main() -> None:
    names = sys.argv[1:] or ALL
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        print(f"# {name}: {(module.__doc__ or '').strip().splitlines()[0]}", flush=True)
        for row in module.run():
            print(json.dumps(row, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
