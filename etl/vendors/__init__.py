"""Vendor adapters, and the registry that names them.

Adding a vendor is one module beside this one and one line in :func:`_registry`; nothing
looks classes up by building names as strings.

The registry is built on first use (``from etl.vendors import ADAPTERS``), not when the
package is imported: the adapters pull in pyarrow, httpx and the calendars, and modules such
as :mod:`etl.vendors.redact` are needed by commands that never touch a vendor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from etl.errors import BadInputError

if TYPE_CHECKING:
    from etl.vendors.base import VendorAdapter

    ADAPTERS: dict[str, type[VendorAdapter]]

__all__ = ["ADAPTERS", "adapter_class"]


def _registry() -> dict[str, type[VendorAdapter]]:
    from etl.vendors.amazingdata import AmazingDataAdapter
    from etl.vendors.infoway import InfowayAdapter
    from etl.vendors.mdapi import MdapiAdapter
    from etl.vendors.sim import SimAdapter
    from etl.vendors.stocktv import StockTVAdapter

    return {
        "sim": SimAdapter,
        "amazingdata": AmazingDataAdapter,
        "stocktv": StockTVAdapter,
        "infoway": InfowayAdapter,
        "mdapi": MdapiAdapter,
    }


def __getattr__(name: str) -> Any:
    if name == "ADAPTERS":
        registry = _registry()
        globals()["ADAPTERS"] = registry
        return registry
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def adapter_class(name: str) -> type[VendorAdapter]:
    """The adapter class registered as ``name``, or a :class:`BadInputError` naming the known
    vendors."""
    adapters: dict[str, type[VendorAdapter]] = __getattr__("ADAPTERS")
    try:
        return adapters[name]
    except KeyError:
        known = ", ".join(sorted(adapters))
        raise BadInputError(f"unknown vendor {name!r}: use one of {known}") from None
