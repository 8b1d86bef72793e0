"""The lake's answers to one request: the smallest read path the server needs.

Every read names its partitions (``klines/freq=1d/year=2024``, ``income/year=2023``) before
touching a file, and filters by symbol inside them (files are sorted by symbol, so Parquet
statistics skip the rest): one symbol's bars never scan the lake. A partition swapped in
while its files are listed (a writer committing) is listed again. What the lake knows (codes
that get 404 otherwise) is cached until a manifest changes.

This module stands in until ``etl.Warehouse`` (the analysts' read path) lands; the server
then asks it the same questions.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import polars as pl

from etl import schema as schemas
from etl.dataroot import DataRoot

__all__ = ["LakeReader"]

T = TypeVar("T")
_RETRIES = 3


class LakeReader:
    def __init__(self, root: Path) -> None:
        self.layout = DataRoot(root)
        self._lock = threading.Lock()
        self._known: dict[str, tuple[tuple[Any, ...], frozenset[str]]] = {}
        self._instruments: tuple[tuple[Any, ...], pl.DataFrame] | None = None

    # -- files -----------------------------------------------------------------------------

    def _files(self, dataset: str, **values: object) -> list[Path]:
        folder = (
            self.layout.partition_of(dataset, **values) if values else self.layout.dataset(dataset)
        )
        if not folder.is_dir():
            return []
        return sorted(folder.rglob("*.parquet") if not values else folder.glob("*.parquet"))

    def _read(
        self, files: Callable[[], list[Path]], query: Callable[[list[Path]], T], empty: T
    ) -> T:
        """``query`` over the listed files; listed again if a swap removed one meanwhile."""
        for attempt in range(_RETRIES):
            found = files()
            if not found:
                return empty
            try:
                return query(found)
            except (FileNotFoundError, pl.exceptions.ComputeError) as exc:
                if attempt == _RETRIES - 1 or (
                    "No such file" not in str(exc) and not isinstance(exc, FileNotFoundError)
                ):
                    raise
                time.sleep(0.01)
        raise AssertionError("unreachable")

    def _empty(self, dataset: str) -> pl.DataFrame:
        return pl.DataFrame(schema=_polars_schema(dataset))

    # -- klines ----------------------------------------------------------------------------

    def bars(self, symbols: Sequence[str], freq: str, start: dt.date, end: dt.date) -> pl.DataFrame:
        """Bars of ``symbols`` with trade dates in ``[start, end]``, by symbol then time."""
        years = range(start.year, end.year + 1)

        def files() -> list[Path]:
            return [f for y in years for f in self._files("klines", freq=freq, year=y)]

        def query(found: list[Path]) -> pl.DataFrame:
            return (
                _scan(found)
                .filter(
                    pl.col("symbol").is_in(list(symbols))
                    & pl.col("trade_date").is_between(start, end)
                )
                .sort("symbol", "ts")
                .collect()
            )

        return self._read(files, query, self._empty("klines"))

    # -- what is known ---------------------------------------------------------------------

    def _fingerprint(self, dataset: str) -> tuple[Any, ...]:
        folder = self.layout.manifests / dataset
        if not folder.is_dir():
            return ()
        return tuple(sorted((str(p), p.stat().st_mtime_ns) for p in folder.rglob("*.json")))

    def known(self, dataset: str) -> frozenset[str]:
        """Symbols the lake knows for ``dataset``: in ``instruments``, or with rows of it."""
        mark = (self._fingerprint(dataset), self._fingerprint("instruments"))
        with self._lock:
            cached = self._known.get(dataset)
            if cached is not None and cached[0] == mark:
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
        return known

    def instruments(self) -> pl.DataFrame:
        mark = self._fingerprint("instruments")
        with self._lock:
            if self._instruments is not None and self._instruments[0] == mark:
                return self._instruments[1]

        def query(found: list[Path]) -> pl.DataFrame:
            return _scan(found).collect()

        frame = self._read(lambda: self._files("instruments"), query, self._empty("instruments"))
        with self._lock:
            self._instruments = (mark, frame)
        return frame

    # -- reference data and statements -----------------------------------------------------

    def calendar(self, market: str, start: dt.date, end: dt.date) -> pl.DataFrame:
        """Stored calendar days of ``market`` in ``[start, end]`` (open or not)."""

        def query(found: list[Path]) -> pl.DataFrame:
            return (
                _scan(found)
                .filter(pl.col("trade_date").is_between(start, end))
                .select("trade_date", "is_open")
                .unique("trade_date")
                .sort("trade_date")
                .collect()
            )

        empty = pl.DataFrame(schema={"trade_date": pl.Date, "is_open": pl.Boolean})
        return self._read(lambda: self._files("calendar", market=market), query, empty)

    def statements(
        self, dataset: str, symbols: Sequence[str], start: dt.date | None, end: dt.date | None
    ) -> pl.DataFrame:
        """Every stored version for ``symbols``, reporting periods in ``[start, end]``."""

        def files() -> list[Path]:
            if start is None or end is None:
                return self._files(dataset)
            return [
                f for y in range(start.year, end.year + 1) for f in self._files(dataset, year=y)
            ]

        def query(found: list[Path]) -> pl.DataFrame:
            cond = pl.col("symbol").is_in(list(symbols))
            if start is not None:
                cond &= pl.col("reporting_period") >= start
            if end is not None:
                cond &= pl.col("reporting_period") <= end
            return (
                _scan(found)
                .filter(cond)
                .sort("symbol", "reporting_period", "actual_ann_date", "statement_type")
                .collect()
            )

        return self._read(files, query, self._empty(dataset))

    def whole(self, dataset: str) -> pl.DataFrame:
        """A small dataset entire (future varieties, main contracts)."""

        def query(found: list[Path]) -> pl.DataFrame:
            return _scan(found).collect()

        return self._read(lambda: self._files(dataset), query, self._empty(dataset))


def _polars_schema(dataset: str) -> pl.Schema:
    arrow = schemas.get(dataset).arrow_schema
    frame = pl.from_arrow(arrow.empty_table())
    assert isinstance(frame, pl.DataFrame)
    return frame.schema


def _scan(files: list[Path]) -> pl.LazyFrame:
    # Partition columns live in folder names only; the read names its partitions itself.
    return pl.scan_parquet(
        files, hive_partitioning=False, missing_columns="insert", extra_columns="ignore"
    )
