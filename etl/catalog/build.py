"""Building ``<data root>/catalog.duckdb``: views, macros and the anchors they need.

The catalog holds no data, only definitions over the lake, so it never needs writing while a
backfill runs. It is built into a temporary file and renamed into place: a ``duckdb`` shell
holding the old file open keeps working on it, and the next connection sees the new one.
``etl catalog rebuild`` also recomputes every partition manifest from the Parquet files, so
the catalog is reconstructed from the lake alone.

The file is for any ``duckdb`` shell, not only for the duckdb this package imports: it is
written in DuckDB 1.0's storage format (:data:`STORAGE_VERSION`; DuckDB 2.0 writes format 69
by default, which no 1.x shell opens, and the newest shell on PyPI, ``duckdb-cli``, is a 1.x),
and its views are SQL that 1.0 binds (see :mod:`etl.catalog.ddl`). That SQL cannot point a
view at a dataset with no file yet, so the catalog records which datasets had files when it
was built, and :func:`ensure_catalog` rebuilds it when that changes; task runs end with
:func:`refresh_catalog`, so a dataset's first files show in the shell once the task ends.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Final

import duckdb

from etl import schema as schemas
from etl.catalog.ddl import anchor_path, catalog_sql, file_pattern
from etl.dataroot import DataRoot
from etl.fsutil import atomic_target, atomic_write_bytes
from etl.locks import file_lock
from etl.schema import DatasetSchema
from etl.timefmt import iso_utc

__all__ = [
    "CATALOG_NAME",
    "STORAGE_VERSION",
    "build_catalog",
    "catalog_fingerprint",
    "datasets_present",
    "ensure_anchors",
    "ensure_catalog",
    "refresh_catalog",
]

log = logging.getLogger(__name__)
CATALOG_NAME = "catalog.duckdb"
CATALOG_FORMAT = "2"  # 2: views in DuckDB 1.0 SQL, file in 1.0's storage format
# The oldest storage format DuckDB 2 still writes, and every DuckDB since 1.0 reads.
STORAGE_VERSION: Final = "v1.0.0"


def catalog_fingerprint(root: Path, datasets: Iterable[DatasetSchema]) -> str:
    text = "|".join([CATALOG_FORMAT, str(root), *(s.fingerprint for s in datasets)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def ensure_anchors(root: Path) -> None:
    """Zero-row files that keep every view typed while its dataset is still empty."""
    datasets = list(schemas.schemas().values())
    layout = DataRoot(root)
    stamp = layout.schema_fingerprint
    want = catalog_fingerprint(root, datasets)
    manifest_anchor = layout.manifest_anchor
    task_anchor = layout.task_anchor
    fresh = stamp.is_file() and stamp.read_text() == want
    if fresh and manifest_anchor.is_file() and task_anchor.is_file():
        return
    # imported here: a query of a root whose anchors are fresh (every one but the first)
    # needs no pyarrow, 70 ms of an `etl sql` start-up of 0.4 s
    import pyarrow as pa
    import pyarrow.parquet as pq

    for schema in datasets:
        with atomic_target(anchor_path(root, schema)) as tmp:
            pq.write_table(pa.Table.from_pylist([], schema=schema.file_schema), tmp)
    atomic_write_bytes(manifest_anchor, json.dumps({"dataset": None}).encode())
    atomic_write_bytes(task_anchor, json.dumps({"id": None}).encode())
    atomic_write_bytes(stamp, want.encode())


def datasets_present(root: Path, datasets: Iterable[DatasetSchema]) -> str:
    """The datasets with at least one file in the lake, as the catalog records them."""
    layout = DataRoot(root)
    found = [s.name for s in datasets if next(layout.dataset(s.name).glob(file_pattern(s)), None)]
    return ",".join(sorted(found))


def build_catalog(root: Path, *, now: dt.datetime) -> Path:
    """(Re)create the catalog file from ``schemas/`` for the data root ``root``."""
    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    ensure_anchors(root)
    datasets = list(schemas.schemas().values())
    present = datasets_present(root, datasets)
    layout = DataRoot(root)
    target = layout.catalog
    with file_lock(layout.catalog_lock), atomic_target(target, leftovers=(".wal",)) as tmp:
        # Builders hold the lock, so temporary catalogs found now are a killed build's.
        for stale in root.glob(f".{target.name}.*.tmp*"):
            if stale.name != tmp.name:
                stale.unlink(missing_ok=True)
        con = duckdb.connect(str(tmp), config={"storage_compatibility_version": STORAGE_VERSION})
        try:
            for statement in catalog_sql(root, datasets, present=set(present.split(","))):
                con.execute(statement)
            con.execute("CREATE TABLE etl_catalog (key VARCHAR PRIMARY KEY, value VARCHAR)")
            con.executemany(
                "INSERT INTO etl_catalog VALUES (?, ?)",
                [
                    ["fingerprint", catalog_fingerprint(root, datasets)],
                    ["datasets_present", present],
                    ["data_root", str(root)],
                    ["built_at", iso_utc(now)],
                ],
            )
            con.execute("CHECKPOINT")
        finally:
            con.close()
    return target


def ensure_catalog(root: Path, *, now: dt.datetime) -> bool:
    """Build the catalog if it is missing or out of date (schemas changed, or a dataset got
    its first file); True if it was (re)built."""
    root = root.resolve()
    target = DataRoot(root).catalog
    datasets = list(schemas.schemas().values())
    want = {
        "fingerprint": catalog_fingerprint(root, datasets),
        "datasets_present": datasets_present(root, datasets),
    }
    if target.is_file():
        try:
            con = duckdb.connect(str(target), read_only=True)
            try:
                rows = con.execute("SELECT key, value FROM etl_catalog").fetchall()
            finally:
                con.close()
            have = dict(rows)
            if all(have.get(key) == value for key, value in want.items()):
                ensure_anchors(root)
                return False
        except duckdb.Error as exc:
            # Held open for writing by a shell, or an old layout: rebuild beside it.
            log.debug("catalog check failed (%s); rebuilding", exc)
    build_catalog(root, now=now)
    return True


def refresh_catalog(root: Path, *, now: dt.datetime) -> bool:
    """:func:`ensure_catalog` where a catalog exists (after a task: its first files of a
    dataset must show in a shell); never creates one. True if it was rebuilt."""
    if not DataRoot(root.resolve()).catalog.is_file():
        return False
    return ensure_catalog(root, now=now)
