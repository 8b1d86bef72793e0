"""Vendor adapters, and the registry that names them.

Adding a vendor is one module beside this one and one line in :data:`ADAPTERS`; nothing
looks classes up by building names as strings.
"""

from __future__ import annotations

from typing import Final

from etl.errors import BadInputError
from etl.vendors.amazingdata import AmazingDataAdapter
from etl.vendors.base import VendorAdapter
from etl.vendors.infoway import InfowayAdapter
from etl.vendors.mdapi import MdapiAdapter
from etl.vendors.sim import SimAdapter
from etl.vendors.stocktv import StockTVAdapter

__all__ = ["ADAPTERS", "adapter_class"]

ADAPTERS: Final[dict[str, type[VendorAdapter]]] = {
    "sim": SimAdapter,
    "amazingdata": AmazingDataAdapter,
    "stocktv": StockTVAdapter,
    "infoway": InfowayAdapter,
    "mdapi": MdapiAdapter,
}


def adapter_class(name: str) -> type[VendorAdapter]:
    """The adapter class registered as ``name``, or a :class:`BadInputError` naming the known
    vendors."""
    try:
        return ADAPTERS[name]
    except KeyError:
        known = ", ".join(sorted(ADAPTERS))
        raise BadInputError(f"unknown vendor {name!r}: use one of {known}") from None
