"""The one contract every vendor adapter implements, and the capability table behind it.

An adapter maps a canonical query to the vendor's calls, fetches, and transforms the payload
into Arrow tables in the canonical schema (``schemas/``) minus ``ingested_at``, which the lake
stamps. Adapters do not validate prices or write anything: the stages after them do
(``etl.normalize`` then ``etl.lake``). Callers ask :class:`Capabilities` before calling; an
adapter asked for something outside its table raises :class:`CapabilityError`.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Final, Literal

import pyarrow as pa

from etl import schema
from etl.config import VendorSettings
from etl.errors import CapabilityError
from etl.vendors.plans import PlanCache

__all__ = [
    "ADJ_FACTORS_SINCE",
    "Capabilities",
    "CheckResult",
    "DatasetCapability",
    "Failure",
    "InstrumentMap",
    "KlineBatch",
    "Paging",
    "RateLimits",
    "Span",
    "Unavailable",
    "VendorAdapter",
    "VendorContext",
    "fetch_through",
    "no_rows",
    "target_schema",
]

Clock = Callable[[], dt.datetime]


def target_schema(dataset: str) -> pa.Schema:
    """The columns an adapter returns for ``dataset``: all but ``ingested_at`` (the lake
    stamps it)."""
    full = schema.get(dataset).arrow_schema
    return full.remove(full.get_field_index("ingested_at"))


def no_rows(dataset: str) -> pa.Table:
    """An answer of no rows for ``dataset`` (see :func:`etl.schema.empty_table`)."""
    return schema.empty_table(target_schema(dataset))


# Before any listing a vendor carries: where a symbol's adjustment factors are asked from, so
# that its cumulative backward factor counts from the listing.
ADJ_FACTORS_SINCE: Final = dt.date(1990, 1, 1)


@dataclass(frozen=True)
class DatasetCapability:
    """One row of a vendor's capability table."""

    dataset: str
    exchanges: frozenset[str]  # markets, or vendor suffixes for vendor-only products
    freqs: frozenset[str] = frozenset()  # klines only
    since: dt.date | None = None  # oldest date served; None = unknown or unlimited
    depth: Mapping[str, int] = field(default_factory=dict)  # freq -> only the latest N bars
    symbols_per_call: int = 1
    rows_per_call: int | None = None
    span_days_per_call: Mapping[str, int] = field(default_factory=dict)  # freq -> max days
    note: str = ""

    def serves(self, exchange: str | None, freq: str | None) -> bool:
        if exchange is not None and exchange not in self.exchanges:
            return False
        return not (freq is not None and self.freqs and freq not in self.freqs)


@dataclass(frozen=True)
class RateLimits:
    """The limits the rate governor keeps to (vendor specs, "Limits")."""

    per_second: float
    per_minute: float | None = None
    in_flight: int | None = None
    scope: Literal["key", "product", "client"] = "key"
    note: str = ""


@dataclass(frozen=True)
class Capabilities:
    vendor: str
    datasets: tuple[DatasetCapability, ...]
    rate: RateLimits

    def find(
        self, dataset: str, exchange: str | None = None, freq: str | None = None
    ) -> DatasetCapability | None:
        for cap in self.datasets:
            if cap.dataset == dataset and cap.serves(exchange, freq):
                return cap
        return None

    def serves(self, dataset: str, exchange: str | None = None, freq: str | None = None) -> bool:
        return self.find(dataset, exchange, freq) is not None

    def require(
        self,
        dataset: str,
        exchange: str | None = None,
        freq: str | None = None,
        *,
        others: Mapping[str, Capabilities] | None = None,
    ) -> DatasetCapability:
        """The matching row, or a :class:`CapabilityError` naming the vendors that can."""
        cap = self.find(dataset, exchange, freq)
        if cap is not None:
            return cap
        able = sorted(
            name
            for name, caps in (others or {}).items()
            if name != self.vendor and caps.serves(dataset, exchange, freq)
        )
        what = " ".join(x for x in (dataset, freq, exchange and f"for {exchange}") if x)
        hint = f"; vendors that can: {', '.join(able)}" if able else "; no configured vendor can"
        raise CapabilityError(f"{self.vendor} does not serve {what}{hint}")

    @property
    def dataset_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.dataset for c in self.datasets))


@dataclass(frozen=True)
class Span:
    """A range the vendor answered for one symbol: a slot inside with no bar is confirmed
    empty. ``start``/``end`` are inclusive trade dates."""

    symbol: str
    start: dt.date
    end: dt.date


@dataclass(frozen=True)
class Unavailable:
    """A range the vendor cannot serve (too old, beyond its depth): never reported filled.

    ``depth_from``: set when the vendor's own answer showed where its history of the symbol
    starts (it sent no bars before that date, though the exchange traded): the evidence a
    task remembers for a vendor whose depth is not published."""

    symbol: str
    start: dt.date
    end: dt.date
    reason: str
    depth_from: dt.date | None = None


@dataclass(frozen=True)
class Failure:
    """One symbol's part of a fetch that failed for good (unknown code, refused parameter)."""

    symbol: str
    start: dt.date
    end: dt.date
    reason: str


@dataclass
class KlineBatch:
    """What one logical kline fetch produced (it may have taken several vendor calls).

    Every requested (symbol, range) ends up in exactly one of: ``answered`` (bars in
    ``table``; a calendar slot inside with no bar is confirmed empty), ``unavailable``
    (beyond what the vendor can serve) or ``failures``.
    """

    table: pa.Table
    answered: list[Span] = field(default_factory=list)
    unavailable: list[Unavailable] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    requests: int = 0


def fetch_through(
    done: dt.date, last: dt.date, closed_by: dt.datetime | None, zone: dt.tzinfo
) -> dt.date:
    """The last trade date to fetch of a range ending at ``last`` whose days are complete
    through ``done``: ``done``, or with the caller's ``closed_by`` (see
    :meth:`VendorAdapter.klines`) the day holding it, so the bars already closed on a day
    still in session are fetched. Intraday frequencies only: a day bar of that day is
    forming."""
    if closed_by is None:
        return done
    return max(done, min(last, closed_by.astimezone(zone).date()))


@dataclass
class Paging:
    """How a caller follows a paged kline fetch page by page, so that a fetch cut short (a
    kill) continues from the oldest page it kept instead of the newest.

    ``cursors``: per symbol, the exclusive upper bound (epoch seconds) to page back from, as
    an earlier ``on_page`` reported it. ``on_page(symbol, rows, cursor)``: rows the adapter
    hands over before the fetch ends (complete trading days only: nothing later in the fetch
    changes them), and the cursor a resume may start from once those rows are stored; the
    rows are left out of the returned :class:`KlineBatch`. Adapters that do not page ignore
    it and return everything at the end.

    ``on_page`` answers whether to go on. False (and ``stopped``, which the caller sets
    then) means the caller is stopping (Ctrl-C, SIGTERM, ``etl tasks cancel``): the adapter
    asks for no further page of any symbol of the fetch and returns; rows it held back are
    dropped, not handed over (the cursor reported last makes a resume ask for them), and the
    caller discards the returned batch. So a stop waits for the pages in flight, not for
    every page of the symbols being paged.
    """

    cursors: dict[str, int] = field(default_factory=dict)
    on_page: Callable[[str, pa.Table, int], Awaitable[bool]] | None = None
    stopped: bool = False


@dataclass(frozen=True)
class CheckResult:
    success: bool
    message: str
    response_time: float  # seconds

    def as_dict(self) -> dict[str, object]:
        return {
            "success": self.success,
            "message": self.message,
            "response_time": round(self.response_time, 4),
        }


@dataclass(frozen=True)
class InstrumentMap:
    """Canonical symbol <-> vendor code for one vendor, read from the lake's instruments.

    ``codes`` maps canonical -> vendor code; ``ids`` canonical -> vendor id (StockTV pid);
    ``extra`` canonical -> decoded ``vendor_extra``.
    """

    codes: Mapping[str, str] = field(default_factory=dict)
    ids: Mapping[str, str] = field(default_factory=dict)
    extra: Mapping[str, Mapping[str, object]] = field(default_factory=dict)

    def code_for(self, symbol: str) -> str | None:
        return self.codes.get(symbol)

    def symbol_for(self, code: str) -> str | None:
        """Vendor code -> canonical symbol (the first one, if a vendor reuses a code)."""
        reverse = self.__dict__.get("_reverse")
        if reverse is None:
            reverse = {}
            for sym, vcode in self.codes.items():
                reverse.setdefault(vcode, sym)
            object.__setattr__(self, "_reverse", reverse)
        return reverse.get(code)


@dataclass(frozen=True)
class VendorContext:
    """What an adapter is given (it reads no environment and no clock of its own)."""

    settings: VendorSettings
    now: Clock
    state_dir: object | None = None  # the governor's folder (DataRoot.governor): shared limits
    instruments: InstrumentMap = field(default_factory=InstrumentMap)
    # Told (method, path) just before each request is sent: a task counts what it sent, even
    # if it is killed before the answer arrives.
    on_request: Callable[[str, str], None] | None = None
    # Where the plan the vendor reports about our key is cached (Infoway's /package/info).
    plans: PlanCache | None = None
    # Told, about once a second, how long a request has waited for the rate limit (0.0 once
    # it goes): a task says why it is not moving.
    on_rate_wait: Callable[[float], None] | None = None


class VendorAdapter(ABC):
    """Base class of every vendor. Subclasses override only what their table lists."""

    name: ClassVar[str]
    title: ClassVar[str]
    # Settings the vendor needs before any call, e.g. ("api_key",), ("username", "password").
    required_settings: ClassVar[tuple[str, ...]] = ()
    public_base_url: ClassVar[str | None] = None

    def __init__(self, context: VendorContext) -> None:
        self.context = context

    @property
    def settings(self) -> VendorSettings:
        return self.context.settings

    @abstractmethod
    def capabilities(self) -> Capabilities:
        """The capability table (may reflect the plan, e.g. Infoway's rate from /package/info)."""

    def _unsupported(self, what: str) -> CapabilityError:
        return CapabilityError(f"{self.name} does not serve {what}")

    async def check(self) -> CheckResult:
        raise self._unsupported("a connection check")

    async def learn_plan(self) -> None:
        """Make sure what the vendor publishes about our plan (its rate) is known, asking it
        if it is not cached (Infoway's /package/info); nothing for vendors that publish
        nothing. ``--dry-run`` calls it so that its time estimate uses the real rate."""
        return None

    async def instruments(self, market: str | None = None) -> pa.Table:
        raise self._unsupported("instruments")

    async def calendar(self, market: str, start: dt.date, end: dt.date) -> pa.Table:
        raise self._unsupported("calendar")

    async def klines(
        self,
        symbols: Sequence[str],
        freq: str,
        start: dt.date,
        end: dt.date,
        *,
        paging: Paging | None = None,
        closed_by: dt.datetime | None = None,
    ) -> KlineBatch:
        """Bars of ``symbols`` over ``[start, end]``; ``paging`` lets a paging vendor hand
        over pages as they come (see :class:`Paging`).

        ``closed_by``: the caller's evidence that every bar ending by this instant is final at
        the vendor (the recorder's stream time). An adapter that judges completeness by whole
        trade days at its clock fetches the day holding ``closed_by`` too (see
        :func:`fetch_through`): its bars ending by then are kept by the caller, the rest are
        dropped as still forming, and the day stays unavailable ("not complete yet"), never
        answered. Without it, a repair during the session stored nothing for today."""
        raise self._unsupported("klines")

    async def statements(
        self, dataset: str, symbols: Sequence[str], start: dt.date | None, end: dt.date | None
    ) -> pa.Table:
        raise self._unsupported(dataset)

    async def adj_factors(self, symbols: Sequence[str], start: dt.date, end: dt.date) -> pa.Table:
        """Adjustment factors of ``symbols`` for ex-dates in ``[start, end]`` (``adj_factors``
        rows without ``ingested_at``), with each vendor's cumulative backward factor."""
        raise self._unsupported("adj_factors")

    async def future_varieties(self) -> pa.Table:
        raise self._unsupported("future_varieties")

    async def main_contracts(self) -> pa.Table:
        """Today's main contract per variety (vendors publish no history)."""
        raise self._unsupported("main_contracts")

    def requests_sent(self) -> int:
        """HTTP requests this adapter has sent so far (retries included): a task counts what
        one of its calls cost as the difference, whatever the call did inside (pages, a
        login). Adapters that keep their client as ``_http`` (``VendorHttp``) get it from
        there; an adapter without HTTP sends none."""
        http = getattr(self, "_http", None)
        return int(getattr(http, "requests", 0)) if http is not None else 0

    def pace(self, cap: int) -> int:
        """How many of this adapter's calls to run at once, at most ``cap``: its governor's
        pace (:meth:`~etl.vendors.governor.Governor.pace`, from the rate and the measured
        time per request), 1 before its client exists (nothing timed yet); ``cap`` for an
        adapter that sends no HTTP."""
        if not hasattr(self, "_http"):
            return cap
        governor = getattr(getattr(self, "_http", None), "governor", None)
        return 1 if governor is None else int(governor.pace(cap))

    async def aclose(self) -> None:  # noqa: B027 - optional hook; most adapters pool nothing
        """Release pooled connections."""
