"""The fault grammar of every emulator (docs/vendors/README.md "Faults"), and which fault is on.

``--faults SPEC`` is a comma list of ``NAME[:VARIANT][@WHEN]``. WHEN counts, for each entry
of SPEC separately, the requests that entry *applies to* (a bar fault counts kline answers
only, ``auth_expired`` does not count AmazingData logins, ...), so ``duplicate_bars@2`` is the
second kline answer whatever came before it:

- ``N``: the Nth such request (1-based); ``N-M`` and ``N+``: a range;
- ``pX``: each one with probability X, drawn from the emulator seed (so a run repeats);
- omitted: every one.

Faults have a *role*. ``network`` faults (``timeout``, ``connection_reset``) act on the socket
before anything else; ``decide`` faults replace the answer (``http_500``...); ``modify`` faults
(bar faults, ``schema_drift``) alter the rows of a data answer and all combine. When several
network/decide faults are on for one request, the first in SPEC wins (README rule).

Vendors extend the shared table with their own variants or switches through
:func:`catalogue` (AmazingData ``auth_expired:login``, mdapi ``ip_refused``).
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Final, Literal

from etl.errors import BadInputError
from etl.synthetic.hashing import key_of, uniform

__all__ = [
    "SHARED_FAULTS",
    "ActiveFaults",
    "Fault",
    "FaultDef",
    "FaultPlan",
    "FaultSpecError",
    "When",
    "catalogue",
    "parse_faults",
]

Role = Literal["network", "decide", "modify"]
Scope = Literal["any", "kline", "data", "ws"]


class FaultSpecError(BadInputError):
    """``--faults`` names an unknown fault or variant, or a malformed WHEN (exit 2)."""


@dataclass(frozen=True)
class FaultDef:
    """One fault name: what it does (``role``), where it applies (``scope``: ``kline`` =
    kline answers, ``data`` = answers with rows, kline ones included, ``any`` = every
    endpoint) and its variants. ``numeric`` variants are a number (``timeout:S``)."""

    name: str
    role: Role
    scope: Scope
    variants: tuple[str, ...] = ()
    numeric: bool = False
    default: str | None = None  # the variant meant when none is given
    help: str = ""


SHARED_FAULTS: Final[Mapping[str, FaultDef]] = {
    d.name: d
    for d in (
        FaultDef("rate_limit_burst", "decide", "any", help="the vendor's over-limit answer"),
        FaultDef("http_500", "decide", "any", help="HTTP 500"),
        FaultDef(
            "timeout", "network", "any", numeric=True, default="60",
            help="accept, send nothing for S s (default 60), close",
        ),
        FaultDef("connection_reset", "network", "any", help="reset before any response byte"),
        FaultDef("malformed_json", "decide", "any", help="HTTP 200, a body that is not JSON"),
        FaultDef(
            "truncated_body", "decide", "any",
            help="the full Content-Length is announced, the connection closes halfway",
        ),
        FaultDef("auth_expired", "decide", "any", help="credentials refused (auth error)"),
        FaultDef(
            "duplicate_bars", "modify", "kline", ("conflict",),
            help="some bars twice; conflict: the copy has another close",
        ),
        FaultDef(
            "out_of_order_bars", "modify", "kline", ("reversed",),
            help="rows shuffled; reversed: the opposite of the documented order",
        ),
        FaultDef("missing_bars", "modify", "kline", help="some inner bars left out"),
        FaultDef(
            "bad_prices", "modify", "kline", ("high_low", "negative", "nan"),
            help="rows with high < low, a negative price or NaN (default: all three)",
        ),
        # No default is documented; ``extra`` (harmless to a correct adapter) is ours.
        FaultDef(
            "schema_drift", "modify", "data", ("extra", "rename"), default="extra",
            help="extra: an unknown field; rename: a required field renamed",
        ),
        # WebSocket feeds: WHEN counts connections; N is the pushes before the fault.
        FaultDef(
            "ws_drop", "modify", "ws", numeric=True, default="100",
            help="after N pushes, the TCP connection closes without a close frame",
        ),
        FaultDef(
            "ws_stall", "modify", "ws", numeric=True, default="100",
            help="after N pushes, silence with the socket open (no data, no pong)",
        ),
        FaultDef(
            "ws_close", "modify", "ws", numeric=True, default="100",
            help="after N pushes, the vendor's own close (Infoway 513, others a close frame)",
        ),
        FaultDef(
            "ws_slow", "modify", "ws", numeric=True, default="2",
            help="a slow server: pushes held back and sent together every S seconds",
        ),
        FaultDef(
            "ws_reject", "modify", "ws",
            help="the handshake refused with the vendor's auth answer (a bad key)",
        ),
    )
}  # fmt: skip


def catalogue(
    *,
    variants: Mapping[str, Sequence[str]] | None = None,
    faults: Iterable[FaultDef] = (),
) -> dict[str, FaultDef]:
    """The shared table plus a vendor's extra ``variants`` of shared names and its own
    ``faults`` (switches no other vendor has)."""
    table = dict(SHARED_FAULTS)
    for name, extra in (variants or {}).items():
        base = table[name]  # a typo here is a programming error: KeyError is right
        table[name] = replace(base, variants=(*base.variants, *extra))
    for d in faults:
        table[d.name] = d
    return table


@dataclass(frozen=True)
class When:
    """Which of the requests a fault applies to: ``first``..``last`` (1-based, inclusive,
    ``last`` None = open), or each with ``probability``. ``When()`` = every one."""

    first: int = 1
    last: int | None = None
    probability: float | None = None

    def text(self) -> str:
        if self.probability is not None:
            return f"p{self.probability:g}"
        if self.first == 1 and self.last is None:
            return ""
        if self.last is None:
            return f"{self.first}+"
        return str(self.first) if self.first == self.last else f"{self.first}-{self.last}"

    def selects(self, n: int, draw: Callable[[], float]) -> bool:
        """Whether the ``n``-th applicable request (1-based) is selected; ``draw`` gives the
        deterministic uniform number used for ``pX``."""
        if self.probability is not None:
            return draw() < self.probability
        return n >= self.first and (self.last is None or n <= self.last)


@dataclass(frozen=True)
class Fault:
    """One entry of SPEC; ``index`` is its position, which breaks ties (first wins)."""

    index: int
    name: str
    variant: str | None
    when: When
    role: Role
    scope: Scope

    @property
    def seconds(self) -> float:
        """The number of a numeric variant (``timeout:S``)."""
        return float(self.variant or "0")

    def text(self) -> str:
        when = self.when.text()
        variant = f":{self.variant}" if self.variant else ""
        return self.name + variant + (f"@{when}" if when else "")


_ITEM_RE: Final = re.compile(r"^(?P<name>[a-z0-9_]+)(?::(?P<variant>[^@]+))?(?:@(?P<when>.+))?$")
_WHEN_HELP: Final = "use N, N-M, N+ (1-based) or pX with 0 <= X <= 1"


def _parse_when(text: str | None, item: str) -> When:
    if text is None:
        return When()
    bad = FaultSpecError(f"bad WHEN {text!r} in {item!r}: {_WHEN_HELP}")
    if text.startswith("p"):
        try:
            p = float(text[1:])
        except ValueError:
            raise bad from None
        if not 0.0 <= p <= 1.0 or math.isnan(p):
            raise bad
        return When(probability=p)
    if m := re.fullmatch(r"(\d+)", text):
        first = last = int(m[1])
    elif m := re.fullmatch(r"(\d+)\+", text):
        first, last = int(m[1]), None
    elif m := re.fullmatch(r"(\d+)-(\d+)", text):
        first, last = int(m[1]), int(m[2])
    else:
        raise bad
    if first < 1 or (last is not None and last < first):
        raise bad
    return When(first, last)


def _parse_variant(d: FaultDef, text: str | None, item: str) -> str | None:
    if text is None:
        return d.default
    if d.numeric:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not value > 0 or math.isinf(value):
            raise FaultSpecError(
                f"{d.name} takes a number of seconds > 0, got {text!r} in {item!r}"
            )
        return text
    if text not in d.variants:
        valid = ", ".join(d.variants) if d.variants else "none"
        raise FaultSpecError(f"unknown variant {text!r} of {d.name} in {item!r}: valid: {valid}")
    return text


def parse_faults(spec: str, table: Mapping[str, FaultDef] | None = None) -> tuple[Fault, ...]:
    """Parse SPEC against ``table`` (default: the shared faults). Raises
    :class:`FaultSpecError` naming the valid choices."""
    table = SHARED_FAULTS if table is None else table
    if not spec.strip():
        return ()
    out = []
    for index, raw in enumerate(spec.split(",")):
        item = raw.strip()
        m = _ITEM_RE.match(item)
        if not item or m is None:
            raise FaultSpecError(
                f"bad fault {item!r} in --faults: expected NAME[:VARIANT][@WHEN], "
                "e.g. rate_limit_burst@3-5,bad_prices:nan@p0.1"
            )
        d = table.get(m["name"])
        if d is None:
            raise FaultSpecError(f"unknown fault {m['name']!r}: valid: {', '.join(sorted(table))}")
        variant = _parse_variant(d, m["variant"], item)
        out.append(Fault(index, d.name, variant, _parse_when(m["when"], item), d.role, d.scope))
    return tuple(out)


@dataclass
class ActiveFaults:
    """The faults on for one request, in SPEC order, and the ones actually applied."""

    request_no: int
    seed: int
    faults: tuple[Fault, ...] = ()
    applied: list[Fault] = field(default_factory=list)

    def winner(self) -> Fault | None:
        """The first network/decide fault: it alone decides the answer."""
        return next((f for f in self.faults if f.role != "modify"), None)

    def modifiers(self, name: str | None = None) -> list[Fault]:
        return [f for f in self.faults if f.role == "modify" and name in (None, f.name)]

    def first(self, name: str) -> Fault | None:
        return next((f for f in self.faults if f.name == name), None)

    def mark(self, fault: Fault) -> None:
        """Record that ``fault`` changed this answer (counted in the stats once)."""
        if fault not in self.applied:
            self.applied.append(fault)

    def key(self, fault: Fault, *parts: int | str) -> int:
        """A 64-bit key for the fault's random choices in this request."""
        return key_of(self.seed, "fault-rows", fault.index, fault.name, self.request_no, *parts)


class FaultPlan:
    """Parsed SPEC plus one counter per entry: which faults are on for each request.

    Thread-safe: the server handles requests concurrently and every draw must see a
    consistent count.
    """

    def __init__(self, faults: Sequence[Fault], seed: int = 0) -> None:
        self.faults = tuple(faults)
        self.seed = seed
        self._seen = [0] * len(self.faults)
        self._lock = threading.Lock()

    def draw(self, request_no: int, applies: Callable[[Fault], bool]) -> ActiveFaults:
        """The faults on for request ``request_no``; ``applies`` says which entries this
        endpoint counts (their counter moves on even if a SPEC-earlier fault wins)."""
        on = []
        with self._lock:
            for i, f in enumerate(self.faults):
                if not applies(f):
                    continue
                self._seen[i] += 1
                n = self._seen[i]

                def draw(f: Fault = f, n: int = n) -> float:
                    key = key_of(self.seed, "fault-when", f.index, f.name, f.variant or "")
                    return float(uniform(key, [n])[0])

                if f.when.selects(n, draw):
                    on.append(f)
        return ActiveFaults(request_no, self.seed, tuple(on))

    def reset(self) -> None:
        with self._lock:
            self._seen = [0] * len(self.faults)

    def text(self) -> str:
        return ",".join(f.text() for f in self.faults)
