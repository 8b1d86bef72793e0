"""Vendor emulators: each vendor's HTTP API served on 127.0.0.1 from etl.synthetic data.

An emulator speaks its vendor's protocol as ``docs/vendors/<vendor>.md`` fixes it
(envelope, field names and wire types, row order, per-call limits, auth, error answers),
enforces the documented rate limits with the vendor's own over-limit answer, and injects the
faults of docs/vendors/README.md by name (``--faults SPEC``). Adapters and tests talk to it over
real HTTP, exactly as they would to the vendor.

Modules: ``faults`` (SPEC grammar, which fault is on), ``limits`` (sliding windows,
in-flight caps, bans), ``payload`` (canonical bars and the row faults), ``wire`` (requests,
replies, routes), ``base`` (the :class:`Emulator` pipeline), ``server`` (the HTTP server),
``testing`` (helpers for tests), one module per vendor.

Adding a vendor is one module and one line in :data:`EMULATORS`. The module subclasses
:class:`Emulator`:

- class attributes: ``vendor``, ``base_path``, ``gzip_bodies``, ``ws_path``,
  ``fault_table = catalogue(variants=..., faults=...)`` for its own fault switches,
  ``extra_options`` for its own options (read from ``self.options.extra``);
- :meth:`~Emulator.routes`: ``Route(method, pattern, handler, category, auth=...)``; the
  category (``kline``, ``data``, ``meta``, ``auth``) decides which faults a route counts;
- hooks where the protocol differs: ``authenticate`` (a ``Principal`` or the auth error),
  ``limit`` (a ``Limit(bucket, rates, in_flight)``), ``over_limit``, ``fault_reply`` (the
  wire form of each deciding fault), ``fault_applies``, ``not_found``, ``reset``;
- handlers build rows from :mod:`etl.synthetic` at ``self.now()`` / ``self.seed``, apply
  ``payload.apply_bar_faults`` to canonical bars in the vendor's order and
  ``payload.drift_rows`` to encoded rows, then answer with ``wire.json_reply``.
"""

from __future__ import annotations

from typing import Final

from etl.emulators.amazingdata import AmazingDataEmulator
from etl.emulators.base import Emulator, EmulatorOptions, Limit
from etl.emulators.faults import FaultSpecError, parse_faults
from etl.emulators.infoway import InfowayEmulator
from etl.emulators.mdapi import MdapiEmulator
from etl.emulators.server import EmulatorServer
from etl.emulators.stocktv import StockTVEmulator
from etl.errors import BadInputError

__all__ = [
    "EMULATORS",
    "AmazingDataEmulator",
    "Emulator",
    "EmulatorOptions",
    "EmulatorServer",
    "FaultSpecError",
    "Limit",
    "emulator_class",
    "parse_faults",
]

EMULATORS: Final[dict[str, type[Emulator]]] = {
    "amazingdata": AmazingDataEmulator,
    "stocktv": StockTVEmulator,
    "infoway": InfowayEmulator,
    "mdapi": MdapiEmulator,
}


def emulator_class(vendor: str) -> type[Emulator]:
    """The emulator registered for ``vendor``, or a :class:`BadInputError` naming the
    vendors that have one."""
    try:
        return EMULATORS[vendor]
    except KeyError:
        known = ", ".join(sorted(EMULATORS))
        raise BadInputError(f"no emulator for vendor {vendor!r}: use one of {known}") from None
