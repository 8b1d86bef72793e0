"""The warehouse's local key: kept outside the data root, so a copy of the data root (a backup,
a shared disk) never carries what decrypts its secrets or signs its tokens.

Where it comes from, first match wins:

1. ``ETL_SECRET_KEY`` (at least 32 characters), for deployments that inject secrets;
2. the key file ``$XDG_CONFIG_HOME/etl/secret.key`` (``~/.config/etl/secret.key``), mode
   0600 in a 0700 folder, created with 32 random bytes on first use. A key file that others
   can read is refused, as ssh refuses such a private key.

Purposes get their own key derived with HKDF-SHA256 (:meth:`LocalKey.derive`): the upstream
configurations' encryption key and ``etl serve``'s token-signing key never equal each other
or the master key. The CLI edge resolves the environment and passes it in (:func:`load_key`).
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from etl.errors import ConfigError

__all__ = ["ENV_VAR", "LocalKey", "key_file", "load_key"]

ENV_VAR: Final = "ETL_SECRET_KEY"
MIN_ENV_LEN: Final = 32
KEY_BYTES: Final = 32


class LocalKey:
    """The master key, in memory only; it never prints itself."""

    __slots__ = ("_master", "source")

    def __init__(self, master: bytes, source: str) -> None:
        self._master = master
        self.source = source  # "ETL_SECRET_KEY" or the key file's path: safe to show

    def derive(self, purpose: str) -> bytes:
        """A 32-byte key for one purpose (``"upstreams"``, ``"tokens"``)."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        hkdf = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"etl:" + purpose.encode()
        )
        return hkdf.derive(self._master)

    def __repr__(self) -> str:
        return f"LocalKey(source={self.source!r})"

    def __reduce__(self) -> str:
        raise TypeError("a LocalKey cannot be serialised")


def key_file(env: Mapping[str, str]) -> Path:
    """Where the key file lives for this environment."""
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / "etl" / "secret.key"


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def load_key(env: Mapping[str, str], data_root: Path, *, create: bool = True) -> LocalKey:
    """The local key for ``data_root``; created on first use unless ``create`` is false."""
    given = env.get(ENV_VAR)
    if given:
        if len(given) < MIN_ENV_LEN:
            raise ConfigError(f"{ENV_VAR} must be at least {MIN_ENV_LEN} characters long")
        return LocalKey(given.encode("utf-8"), ENV_VAR)
    path = key_file(env)
    if _inside(path, data_root):
        raise ConfigError(
            f"the key file {path} would be inside the data root {data_root}: set "
            f"XDG_CONFIG_HOME elsewhere, or {ENV_VAR}"
        )
    if not path.exists():
        if not create:
            raise ConfigError(f"no local key: {path} does not exist and {ENV_VAR} is not set")
        _create(path)
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise ConfigError(
            f"the key file {path} is readable by others (mode {mode:o}): chmod 600 it"
        )
    try:
        master = base64.urlsafe_b64decode(path.read_bytes().strip())
    except ValueError:
        master = b""
    if len(master) < KEY_BYTES:
        raise ConfigError(f"the key file {path} is damaged (not {KEY_BYTES} base64 bytes)")
    return LocalKey(master, str(path))


def _create(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    # The name is this process's: one found there was left by a killed process that had the
    # same pid before (nothing alive can own it), and would make the exclusive create fail.
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)) + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # never replaces a key another process created meanwhile
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
