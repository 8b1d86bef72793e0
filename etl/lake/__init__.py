"""The Parquet lake: Hive partitions, verified atomic upserts, compaction and manifests."""

from etl.dataroot import DataRoot, PartitionKey
from etl.lake.manifest import PartitionManifest
from etl.lake.store import CommitResult, Lake

__all__ = ["CommitResult", "DataRoot", "Lake", "PartitionKey", "PartitionManifest"]
