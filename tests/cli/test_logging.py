"""Logging of every command: -v, --log-file, --version, redaction, and what a bug prints."""

from __future__ import annotations

import logging
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer

from etl import __version__
from etl.commands import logs
from etl.commands.common import report_unexpected, runtime
from tests.conftest import ETL, etl_env


@pytest.fixture(autouse=True)
def _fresh_options() -> Iterator[None]:
    """Each test starts from the defaults and leaves no handler of ours behind."""
    saved = logs.OPTIONS
    logs.OPTIONS = logs.LogOptions()
    yield
    logs.OPTIONS = saved
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "etl_installed", False):
            root.removeHandler(handler)
            handler.close()


def _ours() -> list[logging.Handler]:
    return [h for h in logging.getLogger().handlers if getattr(h, "etl_installed", False)]


def test_setup_twice_in_one_process_keeps_one_handler(capsys: pytest.CaptureFixture[str]) -> None:
    # Regression: the second call raised UnboundLocalError (`handler` was set only on the first).
    logs.setup_logging(secrets=["first-secret"])
    logs.setup_logging(secrets=["second-secret"])
    assert len(_ours()) == 1
    logging.getLogger("etl.test").warning("keys first-secret and second-secret")
    err = capsys.readouterr().err
    assert "second-secret" not in err
    assert "keys first-secret and ***" in err  # the filter follows the latest settings


def test_log_file_gets_debug_lines_and_secrets_are_masked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "logs" / "etl.log"
    logs.set_log_options(log_file=target)
    logs.setup_logging(secrets=["s3cr3t-token"])
    logs.setup_logging(secrets=["s3cr3t-token"])  # again: still one file handler
    log = logging.getLogger("etl.test")
    log.debug("debug line with s3cr3t-token")
    log.warning("warning line")
    for handler in _ours():
        handler.flush()
    text = target.read_text()
    assert "debug line with ***" in text
    assert text.count("warning line") == 1
    err = capsys.readouterr().err
    assert "debug line" not in err  # stderr stays at warnings without -v
    assert "warning line" in err


def test_verbose_counts_add_up(capsys: pytest.CaptureFixture[str]) -> None:
    logs.set_log_options(verbose=1)
    logging.getLogger("etl.test").info("info shown at -v")
    logging.getLogger("etl.test").debug("debug hidden at -v")
    logs.set_log_options(verbose=1)  # `etl -v backfill -v`: -vv
    logging.getLogger("etl.test").debug("debug shown at -vv")
    err = capsys.readouterr().err
    assert "info shown at -v" in err
    assert "debug hidden" not in err
    assert "debug shown at -vv" in err


def test_unexpected_error_prints_one_line_naming_its_traceback(
    data_root: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ETL_INFOWAY_API_KEY", "key-that-must-not-leak")
    with pytest.raises(typer.Exit) as exit_info, runtime(data_root, None, False):
        raise ZeroDivisionError("boom with key-that-must-not-leak")
    assert exit_info.value.exit_code == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("etl: error: unexpected ZeroDivisionError: boom")
    assert "key-that-must-not-leak" not in lines[0]
    found = re.search(r"traceback in (\S+)\)$", lines[0])
    assert found, lines[0]
    path = Path(found[1])
    assert path.parent == data_root / "logs"
    text = path.read_text()
    assert "Traceback (most recent call last)" in text
    assert "ZeroDivisionError: boom with ***" in text
    assert "key-that-must-not-leak" not in text


def test_report_unexpected_without_a_data_root_uses_the_log_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "run.log"
    logs.set_log_options(log_file=target)
    try:
        raise KeyError("missing")
    except KeyError as exc:
        code = report_unexpected(exc)
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"etl: error: unexpected KeyError: 'missing' (a bug; traceback in {target})"]
    assert "KeyError: 'missing'" in target.read_text()


def _etl(data_root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ETL, *args], capture_output=True, text=True, env=etl_env(data_root), timeout=120
    )


def test_version_and_log_options_on_the_command_line(data_root: Path) -> None:
    proc = _etl(data_root, "--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"etl {__version__}"
    before = data_root / "before.log"
    after = data_root / "after.log"
    # The options work before the command's name and after it.
    proc = _etl(data_root, "--log-file", str(before), "tasks", "list", "--json")
    assert proc.returncode == 0, proc.stderr
    proc = _etl(data_root, "tasks", "list", "-vv", "--log-file", str(after), "--json")
    assert proc.returncode == 0, proc.stderr
    for path in (before, after):
        assert f"data root {data_root}" in path.read_text()
    assert f"data root {data_root}" in proc.stderr  # -vv: debug lines on stderr too
    assert proc.stdout.strip() == "[]"  # --json: stdout holds the document only
