"""Writing one Parquet file durably, and proving it reads back as written.

Row groups are set explicitly (about 128k rows): pyarrow's dataset writer left to itself
made thousands of 3k-row groups, 30-45 % larger files and 2-3x slower reads (measured, see
BENCHMARKS.md).
"""

from __future__ import annotations

import hashlib
import mmap
import os
from collections.abc import Callable, Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pyarrow as pa
import pyarrow.parquet as pq
import xxhash

from etl.errors import LakeError

if TYPE_CHECKING:
    import polars as pl
    from typing_extensions import Buffer

__all__ = [
    "ROW_GROUP_ROWS",
    "digest_matches",
    "file_digest",
    "may_hold",
    "read_columns",
    "verify_file",
    "write_file",
]

ROW_GROUP_ROWS = 131_072
COMPRESSION = "zstd"


def write_file(table: pa.Table, path: Path, sort_by: list[str]) -> int:
    """Write ``table`` (already sorted by ``sort_by``) to ``path`` and fsync it; returns bytes."""
    sorting = pq.SortingColumn.from_ordering(table.schema, [(c, "ascending") for c in sort_by])
    pq.write_table(
        table,
        path,
        compression=COMPRESSION,
        row_group_size=ROW_GROUP_ROWS,
        write_statistics=True,
        sorting_columns=sorting,
        write_page_checksum=True,  # a flipped bit in a page fails its read, not silently
    )
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return path.stat().st_size


DIGEST_ALGORITHM = "xxh3_128"


class _Hasher(Protocol):
    def update(self, data: Buffer, /) -> None: ...
    def hexdigest(self) -> str: ...


_HASHERS: dict[str, Callable[[], _Hasher]] = {
    "xxh3_128": xxhash.xxh3_128,
    "sha256": hashlib.sha256,
}


def may_hold(path: Path, column: str, values: Collection[str]) -> bool:
    """Whether the file may hold a row whose string ``column`` is one of ``values``: False
    only when every row group's statistics (written with every file, :func:`write_file`)
    show its range of ``column`` leaves all of them out. A file without them, or unreadable,
    may hold anything. Reads the footer only: a cheap "nothing stored" before a full scan."""
    try:
        meta = pq.ParquetFile(path).metadata
    except (OSError, pa.ArrowException):
        return True
    names = [meta.schema.column(i).name for i in range(meta.num_columns)]
    if column not in names:
        return True
    index = names.index(column)
    wanted = sorted(values)
    for group in range(meta.num_row_groups):
        if meta.row_group(group).num_rows == 0:
            continue
        stats = meta.row_group(group).column(index).statistics
        if stats is None or not stats.has_min_max:
            return True
        low, high = stats.min, stats.max
        if isinstance(low, bytes) or isinstance(high, bytes):
            return True  # not decoded as strings: no claim made
        if any(low <= value <= high for value in wanted):
            return True
    return False


def file_digest(path: Path, algorithm: str = DIGEST_ALGORITHM) -> str:
    """The digest of the file's bytes that ``etl verify`` compares with the manifest, as
    ``"<algorithm>:<hex>"``.

    XXH3-128 finds accidental damage (flipped bits, truncation, a foreign file) as surely as a
    cryptographic hash, at 30 GB/s against SHA-256's 1.8 GB/s here: 1 ms instead of 16 ms for
    a 28 MB file, which keeps the digest within 5 % of a commit (BENCHMARKS.md). Nothing here
    defends against a forger who can write the lake; the manifest sits beside the file.
    Manifests written before carry bare SHA-256 hex, still checked by :func:`digest_matches`.
    """
    hasher = _HASHERS[algorithm]()
    with path.open("rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size:
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
                hasher.update(view)  # no copy of the page cache into Python
    hexdigest = hasher.hexdigest()
    return hexdigest if algorithm == "sha256" else f"{algorithm}:{hexdigest}"


def digest_matches(path: Path, recorded: str) -> bool:
    """Whether ``path`` still has the digest ``recorded`` for it when it was written."""
    algorithm, sep, _ = recorded.partition(":")
    if not sep:  # bare hex: a SHA-256 digest of a manifest from before XXH3
        algorithm = "sha256"
    if algorithm not in _HASHERS:
        return False
    return file_digest(path, algorithm) == recorded


def read_columns(path: Path, names: Collection[str]) -> dict[str, list[Any]]:
    """The file's ``names`` columns as lists, a column the file lacks as nulls (as polars'
    ``missing_columns="insert"``), for the small reads on the way to a task's first request
    (the instruments, a calendar): without polars, and without what ``pq.read_table`` and
    ``to_numpy`` import (pyarrow's dataset and compute modules, and pandas: 0.2 s)."""
    file = pq.ParquetFile(path)
    present = file.schema_arrow.names
    table = file.read(columns=[n for n in names if n in present])
    return {
        n: table.column(n).to_pylist() if n in present else [None] * table.num_rows for n in names
    }


def verify_file(path: Path, expected: pl.DataFrame, keys: list[str], time_col: str | None) -> None:
    """Read ``path`` back: row count, key uniqueness and min/max time must match ``expected``."""
    import polars as pl  # the writer's: may_hold, above, is read on the way to a first request

    cols = list(dict.fromkeys([*keys, *([time_col] if time_col else [])]))
    try:
        back = pl.read_parquet(path, columns=cols)
    except Exception as exc:  # any reader failure means the file is not fit to publish
        raise LakeError(f"written file does not read back: {exc}", file=path.name) from exc
    if back.height != expected.height:
        raise LakeError(f"read back {back.height} rows, wrote {expected.height}", file=path.name)
    from etl.lake.merge import has_adjacent_duplicates

    if has_adjacent_duplicates(back, keys):  # files are written sorted by their keys
        raise LakeError("written file holds a key twice", file=path.name)
    if time_col and back.height:
        got = (back[time_col].min(), back[time_col].max())
        want = (expected[time_col].min(), expected[time_col].max())
        if got != want:
            raise LakeError(f"time range read back {got} differs from {want}", file=path.name)
