"""The lake's answers to one request, through the analysts' read path (``etl.Warehouse``).

Every read names its partitions (``klines/freq=1d/year=2024``) and filters one symbol inside
them, each partition read from one committed state while writers commit: one symbol's bars
never scan the lake. What the lake *knows* (codes that otherwise get 404) is the instruments
list plus the symbols the manifests cover, cached until a manifest changes.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import polars as pl
import pyarrow as pa

from etl.dataroot import DataRoot
from etl.lake.reader import LakeReader as PartitionReader
from etl.warehouse import Warehouse
from etl.warehouse.adjust import chosen_factors

__all__ = ["RECHECK", "LakeReader"]

RECHECK: Final = 1.0  # seconds a known set is trusted without walking the manifests again


class LakeReader:
    """The server's reads: :class:`etl.Warehouse` for bars, calendars, instruments and
    statements; the same partition reader for the small snapshot datasets."""

    def __init__(self, root: Path) -> None:
        self.layout = DataRoot(root)
        self.warehouse = Warehouse(root)
        self._partitions = PartitionReader(root)
        self._lock = threading.Lock()
        self._known: dict[str, tuple[tuple[Any, ...], frozenset[str]]] = {}
        self._checked: dict[str, float] = {}  # when each known set was last found current
        self._instruments: tuple[tuple[Any, ...], pl.DataFrame] | None = None

    def bars(
        self,
        symbols: Sequence[str],
        freq: str,
        start: dt.date,
        end: dt.date,
        *,
        adjust: str | None = None,
    ) -> pl.DataFrame:
        """Bars of ``symbols`` with trade dates in ``[start, end]``, by symbol then time;
        ``adjust`` ``qfq``/``hfq`` as the read path adjusts them (None: raw)."""
        return self.warehouse.bars(list(symbols), freq, start, end, adjust=adjust)

    def bar_table(
        self, symbol: str, freq: str, start: dt.date, end: dt.date, *, adjust: str | None = None
    ) -> pa.Table:
        """:meth:`bars` of one symbol as the read path's Arrow table (no polars frame: the
        kline answers take the columns as they are)."""
        return self.warehouse.bar_table([symbol], freq, start, end, adjust=adjust)

    def calendar(self, market: str, start: dt.date, end: dt.date) -> pl.DataFrame:
        """Stored calendar days of ``market`` in ``[start, end]`` (open or not)."""
        return self.warehouse.calendar(market, start, end).unique("trade_date", keep="last")

    def statements(
        self, dataset: str, symbols: Sequence[str], start: dt.date | None, end: dt.date | None
    ) -> pl.DataFrame:
        """Every stored version for ``symbols``, reporting periods in ``[start, end]``."""
        return self.warehouse.statements(dataset, list(symbols), start=start, end=end)

    def factors(self, symbols: Sequence[str], start: dt.date, end: dt.date) -> pl.DataFrame:
        """(symbol, ex_date, backward_factor) with ex-dates in ``[start, end]``: for each symbol
        the vendor whose factors ``bars(adjust=...)`` uses (the latest synced)."""
        chosen = chosen_factors(self.warehouse.adj_factors(list(symbols)), None)
        return chosen.filter(pl.col("ex_date").is_between(start, end)).sort("symbol", "ex_date")

    def whole(self, dataset: str) -> pl.DataFrame:
        """A small dataset entire (future varieties, main contracts)."""
        keys = self._partitions.partition_keys(dataset)
        frame = pl.from_arrow(self._partitions.read(dataset, keys))
        assert isinstance(frame, pl.DataFrame)
        return frame

    # -- what is known ---------------------------------------------------------------------

    def _fingerprint(self, dataset: str) -> tuple[Any, ...]:
        folder = self.layout.manifests / dataset
        if not folder.is_dir():
            return ()
        return tuple(sorted((str(p), p.stat().st_mtime_ns) for p in folder.rglob("*.json")))

    def instruments(self) -> pl.DataFrame:
        """Every instruments row (every vendor), cached until its manifests change."""
        mark = self._fingerprint("instruments")
        with self._lock:
            if self._instruments is not None and self._instruments[0] == mark:
                return self._instruments[1]
        frame = self.warehouse.instruments()
        with self._lock:
            self._instruments = (mark, frame)
        return frame

    def known(self, dataset: str) -> frozenset[str]:
        """Symbols the lake knows for ``dataset``: in ``instruments``, or with rows of it."""
        mark = (self._fingerprint(dataset), self._fingerprint("instruments"))
        with self._lock:
            cached = self._known.get(dataset)
            if cached is not None and cached[0] == mark:
                self._checked[dataset] = time.monotonic()
                return cached[1]
        found: set[str] = set(self.instruments()["symbol"].to_list())
        folder = self.layout.manifests / dataset
        for path in folder.rglob("*.json") if folder.is_dir() else ():
            try:
                doc = json.loads(path.read_bytes())
            except (FileNotFoundError, ValueError):
                continue
            found.update((doc.get("coverage") or {}).get("entity") or [])
        known = frozenset(found)
        with self._lock:
            self._known[dataset] = (mark, known)
            self._checked[dataset] = time.monotonic()
        return known

    def known_of(self, dataset: str, codes: Sequence[str]) -> list[str]:
        """Those of ``codes`` the lake knows for ``dataset``, in their order.

        Walking the manifests to see whether they changed cost as much as reading a symbol's
        year of bars, on every request; so a known set checked within :data:`RECHECK`
        seconds is trusted while it holds every code asked for (a symbol, once stored, stays
        known), and checked again at once when a code is missing from it (one just written
        is never refused as unknown).
        """
        with self._lock:
            cached = self._known.get(dataset)
            checked = self._checked.get(dataset, -math.inf)
        if cached is not None and time.monotonic() - checked < RECHECK:
            known = cached[1]
            if all(code in known for code in codes):
                return list(codes)
        known = self.known(dataset)
        return [code for code in codes if code in known]
