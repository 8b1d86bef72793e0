"""The read path: the lake as polars frames, for analysts, ``etl sql`` and ``etl serve``.

``etl.Warehouse(data_dir)`` answers the questions asked all day (one symbol's bars, one day's
cross-section, calendars, instruments, point-in-time statements) without SQL or paths. It
only reads: every partition it touches is read from one committed state, so it is safe
while backfills and jobs write.
"""

from etl.warehouse.api import Warehouse

__all__ = ["Warehouse"]
