"""etl serve: one symbol's year of 1d through /stock/kline against the same rows read with the
read path directly (in the same run), then 50 concurrent clients on loopback for 30 s (errors,
latency percentiles, the server's memory over the run).

    python -m bench serve            # SERVE_SECONDS=30 SERVE_CLIENTS=50 by default
    SERVE_COMPACT=0 python -m bench serve   # without the mirrors `etl compact` writes

The load runs twice: clients sending back to back (closed loop), and clients pausing 0.5 s
between requests (50 people at a dashboard rather than 50 scripts).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.data import klines_frame
from etl.lake import Lake
from etl.server.reads import LakeReader

NOW = dt.datetime(2024, 1, 31, tzinfo=dt.UTC)
SYMBOLS = 5000
START, END = dt.date(2023, 1, 1), dt.date(2023, 12, 31)
PASSWORD = "bench-password-1"


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _start(root: Path, config: Path) -> tuple[subprocess.Popen[str], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")}
    env.update(ETL_DATA_DIR=str(root), XDG_CONFIG_HOME=str(config))
    etl = [sys.executable, "-m", "etl"]
    subprocess.run([*etl, "users", "add", "bench", "--role", "admin"], input=PASSWORD + "\n",
                   env=env, check=True, capture_output=True, text=True)  # fmt: skip
    proc = subprocess.Popen([*etl, "serve", "--port", "0", "--json"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)  # fmt: skip
    assert proc.stdout is not None
    return proc, json.loads(proc.stdout.readline())["base_url"]


async def _load(base: str, headers: dict[str, str], codes: list[str], clients: int,
                seconds: float, pid: int, think: float) -> dict[str, object]:  # fmt: skip
    latencies: list[float] = []
    errors: list[str] = []
    rss: list[int] = []
    # Every client is made and connected before the clock starts: an httpx client builds an
    # SSL context (~20 ms of the load generator's CPU) when made, which, done inside the
    # run, was charged to the first requests of the others (1.2 s "latencies" in the first
    # half second, the whole p99 of the paced run).
    https = [httpx.AsyncClient(base_url=base, headers=headers, timeout=10) for _ in range(clients)]
    warm = {"codes": codes[0], "start_date": "20230101", "end_date": "20230131", "period": "daily"}
    await asyncio.gather(*(http.get("/stock/kline", params=warm) for http in https))
    stop = time.monotonic() + seconds

    async def client(http: httpx.AsyncClient, rng: random.Random) -> None:
        try:
            while time.monotonic() < stop:
                params = {"codes": rng.choice(codes), "start_date": "20230101",
                          "end_date": "20231231", "period": "daily"}  # fmt: skip
                began = time.perf_counter()
                try:
                    answer = await http.get("/stock/kline", params=params)
                    if answer.status_code != 200 or len(answer.json()["data"]) != 1:
                        errors.append(f"HTTP {answer.status_code}")
                except httpx.HTTPError as exc:
                    errors.append(type(exc).__name__)
                latencies.append(time.perf_counter() - began)
                if think:
                    await asyncio.sleep(think)
        finally:
            await http.aclose()

    async def sample() -> None:
        while time.monotonic() < stop:
            rss.append(_rss_kib(pid))
            await asyncio.sleep(1.0)

    await asyncio.gather(sample(), *(client(h, random.Random(i)) for i, h in enumerate(https)))
    third = max(1, len(rss) // 3)
    return {
        "case": f"{clients} concurrent clients, {seconds:.0f} s, /stock/kline one symbol-year"
        + (f", {think:g} s between a client's requests" if think else ", back to back"),
        "requests": len(latencies), "errors": len(errors),
        "throughput_per_s": round(len(latencies) / seconds, 1),
        "p50_ms": round(_percentile(latencies, 0.50) * 1000, 1),
        "p99_ms": round(_percentile(latencies, 0.99) * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1),
        "rss_mib_first_third": round(statistics.mean(rss[:third]) / 1024, 1),
        "rss_mib_last_third": round(statistics.mean(rss[-third:]) / 1024, 1),
        "rss_mib_max": round(max(rss) / 1024, 1),
    }  # fmt: skip


def run() -> list[dict[str, object]]:
    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    root = work / "data"
    root.mkdir()
    clients = int(os.environ.get("SERVE_CLIENTS", "50"))
    seconds = float(os.environ.get("SERVE_SECONDS", "30"))
    try:
        frame = klines_frame(SYMBOLS, "1d", START, END)
        Lake(root).write("klines", frame, now=NOW)
        if os.environ.get("SERVE_COMPACT", "1") != "0":  # mirrors, as the nightly job makes
            Lake(root).compact("klines", now=NOW)
        codes = sorted(set(frame["symbol"].to_list()))
        reader = LakeReader(root)
        proc, base = _start(root, work / "config")
        try:
            login = httpx.post(
                base + "/auth/login", json={"username": "bench", "password": PASSWORD}
            )
            headers = {"Authorization": "Bearer " + login.json()["data"]["access_token"]}
            rng = random.Random(7)
            # served: the answer's last byte received (the endpoint, as an HTTP client sees
            # it); parsed: then decoded with the standard library's json, the client's own
            # cost, which depends on the client (orjson takes a quarter of it)
            direct, served, parsed = [], [], []
            with httpx.Client(base_url=base, headers=headers) as http:
                for code in [rng.choice(codes) for _ in range(300)]:
                    began = time.perf_counter()
                    rows = reader.bars([code], "1d", START, END)
                    direct.append(time.perf_counter() - began)
                    params = {"codes": code, "start_date": "20230101", "end_date": "20231231",
                              "period": "daily"}  # fmt: skip
                    began = time.perf_counter()
                    answer = http.get("/stock/kline", params=params)
                    served.append(time.perf_counter() - began)
                    bars = json.loads(answer.content)["data"][code]
                    parsed.append(time.perf_counter() - began)
                    assert len(bars) == rows.height > 200
            d50, s50 = statistics.median(direct[50:]), statistics.median(served[50:])
            p50 = statistics.median(parsed[50:])
            results: list[dict[str, object]] = [{
                "case": f"one symbol, a year of 1d ({rows.height} bars) among {SYMBOLS}",
                "direct_read_p50_ms": round(d50 * 1000, 2),
                "served_p50_ms": round(s50 * 1000, 2),
                "served_p99_ms": round(_percentile(served[50:], 0.99) * 1000, 2),
                "ratio": round(s50 / d50, 2),
                "served_and_parsed_p50_ms": round(p50 * 1000, 2),
                "ratio_parsed": round(p50 / d50, 2),
            }]  # fmt: skip
            for think in (0.0, 0.5):
                load = _load(base, headers, codes, clients, seconds, proc.pid, think)
                results.append(asyncio.run(load))
        finally:
            proc.terminate()
            proc.wait(30)
        return results
    finally:
        shutil.rmtree(work, ignore_errors=True)
