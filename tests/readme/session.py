"""One bash session that runs README blocks as a user pasting them into one terminal would.

Blocks run in README order in the same shell, so what one block sets up the next can use: the
``source .venv/bin/activate`` line, ``export``-ed variables, the working directory, and
processes started in the background with ``&`` (an emulator, a server), which stay up until
the session ends and are then stopped with their process group.

Each block runs exactly as written: a ``sh`` block is ``source``-d from a file holding its
text, a ``python`` block runs as ``python FILE`` (the ``python`` the session's PATH finds).
Its standard input is /dev/null, its output goes to files. Every command of a sh block that
fails (where ``set -e`` would stop) is recorded by an ERR trap with its line, and the block
goes on, as pasted text would; the block fails if any did. A block that does not finish
within its time limit is killed with the whole session, and the blocks after it are reported
as not run.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from tests.readme.blocks import Block

# Reads one control line at a time from the harness, on its standard input.
DRIVER: Final = r"""
set -E -o pipefail
__readme_dir=$1
__readme_block() {
  trap 'echo "$? $LINENO ${BASH_SOURCE[0]}" >> "$__readme_dir/$1.failed"' ERR
  if [ "$2" = sh ]; then
    source "$__readme_dir/$1.sh" < /dev/null > "$__readme_dir/$1.out" 2> "$__readme_dir/$1.err"
  else
    python "$__readme_dir/$1.py" < /dev/null > "$__readme_dir/$1.out" 2> "$__readme_dir/$1.err"
  fi
  trap - ERR
  echo "done $1"
}
while IFS= read -r __readme_line; do eval "$__readme_line"; done
"""


@dataclass
class BlockResult:
    block: Block
    seconds: float = 0.0
    stdout: str = ""
    stderr: str = ""
    failures: list[str] = field(default_factory=list)
    not_run: str | None = None

    def report(self) -> str:
        """What went wrong, for an assertion message: where, what, and the block's output."""
        if self.not_run:
            return f"{self.block.label}: not run: {self.not_run}"
        lines = [f"{self.block.label}: {f}" for f in self.failures]
        lines += ["--- stdout (tail)", *self.stdout.splitlines()[-15:]]
        lines += ["--- stderr (tail)", *self.stderr.splitlines()[-25:]]
        return "\n".join(lines)


class ReadmeSession:
    """A bash process in its own process group, fed one block at a time."""

    def __init__(self, cwd: Path, env: dict[str, str], workdir: Path, timeout: float) -> None:
        self.cwd = cwd
        self.env = env
        self.workdir = workdir
        self.timeout = timeout
        self.dead: str | None = None
        workdir.mkdir(parents=True, exist_ok=True)
        driver = workdir / "driver.sh"
        driver.write_text(DRIVER)
        self._driver_err = (workdir / "driver.err").open("wb")
        self.proc = subprocess.Popen(
            ["bash", "--noprofile", "--norc", str(driver), str(workdir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._driver_err,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )
        self._pending = b""

    def run(self, number: int, block: Block) -> BlockResult:
        result = BlockResult(block)
        if self.dead:
            result.not_run = self.dead
            return result
        suffix = "sh" if block.lang == "sh" else "py"
        (self.workdir / f"{number}.{suffix}").write_text(block.text)
        started = time.monotonic()
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"__readme_block {number} {block.lang}\n".encode())
        self.proc.stdin.flush()
        finished = self._wait_for(f"done {number}", started + self.timeout)
        result.seconds = time.monotonic() - started
        result.stdout = self._read(f"{number}.out")
        result.stderr = self._read(f"{number}.err")
        if block.lang == "python":
            result.stderr = re.sub(
                rf'File "[^"]*/{number}\.py", line (\d+)',
                lambda m: f"README.md:{block.line + int(m.group(1))}",
                result.stderr,
            )
        if not finished:
            why = self.dead or f"still running after {self.timeout:.0f} s"
            result.failures.append(
                f"{why}: a daemon or a long run? Start it in the background with `&` "
                "(the session stops it at the end), or mark the block `no-run: <why>`"
            )
            self.dead = f"the session ended at {block.label} ({why})"
            self.close()
            return result
        lines = block.text.splitlines()
        for record in self._read(f"{number}.failed").splitlines():
            code, lineno, source = record.split(" ", 2)
            if block.lang == "python":
                result.failures.append(f"python exited {code}")
            elif Path(source).name == f"{number}.sh":  # not the driver's `source` line itself
                text = lines[int(lineno) - 1].strip() if 0 < int(lineno) <= len(lines) else "?"
                result.failures.append(
                    f"README.md:{block.line + int(lineno)}: `{text}` exited {code}"
                )
        return result

    def _wait_for(self, line: str, deadline: float) -> bool:
        """Wait for ``line`` from the driver (the block finished); False on timeout or exit."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while True:
            head, sep, rest = self._pending.partition(b"\n")
            if sep:
                self._pending = rest
                if head.decode() == line:
                    return True
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            ready, _, _ = select.select([fd], [], [], remaining)
            if ready:
                chunk = os.read(fd, 4096)
                if not chunk:  # the shell exited (an `exit` in a block?)
                    self.dead = f"the shell exited with {self.proc.wait()}"
                    return False
                self._pending += chunk

    def _read(self, name: str) -> str:
        path = self.workdir / name
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        """Stop the shell and everything the blocks started in the background, and return
        once they are gone."""
        if self.proc.poll() is None or self._members():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
            self._wait_gone(10)  # background jobs finishing on SIGTERM
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self._wait_gone(10)  # a kill takes effect when the process next runs
        for stream in (self.proc.stdin, self.proc.stdout, self._driver_err):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()

    def _wait_gone(self, seconds: float) -> None:
        """Wait for each live member of the group to exit (a pidfd turns readable then)."""
        deadline = time.monotonic() + seconds
        for pid in self._members():
            try:
                fd = os.pidfd_open(pid)
            except ProcessLookupError:
                continue
            try:
                select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            finally:
                os.close(fd)

    def _members(self) -> list[int]:
        """Live (not zombie) processes of the session's process group, from /proc."""
        members = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue  # it ended while we looked
            state, pgrp = fields[0], int(fields[2])
            if pgrp == self.proc.pid and state != "Z":
                members.append(int(stat.parent.name))
        return members
