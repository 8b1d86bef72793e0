"""Nothing in the repository cites a file that is not in it.

A reader of the code, the help text or the docs must be able to follow every reference. A
regression test: docstrings once cited the team's outer contract and vendor specs by paths
outside the repository (``CONTRACT.md``, ``vendors/infoway.md``, ``../shared/...``); their
substance now lives in ``docs/``. Every ``*.md`` path named anywhere must exist in the
repository (from its root, or, in Markdown links, from the citing file's folder), and no path
may lead out of it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from etl.cli import app

ROOT = Path(__file__).resolve().parents[1]

# What is read: the package, tests, benchmarks, docs, job and schema files, and the top-level
# text files. Not data/, .venv/ or caches (not part of a clone).
SCANNED_DIRS = ("etl", "tests", "bench", "docs", "jobs", "schemas", ".ci")
SCANNED_TOP = ("README.md", "BENCHMARKS.md", "Makefile", "pyproject.toml")
SUFFIXES = {".py", ".md", ".toml", ".txt", ".cfg", ".ini", ""}

# A Markdown file named by path: `docs/vendors/infoway.md`, `README.md`, `../x.md`.
MD_PATH = re.compile(r"(?<![\w/.-])((?:\.{1,2}/)*[\w.-]+(?:/[\w.-]+)*\.md)\b")
# Paths that lead out of a clone, whatever the suffix.
OUTSIDE = re.compile(r"\.\./shared|/work/|\bshared/(?:vendors|seeds)|\bseeds/[\w-]+")


def _files() -> Iterator[Path]:
    for name in SCANNED_TOP:
        yield ROOT / name
    for folder in SCANNED_DIRS:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and path.suffix in SUFFIXES and "__pycache__" not in path.parts:
                yield path


def _problems(text: str, where: Path) -> list[str]:
    """Each reference in ``text`` (found in file ``where``) that leads outside the repo."""
    problems = [f"names {m.group(0)!r}, outside the repository" for m in OUTSIDE.finditer(text)]
    for match in MD_PATH.finditer(text):
        cited = match.group(1)
        candidates = [ROOT / cited, where.parent / cited]
        inside = [c for c in candidates if c.resolve().is_relative_to(ROOT)]
        if not any(c.is_file() for c in inside):
            problems.append(f"cites {cited!r}, which is not a file of the repository")
    return problems


# A section cited after a docs page: docs/vendors/infoway.md "Errors" (may wrap a line).
SECTION = re.compile(r'(docs/[\w/.-]+\.md)[,:]?\s+"([^"\n]+(?:\n[ #]*[^"\n]+)?)"')


def _missing_sections(text: str) -> list[str]:
    """Each ``docs/... "Section"`` citation whose page has no heading starting so."""
    missing = []
    for match in SECTION.finditer(text):
        page = ROOT / match.group(1)
        section = re.sub(r"\s+#?\s*", " ", match.group(2)).strip().lower()
        if not page.is_file():
            continue  # reported by _problems
        headings = [
            line.lstrip("#").strip().lower()
            for line in page.read_text(encoding="utf-8").splitlines()
            if line.startswith("#")
        ]
        if not any(h.startswith(section) for h in headings):
            missing.append(f"cites section {match.group(2)!r} of {match.group(1)}, which has none")
    return missing


def _help_pages(command: Any, path: list[str]) -> Iterator[tuple[str, str]]:
    """Every ``--help`` page, rendered as a user sees it (wide, so no path wraps)."""
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, (path, result.output)
    yield " ".join(["etl", *path]), result.output
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from _help_pages(sub, [*path, name])


# -- the check itself must be able to fail ----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "bad"),
    [
        ('"""Exit codes as CONTRACT.md fixes them."""', True),  # the outer contract, outside
        ("# per vendors/infoway.md", True),  # the team's spec folder, outside
        ("see ../shared/vendors/mdapi.md", True),
        ("payload of seeds/infoway-hk-stocks-guide.md 4.1", True),  # vendor texts, outside
        ("rules (stocktv.md)", True),  # a bare name that is no file at the root
        ("per docs/vendors/infoway.md", False),
        ("figures in BENCHMARKS.md", False),
        ("the seed of the synthetic market", False),  # the word alone is no path
    ],
)
def test_the_check_tells_inside_from_outside(text: str, bad: bool) -> None:
    assert bool(_problems(text, ROOT / "etl" / "x.py")) is bad


def test_a_cited_section_must_be_a_heading_of_the_page() -> None:
    assert not _missing_sections('per docs/vendors/infoway.md "Errors"')
    assert not _missing_sections('(docs/vendors/stocktv.md\n# "Capabilities")')
    assert _missing_sections('per docs/vendors/infoway.md "Faults the emulator must inject"')


def test_markdown_links_resolve_from_the_citing_file() -> None:
    assert not _problems("[infoway.md](infoway.md)", ROOT / "docs" / "vendors" / "README.md")
    assert _problems("[infoway.md](infoway.md)", ROOT / "docs" / "README.md")


# -- the repository ---------------------------------------------------------------------------


def test_no_file_cites_a_file_outside_the_repository() -> None:
    found = []
    for path in _files():
        text = path.read_text(encoding="utf-8", errors="replace")
        rel = path.relative_to(ROOT)
        if rel == Path("tests/test_references.py"):
            continue  # its own examples of what is refused
        found += [f"{rel}: {p}" for p in [*_problems(text, path), *_missing_sections(text)]]
    assert not found, "references outside the repository:\n" + "\n".join(found)


def test_no_help_page_cites_a_file_outside_the_repository() -> None:
    command = typer.main.get_command(app)
    pages = list(_help_pages(command, []))
    assert len(pages) > 10  # every subcommand was reached, not just the top page
    found = [f"{name} --help: {p}" for name, text in pages for p in _problems(text, ROOT)]
    assert not found, "\n".join(found)
