"""Depths learned from a vendor's answers, for vendors that publish none (StockTV).

When a vendor answers a range with no bars before some date although the exchange traded
(the adapter's :class:`~etl.vendors.base.Unavailable` with ``depth_from``), that date is
remembered per (symbol, frequency) in the data root (``DataRoot.vendor_depths``), with the
vendor's answer as evidence. Later plans (backfill, its dry run, fill-missing) do not ask
beyond it: those days are unavailable for that reason. ``--refetch`` (backfill) and
``--recheck`` (fill) ask again, and a newer answer overrides what was learned: an answer
reaching older than the remembered date removes it, and a new empty answer replaces it.
Nothing here is assumed: every entry is a vendor answer on record.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from etl.dataroot import DataRoot
from etl.fsutil import atomic_write_bytes
from etl.locks import file_lock
from etl.timefmt import iso_utc
from etl.vendors.base import Span, Unavailable

__all__ = ["Depth", "learn", "learned"]


@dataclass(frozen=True)
class Depth:
    """Where the vendor's history of one symbol at one frequency starts, as it answered."""

    since: dt.date
    reason: str  # the vendor's answer, as the adapter worded it
    learned_at: str  # when (ISO UTC)

    def why(self) -> str:
        return f"beyond depth: {self.reason} (answered {self.learned_at})"


def learned(root: Path, vendor: str, freq: str | None) -> dict[str, Depth]:
    """The depths remembered for ``vendor`` at ``freq``, by symbol."""
    doc = _load(DataRoot(root).vendor_depths(vendor))
    out: dict[str, Depth] = {}
    for symbol, per in doc.items():
        entry = per.get(freq or "") if isinstance(per, dict) else None
        if isinstance(entry, dict) and entry.get("since"):
            out[symbol] = Depth(
                dt.date.fromisoformat(str(entry["since"])),
                str(entry.get("reason") or ""),
                str(entry.get("learned_at") or ""),
            )
    return out


def learn(
    root: Path,
    vendor: str,
    freq: str | None,
    unavailable: Iterable[Unavailable],
    answered: Iterable[Span],
    now: dt.datetime,
) -> None:
    """Remember the depths ``unavailable`` shows and forget those ``answered`` disproves."""
    found = [u for u in unavailable if u.depth_from is not None]
    reached = {a.symbol: a.start for a in answered}
    if not found and not reached:
        return
    paths = DataRoot(root)
    path = paths.vendor_depths(vendor)
    path.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(paths.vendor_depths_lock(vendor), timeout=30):
        doc = _load(path)
        changed = False
        key = freq or ""
        for symbol, start in reached.items():
            entry = doc.get(symbol, {}).get(key)
            if entry and start < dt.date.fromisoformat(entry["since"]):
                del doc[symbol][key]  # the vendor now serves older bars
                changed = True
        for u in found:
            assert u.depth_from is not None
            doc.setdefault(u.symbol, {})[key] = {
                "since": u.depth_from.isoformat(),
                "reason": u.reason,
                "learned_at": iso_utc(now),
            }
            changed = True
        if changed:
            atomic_write_bytes(path, json.dumps(doc, sort_keys=True, indent=1).encode())


def _load(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_bytes())
    except (FileNotFoundError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}
