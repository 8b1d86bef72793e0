"""The README test's own machinery can fail: block rules, failures found, state kept, daemons."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.readme.blocks import Block, BlockError, parse
from tests.readme.session import ReadmeSession

FENCE = "```"


def md(*blocks: str) -> str:
    return "# title\n\n" + "\n".join(blocks)


# -- which blocks run -------------------------------------------------------------------------


def test_sh_and_python_run_and_other_blocks_are_text() -> None:
    blocks = parse(
        md(
            f"{FENCE}sh\netl sql 'SELECT 1'\n{FENCE}\n",
            f"{FENCE}python\nimport etl\n{FENCE}\n",
            f"{FENCE}\ndata/\n  lake/\n{FENCE}\n",
            f'{FENCE}toml\nname = "x"\n{FENCE}\n',
            f"{FENCE}ini\n[Unit]\n{FENCE}\n",
            f"{FENCE}text\n30 17 * * 1-5  etl jobs run x\n{FENCE}\n",
        )
    )
    assert [(b.lang, b.runs) for b in blocks] == [
        ("sh", True),
        ("python", True),
        ("", False),
        ("toml", False),
        ("ini", False),
        ("text", False),
    ]
    assert blocks[0].line == 3  # the opening fence's line, as an editor shows it


def test_no_run_needs_a_reason_and_is_kept_visible() -> None:
    (block,) = parse(md(f"{FENCE}sh no-run: needs a real vendor key\netl vendors check x\n{FENCE}"))
    assert not block.runs
    assert block.no_run == "needs a real vendor key"
    with pytest.raises(BlockError, match="no-run: <why"):
        parse(md(f"{FENCE}sh no-run\netl scheduler\n{FENCE}"))
    with pytest.raises(BlockError, match="no-run"):
        parse(md(f"{FENCE}toml no-run: why\nx = 1\n{FENCE}"))


@pytest.mark.parametrize("text", ["etl serve", "$ etl sql 'SELECT 1'", "duckdb data/x.duckdb"])
def test_a_command_in_a_text_block_is_refused(text: str) -> None:
    with pytest.raises(BlockError, match=r"README.md:4: .* is a command"):
        parse(md(f"{FENCE}\n{text}\n{FENCE}"))
    parse(md(f"{FENCE}\netl/cli.py    the command line\n{FENCE}"))  # a file tree is text


@pytest.mark.parametrize("lang", ["bash", "console", "shell", "py", "zsh"])
def test_commands_cannot_hide_under_another_language(lang: str) -> None:
    with pytest.raises(BlockError, match=f"README.md:3: a {FENCE}{lang} block"):
        parse(md(f"{FENCE}{lang}\netl demo\n{FENCE}"))


# -- running them -----------------------------------------------------------------------------


@pytest.fixture
def session(tmp_path: Path) -> Iterator[ReadmeSession]:
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    cwd = tmp_path / "clone"
    cwd.mkdir()
    run = ReadmeSession(cwd, env, tmp_path / "blocks", timeout=60)
    yield run
    run.close()


def sh(text: str, line: int = 10) -> Block:
    return Block("sh", text, line)


def test_a_failing_command_is_reported_at_its_readme_line(session: ReadmeSession) -> None:
    result = session.run(0, sh("echo one\nfalse\necho three\nls /nonexistent | cat\n", line=40))
    assert result.failures == [
        "README.md:42: `false` exited 1",
        "README.md:44: `ls /nonexistent | cat` exited 2",  # pipefail: as a user sees it
    ]
    assert result.stdout.split() == ["one", "three"]  # like pasted text, the block went on
    assert "README.md:42" in result.report()


def test_state_carries_from_block_to_block(session: ReadmeSession) -> None:
    first = session.run(
        0, sh("export GREETING=hello\nmkdir sub && cd sub\nsleep 600 &\necho $! > ../bg.pid\n")
    )
    assert not first.failures, first.report()
    second = session.run(1, sh('test "$GREETING" = hello\ntest "$(basename $PWD)" = sub\n'))
    assert not second.failures, second.report()
    pid = int((session.cwd / "bg.pid").read_text())
    assert _running(pid)  # the background job outlived its block
    session.close()
    assert not _running(pid)  # and ended with the session


def test_a_python_block_failure_names_the_readme_line(session: ReadmeSession) -> None:
    result = session.run(0, Block("python", "x = 1\nraise SystemExit(x / 0)\n", 20))
    assert result.failures == ["python exited 1"]
    assert "README.md:22" in result.stderr


def test_a_block_that_never_ends_is_killed_and_the_rest_not_run(tmp_path: Path) -> None:
    run = ReadmeSession(tmp_path, {"PATH": os.environ["PATH"]}, tmp_path / "b", timeout=1.0)
    try:
        stuck = run.run(0, sh("sleep 600\n", line=7))
        after = run.run(1, sh("echo never\n", line=20))
    finally:
        run.close()
    assert stuck.failures and "still running after 1 s" in stuck.failures[0]
    assert "start it in the background with `&`" in stuck.failures[0].lower()
    assert after.not_run == "the session ended at README.md:7 sh (still running after 1 s)"


def test_exit_in_a_block_ends_the_session(session: ReadmeSession) -> None:
    result = session.run(0, sh("exit 3\n"))
    assert result.failures and "the shell exited with 3" in result.failures[0]
    assert session.run(1, sh("true\n")).not_run


def _running(pid: int) -> bool:
    """Alive and not a zombie (a killed child waits for its reaper a moment)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"
