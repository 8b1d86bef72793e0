"""A newcomer's clone, right after ``make demo``: the README test's starting point.

(Not a conftest.py: a second ``conftest`` module would shadow ``tests/conftest.py`` for tests
that import from it by that name.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# What a clone's root holds that the examples may read (``etl`` itself is imported from
# REPO through PYTHONPATH, so the tree under test is what runs).
COPIED = ("README.md", "BENCHMARKS.md", "Makefile", "pyproject.toml", "jobs", "schemas", "docs")
BLOCK_TIMEOUT = 120.0  # seconds: a block still running then is taken for a daemon


def user_env(venv: Path, home: Path) -> dict[str, str]:
    """The environment of a new user's terminal: this machine's, without the virtualenv on
    the PATH (the README's own line puts it there), without any ETL_* setting, and with a
    home of its own (``etl serve`` keeps its local key under ``~/.config``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETL_") and k != "VIRTUAL_ENV"}
    path = [p for p in env.get("PATH", "").split(os.pathsep) if Path(p) != venv / "bin"]
    env["PATH"] = os.pathsep.join(path or ["/usr/bin", "/bin"])
    env["HOME"] = str(home)
    env["PYTHONPATH"] = str(REPO)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["COLUMNS"] = "120"
    return env


def project_venv() -> Path:
    """The virtualenv running the tests: the one ``make demo`` made (``.venv``)."""
    prefix = Path(sys.prefix)
    if prefix == Path(sys.base_prefix) or not (prefix / "bin" / "activate").is_file():
        pytest.fail("the README test runs in the project's virtualenv (make test uses .venv)")
    return prefix


@dataclass(frozen=True)
class Clone:
    root: Path
    home: Path
    make_demo_output: str


def make_clone(root: Path, home: Path, venv: Path) -> Clone:
    """A clone's root after ``make demo``: the repository's files, ``.venv``, and ``data/``
    holding the demo lake, built by the Makefile's own ``demo`` target (``-o`` keeps make from
    reinstalling the shared virtualenv into the copy)."""
    make = shutil.which("make")
    if make is None:
        pytest.fail("the README test needs make, as `make demo` does")
    for name in COPIED:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, root / name)
    (root / ".venv").symlink_to(venv)
    (root / "data").mkdir()
    demo = subprocess.run(
        [make, "--no-print-directory", "-o", ".venv/.installed", "demo"],
        cwd=root,
        env=user_env(venv, home),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert demo.returncode == 0, f"make demo failed:\n{demo.stdout[-3000:]}\n{demo.stderr[-3000:]}"
    return Clone(root, home, demo.stdout)
