"""Infoway's WebSocket feed (``/ws?business=stock|crypto|common&apikey=KEY``), per
docs/vendors/infoway.md "WebSocket".

Client frames are ``{"code":N,"trace":…,"data":{…}}``: 10000 / 10003 subscribe trades /
depth (``{"codes":"A,B"}``), 10006 klines (``{"arr":[{"type":1,"codes":"A"}]}``), acked with
10001 / 10004 / 10007; 11000 / 11001 / 11002 unsubscribe (ack 11010); 10010 the heartbeat.
Pushes share the envelope: 10002 trades, 10005 depth, 10008 the forming kline (the flat form).
More than 60 client frames in a minute: 501, then the close; no frame for 60 s: 513, then the
close. Codes of another business than the connection's are acknowledged and never pushed, as
upstream answers unknown codes.

Conventions of this emulator: the forming kline is pushed after every trade of its minute (so
its last push is the final bar); depth is five levels around the trade price, one tick apart.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from etl.emulators import infoway_data as rows
from etl.emulators.tape import Trade
from etl.emulators.wire import Reply, Request, json_reply
from etl.emulators.ws import Close, StreamSession
from etl.synthetic.hashing import key_of

__all__ = ["BUSINESSES", "InfowaySession", "open_session"]

BUSINESSES: Final = ("stock", "crypto", "common")
FRAMES_PER_MINUTE: Final = 60
IDLE_SECONDS: Final = 60.0
_ACKS: Final = {10000: 10001, 10003: 10004, 10006: 10007}
_UNSUBSCRIBE: Final = {11000: "trades", 11001: "depth", 11002: "klines"}
_CHANNEL: Final = {10000: "trades", 10003: "depth", 10006: "klines"}


def _decimal(value: float | None, places: int) -> str:
    return "0" if value is None else f"{value:.{places}f}"


@dataclass
class InfowaySession(StreamSession):
    business: str = "stock"
    heartbeat_timeout: float = IDLE_SECONDS
    subscribed: dict[str, dict[str, str]] = field(default_factory=dict)  # channel -> sym->code
    frames: deque[float] = field(default_factory=deque)
    forming: dict[str, list[float]] = field(default_factory=dict)  # symbol -> bar state
    pushes: int = 0

    def greeting(self) -> list[str]:
        return [json.dumps({"code": 200, "msg": "ws connect success"})]

    def _trace(self) -> str:
        self.pushes += 1
        high = key_of(self.emulator.seed, "ws-trace", self.pushes)
        return str(uuid.UUID(int=high << 64 | self.pushes))

    def on_text(self, text: str) -> list[str] | Close:
        now = time.monotonic()
        self.frames.append(now)
        while self.frames and self.frames[0] < now - 60.0:
            self.frames.popleft()
        if len(self.frames) > FRAMES_PER_MINUTE:
            msg = json.dumps({"code": 501, "msg": "Request exceed limit"})
            return Close((msg,), 1000, "frame limit")
        try:
            doc = json.loads(text)
        except ValueError:
            return [json.dumps({"code": 515, "msg": "param is not json"})]
        if not isinstance(doc, dict):
            return [json.dumps({"code": 515, "msg": "param is not json"})]
        code, trace = doc.get("code"), doc.get("trace", "")
        raw = doc.get("data")
        data: dict[str, Any] = raw if isinstance(raw, dict) else {}
        if code == 10010:
            return []
        if code in _ACKS:
            if code == 10006:
                arr = data.get("arr") or []
                codes = ",".join(str(a.get("codes", "")) for a in arr if isinstance(a, dict))
            else:
                codes = str(data.get("codes") or "")
            if not codes:
                return [json.dumps({"code": 506, "trace": trace, "msg": "param missing"})]
            self._subscribe(_CHANNEL[code], codes)
            return [json.dumps({"code": _ACKS[code], "trace": trace, "msg": "ok"})]
        if code in _UNSUBSCRIBE:
            wanted = {c.strip() for c in str(data.get("codes") or "").split(",")}
            table = self.subscribed.get(_UNSUBSCRIBE[code], {})
            for sym in [s for s, c in table.items() if c in wanted]:
                del table[sym]
            return [json.dumps({"code": 11010, "trace": trace, "msg": "ok"})]
        return [json.dumps({"code": 506, "trace": trace, "msg": "param missing"})]

    def _subscribe(self, channel: str, codes: str) -> None:
        wanted = [c.strip() for c in codes.split(",") if c.strip()]
        known = rows.known_codes(self.business, wanted, self.emulator.now(), self.emulator.seed)
        table = self.subscribed.setdefault(channel, {})
        for code, symbol in known.items():
            table[symbol] = code

    def symbols(self) -> Sequence[str]:
        found: dict[str, None] = {}
        for table in self.subscribed.values():
            found.update(dict.fromkeys(table))
        return list(found)

    def encode(self, trade: Trade) -> list[tuple[str, str]]:
        out = []
        sym = trade.symbol
        dec = max(trade.decimals, 3)
        trades = self.subscribed.get("trades", {})
        if sym in trades:
            data = {
                "s": trades[sym], "t": trade.t_ms, "p": _decimal(trade.price, dec),
                "v": _volume(trade.volume), "vw": _decimal(trade.amount, 2), "td": trade.side,
            }  # fmt: skip
            out.append(("trades", self._push(10002, data)))
        klines = self.subscribed.get("klines", {})
        if sym in klines:
            out.append(("klines", self._push(10008, self._kline(klines[sym], trade))))
        depth = self.subscribed.get("depth", {})
        if sym in depth:
            out.append(("depth", self._push(10005, _depth(depth[sym], trade, dec))))
        return out

    def _push(self, code: int, data: dict[str, Any]) -> str:
        return json.dumps({"code": code, "trace": self._trace(), "data": data})

    def _kline(self, code: str, trade: Trade) -> dict[str, Any]:
        state = self.forming.get(trade.symbol)
        if state is None or state[0] != trade.bar_us:
            # [bar, open, high, low, close, volume, amount]: a new minute starts here
            state = [trade.bar_us, trade.price, trade.price, trade.price, trade.price, 0.0, 0.0]
            self.forming[trade.symbol] = state
        state[2], state[3] = max(state[2], trade.price), min(state[3], trade.price)
        state[4] = trade.price
        state[5] = round(state[5] + (trade.volume or 0.0), 4)
        state[6] = round(state[6] + (trade.amount or 0.0), 2)
        dec = max(trade.decimals, 3)
        change = state[4] - state[1]
        return {
            "s": code, "t": str(int(state[0]) // 1_000_000), "ty": 1,
            "o": _decimal(state[1], dec), "h": _decimal(state[2], dec),
            "l": _decimal(state[3], dec), "c": _decimal(state[4], dec),
            "v": _volume(state[5] if trade.volume is not None else None),
            "vw": _decimal(state[6] if trade.amount is not None else None, 2),
            "pca": f"{change:.3f}", "pfr": f"{change / state[1] * 100:.2f}%",
        }  # fmt: skip

    def idle_close(self) -> Close:
        msg = json.dumps({"code": 513, "msg": "Websocket heartbeat timeout"})
        return Close((msg,), 1000, "heartbeat timeout")


def _volume(value: float | None) -> str:
    if value is None:
        return "0"
    return f"{value:.4f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))


def _depth(code: str, trade: Trade, dec: int) -> dict[str, Any]:
    tick = 10.0**-trade.decimals
    asks = [round(trade.price + tick * (i + 1), trade.decimals) for i in range(5)]
    bids = [round(max(trade.price - tick * (i + 1), tick), trade.decimals) for i in range(5)]
    sizes = [str(10 * (i + 1)) for i in range(5)]
    return {
        "s": code, "t": trade.t_ms,
        "a": [[_decimal(p, dec) for p in asks], sizes],
        "b": [[_decimal(p, dec) for p in bids], sizes],
    }  # fmt: skip


def open_session(emulator: Any, request: Request) -> InfowaySession | Reply:
    """Check the handshake: the key (401 ``Token invalid`` as REST answers) and the business."""
    key = (request.params.get("apikey") or "").strip()
    wanted = emulator.options.api_key
    if not key or (
        wanted is not None and not secrets.compare_digest(key.encode(), wanted.encode())
    ):
        return json_reply(401, {"code": 401, "message": "Token invalid"})
    business = request.params.get("business", "")
    if business not in BUSINESSES:
        return json_reply(400, {"code": 506, "message": "business must be stock, crypto or common"})
    return InfowaySession(emulator, request.client, business=business)
