"""What a backfill still needs, decided without DuckDB when nothing of the selection is
stored (issue 10, start-up): the same answer as detect-missing's, and no DuckDB, pandas or
exchange_calendars loaded on the way to the first request."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from etl.config import load_settings
from etl.lake import Lake
from etl.lake.parquet_io import may_hold
from etl.tasks.backfill import _absent_days
from etl.tasks.detect import detect
from etl.tasks.expected import Selection, stored_files
from etl.tasks.runtime import Runtime
from tests.conftest import NOW, kline_rows

STORED = "600000.SH"
DAYS = [dt.date(2024, 6, 3) + dt.timedelta(days=i) for i in range(5)]


def _runtime(root: Path) -> Runtime:
    return Runtime(settings=load_settings(data_dir=root, env={}), progress=False, clock=lambda: NOW)


def _detected(rt: Runtime, sel: Selection) -> tuple[set[str], dict[str, list[str]]]:
    report = detect(rt.root, sel, rt.clock(), keep_slots=True)
    days: dict[str, set[str]] = {}
    for symbol, day in report.slots.select("symbol", "trade_date").iter_rows():
        days.setdefault(str(symbol), set()).add(str(day))
    return {str(u["symbol"]) for u in report.unjudged}, {s: sorted(d) for s, d in days.items()}


@pytest.mark.parametrize("freq", ["1d", "1m", "1w"])
def test_nothing_stored_answers_as_detect_does(data_root: Path, freq: str) -> None:
    Lake(data_root).write("klines", kline_rows([STORED], DAYS, freq="1d"), now=NOW)
    rt = _runtime(data_root)
    symbols = ("600001.SH", "000001.SZ", "AAPL.US", "HX_HSI.MDAPI")
    if freq != "1d":  # the stored file is of 1d: give this frequency one too
        Lake(data_root).write("klines", kline_rows([STORED], DAYS[:1], freq=freq), now=NOW)
    sel = Selection("klines", dt.date(2024, 5, 20), dt.date(2024, 6, 21), freq, symbols)
    files = stored_files(data_root, sel)
    assert files and not any(may_hold(f, "symbol", symbols) for f in files)
    unjudged, days = _absent_days(rt, sel)
    found = {s: sorted(str(d) for d in v) for s, v in days.items() if len(v)}
    assert (unjudged, found) == _detected(rt, sel)
    assert unjudged == {"HX_HSI.MDAPI"} and len(found["AAPL.US"]) > 0


def test_a_stored_symbol_goes_through_detect(data_root: Path) -> None:
    Lake(data_root).write("klines", kline_rows([STORED], DAYS), now=NOW)
    rt = _runtime(data_root)
    sel = Selection("klines", DAYS[0], dt.date(2024, 6, 14), "1d", (STORED, "600001.SH"))
    assert any(may_hold(f, "symbol", sel.symbols) for f in stored_files(data_root, sel))
    unjudged, days = _absent_days(rt, sel)
    assert unjudged == set()
    assert [str(d) for d in days[STORED]] == [f"2024-06-{d:02d}" for d in (11, 12, 13, 14)]
    assert len(days["600001.SH"]) == 9  # 06-10 is the Dragon Boat Festival


def test_may_hold_reads_row_group_statistics(tmp_path: Path) -> None:
    path = tmp_path / "f.parquet"
    table = pa.table({"symbol": ["B.SH", "C.SH", "D.SH"], "v": [1, 2, 3]})
    pq.write_table(table, path, row_group_size=2, write_statistics=True)  # B..C, D..D
    assert may_hold(path, "symbol", ["C.SH"]) and may_hold(path, "symbol", ["D.SH"])
    assert not may_hold(path, "symbol", ["A.SH", "CZ.SH", "E.SH"])
    assert may_hold(path, "missing_column", ["A.SH"])
    bare = tmp_path / "bare.parquet"
    pq.write_table(table, bare, write_statistics=False)
    assert may_hold(bare, "symbol", ["A.SH"])  # no statistics: no claim
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 not really")
    assert may_hold(broken, "symbol", ["A.SH"])


_PROBE = """
import datetime as dt, json, sys
from pathlib import Path
from etl.config import load_settings
from etl.tasks.backfill import BackfillRequest, _still_needed, _units, check_request
from etl.tasks.runtime import Runtime
root = Path(sys.argv[1])
rt = Runtime(settings=load_settings(data_dir=root, env={}), progress=False)
req = BackfillRequest("sim", "klines", ("600001.SH",), "1d", dt.date(2024, 6, 3),
                      dt.date(2024, 6, 7))
units = [u for u, _ in _units(req, check_request(rt, req))]
kept = _still_needed(rt, req, units)
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"duckdb", "pandas", "exchange_calendars"})
print(json.dumps({"units": len(units), "kept": len(kept), "heavy": heavy}))
"""


def test_the_way_to_a_new_symbols_first_request_loads_no_duckdb(data_root: Path) -> None:
    """Structural half of BENCHMARKS.md's start-up figure: a backfill of a symbol the lake
    does not hold decides what to fetch without DuckDB (and, its calendar kept in the data
    root, without pandas or exchange_calendars)."""
    Lake(data_root).write("klines", kline_rows([STORED], DAYS), now=NOW)

    def probe() -> dict[str, object]:
        proc = subprocess.run(
            [sys.executable, "-c", _PROBE, str(data_root)],
            capture_output=True, text=True, timeout=120, check=True,
        )  # fmt: skip
        return dict(json.loads(proc.stdout))

    probe()  # the first run of the day builds the calendar and keeps it
    assert probe() == {"units": 1, "kept": 1, "heavy": []}
    assert np.load(data_root / "state" / "calendars" / "XSHG.npz")["days"].size > 4000
