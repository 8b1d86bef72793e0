"""mdapi's WebSocket feed (``/ws`` on the HTTP port), per
docs/vendors/mdapi.md "WebSocket".

After connecting the client sends ``{"Key":"btcusdt,ethusdt"}`` (vendor codes, once per
code) and ``{"ping":<epoch s>}`` every 10 s, answered ``{"pong":<same>}``; a connection
without a ping for 30 s is closed. Every quote change is pushed as ``{"body":{quote}}``, the
quote object of ``getQuote.php``. At most 6 connections per client address: the 7th, and any
when the ``ip_refused`` switch is on, get HTTP 403 at the handshake.

Conventions of this emulator: one push per trade of the tape, stamped with the trade's second
(``LastTime``); ``TotalVol`` is the day's volume (00:00 Asia/Shanghai) through that trade, and
``BS`` holds that one trade.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from etl.emulators import mdapi_data as rows
from etl.emulators.tape import Trade
from etl.emulators.wire import Reply, Request, json_reply
from etl.emulators.ws import Close, ConnectionCount, StreamSession

__all__ = ["MAX_CONNECTIONS", "MdapiSession", "open_session"]

MAX_CONNECTIONS: Final = 6
IDLE_SECONDS: Final = 30.0
_BY_SYMBOL: Final = {p.symbol: p for p in rows.PRODUCTS}


@dataclass
class MdapiSession(StreamSession):
    heartbeat_timeout: float = IDLE_SECONDS
    counter: ConnectionCount | None = None
    codes: dict[str, str] = field(default_factory=dict)  # symbol -> vendor code

    def on_text(self, text: str) -> list[str] | Close:
        try:
            doc = json.loads(text)
        except ValueError:
            return []
        if not isinstance(doc, dict):
            return []
        if "ping" in doc:
            return [json.dumps({"pong": doc["ping"]})]
        if isinstance(doc.get("Key"), str):
            for code in (c.strip() for c in doc["Key"].split(",")):
                product = rows.BY_CODE.get(code)
                if product is not None:
                    self.codes[product.symbol] = code
        return []

    def symbols(self) -> Sequence[str]:
        return list(self.codes)

    def encode(self, trade: Trade) -> list[tuple[str, str]]:
        product = _BY_SYMBOL[trade.symbol]
        return [("quotes", json.dumps({"body": quote_of(product, trade)}))]

    def idle_close(self) -> Close:
        return Close((), 1000, "no ping for 30 s")

    def finished(self) -> None:
        if self.counter is not None:
            self.counter.give(self.client)


def quote_of(product: rows.Product, trade: Trade) -> dict[str, Any]:
    """The quote object right after ``trade``."""
    digits = trade.decimals
    tick = 10.0**-digits
    local = dt.datetime.fromtimestamp(trade.second, rows.ZONE)
    price = trade.price
    diff = round(price - trade.day_open, digits)
    size = 0.0 if product.fx or trade.volume is None else trade.volume
    return {
        "StockCode": product.code,
        "Price": price,
        "Open": trade.day_open,
        "LastClose": trade.day_open,
        "High": trade.day_high,
        "Low": trade.day_low,
        "Time": local.strftime("%Y-%m-%d %H:%M:%S"),
        "LastTime": str(trade.second),
        "BP1": round(max(price - tick, tick), digits),
        "BV1": 1.0,
        "SP1": round(price + tick, digits),
        "SV1": 1.0,
        "TotalVol": 0 if product.fx or trade.cum_volume is None else trade.cum_volume,
        "Depth": {"Buy": [], "Sell": []},
        "BS": [{"time": local.strftime("%H:%M:%S"), "price": price, "size": size,
                "direction": 2 if trade.side == 1 else 1}],
        "Info": [],
        "lastSize": size,
        "Diff": diff,
        "DiffRate": round(diff / trade.day_open * 100, 2) if trade.day_open else 0.0,
    }  # fmt: skip


def open_session(emulator: Any, request: Request, counter: ConnectionCount) -> Any:
    """403 ``IP未授权`` when the address is refused or already holds 6 connections."""
    refused = json_reply(403, {"code": 403, "msg": "IP未授权"})
    if any(f.name in ("ip_refused", "auth_expired") for f in emulator.plan.faults):
        return refused
    if not counter.take(request.client, MAX_CONNECTIONS):
        return refused
    return MdapiSession(emulator, request.client, counter=counter)


def reject(request: Request) -> Reply:
    return json_reply(403, {"code": 403, "msg": "IP未授权"})
