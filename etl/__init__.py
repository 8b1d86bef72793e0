"""Market-data warehouse: vendor adapters -> normalise and validate -> Parquet lake -> catalog.

For analysts, ``etl.Warehouse(data_dir)`` reads the lake as polars DataFrames (see
:mod:`etl.warehouse`). It is imported on first use, so ``import etl`` (and the command line,
which starts with it) stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from etl.warehouse import Warehouse

__all__ = ["Warehouse", "__version__"]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "Warehouse":
        from etl.warehouse import Warehouse

        return Warehouse
    raise AttributeError(f"module 'etl' has no attribute {name!r}")
