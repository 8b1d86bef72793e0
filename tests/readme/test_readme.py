"""Every example of the README runs, as written, on a clone right after ``make demo``.

A regression test: a newcomer pasting the README got ``etl: command not found`` (nothing said
how ``etl`` gets on the PATH), a ``duckdb`` shell that could not open the catalog, and a pandas
example that needed a dev-only dependency. The ```sh and ```python blocks run in README order
in one shell session (see :mod:`tests.readme.session` and the rules in
:mod:`tests.readme.blocks`), as one test: they share the session's state, so they must not be
split between pytest-xdist workers. Its failure lists every failing block with its README
line; blocks marked ``no-run: <why>`` and slow blocks are listed in the test summary.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib

import pytest

from tests.readme.blocks import EXECUTED, Block, readme_blocks
from tests.readme.clone import (
    BLOCK_TIMEOUT,
    REPO,
    make_clone,
    project_venv,
    user_env,
)
from tests.readme.session import ReadmeSession

SLOW_BLOCK = 15.0  # seconds: a block slower than this is named in the test summary

BLOCKS = readme_blocks(REPO)
EXAMPLES = [(n, b) for n, b in enumerate(BLOCKS) if b.lang in EXECUTED]


def test_every_readme_example_runs(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> None:
    venv = project_venv()
    clone = make_clone(tmp_path_factory.mktemp("clone"), tmp_path_factory.mktemp("home"), venv)
    # the line make demo tells a newcomer to run is the README's, word for word
    (activate,) = [b.text.strip() for b in BLOCKS if b.runs and "activate" in b.text]
    assert activate in [line.strip() for line in clone.make_demo_output.splitlines()]

    env = user_env(venv, clone.home)
    session = ReadmeSession(clone.root, env, tmp_path_factory.mktemp("blocks"), BLOCK_TIMEOUT)
    reports, notes = [], []
    try:
        for number, block in EXAMPLES:
            if block.no_run:
                notes.append(f"{block.label}: not run (no-run: {block.no_run})")
                continue
            result = session.run(number, block)
            if result.seconds > SLOW_BLOCK:
                notes.append(f"{block.label}: {result.seconds:.1f} s, over {SLOW_BLOCK:.0f} s")
            if result.failures or result.not_run:
                reports.append(result.report())
    finally:
        session.close()
        for note in notes:
            request.node.user_properties.append(("readme_note", note))
    assert not reports, "README examples that fail:\n\n" + "\n\n".join(reports)


def test_the_readme_has_examples_that_run() -> None:
    runs = [b for _, b in EXAMPLES if b.runs]
    # the line that puts etl on the PATH comes before the first example that calls etl
    first_etl = next(i for i, b in enumerate(runs) if "etl " in b.text)  # StopIteration: none
    assert any(".venv/bin/activate" in b.text for b in runs[: first_etl + 1])


def test_what_the_examples_import_is_a_runtime_dependency() -> None:
    # `pip install .` gives a user what the README imports (pandas was once dev-only)
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    runtime = {_dist_name(req) for req in project["dependencies"]}
    providers = importlib.metadata.packages_distributions()
    imported = {
        name.split(".")[0]
        for _, block in EXAMPLES
        if block.lang == "python"
        for node in ast.walk(ast.parse(block.text))
        for name in (
            [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else []
        )
    }
    third_party = imported - set(sys.stdlib_module_names) - {"etl", ""}
    assert third_party, "no python example imports anything: is the check looking?"
    for module in sorted(third_party):
        dists = {_dist_name(d) for d in providers.get(module, [module])}
        assert dists & runtime, f"the README imports {module}, not a runtime dependency"


def _dist_name(requirement: str) -> str:
    name = re.match(r"[A-Za-z0-9_.-]+", requirement)
    assert name, requirement
    return re.sub(r"[-_.]+", "-", name.group(0)).lower()


@pytest.mark.parametrize(
    "block", [b for b in BLOCKS if b.lang == "toml"], ids=lambda b: f"README.md:{b.line}"
)
def test_toml_blocks_parse(block: Block) -> None:
    tomllib.loads(block.text)
