"""StockTV's WebSocket feed (``/connect?key=KEY``), per
docs/vendors/stocktv.md "WebSocket".

No subscribe frame: every quote the key is entitled to is pushed, as a JSON object of strings
(``pid``, ``last_numeric``, ``bid``, ``ask``, ``high``, ``low``, ``pc``, ``pcp``,
``turnover_numeric``, ``timestamp`` in epoch seconds). The client sends the text ``heart``
every 5 s; a connection silent for 30 s is closed. A bad key: HTTP 401 at the handshake.

Conventions of this emulator: the entitlement is the option ``ws_symbols`` (canonical
symbols, comma separated; default :data:`DEFAULT_ENTITLED`); a push per trade of the tape,
stamped with the trade's second; ``turnover_numeric`` is the session's volume through it.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from etl.emulators import stocktv_data as rows
from etl.emulators.tape import Trade
from etl.emulators.wire import Request, json_reply
from etl.emulators.ws import Close, StreamSession

__all__ = ["DEFAULT_ENTITLED", "StockTVSession", "open_session", "pids_of"]

DEFAULT_ENTITLED: Final = ("AAPL.US", "MSFT.US", "RELIANCE.IN", "TCS.IN", "7203.JP")
IDLE_SECONDS: Final = 30.0
_NSE: Final = 46


def pids_of(symbols: Sequence[str], seed: int) -> dict[str, int]:
    """Canonical symbol -> pid (NSE for India) of the listings the emulator knows."""
    wanted = set(symbols)
    out: dict[str, int] = {}
    for pid, item in rows._listings(seed).items():
        if item.data_symbol not in wanted or item.kind != "stock":
            continue
        if item.market == "IN" and item.exchange_id != _NSE:
            continue
        out[item.data_symbol] = pid
    return out


@dataclass
class StockTVSession(StreamSession):
    heartbeat_timeout: float = IDLE_SECONDS
    entitled: dict[str, int] = field(default_factory=dict)  # symbol -> pid

    def on_text(self, text: str) -> list[str] | Close:
        return []  # "heart" (or anything) only keeps the connection alive

    def symbols(self) -> Sequence[str]:
        return list(self.entitled)

    def encode(self, trade: Trade) -> list[tuple[str, str]]:
        dec = trade.decimals
        tick = 10.0**-dec
        change = trade.price - trade.day_open
        doc = {
            "pid": str(self.entitled[trade.symbol]),
            "last_numeric": f"{trade.price:.{dec}f}",
            "bid": f"{max(trade.price - tick, tick):.{dec}f}",
            "ask": f"{trade.price + tick:.{dec}f}",
            "high": f"{trade.day_high:.{dec}f}",
            "low": f"{trade.day_low:.{dec}f}",
            "pc": f"{change:+.{dec}f}",
            "pcp": f"{change / trade.day_open * 100:+.2f}%",
            "turnover_numeric": _number(trade.cum_volume),
            "timestamp": str(trade.second),
        }
        return [("quotes", json.dumps(doc))]

    def idle_close(self) -> Close:
        return Close((), 1000, "idle")


def _number(value: float | None) -> str:
    if value is None:
        return "0"
    return str(int(value)) if value == int(value) else f"{value:.4f}".rstrip("0")


def open_session(emulator: Any, request: Request) -> Any:
    key = (request.params.get("key") or "").strip()
    wanted = emulator.options.api_key
    if not key or (
        wanted is not None and not secrets.compare_digest(key.encode(), wanted.encode())
    ):
        return json_reply(401, {"code": 401, "message": "key无效", "data": None})
    raw = str(emulator.options.extra.get("ws_symbols") or ",".join(DEFAULT_ENTITLED))
    symbols = [s.strip() for s in raw.split(",") if s.strip()]
    return StockTVSession(emulator, request.client, entitled=pids_of(symbols, emulator.seed))
