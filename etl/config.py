"""Settings, resolved once at the edge (CLI, scheduler) and passed down as values.

Precedence (docs/contract.md): command-line option > environment variable > ``etl.toml`` >
built-in default. Nothing below the edge reads ``os.environ``.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from etl.errors import ConfigError

__all__ = ["Secret", "Settings", "VendorSettings", "load_settings"]

VENDOR_NAMES: Final = ("sim", "amazingdata", "infoway", "stocktv", "mdapi")


class Secret:
    """A credential that never prints itself: ``str``, ``repr`` and f-strings show ``***``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The clear value, for the one header or body field the vendor requires."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> Any:  # never pickled into task records or caches
        raise TypeError("a Secret cannot be serialised")


@dataclass(frozen=True)
class VendorSettings:
    name: str
    base_url: str | None = None
    ws_url: str | None = None
    api_key: Secret | None = None
    username: str | None = None
    password: Secret | None = None
    rate: float | None = None  # requests per second; None = the plan's documented limit
    rate_from: str | None = None  # where ``rate`` was set (``etl vendors`` says so)
    extra: Mapping[str, Any] = field(default_factory=dict)

    def secrets(self) -> list[str]:
        """Clear values to scrub from anything that leaves the process (see redact)."""
        return [s.reveal() for s in (self.api_key, self.password) if s and s.reveal()]


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    vendors: Mapping[str, VendorSettings]
    jobs_dir: Path
    config_file: Path | None = None

    def vendor(self, name: str) -> VendorSettings:
        return self.vendors.get(name) or VendorSettings(name=name)


def _read_toml(path: Path | None, cwd: Path) -> tuple[dict[str, Any], Path | None]:
    if path is None:
        candidate = cwd / "etl.toml"
        if not candidate.is_file():
            return {}, None
        path = candidate
    try:
        return tomllib.loads(path.read_text(encoding="utf-8")), path
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist (given by --config)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc


def _rate(value: object, source: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        rate = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(
            f"{source} must be a number of requests per second, got {value!r}"
        ) from None
    if not rate > 0:
        raise ConfigError(f"{source} must be positive, got {value!r}")
    return rate


def load_settings(
    *,
    data_dir: Path | None = None,
    config: Path | None = None,
    jobs_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Settings:
    """Resolve settings from options, ``env`` (default: the process environment) and TOML.

    ``etl.toml`` layout::

        data_dir = "data"
        [vendors.infoway]
        base_url = "http://127.0.0.1:8801"
        rate = 5
    """
    env = os.environ if env is None else env
    cwd = cwd or Path.cwd()
    doc, config_path = _read_toml(config, cwd)
    base = config_path.parent if config_path else cwd

    root_text = str(data_dir) if data_dir else env.get("ETL_DATA_DIR") or doc.get("data_dir")
    root = Path(root_text) if root_text else Path("data")
    if not root.is_absolute():
        root = (cwd if (data_dir or env.get("ETL_DATA_DIR")) else base) / root

    jobs = jobs_dir or (Path(doc["jobs_dir"]) if "jobs_dir" in doc else Path("jobs"))
    if not jobs.is_absolute():
        jobs = cwd / jobs

    toml_vendors = doc.get("vendors", {})
    if not isinstance(toml_vendors, dict):
        raise ConfigError("[vendors] in etl.toml must be a table of vendor tables")
    vendors: dict[str, VendorSettings] = {}
    for name in VENDOR_NAMES:
        section = toml_vendors.get(name, {})
        prefix = f"ETL_{name.upper()}_"

        def pick(key: str, section: Mapping[str, Any] = section, prefix: str = prefix) -> Any:
            value = env.get(prefix + key.upper())
            return value if value not in (None, "") else section.get(key)

        api_key, password = pick("api_key"), pick("password")
        rate_var = prefix + "RATE"
        rate_from = (
            rate_var
            if env.get(rate_var) not in (None, "")
            else f"{config_path.name if config_path else 'etl.toml'} [vendors.{name}] rate"
        )
        rate = _rate(pick("rate"), rate_from)
        vendors[name] = VendorSettings(
            name=name,
            base_url=pick("base_url"),
            ws_url=pick("ws_url"),
            api_key=Secret(str(api_key)) if api_key else None,
            username=pick("username"),
            password=Secret(str(password)) if password else None,
            rate=rate,
            rate_from=rate_from if rate is not None else None,
            extra={k: v for k, v in section.items() if k not in _KNOWN_KEYS},
        )
    for name in toml_vendors:
        if name not in VENDOR_NAMES:
            raise ConfigError(
                f"etl.toml names an unknown vendor {name!r}: use one of {', '.join(VENDOR_NAMES)}"
            )
    return Settings(
        data_dir=root.resolve(), vendors=vendors, jobs_dir=jobs, config_file=config_path
    )


_KNOWN_KEYS: Final = frozenset({"base_url", "ws_url", "api_key", "username", "password", "rate"})
