"""The vendor contract, one test per clause, parametrised over every adapter in the registry.

Adapters are discovered from :data:`etl.vendors.ADAPTERS` at collection time, so a vendor
joins this test by its registry line. Each runs against its emulator from
:data:`etl.emulators.EMULATORS` (``sim`` needs none), configured the way a user would
(``ETL_<VENDOR>_*`` variables for what ``required_settings`` names). Nothing here knows a
vendor by name: the symbol probed is picked from the adapter's own ``instruments()`` (which
also gives the code map, e.g. StockTV's pids) in the klines-served market with the fewest
synthetic instruments, so the set-up stays a handful of requests per vendor.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa
import pytest

from etl import schema
from etl.calendars import trading_days
from etl.calendars.markets import zone_of_symbol
from etl.config import VendorSettings, load_settings
from etl.emulators import EMULATORS
from etl.emulators.testing import running
from etl.errors import CapabilityError
from etl.names import DATASETS, FREQS, MARKETS, VENDOR_SUFFIXES
from etl.synthetic import instruments as synthetic_instruments
from etl.synthetic import klines_for_any
from etl.vendors import ADAPTERS
from etl.vendors.base import Capabilities, InstrumentMap, KlineBatch, VendorAdapter, VendorContext

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

T = TypeVar("T")
D = dt.date
NOW = dt.datetime(2024, 6, 28, 12, 0, tzinfo=dt.UTC)  # Friday; 20:00 Shanghai, 08:00 New York
START, END = D(2024, 6, 17), D(2024, 6, 27)  # finished sessions everywhere at NOW
WEEKEND = (D(2024, 6, 22), D(2024, 6, 23))
FUTURE = (D(2024, 8, 5), D(2024, 8, 9))  # weeks after NOW: nothing can exist yet
UNKNOWN_CODE = "ZZQ9999"  # a well-formed code no market lists
# Setting name (VendorAdapter.required_settings) -> a value the emulators accept.
CREDENTIALS = {"api_key": "contract-key-1", "username": "contract", "password": "contract-pw"}
KLINES_COLUMNS = [f for f in schema.get("klines").arrow_schema if f.name != "ingested_at"]


@dataclasses.dataclass
class Vendor:
    """One adapter's set-up: settings as from the environment, the code map, a probe."""

    name: str
    settings: VendorSettings
    state_dir: Path
    instruments: InstrumentMap = dataclasses.field(default_factory=InstrumentMap)
    symbol: str = ""
    freq: str = ""

    def adapter(self) -> VendorAdapter:
        context = VendorContext(
            self.settings, now=lambda: NOW, state_dir=self.state_dir, instruments=self.instruments
        )
        return ADAPTERS[self.name](context)

    def run(self, fn: Callable[[VendorAdapter], Awaitable[T]]) -> T:
        """``fn`` on a fresh adapter in one event loop, closing its connections after."""

        async def go() -> T:
            adapter = self.adapter()
            try:
                return await fn(adapter)
            finally:
                await adapter.aclose()

        return asyncio.run(go())

    @property
    def caps(self) -> Capabilities:
        return self.adapter().capabilities()


def all_capabilities() -> dict[str, Capabilities]:
    """Every registered vendor's table, built offline (no credentials, no network)."""
    out = {}
    for name, cls in ADAPTERS.items():
        out[name] = cls(VendorContext(VendorSettings(name), now=lambda: NOW)).capabilities()
    return out


def probe_market(caps: Capabilities) -> str:
    """The klines market to probe: a calendar market that closes at weekends if there is one,
    with the fewest synthetic instruments (so listing it costs the fewest requests)."""
    served = {e for c in caps.datasets if c.dataset == "klines" for e in c.exchanges}
    if caps.serves("instruments"):
        served = {e for e in served if caps.serves("instruments", e)} or served
    counts = Counter(i.symbol.rsplit(".", 1)[1] for i in synthetic_instruments(NOW))
    markets = sorted(served & set(MARKETS)) or sorted(served)
    return min(markets, key=lambda m: (not _closed(m, *WEEKEND), counts.get(m, 0), m))


def _closed(market: str, start: D, end: D) -> bool:
    """Whether ``market`` has a calendar and no session in ``[start, end]``."""
    return market in MARKETS and len(trading_days(market, start, end)) == 0


def code_map(table: pa.Table) -> InstrumentMap:
    """The map ``etl.tasks.runtime.instrument_map`` would read back after a sync."""
    codes, ids, extra = {}, {}, {}
    for row in table.to_pylist():
        codes[row["symbol"]] = row["vendor_code"]
        if row["vendor_id"] is not None:
            ids[row["symbol"]] = row["vendor_id"]
        if row["vendor_extra"]:
            extra[row["symbol"]] = json.loads(row["vendor_extra"])
    return InstrumentMap(codes=codes, ids=ids, extra=extra)


def pick_symbol(vendor: Vendor, market: str, listed: list[str]) -> tuple[str, str]:
    """The first listed symbol (else the synthetic universe's) that traded in the range,
    and 1d if served there (else the longest served frequency)."""
    caps = vendor.caps
    freqs = [f for f in ("1d", *reversed(FREQS)) if caps.serves("klines", market, f)]
    assert freqs, f"{vendor.name} lists {market} for klines but serves no frequency"
    pool = listed or sorted(
        i.symbol for i in synthetic_instruments(NOW) if i.symbol.endswith(f".{market}")
    )
    for symbol in sorted(pool):
        if symbol.endswith(f".{market}") and len(klines_for_any(symbol, freqs[0], START, END, NOW)):
            return symbol, freqs[0]
    raise AssertionError(f"no {market} symbol of {vendor.name} traded {START}..{END}")


@pytest.fixture(scope="module", params=sorted(ADAPTERS))
def vendor(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Vendor]:
    name: str = request.param
    cls = ADAPTERS[name]
    with ExitStack() as stack:
        env = {f"ETL_{name.upper()}_{s.upper()}": CREDENTIALS[s] for s in cls.required_settings}
        if name in EMULATORS:
            server = stack.enter_context(running(name, now=NOW))
            env[f"ETL_{name.upper()}_BASE_URL"] = server.base_url
        elif cls.public_base_url is not None:
            pytest.skip(f"{name} has no emulator: it cannot be tested offline")
        root = tmp_path_factory.mktemp(f"contract-{name}")
        settings = load_settings(data_dir=root, env=env, cwd=root)
        found = Vendor(name, settings.vendor(name), state_dir=root / "state" / "governor")
        market = probe_market(found.caps)
        listed: list[str] = []
        if found.caps.serves("instruments", market):
            table = found.run(lambda a: a.instruments(market))
            found.instruments = code_map(table)
            listed = table.column("symbol").to_pylist()
        found.symbol, found.freq = pick_symbol(found, market, listed)
        yield found


def klines(vendor: Vendor, symbols: list[str], start: D, end: D) -> KlineBatch:
    return vendor.run(lambda a: a.klines(symbols, vendor.freq, start, end))


def test_capabilities_are_well_formed(vendor: Vendor) -> None:
    caps = vendor.caps
    assert caps.vendor == vendor.name and caps.datasets
    for cap in caps.datasets:
        assert cap.dataset in DATASETS, cap
        assert cap.freqs <= set(FREQS), cap
        assert bool(cap.freqs) == (cap.dataset == "klines"), cap  # frequencies are klines'
        assert cap.exchanges and cap.exchanges <= {*MARKETS, *VENDOR_SUFFIXES}, cap
        assert set(cap.depth) <= cap.freqs and all(n > 0 for n in cap.depth.values()), cap
        assert set(cap.span_days_per_call) <= cap.freqs, cap
        assert cap.symbols_per_call >= 1 and (cap.rows_per_call or 1) >= 1, cap
    rate = caps.rate
    assert rate.per_second > 0
    assert rate.per_minute is None or rate.per_minute > 0
    assert rate.in_flight is None or rate.in_flight >= 1


def _wanted_elsewhere(mine: Capabilities, others: dict[str, Capabilities]) -> tuple[Any, ...]:
    """A (dataset, exchange, freq) this vendor does not serve and another one does, and the
    names of those that do, found by reading the tables row by row."""
    for dataset in DATASETS:
        for exchange in (*MARKETS, *VENDOR_SUFFIXES):
            for freq in FREQS if dataset == "klines" else (None,):
                able = sorted(
                    name
                    for name, caps in others.items()
                    for c in caps.datasets
                    if c.dataset == dataset
                    and exchange in c.exchanges
                    and (freq is None or freq in c.freqs)
                )
                mine_too = any(
                    c.dataset == dataset
                    and exchange in c.exchanges
                    and (freq is None or freq in c.freqs)
                    for c in mine.datasets
                )
                if not mine_too and set(able) - {mine.vendor}:
                    return dataset, exchange, freq, sorted(set(able) - {mine.vendor})
    raise AssertionError(f"{mine.vendor} serves everything any vendor serves")


def test_require_refuses_naming_the_vendors_that_can(vendor: Vendor) -> None:
    caps, others = vendor.caps, all_capabilities()
    dataset, exchange, freq, able = _wanted_elsewhere(caps, others)
    with pytest.raises(CapabilityError) as info:
        caps.require(dataset, exchange, freq, others=others)
    message = str(info.value)
    assert message.startswith(f"{vendor.name} does not serve {dataset}")
    named = {n.strip() for n in message.split("vendors that can:", 1)[1].split(",")}
    assert named == set(able), message
    # Served: the matching row comes back, no error.
    served = caps.require("klines", vendor.symbol.rsplit(".", 1)[1], vendor.freq, others=others)
    assert vendor.freq in served.freqs


def test_klines_have_the_schema_the_freq_and_the_range(vendor: Vendor) -> None:
    batch = klines(vendor, [vendor.symbol], START, END)
    table = batch.table
    assert not batch.failures, batch.failures
    assert [(f.name, f.type) for f in table.schema] == [(f.name, f.type) for f in KLINES_COLUMNS]
    want = klines_for_any(vendor.symbol, vendor.freq, START, END, NOW)
    assert table.num_rows == len(want) > 0  # every bar of the emulator's market, once
    rows = table.to_pylist()
    assert {r["symbol"] for r in rows} == {vendor.symbol}
    assert {r["freq"] for r in rows} == {vendor.freq}
    assert {r["vendor"] for r in rows} == {vendor.name}
    zone = zone_of_symbol(vendor.symbol)
    for r in rows:
        assert START <= r["trade_date"] <= END, r
        assert r["ts"].astimezone(zone).date() == r["trade_date"], r  # the session's day
    ts = [r["ts"] for r in rows]
    assert ts == sorted(set(ts))  # sorted, no key twice


@pytest.mark.parametrize("span", ["weekend", "future"])
def test_an_empty_range_is_an_empty_table_not_an_error(vendor: Vendor, span: str) -> None:
    start, end = WEEKEND if span == "weekend" else FUTURE
    if span == "weekend" and not _closed(vendor.symbol.rsplit(".", 1)[1], start, end):
        pytest.skip(f"{vendor.symbol} trades at weekends")
    batch = klines(vendor, [vendor.symbol], start, end)
    assert batch.table.num_rows == 0 and not batch.failures
    assert batch.table.schema.equals(pa.schema(KLINES_COLUMNS))
    # Accounted for all the same: answered (confirmed empty) or unavailable, never dropped.
    covered = [s.symbol for s in batch.answered] + [u.symbol for u in batch.unavailable]
    assert covered and set(covered) == {vendor.symbol}


def test_an_unknown_symbol_ends_in_failures_only(vendor: Vendor) -> None:
    unknown = f"{UNKNOWN_CODE}.{vendor.symbol.rsplit('.', 1)[1]}"
    batch = klines(vendor, [vendor.symbol, unknown], START, END)
    assert {f.symbol for f in batch.failures} == {unknown}
    assert all(f.reason for f in batch.failures)
    assert unknown not in {s.symbol for s in batch.answered} | {u.symbol for u in batch.unavailable}
    assert set(batch.table.column("symbol").to_pylist()) == {vendor.symbol}  # the other goes on


def _ask(adapter: VendorAdapter, dataset: str, symbol: str) -> Awaitable[Any]:
    """The adapter method that serves ``dataset``, called for ``symbol``."""
    market = symbol.rsplit(".", 1)[1]
    calls: dict[str, Callable[[], Awaitable[Any]]] = {
        "instruments": lambda: adapter.instruments(market),
        "calendar": lambda: adapter.calendar(market, START, END),
        "klines": lambda: adapter.klines([symbol], "1d", START, END),
        "future_varieties": adapter.future_varieties,
        "main_contracts": adapter.main_contracts,
    }
    default = lambda: adapter.statements(dataset, [symbol], START, END)  # noqa: E731
    return calls.get(dataset, default)()


def test_what_is_not_in_the_table_raises_capability_error(vendor: Vendor) -> None:
    caps = vendor.caps
    missing = [d for d in DATASETS if not caps.serves(d)]
    # And klines for a market (or a frequency there) the table leaves out.
    exchange, freq = next((m, f) for m in MARKETS for f in FREQS if not caps.serves("klines", m, f))
    for dataset in missing:
        with pytest.raises(CapabilityError, match=vendor.name):
            vendor.run(lambda a, ds=dataset: _ask(a, ds, vendor.symbol))  # type: ignore[misc]
    # A symbol that exists there (sim looks symbols up before its table).
    there = [i.symbol for i in synthetic_instruments(NOW) if i.symbol.endswith(f".{exchange}")]
    assert there, exchange
    with pytest.raises(CapabilityError, match=vendor.name):
        vendor.run(lambda a: a.klines(sorted(there)[:1], freq, START, END))
