"""The DuckDB catalog: views over the lake, its manifests and the task records."""

from etl.catalog.build import (
    CATALOG_NAME,
    build_catalog,
    ensure_anchors,
    ensure_catalog,
    refresh_catalog,
)
from etl.catalog.session import QueryResult, ReadOnlySession, check_read_only

__all__ = [
    "CATALOG_NAME",
    "QueryResult",
    "ReadOnlySession",
    "build_catalog",
    "check_read_only",
    "ensure_anchors",
    "ensure_catalog",
    "refresh_catalog",
]
