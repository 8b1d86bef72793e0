"""Ingest from the wire: an AmazingData kline answer (the JSON body exactly as the emulator
serves it) through the adapter's parsing (envelope, bars to canonical Arrow), validation
(etl.normalize) and Lake.write to committed Parquet, against ``json.loads`` +
``pyarrow.Table.from_pylist`` + ``pyarrow.parquet.write_table`` of the same rows, in the same
run. Best of 3 each.

    python -m bench ingest_json
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq

from etl.emulators.amazingdata_data import codes_of
from etl.emulators.testing import running
from etl.lake import Lake
from etl.normalize import validate_klines
from etl.vendors.amazingdata.wire import PERIODS, bars_table, parse_envelope

NOW = dt.datetime(2024, 6, 28, 12, 0, tzinfo=dt.UTC)
CODES = codes_of("EXTRA_STOCK_A", NOW, 0)[:50]  # the most one call may ask for
CASES = [
    # label, freq, first day, last day
    ("1d: 50 codes x 10 years (one call's answer)", "1d", dt.date(2014, 7, 1),
     dt.date(2024, 6, 28)),
    ("1m: 50 codes x 31 days (one call's answer, the span limit)", "1m", dt.date(2024, 5, 29),
     dt.date(2024, 6, 28)),
]  # fmt: skip
RUNS = 3


def _body(base_url: str, freq: str, start: dt.date, end: dt.date) -> bytes:
    """The emulator's answer to one ``/stock/kline`` call, as bytes."""
    with httpx.Client(base_url=base_url, timeout=120) as client:
        login = client.post("/auth/login", json={"username": "bench", "password": "bench"})
        token = login.json()["data"]["access_token"]
        params = {
            "codes": ",".join(CODES),
            "start_date": f"{start:%Y%m%d}",
            "end_date": f"{end:%Y%m%d}",
            "period": PERIODS[freq],
        }
        answer = client.get(
            "/stock/kline", params=params, headers={"Authorization": f"Bearer {token}"}
        )
        answer.raise_for_status()
        return answer.content


def _raw(body: bytes, path: Path) -> float:
    t0 = time.perf_counter()
    data: dict[str, list[dict[str, Any]]] = json.loads(body)["data"]
    rows = [{"symbol": code, **bar} for code, bars in data.items() for bar in bars]
    pq.write_table(pa.Table.from_pylist(rows), path, compression="zstd", row_group_size=131_072)
    return time.perf_counter() - t0


def _etl(body: bytes, root: Path, freq: str, start: dt.date, end: dt.date) -> list[float]:
    """Seconds for: parsing (envelope + bars), validation, Lake.write; and the row count."""
    t0 = time.perf_counter()
    answer = httpx.Response(200, content=body, headers={"Content-Type": "application/json"})
    data = parse_envelope(answer)
    table = bars_table(data, CODES, freq, futures=False, request_id="bench")
    t1 = time.perf_counter()
    checked = validate_klines(table, freq=freq, start=start, end=end, now=NOW)
    assert not [i for i in checked.issues if i.severity == "rejected"], checked.issues
    t2 = time.perf_counter()
    commit = Lake(root).write("klines", checked.frame, now=NOW)
    t3 = time.perf_counter()
    assert commit.rows_written == table.num_rows
    return [t1 - t0, t2 - t1, t3 - t2, float(table.num_rows)]


def run() -> list[dict[str, object]]:
    results: list[dict[str, object]] = []
    with running("amazingdata", now=NOW) as server:
        bodies = [(case, _body(server.base_url, *case[1:])) for case in CASES]
    for (label, freq, start, end), body in bodies:
        work = Path(tempfile.mkdtemp(prefix="bench-ingest-json-"))
        try:
            raw = min(_raw(body, work / f"raw{i}.parquet") for i in range(RUNS))
            etl = min(
                (_etl(body, work / f"lake{i}", freq, start, end) for i in range(RUNS)),
                key=lambda t: sum(t[:3]),
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)
        parse_s, validate_s, write_s, rows = etl
        total = parse_s + validate_s + write_s
        results.append(
            {
                "case": label,
                "rows": int(rows),
                "json_mb": round(len(body) / 1e6, 1),
                "raw_s": round(raw, 3),
                "etl_s": round(total, 3),
                "parse_s": round(parse_s, 3),
                "validate_s": round(validate_s, 3),
                "write_s": round(write_s, 3),
                "raw_rows_per_s": round(rows / raw),
                "etl_rows_per_s": round(rows / total),
                "etl_vs_raw": round(total / raw, 2),
            }
        )
    return results
