"""The README's fenced code blocks, and which of them the README test runs.

The rules (the README's "Development" section says the same to authors):

- ```` ```sh ```` and ```` ```python ```` blocks are examples: all of them run, in README
  order, as written, in one shell session (see :mod:`tests.readme.session`).
- A ```` ```sh ```` or ```` ```python ```` block that cannot run as written says so in its
  info string, with the reason: ```` ```sh no-run: needs a real vendor key ````. The test
  summary lists it with that reason, so the exception stays visible.
- Other blocks are not commands: ```` ```text ````, ```` ```ini ````, ```` ```json ```` and
  blocks without a language (file trees, a crontab line, a systemd unit). ```` ```toml ````
  blocks must parse as TOML. A line of such a block that starts like a command
  (``etl ...``, ``duckdb ...``, ``$ ...``) is an error: commands are ```` ```sh ````.
- Any other language (```` ```bash ````, ```` ```console ````, ```` ```py ````, ...) is an
  error, so a command cannot slip out of the test under another name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from markdown_it import MarkdownIt

EXECUTED: Final = frozenset({"sh", "python"})
NOT_COMMANDS: Final = frozenset({"", "text", "ini", "json", "toml"})
NO_RUN: Final = re.compile(r"^no-run:\s*(?P<reason>\S.*)$")
# A line that a user would type at a prompt.
COMMAND_LINE: Final = re.compile(r"^\s*(\$\s|(etl|duckdb|make|python3?|curl|pip)\s)")


class BlockError(ValueError):
    """A block the rules above do not allow; the message names its line and the fix."""


@dataclass(frozen=True)
class Block:
    lang: str  # the first word of the info string
    text: str
    line: int  # 1-based line of the opening fence in the README
    no_run: str | None = None  # the reason, for a block marked ``no-run: ...``

    @property
    def runs(self) -> bool:
        return self.lang in EXECUTED and self.no_run is None

    @property
    def label(self) -> str:
        return f"README.md:{self.line} {self.lang}"


def parse(markdown: str) -> list[Block]:
    """Every fenced block of ``markdown``, checked against the rules above."""
    blocks = []
    for token in MarkdownIt("commonmark").parse(markdown):
        if token.type != "fence":
            continue
        assert token.map is not None
        line = token.map[0] + 1
        lang, _, rest = token.info.strip().partition(" ")
        if lang not in EXECUTED | NOT_COMMANDS:
            raise BlockError(
                f"README.md:{line}: a ```{lang} block: write examples as ```sh or ```python "
                "(the README test runs them), or text that is no command as ```text"
            )
        no_run = None
        if rest.strip():
            match = NO_RUN.match(rest.strip())
            if lang not in EXECUTED or match is None:
                raise BlockError(
                    f"README.md:{line}: info string {token.info.strip()!r}: the only flag is "
                    "'no-run: <why it cannot run as written>', on a ```sh or ```python block"
                )
            no_run = match.group("reason")
        if lang in ("", "text"):
            for offset, text in enumerate(token.content.splitlines(), start=1):
                if COMMAND_LINE.match(text):
                    raise BlockError(
                        f"README.md:{line + offset}: {text.strip()!r} is a command in a block "
                        "the README test does not run: write it as ```sh (or ```sh no-run: "
                        "<why it cannot run as written>)"
                    )
        blocks.append(Block(lang, token.content, line, no_run))
    return blocks


def readme_blocks(root: Path) -> list[Block]:
    return parse((root / "README.md").read_text(encoding="utf-8"))
