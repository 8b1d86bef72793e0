"""The Parquet lake: Hive partitions, verified atomic upserts, compaction and manifests.

The writer and the manifests (and polars with them) are imported when first used (PEP 562):
reading a file's footer on the way to a task's first request (``parquet_io.may_hold``) does
not wait for them (issue 10, start-up).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from etl.dataroot import DataRoot, PartitionKey

if TYPE_CHECKING:
    from etl.lake.manifest import PartitionManifest
    from etl.lake.store import CommitResult, Lake

__all__ = ["CommitResult", "DataRoot", "Lake", "PartitionKey", "PartitionManifest"]

_DEFINED_IN = {
    "CommitResult": "etl.lake.store",
    "Lake": "etl.lake.store",
    "PartitionManifest": "etl.lake.manifest",
}


def __getattr__(name: str) -> Any:
    if name not in _DEFINED_IN:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_DEFINED_IN[name]), name)
