"""``etl users``: the accounts of ``etl serve``, in the data root with argon2-hashed passwords.

There is no built-in account and no default password. A password is never stored, logged or
answered; only its argon2id hash is kept (``state/server/users.json``). Checking a name that
does not exist costs the same as checking a wrong password, so answers do not tell which
names exist.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from etl.dataroot import DataRoot
from etl.errors import BadInputError
from etl.fsutil import atomic_write_bytes
from etl.locks import file_lock
from etl.timefmt import iso_utc

__all__ = ["ROLES", "Account", "UserStore", "check_password"]

ROLES: Final = ("admin", "user")
MIN_PASSWORD: Final = 8
MAX_PASSWORD: Final = 1024
_NAME: Final = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
_EMAIL: Final = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}$")
_HASHER: Final = PasswordHasher()
# A hash of nothing anyone knows, verified when the name is unknown (same cost either way).
_DUMMY: Final = _HASHER.hash("not a password: equalises the time of unknown names")


@dataclass
class Account:
    id: int
    username: str
    password_hash: str
    role: str = "user"
    email: str | None = None
    is_active: bool = True
    created_at: str | None = None

    def public(self) -> dict[str, Any]:
        """``/auth/me``'s fields (the platform document's), never the hash."""
        return {
            "id": self.id,
            "username": self.username,
            "email": self.email,
            "role": self.role,
            "is_active": self.is_active,
        }


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise BadInputError(
            f"invalid user name {name!r}: 1 to 64 of letters, digits and _ . @ -", field="name"
        )
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise BadInputError(f"the password must have at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise BadInputError(f"the password must have at most {MAX_PASSWORD} characters")
    return password


class UserStore:
    """The accounts file, re-read when it changes on disk (``etl users`` in another shell)."""

    def __init__(self, root: Path) -> None:
        self.layout = DataRoot(root)
        self._path = self.layout.server_users  # made once: every request stats it
        self._cache: tuple[float, int, list[Account]] | None = None

    def all(self) -> list[Account]:
        path = self._path
        try:
            st = path.stat()
        except FileNotFoundError:
            return []
        if self._cache is not None and self._cache[:2] == (st.st_mtime, st.st_size):
            return self._cache[2]
        doc = json.loads(path.read_bytes())
        accounts = [Account(**item) for item in doc.get("users", [])]
        self._cache = (st.st_mtime, st.st_size, accounts)
        return accounts

    def find(self, username: str) -> Account | None:
        return next((a for a in self.all() if a.username == username), None)

    def get(self, user_id: int) -> Account | None:
        return next((a for a in self.all() if a.id == user_id), None)

    def _save(self, accounts: list[Account]) -> None:
        self.layout.server.mkdir(parents=True, exist_ok=True)
        doc = {"users": [asdict(a) for a in accounts]}
        atomic_write_bytes(self.layout.server_users, json.dumps(doc, ensure_ascii=False).encode())
        self._cache = None

    def add(
        self, username: str, password: str, *, role: str = "user", email: str | None = None
    ) -> Account:
        check_name(username)
        check_password(password)
        if role not in ROLES:
            raise BadInputError(f"invalid role {role!r}: use one of {', '.join(ROLES)}")
        if email is not None and not _EMAIL.match(email):
            raise BadInputError(f"invalid email {email!r}")
        with file_lock(self.layout.server_users_lock, timeout=30):
            accounts = self.all()
            if any(a.username == username for a in accounts):
                raise BadInputError(f"user {username!r} already exists (etl users remove it first)")
            account = Account(
                id=max((a.id for a in accounts), default=0) + 1,
                username=username,
                password_hash=_HASHER.hash(password),
                role=role,
                email=email,
                created_at=iso_utc(dt.datetime.now(dt.UTC), "seconds"),
            )
            self._save([*accounts, account])
        return account

    def remove(self, username: str) -> None:
        if self.find(username) is None:  # exit 2 before the lock file is made: nothing written
            raise BadInputError(f"no user {username!r} (see etl users list)")
        with file_lock(self.layout.server_users_lock, timeout=30):
            accounts = self.all()
            kept = [a for a in accounts if a.username != username]
            if len(kept) == len(accounts):
                raise BadInputError(f"no user {username!r} (see etl users list)")
            self._save(kept)

    def verify(self, username: str, password: str) -> Account | None:
        """The account if ``password`` is its password and it is active, else None."""
        account = self.find(username)
        try:
            _HASHER.verify(account.password_hash if account else _DUMMY, password)
        except (VerificationError, InvalidHashError):
            return None
        if account is None or not account.is_active:
            return None
        return account
