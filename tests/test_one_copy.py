"""One copy each of locks, atomic writes, pid checks, time formatting and redaction (issue 10,
item 8): a second copy is what this test looks for, by the calls only a copy would make."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "etl"

# (what, the one module allowed to do it, a pattern only a copy would contain)
OWNERS = [
    ("file locks", "locks.py", re.compile(r"\bfcntl\.flock\(")),
    ("pid checks", "locks.py", re.compile(r"\bos\.kill\([^)]*,\s*0\)")),
    (
        "atomic replace",
        "fsutil.py",
        re.compile(r"\.replace\((self\.)?(path|target)\)|os\.replace\("),
    ),
    # (polars expressions, `.dt.strftime` / `.dt.to_string`, format whole columns: no copies)
    (
        "ISO instants",
        "timefmt.py",
        re.compile(r"""replace\(["']\+00:00["']|(?<!dt\.)strftime\(["']%Y-%m-%dT"""),
    ),
    ("secret masking", "vendors/redact.py", re.compile(r"""\.replace\(\s*secret\s*,""")),
]
# Emulators play the vendor's side, not ours: their wire formats are theirs.
SKIP = ("emulators/",)


@pytest.mark.parametrize(("what", "owner", "pattern"), OWNERS, ids=[o[0] for o in OWNERS])
def test_only_the_owner_does_it(what: str, owner: str, pattern: re.Pattern[str]) -> None:
    offenders = [
        f"{rel}:{n}: {line.strip()}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if not (rel := path.relative_to(PACKAGE).as_posix()).startswith(SKIP) and rel != owner
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == [], f"{what} belong in etl/{owner}"
