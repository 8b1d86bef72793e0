"""``etl verify``: every lake file checked against what was recorded when it was written.

A commit records each file's row count and a digest (XXH3-128) of its bytes in the partition's
manifest, and writes Parquet page checksums. Verification reads each file once: a file whose
bytes no longer match its digest, whose footer or pages do not read (a truncation, a flipped
bit in a checksummed page), whose row count differs, or that the manifest lists but is gone,
is a finding, reported with what it held (rows, time range). A file in the folder that the
manifest does not list is one too when it does not read (a readable one is a manifest out of
step, which the next writer repairs).

``repair`` takes the damaged files out of their partitions through the lake's own atomic
commit (``Lake.quarantine``): kept under ``lake/.quarantine/``, their rows become absent
slots that detect-missing reports and fill-missing fetches again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from etl import schema as schemas
from etl.dataroot import DataRoot, PartitionKey
from etl.lake.manifest import FileEntry, PartitionManifest
from etl.lake.parquet_io import digest_matches
from etl.lake.store import Lake

__all__ = ["Finding", "verify_lake"]

_MISSING = "listed by the manifest but missing"


@dataclass(frozen=True)
class Finding:
    """One file that is not what was written."""

    dataset: str
    partition: str
    file: str
    problem: str
    rows: int | None = None  # what the manifest says it held
    min_time: str | None = None
    max_time: str | None = None
    repaired: bool = False

    def doc(self) -> dict[str, Any]:
        return asdict(self)


def _manifest(paths: DataRoot, dataset: str, key: PartitionKey) -> PartitionManifest | None:
    try:
        return PartitionManifest.from_json(paths.manifest(dataset, key).read_bytes())
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def _read_problem(path: Path, entry: FileEntry | None) -> str | None:
    """Why the file is not what was written, or None."""
    if entry is not None and entry.digest is not None:
        try:
            if not digest_matches(path, entry.digest):
                return "content differs from what was written (digest mismatch)"
        except OSError as exc:
            return f"cannot be read: {exc}"
    try:
        table = pq.read_table(path, page_checksum_verification=True)
    except (OSError, ValueError, pa.ArrowException) as exc:
        return f"does not read as Parquet: {str(exc).splitlines()[0]}"
    if entry is not None and table.num_rows != entry.rows:
        return f"holds {table.num_rows} rows, {entry.rows} were written"
    return None


def _partition(lake: Lake, dataset: str, key: PartitionKey) -> list[Finding]:
    paths = lake.paths
    folder = paths.partition(dataset, key)
    present = {p.name for p in folder.glob("*.parquet")} if folder.is_dir() else set()
    manifest = _manifest(paths, dataset, key)
    listed = {f.name: f for f in manifest.files} if manifest else {}
    where = key.relpath or "_root"
    found = []
    for name in sorted(set(listed) | present):
        entry = listed.get(name)
        if name not in present:
            # a writer may have swapped since the manifest was read: only a file still listed
            # by the current manifest and absent now is lost
            again = _manifest(paths, dataset, key)
            if again is None or name not in {f.name for f in again.files}:
                continue
            problem: str | None = _MISSING
        else:
            problem = _read_problem(folder / name, entry)
            if problem is not None and entry is None:
                problem += " (not in the manifest)"
        if problem is not None:
            found.append(Finding(dataset, where, name, problem,
                                 entry.rows if entry else None,
                                 entry.min_time if entry else None,
                                 entry.max_time if entry else None))  # fmt: skip
    return found


def verify_lake(
    root: Path, datasets: list[str] | None = None, *, repair: bool = False, now: dt.datetime
) -> list[Finding]:
    """Check every file of ``datasets`` (every dataset); with ``repair`` take the damaged
    ones out of their partitions (a missing file needs no taking out: its rows are absent
    already, and the manifest is rebuilt)."""
    lake = Lake(root)
    findings: list[Finding] = []
    for dataset in datasets or sorted(schemas.schemas()):
        for key in lake.partitions(dataset):
            found = _partition(lake, dataset, key)
            if repair and found:
                damaged = [f.file for f in found if f.problem != _MISSING]
                if damaged:
                    lake.quarantine(dataset, key, damaged, now=now)
                else:
                    lake.refresh_manifest(dataset, key, now=now)
                found = [Finding(**{**f.doc(), "repaired": True}) for f in found]
            findings += found
    return findings
