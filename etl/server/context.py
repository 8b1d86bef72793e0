"""What every request handler needs, built once when the server starts."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from etl.config import Settings
from etl.dataroot import DataRoot
from etl.fsutil import atomic_write_bytes
from etl.localkeys import LocalKey
from etl.server.accounts import UserStore
from etl.server.reads import LakeReader
from etl.server.tokens import Throttle, TokenSigner
from etl.upstreams import UpstreamStore

__all__ = ["ServerContext", "instance_id"]

Clock = Callable[[], dt.datetime]


def instance_id(root: Path) -> str:
    """The data root's random id (created on first use): the audience of its tokens."""
    path = DataRoot(root).server_instance
    try:
        return str(json.loads(path.read_bytes())["id"])
    except (FileNotFoundError, ValueError, KeyError):
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, json.dumps({"id": secrets.token_hex(16)}).encode())
        return str(json.loads(path.read_bytes())["id"])


@dataclass
class ServerContext:
    root: Path
    settings: Settings  # the environment's settings: rates and extras of each vendor
    key: LocalKey
    users: UserStore
    upstreams: UpstreamStore
    signer: TokenSigner
    throttle: Throttle
    reader: LakeReader
    clock: Clock
    env: dict[str, str]  # what worker processes inherit (no ETL_* credentials)

    @classmethod
    def build(
        cls, settings: Settings, key: LocalKey, *, token_ttl: int, clock: Clock, env: dict[str, str]
    ) -> ServerContext:
        import time

        root = settings.data_dir
        return cls(
            root=root,
            settings=settings,
            key=key,
            users=UserStore(root),
            upstreams=UpstreamStore(root, lambda: key),
            signer=TokenSigner(key.derive("tokens"), instance_id(root), token_ttl, time.time),
            throttle=Throttle(),
            reader=LakeReader(root),
            clock=clock,
            env=env,
        )
