"""Start-up of the command line: `etl --help` answers within 0.3 s, and no command module
imports a heavy library before its command runs (etl/cli.py, "Registering a new command").

Regression: `etl --help` took 1.4 s (every command module, and through them polars, duckdb,
pyarrow, httpx and exchange_calendars, was imported to draw the command list).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import ETL, etl_env

# Each costs 0.05-0.5 s to import; none may load before a command's body runs.
HEAVY = (
    "polars",
    "duckdb",
    "pyarrow",
    "httpx",
    "numpy",
    "pandas",
    "exchange_calendars",
    "apscheduler",
    "sqlalchemy",
    "websockets",
)
HELP_BUDGET_S = 0.3  # issue 10: `etl --help` at most 0.3 s

_PROBE = """
import json, sys
import etl.cli as cli
before = sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)
helps, loaded = {}, {}
for name in (sys.argv[1:] or []):
    command = cli.load_command(name)
    helps[name] = " ".join((command.help or "").split("\\n\\n")[0].split())
    loaded[name] = sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)
print(json.dumps({"cli": before, "helps": helps, "loaded": loaded}))
"""


def _probe(*names: str) -> dict[str, object]:
    code = f"HEAVY = {HEAVY!r}\n{_PROBE}"
    proc = subprocess.run(
        [sys.executable, "-c", code, *names],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return dict(json.loads(proc.stdout))


def test_import_cli_loads_no_heavy_module() -> None:
    assert _probe()["cli"] == []


def test_every_command_loads_without_heavy_modules_and_matches_its_listing() -> None:
    from etl.cli import COMMANDS

    found = _probe(*COMMANDS)
    loaded: dict[str, list[str]] = found["loaded"]  # type: ignore[assignment]
    heavy = {name: mods for name, mods in loaded.items() if mods}
    assert not heavy, f"command modules import heavy libraries at import time: {heavy}"
    listed = {name: " ".join(text.split()) for name, (_, text) in COMMANDS.items()}
    assert found["helps"] == listed, "COMMANDS' help must be each command's first paragraph"


def _run_timed(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """CPU seconds (user + system) and wall seconds of one child process. CPU time is what
    start-up costs; wall time also counts waiting for a core on a busy machine."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    proc = subprocess.run(args, env=env, capture_output=True, timeout=60, check=False)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"backfill" in proc.stdout
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return cpu, wall


def test_help_starts_within_budget(tmp_path: Path) -> None:
    runs = [_run_timed([*ETL, "--help"], etl_env(tmp_path)) for _ in range(5)]
    cpu, wall = min(r[0] for r in runs), min(r[1] for r in runs)
    # The best of five: other work on the machine only ever adds time.
    assert cpu <= HELP_BUDGET_S, f"etl --help used {cpu:.3f} s of CPU: {runs}"
    # Wall time waits for a free core too; 3x covers a machine running two other jobs.
    assert wall <= 3 * HELP_BUDGET_S, f"etl --help took {wall:.3f} s: {runs}"


# What a one-symbol `etl sql` may import: the catalog session, not the vendors' stack.
SQL_FORBIDDEN = ("pandas", "exchange_calendars", "httpx", "websockets", "apscheduler", "polars",
                 "pyarrow", "numpy")  # fmt: skip
SQL_BUDGET_S = 0.5  # issue 13: a one-symbol query from a shell, process start to output

_SQL_PROBE = """
import json, sys
import etl.cli as cli
sys.argv = ["etl", *sys.argv[1:]]
try:
    cli.main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
heavy = sorted({m.split(".")[0] for m, v in sys.modules.items() if v is not None} & set(FORBIDDEN))
sys.stderr.write("\\n" + json.dumps({"code": code, "heavy": heavy}) + "\\n")
"""


def _sql_root(tmp_path: Path) -> Path:
    import datetime as dt

    from etl.lake import Lake
    from tests.conftest import kline_rows

    root = tmp_path / "data"
    root.mkdir()
    days = [dt.date(2024, 1, 2) + dt.timedelta(days=i) for i in range(30)]
    Lake(root).write("klines", kline_rows(["600000.SH", "000001.SZ"], days),
                     now=dt.datetime.now(dt.UTC))  # fmt: skip
    # The first query of a new data root writes the catalog's zero-row anchor files (pyarrow
    # loads pandas for that, once); the queries measured here are the ones after it.
    first = subprocess.run([*ETL, "sql", "SELECT 1"], env=etl_env(root), capture_output=True,
                           timeout=120, check=False)  # fmt: skip
    assert first.returncode == 0, first.stderr
    return root


def test_sql_loads_no_vendor_stack(tmp_path: Path) -> None:
    """Regression: `etl sql` built a Runtime that imported every vendor adapter, and through
    them pandas and exchange_calendars: 1.2 s for a one-symbol query."""
    root = _sql_root(tmp_path)
    code = f"FORBIDDEN = {SQL_FORBIDDEN!r}\n{_SQL_PROBE}"
    query = "SELECT count(*) FROM klines WHERE symbol = '600000.SH'"
    proc = subprocess.run(
        [sys.executable, "-c", code, "sql", query, "--format", "csv"],
        capture_output=True, text=True, timeout=120, env=etl_env(root),
    )  # fmt: skip
    found = json.loads(proc.stderr.strip().splitlines()[-1])
    assert found["code"] == 0 and proc.stdout.split() == ["count_star()", "30"], proc
    assert found["heavy"] == [], f"etl sql imported {found['heavy']}"


def test_sql_one_symbol_query_within_budget(tmp_path: Path) -> None:
    root = _sql_root(tmp_path)
    query = "SELECT max(close) AS top FROM klines WHERE symbol = '600000.SH' AND freq = '1d'"
    runs = []
    for _ in range(5):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        began = time.perf_counter()
        proc = subprocess.run([*ETL, "sql", query, "--format", "csv"], env=etl_env(root),
                              capture_output=True, timeout=60, check=False)  # fmt: skip
        wall = time.perf_counter() - began
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        runs.append((cpu, wall))
        assert proc.returncode == 0 and proc.stdout.split()[0] == b"top", proc.stderr
    # The best of five, in CPU time: what start-up costs, whatever else the machine runs
    # (a loaded machine stretches wall time; BENCHMARKS.md has the idle figure, 0.45 s).
    # 2x the budget still fails the regression it guards (1.2 s with the vendors imported).
    assert min(cpu for cpu, _ in runs) <= 2 * SQL_BUDGET_S, runs
    assert min(wall for _, wall in runs) <= 6 * SQL_BUDGET_S, runs
