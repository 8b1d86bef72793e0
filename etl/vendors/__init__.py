"""Vendor adapters, and the registry that names them.

Adding a vendor is one module beside this one, one loader function and one line in
:data:`_LOADERS`; nothing looks classes up by building names as strings.

The registry is built on first use (``from etl.vendors import ADAPTERS``), not when the
package is imported: the adapters pull in pyarrow, httpx and the calendars, and modules such
as :mod:`etl.vendors.redact` are needed by commands that never touch a vendor.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from etl.errors import BadInputError

if TYPE_CHECKING:
    from etl.vendors.base import VendorAdapter

    ADAPTERS: dict[str, type[VendorAdapter]]

__all__ = ["ADAPTERS", "VENDOR_NAMES", "adapter_class"]

# httpx's package imports its command-line client (``httpx._main``) whenever click and rich
# are installed (typer brings both), and with them pygments: 0.06 s of every vendor command's
# start-up for a program we never run (issue 10: first request within 0.5 s). A ``None`` in
# ``sys.modules`` makes that import fail, and httpx falls back to a stub ``main`` of its own.
# Set here, before any adapter or wire module imports httpx; a process that already holds
# httpx's client keeps it.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]


def _sim() -> type[VendorAdapter]:
    from etl.vendors.sim import SimAdapter

    return SimAdapter


def _amazingdata() -> type[VendorAdapter]:
    from etl.vendors.amazingdata import AmazingDataAdapter

    return AmazingDataAdapter


def _stocktv() -> type[VendorAdapter]:
    from etl.vendors.stocktv import StockTVAdapter

    return StockTVAdapter


def _infoway() -> type[VendorAdapter]:
    from etl.vendors.infoway import InfowayAdapter

    return InfowayAdapter


def _mdapi() -> type[VendorAdapter]:
    from etl.vendors.mdapi import MdapiAdapter

    return MdapiAdapter


# Each vendor's adapter is imported when that vendor is used: a command for one vendor does
# not pay for the others' modules (0.1 s of its start-up, issue 10).
_LOADERS: dict[str, Callable[[], type[VendorAdapter]]] = {
    "sim": _sim,
    "amazingdata": _amazingdata,
    "stocktv": _stocktv,
    "infoway": _infoway,
    "mdapi": _mdapi,
}
VENDOR_NAMES: tuple[str, ...] = tuple(_LOADERS)


def _registry() -> dict[str, type[VendorAdapter]]:
    return {name: load() for name, load in _LOADERS.items()}


def __getattr__(name: str) -> Any:
    if name == "ADAPTERS":
        registry = _registry()
        globals()["ADAPTERS"] = registry
        return registry
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def adapter_class(name: str) -> type[VendorAdapter]:
    """The adapter class registered as ``name`` (its module imported now, the others'
    not), or a :class:`BadInputError` naming the known vendors."""
    try:
        load = _LOADERS[name]
    except KeyError:
        known = ", ".join(sorted(_LOADERS))
        raise BadInputError(f"unknown vendor {name!r}: use one of {known}") from None
    return load()
