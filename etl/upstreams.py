"""Upstream configurations: which vendor, where, and with which credentials the warehouse's
own tasks fetch (``etl serve``'s ``/configs/sdk``, and the CLI's ``--config-id``).

Stored in the data root (``state/upstreams.json``) so that a server and a cron job on the
same data root agree on them; the secrets (``password``, ``api_key``) are encrypted there with
a key that is not in the data root (:mod:`etl.localkeys`), and are never answered back
(:meth:`UpstreamConfig.public` shows ``"***"``). A configuration carries the platform
document's fields (``name``, ``username``, ``password``, ``host``, ``port``, ``local_path``,
``is_default``) plus ``vendor`` (default ``amazingdata``), ``base_url`` and ``api_key``.
Exactly one configuration per data root is the default: the vendor the cache tasks use.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from etl.config import VENDOR_NAMES, Secret, Settings, VendorSettings
from etl.dataroot import DataRoot
from etl.errors import BadInputError, ConfigError
from etl.fsutil import atomic_write_bytes
from etl.localkeys import LocalKey
from etl.locks import file_lock
from etl.timefmt import iso_utc

__all__ = ["SECRET_FIELDS", "UpstreamConfig", "UpstreamStore", "apply_upstream", "for_cli"]

SECRET_FIELDS: Final = ("password", "api_key")
DEFAULT_PORT: Final = 8600  # the platform document's default SDK port
MAX_CONFIGS: Final = 100
_TEXT: Final = re.compile(r"^[^\x00-\x1f\x7f]{0,200}$")
_HOST: Final = re.compile(r"^[A-Za-z0-9_.:\[\]-]{1,253}$")
_PURPOSE: Final = "upstreams"


def _now() -> str:
    return iso_utc(dt.datetime.now(dt.UTC), "seconds")


@dataclass
class UpstreamConfig:
    """One configuration. ``secrets`` holds the encrypted tokens as stored."""

    id: int
    name: str
    vendor: str = "amazingdata"
    username: str | None = None
    host: str | None = None
    port: int = DEFAULT_PORT
    local_path: str | None = None
    base_url: str | None = None
    is_default: bool = False
    created_at: str | None = None
    updated_at: str | None = None
    secrets: dict[str, str] = field(default_factory=dict)

    def url(self) -> str | None:
        """The vendor base URL: ``base_url``, else built from ``host``/``port`` (AmazingData's
        platform lives under ``/api/v1``), else None (the vendor's public URL)."""
        if self.base_url:
            return self.base_url
        if not self.host:
            return None
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        suffix = "/api/v1" if self.vendor == "amazingdata" else ""
        return f"http://{host}:{self.port}{suffix}"

    def public(self) -> dict[str, Any]:
        """What an answer may show: every field, secrets as ``"***"`` (null when unset)."""
        return {
            "id": self.id,
            "name": self.name,
            "vendor": self.vendor,
            "username": self.username,
            "password": "***" if "password" in self.secrets else None,
            "api_key": "***" if "api_key" in self.secrets else None,
            "host": self.host,
            "port": self.port,
            "local_path": self.local_path,
            "base_url": self.url(),
            "is_default": self.is_default,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


def _text(value: object, name: str, *, required: bool = False) -> str | None:
    if value is None or value == "":
        if required:
            raise BadInputError(f"{name} is required", field=name)
        return None
    if not isinstance(value, str) or not _TEXT.match(value):
        raise BadInputError(f"{name} must be text of at most 200 characters", field=name)
    return value


def _check_fields(fields: Mapping[str, Any], *, creating: bool) -> dict[str, Any]:
    """The accepted fields of a create/update body, checked; unknown ones are refused."""
    known = {
        "name", "vendor", "username", "host", "port", "local_path", "base_url", "is_default",
        *SECRET_FIELDS,
    }  # fmt: skip
    unknown = sorted(set(fields) - known)
    if unknown:
        raise BadInputError(f"unknown field {unknown[0]!r}", field=unknown[0])
    out: dict[str, Any] = {}
    if creating or "name" in fields:
        out["name"] = _text(fields.get("name"), "name", required=True)
    if creating or "vendor" in fields:
        vendor = fields.get("vendor") or "amazingdata"
        if vendor not in VENDOR_NAMES:
            raise BadInputError(f"vendor must be one of {', '.join(VENDOR_NAMES)}", field="vendor")
        out["vendor"] = vendor
    for name in ("username", "local_path"):
        if name in fields:
            out[name] = _text(fields[name], name)
    if "host" in fields:
        host = _text(fields["host"], "host")
        if host is not None and not _HOST.match(host):
            raise BadInputError("host must be a host name or an IP address", field="host")
        out["host"] = host
    if "port" in fields:
        port = fields["port"]
        if port is None:
            port = DEFAULT_PORT
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise BadInputError("port must be a whole number from 1 to 65535", field="port")
        out["port"] = port
    if "base_url" in fields:
        url = _text(fields["base_url"], "base_url")
        if url is not None and not re.match(r"^https?://[^\s/]+(/\S*)?$", url):
            raise BadInputError("base_url must be an http(s) URL", field="base_url")
        out["base_url"] = url
    if "is_default" in fields:
        if not isinstance(fields["is_default"], bool):
            raise BadInputError("is_default must be true or false", field="is_default")
        out["is_default"] = fields["is_default"]
    for name in SECRET_FIELDS:
        if name in fields:
            value = fields[name]
            if value is not None and (not isinstance(value, str) or len(value) > 1000):
                raise BadInputError(f"{name} must be text", field=name)
            out[name] = value or None
    return out


class UpstreamStore:
    """The configurations of one data root. ``key`` is called only when a secret must be
    encrypted or decrypted, so listing needs no key."""

    def __init__(self, root: Path, key: Callable[[], LocalKey]) -> None:
        self.layout = DataRoot(root)
        self._key = key
        self._fernet: Any = None

    # -- crypto ----------------------------------------------------------------------------

    def _cipher(self) -> Any:
        if self._fernet is None:
            from cryptography.fernet import Fernet

            self._fernet = Fernet(base64.urlsafe_b64encode(self._key().derive(_PURPOSE)))
        return self._fernet

    def _seal(self, value: str) -> str:
        token: bytes = self._cipher().encrypt(value.encode("utf-8"))
        return token.decode("ascii")

    def _open(self, config: UpstreamConfig, name: str) -> str | None:
        token = config.secrets.get(name)
        if token is None:
            return None
        from cryptography.fernet import InvalidToken

        try:
            clear: bytes = self._cipher().decrypt(token.encode("ascii"))
        except InvalidToken:
            raise ConfigError(
                f"upstream configuration {config.id} ({config.name}): its {name} was encrypted "
                "with another local key (see ETL_SECRET_KEY / ~/.config/etl/secret.key); "
                "enter it again"
            ) from None
        return clear.decode("utf-8")

    # -- records ---------------------------------------------------------------------------

    def all(self) -> list[UpstreamConfig]:
        try:
            doc = json.loads(self.layout.upstreams.read_bytes())
        except FileNotFoundError:
            return []
        return [UpstreamConfig(**item) for item in doc.get("items", [])]

    def _save(self, items: list[UpstreamConfig]) -> None:
        doc = {"items": [vars(c) for c in items]}
        self.layout.upstreams.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.layout.upstreams, json.dumps(doc, ensure_ascii=False).encode())

    def get(self, config_id: int) -> UpstreamConfig:
        for config in self.all():
            if config.id == config_id:
                return config
        raise BadInputError(f"no upstream configuration {config_id}", field="id")

    def default(self) -> UpstreamConfig | None:
        return next((c for c in self.all() if c.is_default), None)

    def create(self, fields: Mapping[str, Any]) -> UpstreamConfig:
        checked = _check_fields(fields, creating=True)
        with file_lock(self.layout.upstreams_lock, timeout=30):
            items = self.all()
            if len(items) >= MAX_CONFIGS:
                raise BadInputError(f"at most {MAX_CONFIGS} upstream configurations")
            now = _now()
            config = UpstreamConfig(
                id=max((c.id for c in items), default=0) + 1,
                name=checked["name"],
                created_at=now,
                updated_at=now,
            )
            config = self._apply(config, checked)
            if not items:
                config.is_default = True  # the first one is the default until told otherwise
            items.append(config)
            self._save(self._one_default(items, config))
        return config

    def update(self, config_id: int, fields: Mapping[str, Any]) -> UpstreamConfig:
        checked = _check_fields(fields, creating=False)
        with file_lock(self.layout.upstreams_lock, timeout=30):
            items = self.all()
            for i, config in enumerate(items):
                if config.id == config_id:
                    items[i] = self._apply(replace(config, updated_at=_now()), checked)
                    self._save(self._one_default(items, items[i]))
                    return items[i]
        raise BadInputError(f"no upstream configuration {config_id}", field="id")

    def delete(self, config_id: int) -> None:
        with file_lock(self.layout.upstreams_lock, timeout=30):
            items = self.all()
            kept = [c for c in items if c.id != config_id]
            if len(kept) == len(items):
                raise BadInputError(f"no upstream configuration {config_id}", field="id")
            self._save(kept)

    def _apply(self, config: UpstreamConfig, checked: Mapping[str, Any]) -> UpstreamConfig:
        secrets = dict(config.secrets)
        for name, value in checked.items():
            if name in SECRET_FIELDS:
                if value is None:
                    secrets.pop(name, None)
                else:
                    secrets[name] = self._seal(value)
            else:
                setattr(config, name, value)
        config.secrets = secrets
        return config

    @staticmethod
    def _one_default(items: list[UpstreamConfig], changed: UpstreamConfig) -> list[UpstreamConfig]:
        if changed.is_default:
            for config in items:
                config.is_default = config.id == changed.id
        return items

    # -- use -------------------------------------------------------------------------------

    def vendor_settings(
        self, config: UpstreamConfig, base: VendorSettings | None = None
    ) -> VendorSettings:
        """The adapter settings of ``config`` (secrets decrypted, in :class:`Secret`s); rate
        and extras come from ``base`` (the environment's settings for that vendor)."""
        password = self._open(config, "password")
        api_key = self._open(config, "api_key")
        base = base or VendorSettings(name=config.vendor)
        return replace(
            base,
            name=config.vendor,
            base_url=config.url() or base.base_url,
            username=config.username,
            password=Secret(password) if password else None,
            api_key=Secret(api_key) if api_key else None,
        )


def apply_upstream(
    settings: Settings, store: UpstreamStore, config_id: int | None
) -> tuple[Settings, UpstreamConfig | None]:
    """``settings`` with one vendor's settings taken from a configuration: ``config_id``,
    else the data root's default one. None of either: ``settings`` unchanged."""
    config = store.get(config_id) if config_id is not None else store.default()
    if config is None:
        return settings, None
    vendors = dict(settings.vendors)
    vendors[config.vendor] = store.vendor_settings(config, settings.vendors.get(config.vendor))
    return replace(settings, vendors=vendors), config


def _has_credentials(vendor: VendorSettings) -> bool:
    return bool(vendor.username or vendor.password or vendor.api_key)


def for_cli(
    settings: Settings, env: Mapping[str, str], config_id: int | None
) -> tuple[Settings, UpstreamConfig | None]:
    """The CLI's settings with the data root's upstream configurations (``etl serve``'s
    ``/configs/sdk``), so that a cron job and the server fetch alike:

    - ``--config-id N``: that configuration's vendor settings, whatever else is set;
    - otherwise the default configuration, for its vendor only, and only when neither the
      environment nor ``etl.toml`` gives that vendor credentials (those come first).

    The local key (:mod:`etl.localkeys`) is read only when a configuration is applied."""
    from etl.localkeys import load_key

    root = settings.data_dir
    if config_id is None and not DataRoot(root).upstreams.exists():
        return settings, None
    store = UpstreamStore(root, lambda: load_key(env, root, create=False))
    if config_id is None:
        config = store.default()
        if config is None or _has_credentials(settings.vendor(config.vendor)):
            return settings, None
    return apply_upstream(settings, store, config_id)
