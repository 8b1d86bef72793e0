"""What a command has imported when it sends its first vendor request (issue 10, start-up: at
most 0.5 s from process start with a cached plan; BENCHMARKS.md "startup").

`etl backfill` runs as a user's second command runs (the plan, the calendars and another
symbol already in the data root) against an emulator on the real clock (so the cached plan
is fresh), with an audit hook that notes the modules loaded at the process's first
`socket.connect`: the first request. polars (0.15 s to import), pandas, DuckDB,
exchange_calendars and pyarrow.compute must not be among them: what the answer needs is
imported once it arrives. Nor rich and pygments (httpx's command-line client, a progress bar
no terminal shows). `etl fill-missing` of a symbol nothing is stored for plans from the
expectation, as a backfill does, without detect (polars, DuckDB). Event-based: no timing is
asserted.

Regression: polars came with the lake's package, the pipeline, the fill planner and the
expectation, all imported before the first request (0.59-0.62 s to it); a fill imported
DuckDB, the lake's writer and rich before its first request (0.60-0.70 s to it), then
polars with detect and the planner (0.50-0.57 s to it).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest

from etl.emulators.testing import running
from tests.conftest import ETL, etl_env

LATE = ("polars", "pandas", "duckdb", "exchange_calendars", "pyarrow.compute", "rich", "pygments")
# what each command needs only once answers arrive
NOT_YET = {"backfill": LATE, "fill-missing": LATE}

# Runs `etl` with a hook: at the first connect, the LATE modules then loaded go to argv[1];
# at exit, those loaded by then (proof that the run went on to need them).
_RUN = """
import json, runpy, sys
out, LATE = sys.argv[1], {late!r}
seen = {{}}

def loaded():
    return sorted(n for n in LATE if sys.modules.get(n) is not None)

def hook(event, args):
    if event == "socket.connect" and "first" not in seen:
        seen["first"] = loaded()

sys.addaudithook(hook)
sys.argv = ["etl", *sys.argv[2:]]
try:
    runpy.run_module("etl", run_name="__main__")
finally:
    seen["end"] = loaded()
    with open(out, "w") as f:
        json.dump(seen, f)
"""


def _backfill(vendor: str, symbol: str, command: str = "backfill") -> list[str]:
    end = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    start = end - dt.timedelta(days=30)
    return [command, "--vendor", vendor, "--dataset", "klines", "--freq", "1d",
            "--symbols", symbol, "--start", str(start), "--end", str(end)]  # fmt: skip


def _etl(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ETL, *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=300, check=False)  # fmt: skip


@pytest.mark.parametrize(
    ("command", "vendor"),
    [("backfill", "infoway"), ("backfill", "stocktv"), ("fill-missing", "infoway")],
)
def test_first_request_goes_before_what_the_answer_needs(
    data_root: Path, command: str, vendor: str
) -> None:
    with running(vendor) as server:  # the real clock: the plan it reports stays fresh
        up = vendor.upper()
        env = etl_env(data_root, **{f"ETL_{up}_API_KEY": "first-request-key-1",
                                    f"ETL_{up}_BASE_URL": server.base_url})  # fmt: skip
        cwd = data_root.parent  # not a checkout: `python -m etl` imports from the working folder
        if vendor == "stocktv":  # its calls need the instruments map
            sync = _etl(env, cwd, "instruments", "sync", "--vendor", vendor, "--market", "US")
            assert sync.returncode == 0, sync.stderr
        first = _etl(env, cwd, *_backfill(vendor, "MSFT.US"))  # caches plan and calendars
        assert first.returncode == 0, first.stderr
        out = data_root.parent / "modules.json"
        code = _RUN.format(late=NOT_YET[command])
        proc = subprocess.run(
            [sys.executable, "-c", code, str(out), *_backfill(vendor, "AAPL.US", command)],
            env=env, cwd=cwd, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
    seen = json.loads(out.read_text())
    assert "first" in seen, "the backfill sent no request"
    assert seen["first"] == [], f"imported before the first request: {seen['first']}"
    # what the answer needed: the hook saw the run go on (a fill detects again with DuckDB)
    assert ("polars" if command == "backfill" else "duckdb") in seen["end"]
