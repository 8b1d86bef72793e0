"""A deterministic synthetic market on real exchange calendars.

It backs the offline ``sim`` vendor and the vendor emulators. Every value is a pure function
of (seed, symbol, freq, bar time): the same request gives the same data whatever range it is
split into and in whatever order it is asked. ``now`` only decides what already exists
(listed instruments, completed bars, announced statements); it is always a parameter.

Modules: ``hashing`` (counter-based randomness), ``catalogue`` (literal names),
``universe`` (instruments), ``futures`` (contracts and main contracts), ``prices`` (the
latent price path), ``frames`` (calendar bar spans), ``klines`` (bars), ``statements``.
"""

from etl.synthetic.futures import VARIETIES, Contract, Variety, contracts, main_contract, variety
from etl.synthetic.klines import (
    DAILY_ONLY_MARKETS,
    SUSPENSION_RATE,
    Bars,
    calendar_market,
    completed_through,
    klines,
    klines_for_any,
    spot_price,
    suspended,
)
from etl.synthetic.statements import (
    RESTATEMENT_RATE,
    STATEMENT_DATASETS,
    STATEMENT_ITEMS,
    has_statements,
    statements,
)
from etl.synthetic.universe import (
    Instrument,
    Universe,
    instrument_for_any,
    instruments,
    local_today,
    universe,
)

__all__ = [
    "DAILY_ONLY_MARKETS",
    "RESTATEMENT_RATE",
    "STATEMENT_DATASETS",
    "STATEMENT_ITEMS",
    "SUSPENSION_RATE",
    "VARIETIES",
    "Bars",
    "Contract",
    "Instrument",
    "Universe",
    "Variety",
    "calendar_market",
    "completed_through",
    "contracts",
    "has_statements",
    "instrument_for_any",
    "instruments",
    "klines",
    "klines_for_any",
    "local_today",
    "main_contract",
    "spot_price",
    "statements",
    "suspended",
    "universe",
    "variety",
]
