"""The local key file: created once, private, and created even where a killed process that
had this process's pid left its temporary file (regression: the exclusive create failed)."""

from __future__ import annotations

import os
from pathlib import Path

from etl.localkeys import key_file, load_key


def test_a_leftover_with_this_pid_does_not_stop_the_key_being_made(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    path = key_file(env)
    path.parent.mkdir(parents=True)
    leftover = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    leftover.write_bytes(b"half a key")  # as a killed process with this pid left it
    key = load_key(env, tmp_path / "data")
    assert path.stat().st_mode & 0o777 == 0o600
    assert not leftover.exists()
    assert load_key(env, tmp_path / "data").derive("x") == key.derive("x")  # the same key
