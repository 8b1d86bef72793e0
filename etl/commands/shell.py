"""``etl duckdb``: the DuckDB shell on this data root's ``catalog.duckdb``, read-only.

Why a command for it: the shell must be one that opens the catalog. The package's duckdb
library ships no shell, and the newest shell on PyPI (``duckdb-cli``, a dependency of etl) is
older than the library; the catalog is written for it (:mod:`etl.catalog.build`). This command
takes the data root from ``--data-dir`` / ``ETL_DATA_DIR`` / ``etl.toml`` like every other,
brings the catalog up to date, and opens it ``-readonly``, so the shell cannot change it.
Arguments after the options go to the shell as they are (``-c "SELECT ..."``, ``-csv``).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import typer

from etl.commands.common import ConfigOpt, DataDirOpt, runtime
from etl.errors import ConfigError

__all__ = ["find_shell", "register"]


def find_shell() -> Path:
    """The ``duckdb`` shell installed beside this Python (the project's), else one on PATH."""
    beside = Path(sys.executable).parent / "duckdb"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("duckdb")
    if found is None:
        raise ConfigError(
            "no duckdb shell is installed: `pip install duckdb-cli` (a dependency of etl) "
            "puts one beside etl"
        )
    return Path(found)


def duckdb_command(
    ctx: typer.Context,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Open catalog.duckdb in the DuckDB shell, read-only (arguments go to the shell).

    The catalog of the data root, brought up to date first; the shell is the one installed
    with etl. Without -c it is interactive; -c "SQL", -csv, -json and the rest are the shell's.
    """
    from etl.catalog import ensure_catalog
    from etl.dataroot import DataRoot

    argv: list[str] = []
    with runtime(data_dir, config, False) as (rt, _out):
        shell = find_shell()
        ensure_catalog(rt.root, now=rt.clock())
        argv = [str(shell), "-readonly", str(DataRoot(rt.root).catalog), *ctx.args]
    sys.stdout.flush()
    sys.stderr.flush()
    # Replace this process: the shell gets the terminal, Ctrl-C and the exit code unshared.
    os.execv(argv[0], argv)  # noqa: S606 (the duckdb shell found above, no system shell)


def register(app: typer.Typer) -> None:
    app.command(
        "duckdb",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )(duckdb_command)
