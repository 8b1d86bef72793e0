"""Each vendor's real-time feed as the recorder speaks it (docs/vendors/<vendor>.md "WebSocket").

A :class:`Feed` knows the URL (with the key where the vendor wants it), the frames to send
after connecting, the heartbeat and its period, and how to turn one received frame into rows:
``("tick", symbol, ts_ms, price, volume, amount, side)`` or ``("quote", symbol, ts_ms, {...})``.
Vendor quirks live here and nowhere else in the recorder.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlencode

from orjson import dumps as _dumps
from orjson import loads as _loads

from etl.errors import BadInputError, ConfigError
from etl.names import Symbol

__all__ = ["CHANNELS", "DEFAULT_URLS", "Feed", "Quote", "Tick", "feed_for"]

DEFAULT_URLS: Final = {
    "infoway": "wss://data.infoway.io/ws",
    "mdapi": "ws://39.107.99.235/ws",
    "stocktv": "wss://ws-api.stocktv.top/connect",
}
CHANNELS: Final = {
    "infoway": ("trades", "klines", "depth"),
    "mdapi": ("quotes",),
    "stocktv": ("quotes",),
}
DEFAULT_CHANNELS: Final = {"infoway": ("trades", "klines"), "mdapi": ("quotes",),
                           "stocktv": ("quotes",)}  # fmt: skip
# Markets each vendor's feed carries (the business an Infoway symbol connects to).
_INFOWAY_BUSINESS: Final = {"SH": "stock", "SZ": "stock", "HK": "stock", "US": "stock",
                            "CC": "crypto", "FX": "common", "INFOWAY": "common"}  # fmt: skip
_MARKETS: Final = {
    "infoway": tuple(_INFOWAY_BUSINESS),
    "mdapi": ("CC", "FX", "MDAPI"),
    "stocktv": ("US", "IN", "JP"),
}

# ("tick", symbol, ts_ms, price, volume, amount, side)
Tick = tuple[str, str, int, float, float | None, float | None, str | None]
# ("quote", symbol, ts_ms, fields)
Quote = tuple[str, str, int, dict[str, Any]]
_SIDES: Final = {1: "buy", 2: "sell"}


def _text(fields: dict[str, Any]) -> str:
    """The vendor's other fields as compact JSON text (UTF-8 as sent, not escaped): orjson,
    since ``json.dumps`` was a third of a quote's cost."""
    return _dumps(fields).decode()


def _num(value: Any) -> float | None:
    if value is None or value == "":
        return None
    return float(value)


@dataclass
class Feed:
    """One vendor's feed for a selection of symbols on one connection."""

    vendor: str
    url: str
    symbols: Sequence[str]
    channels: Sequence[str]
    codes: Mapping[str, str]  # canonical -> vendor code (StockTV: pid)
    heartbeat: float  # seconds between our heartbeats
    business: str | None = None
    reverse: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.reverse = {code: sym for sym, code in self.codes.items()}

    def subscribe(self) -> list[str]:
        codes = ",".join(self.codes[s] for s in self.symbols)
        if self.vendor == "infoway":
            out = []
            kinds = {"trades": 10000, "depth": 10003}
            for channel in self.channels:
                trace = str(uuid.uuid4())
                if channel == "klines":
                    data: dict[str, Any] = {"arr": [{"type": 1, "codes": codes}]}
                    out.append(json.dumps({"code": 10006, "trace": trace, "data": data}))
                else:
                    out.append(json.dumps({"code": kinds[channel], "trace": trace,
                                           "data": {"codes": codes}}))  # fmt: skip
            return out
        if self.vendor == "mdapi":
            return [json.dumps({"Key": codes})]
        return []  # StockTV pushes everything the key is entitled to

    def ping(self) -> str:
        if self.vendor == "infoway":
            return json.dumps({"code": 10010, "trace": str(uuid.uuid4())})
        if self.vendor == "mdapi":
            return json.dumps({"ping": int(time.time())})
        return "heart"

    def parse(self, text: str | bytes) -> tuple[list[Any], str | None]:
        """Rows of one frame, and a vendor close reason if the frame announces one."""
        try:
            doc = _loads(text)  # orjson: 3-4x json.loads, most of a trade's cost
        except ValueError:
            return [], None
        if type(doc) is not dict:
            return [], None
        if self.vendor == "infoway":
            data = doc.get("data")
            if doc.get("code") == 10002 and type(data) is dict:
                return self._trade(data), None  # the hot path: a trade
            return self._infoway(doc)
        if self.vendor == "mdapi":
            body = doc.get("body")
            return ([self._mdapi(body)] if isinstance(body, dict) else []), None
        return ([self._stocktv(doc)] if "pid" in doc else []), None

    def _trade(self, data: dict[str, Any]) -> list[Any]:
        code = data.get("s")
        sym = self.reverse.get(code if type(code) is str else str(code))
        if sym is None:
            return []
        td, v, vw = data.get("td"), data.get("v"), data.get("vw")
        side = _SIDES.get(td) if type(td) is int else _SIDES.get(int(td or 0))
        t: Tick = ("tick", sym, int(data["t"]), float(data["p"]),
                   None if v is None or v == "" else float(v),
                   None if vw is None or vw == "" else float(vw), side)  # fmt: skip
        return [t]

    def _infoway(self, doc: dict[str, Any]) -> tuple[list[Any], str | None]:
        code = doc.get("code")
        data = doc.get("data")
        if code in (501, 502, 513):
            return [], f"vendor code {code}: {doc.get('msg', '')}"
        if not isinstance(data, dict):
            return [], None
        sym = self.reverse.get(str(data.get("s")))
        if sym is None:
            return [], None
        if code == 10002:
            return self._trade(data), None
        if code == 10005:
            asks, bids = data.get("a") or [[], []], data.get("b") or [[], []]
            fields = {
                "ask": _num(asks[0][0]) if asks[0] else None,
                "ask_size": _num(asks[1][0]) if len(asks) > 1 and asks[1] else None,
                "bid": _num(bids[0][0]) if bids[0] else None,
                "bid_size": _num(bids[1][0]) if len(bids) > 1 and bids[1] else None,
                "extra": _text({"a": asks, "b": bids}),
            }
            return [("quote", sym, int(data["t"]), fields)], None
        if code == 10008:
            rows = data.get("respList") if "respList" in data else [data]
            out = []
            for bar in rows or []:
                out.append(("kline", sym, int(bar["t"]) * 1000, {
                    k: _num(bar.get(k)) for k in ("o", "h", "l", "c", "v", "vw")}))  # fmt: skip
            return out, None
        return [], None

    def _mdapi(self, body: dict[str, Any]) -> Quote | None:
        sym = self.reverse.get(str(body.get("StockCode")))
        if sym is None:
            return None
        known = {"StockCode", "Price", "High", "Low", "LastTime", "BP1", "BV1", "SP1", "SV1",
                 "TotalVol"}  # fmt: skip
        volume = _num(body.get("TotalVol"))
        fields = {
            "last": _num(body.get("Price")), "bid": _num(body.get("BP1")),
            "ask": _num(body.get("SP1")), "bid_size": _num(body.get("BV1")),
            "ask_size": _num(body.get("SV1")), "high": _num(body.get("High")),
            "low": _num(body.get("Low")),
            "cum_volume": None if sym.endswith(".FX") else volume,
            "extra": _text({k: v for k, v in body.items() if k not in known}),
        }  # fmt: skip
        return ("quote", sym, int(body["LastTime"]) * 1000, fields)

    def _stocktv(self, doc: dict[str, Any]) -> Quote | None:
        sym = self.reverse.get(str(doc.get("pid")))
        if sym is None:
            return None  # entitled, but not selected
        known = {"pid", "last_numeric", "bid", "ask", "high", "low", "turnover_numeric",
                 "timestamp"}  # fmt: skip
        fields = {
            "last": _num(doc.get("last_numeric")), "bid": _num(doc.get("bid")),
            "ask": _num(doc.get("ask")), "high": _num(doc.get("high")),
            "low": _num(doc.get("low")), "cum_volume": _num(doc.get("turnover_numeric")),
            "extra": _text({k: v for k, v in doc.items() if k not in known}),
        }  # fmt: skip
        return ("quote", sym, int(doc["timestamp"]) * 1000, fields)


def check_selection(
    vendor: str, symbols: Sequence[Symbol], channels: Sequence[str], markets: Sequence[str] = ()
) -> None:
    """Exit 2 before connecting: a channel or market the vendor's feed does not have."""
    if vendor not in CHANNELS:
        raise BadInputError(
            f"{vendor} has no real-time feed: use one of {', '.join(sorted(CHANNELS))}"
        )
    for channel in channels:
        if channel not in CHANNELS[vendor]:
            raise BadInputError(
                f"{vendor} has no channel {channel!r}: use {', '.join(CHANNELS[vendor])}"
            )
    for market in markets:
        if market not in _MARKETS[vendor]:
            raise BadInputError(
                f"{vendor}'s feed does not carry {market}: it carries {', '.join(_MARKETS[vendor])}"
            )
    for sym in symbols:
        if sym.exchange not in _MARKETS[vendor]:
            raise BadInputError(
                f"{vendor}'s feed does not carry {sym} ({sym.exchange}): it carries "
                f"{', '.join(_MARKETS[vendor])}"
            )


def feed_for(
    vendor: str,
    symbols: Sequence[str],
    channels: Sequence[str],
    codes: Mapping[str, str],
    *,
    ws_url: str | None,
    api_key: str | None,
) -> list[Feed]:
    """The connections for a selection: Infoway one per ``business``; others one."""
    base = ws_url or DEFAULT_URLS[vendor]
    if vendor in ("infoway", "stocktv") and not api_key:
        raise ConfigError(
            f"{vendor} needs api key: set ETL_{vendor.upper()}_API_KEY "
            f"(or [vendors.{vendor}] api_key in etl.toml)"
        )
    if vendor == "infoway":
        groups: dict[str, list[str]] = {}
        for sym in symbols:
            groups.setdefault(_INFOWAY_BUSINESS[sym.rsplit(".", 1)[1]], []).append(sym)
        return [
            Feed(
                vendor,
                f"{base}?{urlencode({'business': b, 'apikey': api_key})}",
                syms,
                channels,
                {s: codes[s] for s in syms},
                30.0,
                business=b,
            )
            for b, syms in sorted(groups.items())
        ]
    if vendor == "stocktv":
        url = f"{base}?{urlencode({'key': api_key})}"
        return [Feed(vendor, url, symbols, channels, codes, 5.0)]
    return [Feed(vendor, base, symbols, channels, codes, 10.0)]
