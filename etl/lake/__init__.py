"""The Parquet lake: Hive partitions, verified atomic upserts, compaction and manifests."""

from etl.lake.layout import LakePaths, PartitionKey
from etl.lake.manifest import PartitionManifest
from etl.lake.store import CommitResult, Lake

__all__ = ["CommitResult", "Lake", "LakePaths", "PartitionKey", "PartitionManifest"]
