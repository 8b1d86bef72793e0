"""What integrity costs a commit: page checksums and the file digest, against the commit of
one 1d year file (5,000 symbols, 1.21 M rows) and the raw ``pyarrow.parquet.write_table``.

    python -m bench digest
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from pathlib import Path

import pyarrow.parquet as pq

from bench.data import best_of, klines_frame
from etl.lake import Lake
from etl.lake.parquet_io import COMPRESSION, ROW_GROUP_ROWS, file_digest

NOW = dt.datetime(2024, 6, 30, tzinfo=dt.UTC)


def run() -> list[dict[str, object]]:
    frame = klines_frame(5000, "1d", dt.date(2023, 1, 1), dt.date(2023, 12, 31))
    work = Path(tempfile.mkdtemp(prefix="bench-digest-"))
    try:
        roots = iter(range(1000))

        def commit() -> None:
            Lake(work / str(next(roots))).write("klines", frame, now=NOW)

        t_commit = best_of(commit, repeat=3)
        (written,) = (work / "0" / "lake" / "klines").rglob("*.parquet")
        table = pq.read_table(written)

        def write(checksums: bool) -> float:
            return best_of(
                lambda: pq.write_table(
                    table, work / "raw.parquet", compression=COMPRESSION,
                    row_group_size=ROW_GROUP_ROWS, write_statistics=True,
                    write_page_checksum=checksums,
                ),
                repeat=3,
            )  # fmt: skip

        t_plain, t_checked = write(False), write(True)
        t_xxh3 = best_of(lambda: file_digest(written), repeat=5)
        t_sha = best_of(lambda: file_digest(written, "sha256"), repeat=5)
        added = max(t_checked - t_plain, 0.0) + t_xxh3
        return [
            {
                "case": "one 1d year file, 5,000 symbols",
                "rows": frame.height,
                "file_mb": round(written.stat().st_size / 1e6, 1),
                "commit_ms": round(t_commit * 1000, 1),
                "write_table_ms": round(t_plain * 1000, 1),
                "write_table_checksums_ms": round(t_checked * 1000, 1),
                "digest_xxh3_128_ms": round(t_xxh3 * 1000, 2),
                "digest_sha256_ms": round(t_sha * 1000, 2),
                "integrity_share_of_commit": round(added / t_commit, 3),
            }
        ]
    finally:
        shutil.rmtree(work, ignore_errors=True)
