"""The outer face of docs/contract.md, driven as users and cron drive it: real `etl` processes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import duckdb
import pytest

from tests.conftest import ETL, etl_env

TASK_FIELDS = {
    "id",
    "kind",
    "status",
    "progress",
    "total_count",
    "success_count",
    "error_count",
    "rows_written",
    "error_message",
    "errors",
    "params",
    "created_at",
    "started_at",
    "finished_at",
}
RANGE = ["--start", "2024-01-02", "--end", "2024-01-31"]


def etl(data_root: Path, *args: str, check: int | None = 0) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [*ETL, *args], capture_output=True, text=True, env=etl_env(data_root), timeout=120
    )
    if check is not None:
        assert proc.returncode == check, proc.stderr + proc.stdout
    return proc


def one_json(proc: subprocess.CompletedProcess[str]) -> object:
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    assert len(lines) == 1, f"stdout must hold exactly one JSON document: {proc.stdout!r}"
    return json.loads(lines[0])


# (arguments, a fragment the error must contain): each is refused with exit 2, nothing written
BAD_INPUT = [
    (["--symbols", "600000.sh", "--freq", "1d", *RANGE], "upper case"),  # lower-case symbol
    (["--symbols", "600000", "--freq", "1d", *RANGE], "CODE.EXCHANGE"),  # no exchange
    (["--symbols", "600000.XX", "--freq", "1d", *RANGE], "unknown exchange"),
    (["--symbols", "../../etc.SH", "--freq", "1d", *RANGE], "invalid symbol"),  # path attempt
    (["--symbols", "600000.SH", "--freq", "1mo", *RANGE], "1M"),  # monthly is 1M
    (
        ["--symbols", "600000.SH", "--freq", "1d", "--start", "2024-02-01", "--end", "2024-01-01"],
        "after",
    ),
    (
        ["--symbols", "600000.SH", "--freq", "1d", "--start", "2024/01/02", "--end", "2024-01-31"],
        "YYYY-MM-DD",
    ),
    (["--symbols", "@/nonexistent/list.txt", "--freq", "1d", *RANGE], "cannot read"),
    (["--symbols", "600000.SH", *RANGE], "--freq is required"),
    (["--symbols", "AAPL.XNAS", "--freq", "1d", *RANGE], "unknown exchange"),
]


@pytest.mark.parametrize(("args", "fragment"), BAD_INPUT)
def test_bad_input_exits_2_and_writes_nothing(
    data_root: Path, args: list[str], fragment: str
) -> None:
    proc = etl(data_root, "backfill", "--vendor", "sim", "--dataset", "klines", *args, check=2)
    assert fragment in proc.stderr
    assert not (data_root / "lake").exists()
    assert not (data_root / "tasks").exists()


def test_unknown_vendor_and_dataset_exit_2(data_root: Path) -> None:
    proc = etl(
        data_root,
        "backfill",
        "--vendor",
        "nosuch",
        "--dataset",
        "klines",
        "--freq",
        "1d",
        "--symbols",
        "600000.SH",
        *RANGE,
        check=2,
    )
    assert "unknown vendor" in proc.stderr
    proc = etl(data_root, "backfill", "--vendor", "sim", "--dataset", "ticks2", check=2)
    assert "invalid dataset" in proc.stderr


def test_bad_input_with_json_prints_an_error_document(data_root: Path) -> None:
    proc = etl(
        data_root,
        "backfill",
        "--vendor",
        "sim",
        "--dataset",
        "klines",
        "--freq",
        "1d",
        "--symbols",
        "bad",
        *RANGE,
        "--json",
        check=2,
    )
    doc = one_json(proc)
    assert isinstance(doc, dict) and doc["exit_code"] == 2
    assert doc["error"]["type"] == "BadInputError"


@pytest.mark.parametrize(
    ("args", "error_type"),
    [
        (["backfill", "--vendor", "sim", "--no-such-option"], "NoSuchOption"),
        (["tasks", "show", "not-a-number"], "BadParameter"),  # a nested group's argument
        (["sql"], "MissingParameter"),
        (["no-such-command"], "UsageError"),
    ],
)
def test_usage_error_with_json_prints_an_error_document(
    data_root: Path, args: list[str], error_type: str
) -> None:
    """Errors that the argument parser finds are refusals like any other: with ``--json``
    stdout holds one error document (the usage text stays on stderr), and nothing is written."""
    proc = etl(data_root, *args, "--json", check=2)
    doc = one_json(proc)
    assert isinstance(doc, dict) and doc["exit_code"] == 2
    assert doc["error"]["type"] == error_type and doc["error"]["message"]
    assert "Usage:" in proc.stderr
    assert not any(data_root.iterdir())


def test_backfill_then_query_every_way(data_root: Path) -> None:
    proc = etl(
        data_root,
        "backfill",
        "--vendor",
        "sim",
        "--dataset",
        "klines",
        "--freq",
        "1d",
        "--symbols",
        "600000.SH,000001.SZ",
        *RANGE,
        "--json",
    )
    task = one_json(proc)
    assert isinstance(task, dict)
    assert set(task) >= TASK_FIELDS
    assert (task["kind"], task["status"], task["progress"]) == ("backfill", "completed", 1.0)
    # 2024-01 has 22 SSE sessions; two symbols (either could be suspended a day in sim data)
    assert 40 <= task["rows_written"] <= 44
    assert task["params"]["symbols"] == ["600000.SH", "000001.SZ"]

    rows = one_json(etl(data_root, "sql", "SELECT count(*) AS n FROM klines", "--json"))
    assert rows == [{"n": task["rows_written"]}]
    csv_out = etl(
        data_root, "sql", "SELECT symbol FROM klines ORDER BY symbol LIMIT 1", "--format", "csv"
    ).stdout
    assert csv_out.splitlines() == ["symbol", "000001.SZ"]

    shown = one_json(etl(data_root, "tasks", "show", str(task["id"]), "--json"))
    assert isinstance(shown, dict) and shown["id"] == task["id"] and shown["status"] == "completed"
    listed = one_json(etl(data_root, "tasks", "list", "--json"))
    assert isinstance(listed, list) and listed[0]["id"] == task["id"]

    with duckdb.connect(str(data_root / "catalog.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM klines").fetchone() == (task["rows_written"],)

    again = one_json(
        etl(
            data_root,
            "backfill",
            "--vendor",
            "sim",
            "--dataset",
            "klines",
            "--freq",
            "1d",
            "--symbols",
            "600000.SH,000001.SZ",
            *RANGE,
            "--json",
        )
    )
    assert isinstance(again, dict) and again["rows_written"] == 0  # idempotent


def test_sql_refuses_writes_with_exit_2(data_root: Path) -> None:
    proc = etl(data_root, "sql", "DROP VIEW klines", check=2)
    assert "read-only" in proc.stderr


def test_vendors_lists_sim_configured(data_root: Path) -> None:
    docs = one_json(etl(data_root, "vendors", "--json"))
    assert isinstance(docs, list)
    sim = next(d for d in docs if d["vendor"] == "sim")
    assert sim["configured"] is True
    klines = next(d for d in sim["datasets"] if d["dataset"] == "klines")
    assert "1m" in klines["freqs"] and "SH" in klines["markets"]
    check = one_json(etl(data_root, "vendors", "check", "sim", "--json"))
    assert isinstance(check, dict) and check["success"] is True
    assert set(check) == {"success", "message", "response_time"}


def test_vendors_says_where_each_rate_comes_from(data_root: Path, tmp_path: Path) -> None:
    """A rate from etl.toml is reported as such, and an environment variable overrides it:
    the precedence of docs/contract.md "Configuration", as `etl vendors` shows it."""
    config = tmp_path / "etl.toml"
    config.write_text("[vendors.stocktv]\nrate = 2.5\n[vendors.mdapi]\nrate = 4\n")

    def rates(*extra: str, **env: str) -> dict[str, dict[str, object]]:
        proc = subprocess.run(
            [*ETL, "vendors", "--json", "--config", str(config), *extra],
            capture_output=True,
            text=True,
            env=etl_env(data_root, **env),
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        docs = json.loads(proc.stdout)
        return {d["vendor"]: d["rate_limit"] for d in docs}

    got = rates(ETL_MDAPI_RATE="0.5")
    assert got["stocktv"]["per_second"] == 2.5
    assert got["stocktv"]["from"] == "etl.toml [vendors.stocktv] rate"
    assert got["mdapi"]["per_second"] == 0.5 and got["mdapi"]["from"] == "ETL_MDAPI_RATE"
    assert got["amazingdata"]["from"] == "plan default"

    config.write_text('[vendors.stocktv]\nrate = "fast"\n')
    proc = etl(data_root, "vendors", "--config", str(config), check=3)
    assert "etl.toml [vendors.stocktv] rate must be a number" in proc.stderr


def test_compact_and_catalog_rebuild(data_root: Path) -> None:
    for start, end in (("2024-01-02", "2024-01-05"), ("2024-01-08", "2024-01-12")):
        etl(
            data_root,
            "backfill",
            "--vendor",
            "sim",
            "--dataset",
            "klines",
            "--freq",
            "1d",
            "--symbols",
            "600000.SH",
            "--start",
            start,
            "--end",
            end,
        )
    doc = one_json(etl(data_root, "compact", "--json"))
    assert isinstance(doc, dict)
    klines = next(d for d in doc["datasets"] if d["dataset"] == "klines")
    assert klines["files_removed"] == 2 and klines["files_added"] == 1
    (data_root / "catalog.duckdb").unlink()
    for manifest in (data_root / "lake" / ".manifest").rglob("*.json"):
        manifest.unlink()
    rebuilt = one_json(etl(data_root, "catalog", "rebuild", "--json"))
    assert isinstance(rebuilt, dict)
    assert rebuilt["datasets"]["klines"]["files"] == 1
    assert rebuilt["datasets"]["klines"]["rows"] == 9  # 4 + 5 sessions
    cov = one_json(etl(data_root, "sql", 'SELECT entity, "rows" FROM coverage', "--json"))
    assert cov == [{"entity": "600000.SH", "rows": 9}]


def test_missing_credentials_exit_3_and_leave_no_task(data_root: Path) -> None:
    # Regression: the backfill created a failed task record before checking the key.
    proc = etl(
        data_root,
        "backfill",
        "--vendor",
        "infoway",
        "--dataset",
        "klines",
        "--freq",
        "1d",
        "--symbols",
        "AAPL.US",
        *RANGE,
        check=3,
    )
    assert "ETL_INFOWAY_API_KEY" in proc.stderr
    assert not (data_root / "tasks").exists() or not list((data_root / "tasks").glob("*.json"))
    assert not (data_root / "lake" / "klines").exists()


def test_missing_login_names_every_variable_at_once(data_root: Path) -> None:
    """AmazingData needs a user name and a password: one refusal names both (it named the
    user name, and once that was set, refused again for the password)."""
    args = ["backfill", "--vendor", "amazingdata", "--dataset", "klines", "--freq", "1d"]
    args += ["--symbols", "600000.SH", *RANGE, "--json"]
    both = etl(data_root, *args, check=3)
    message = one_json(both)["error"]["message"]  # type: ignore[index]
    assert "ETL_AMAZINGDATA_USERNAME and ETL_AMAZINGDATA_PASSWORD" in message
    assert message in both.stderr
    one = subprocess.run(
        [*ETL, *args], capture_output=True, text=True, timeout=120,
        env=etl_env(data_root, ETL_AMAZINGDATA_USERNAME="someone"),
    )  # fmt: skip
    assert one.returncode == 3
    assert "set ETL_AMAZINGDATA_PASSWORD (or" in one.stderr and "USERNAME" not in one.stderr


SEL = ["--dataset", "klines", "--freq", "1d", "--symbols", "AAPL.US", *RANGE]


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["instruments", "sync", "--vendor", "nope"], 2),
        (["calendar", "sync", "--vendor", "nope", "--market", "SH", *RANGE], 2),
        (["calendar", "sync", "--vendor", "stocktv", "--market", "SH", *RANGE], 2),
        (["fill-missing", "--vendor", "nope", *SEL], 2),
        (["instruments", "sync", "--vendor", "infoway", "--market", "SH"], 3),
        (["calendar", "sync", "--vendor", "infoway", "--market", "SH", *RANGE], 3),
        (["backfill", "--vendor", "infoway", *SEL], 3),
        (["fill-missing", "--vendor", "infoway", *SEL], 3),
    ],
)
def test_refused_vendor_commands_write_nothing(data_root: Path, args: list[str], code: int) -> None:
    """An unknown vendor, one that does not serve the request (exit 2) or one without its
    key (exit 3) is refused before anything is written: the syncs and fill-missing made the
    catalog and the lake's folders first, so a data root that was empty no longer was."""
    proc = etl(data_root, *args, "--json", check=code)
    assert one_json(proc)["exit_code"] == code  # type: ignore[index]
    assert sorted(p.name for p in data_root.iterdir()) == []


@pytest.mark.parametrize("command", [["detect-missing"], ["fill-missing", "--vendor", "sim"]])
def test_a_market_without_instruments_is_refused_writing_nothing(
    data_root: Path, command: list[str]
) -> None:
    """--market needs the market's instruments: exit 2 naming the sync, with no task record,
    catalog or lake folder made first (detect-missing and fill-missing made all three)."""
    proc = etl(data_root, *command, "--dataset", "klines", "--freq", "1d", "--market", "US",
               *RANGE, "--json", check=2)  # fmt: skip
    assert "etl instruments sync" in one_json(proc)["error"]["message"]  # type: ignore[index]
    assert list(data_root.iterdir()) == []
