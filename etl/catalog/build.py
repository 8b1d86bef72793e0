"""Building ``<data root>/catalog.duckdb``: views, macros and the anchors they need.

The catalog holds no data, only definitions over the lake, so it never needs writing while a
backfill runs. It is built into a temporary file and renamed into place: a ``duckdb`` shell
holding the old file open keeps working on it, and the next connection sees the new one.
``etl catalog rebuild`` also recomputes every partition manifest from the Parquet files, so
the catalog is reconstructed from the lake alone.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Iterable
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from etl import schema as schemas
from etl.catalog.ddl import anchor_path, catalog_sql
from etl.dataroot import DataRoot
from etl.fsutil import atomic_target, atomic_write_bytes
from etl.schema import DatasetSchema
from etl.timefmt import iso_utc

__all__ = [
    "CATALOG_NAME",
    "build_catalog",
    "catalog_fingerprint",
    "ensure_anchors",
    "ensure_catalog",
]

log = logging.getLogger(__name__)
CATALOG_NAME = "catalog.duckdb"
CATALOG_FORMAT = "1"


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
    for schema in datasets:
        with atomic_target(anchor_path(root, schema)) as tmp:
            pq.write_table(pa.Table.from_pylist([], schema=schema.file_schema), tmp)
    atomic_write_bytes(manifest_anchor, json.dumps({"dataset": None}).encode())
    atomic_write_bytes(task_anchor, json.dumps({"id": None}).encode())
    atomic_write_bytes(stamp, want.encode())


def build_catalog(root: Path, *, now: dt.datetime) -> Path:
    """(Re)create the catalog file from ``schemas/`` for the data root ``root``."""
    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    ensure_anchors(root)
    datasets = list(schemas.schemas().values())
    target = DataRoot(root).catalog
    with atomic_target(target, leftovers=(".wal",)) as tmp:
        con = duckdb.connect(str(tmp))
        try:
            for statement in catalog_sql(root, datasets):
                con.execute(statement)
            con.execute("CREATE TABLE etl_catalog (key VARCHAR PRIMARY KEY, value VARCHAR)")
            con.executemany(
                "INSERT INTO etl_catalog VALUES (?, ?)",
                [
                    ["fingerprint", catalog_fingerprint(root, datasets)],
                    ["data_root", str(root)],
                    ["built_at", iso_utc(now)],
                ],
            )
            con.execute("CHECKPOINT")
        finally:
            con.close()
    return target


def ensure_catalog(root: Path, *, now: dt.datetime) -> bool:
    """Build the catalog if it is missing or out of date; True if it was (re)built."""
    root = root.resolve()
    target = DataRoot(root).catalog
    want = catalog_fingerprint(root, schemas.schemas().values())
    if target.is_file():
        try:
            con = duckdb.connect(str(target), read_only=True)
            try:
                row = con.execute(
                    "SELECT value FROM etl_catalog WHERE key = 'fingerprint'"
                ).fetchone()
            finally:
                con.close()
            if row and row[0] == want:
                ensure_anchors(root)
                return False
        except duckdb.Error as exc:
            # Held open for writing by a shell, or an old layout: rebuild beside it.
            log.debug("catalog check failed (%s); rebuilding", exc)
    build_catalog(root, now=now)
    return True
