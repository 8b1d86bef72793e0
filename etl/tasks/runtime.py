"""What every task needs, built once at the edge: settings, clock, lake, task store, adapters.

The CLI and the scheduler construct a :class:`Runtime`; task functions take it as a value, so
nothing below reads the environment or the clock by itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property, partial
from pathlib import Path
from typing import TYPE_CHECKING

from etl.config import Settings
from etl.dataroot import DataRoot
from etl.errors import ConfigError

if TYPE_CHECKING:  # the vendors (and the calendars they load) only when a task needs them:
    # `etl sql` builds a Runtime too and must start fast
    from etl.lake import Lake
    from etl.tasks.progress import ProgressUI
    from etl.tasks.records import TaskStore
    from etl.vendors.base import Capabilities, InstrumentMap, VendorAdapter

__all__ = ["Runtime", "instrument_map", "keep_calendars"]

Clock = Callable[[], dt.datetime]


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Runtime:
    settings: Settings
    clock: Clock = _utc_now
    progress: bool = True
    _adapters: dict[str, VendorAdapter] = field(default_factory=dict)
    # Told (vendor, seconds) while a request waits for the vendor's rate limit (0.0: it went).
    rate_wait_sink: Callable[[str, float], None] | None = None
    # Told (vendor, method, path) as each request of this runtime's adapters is sent.
    request_sink: Callable[[str, str, str], None] | None = None

    def _rate_wait(self, vendor: str, seconds: float) -> None:
        if self.rate_wait_sink is not None:
            self.rate_wait_sink(vendor, seconds)

    def _request_sent(self, vendor: str, method: str, path: str) -> None:
        if self.request_sink is not None:
            self.request_sink(vendor, method, path)

    @property
    def root(self) -> Path:
        return self.settings.data_dir

    @cached_property
    def lake(self) -> Lake:
        from etl.lake import Lake

        return Lake(self.root)

    @cached_property
    def store(self) -> TaskStore:
        from etl.tasks.records import TaskStore

        secrets = [s for v in self.settings.vendors.values() for s in v.secrets()]
        return TaskStore(self.root, secrets=secrets)

    def ui(self) -> ProgressUI:
        """A progress bar for the next task run; rate-limit waits and the requests sent by
        this runtime's adapters reach the run through it."""
        from etl.tasks.progress import ProgressUI

        ui = ProgressUI(enabled=self.progress)
        self.rate_wait_sink = ui.rate_wait
        self.request_sink = ui.request_sent
        return ui

    def check_configured(self, vendor: str) -> None:
        """Exit 3 early, naming the variables, when a vendor's credentials are missing: every
        missing one at once, so that a user setting them is not refused once per variable."""
        from etl.vendors import adapter_class

        cls = adapter_class(vendor)
        vs = self.settings.vendor(vendor)
        missing = [name for name in cls.required_settings if not getattr(vs, name, None)]
        if missing:

            def both(words: list[str]) -> str:
                return ", ".join(words[:-1]) + " and " + words[-1] if len(words) > 1 else words[0]

            raise ConfigError(
                f"{vendor} needs {both([m.replace('_', ' ') for m in missing])}: set "
                f"{both([f'ETL_{vendor.upper()}_{m.upper()}' for m in missing])} (or "
                f"{both([f'[vendors.{vendor}] {m}' for m in missing])} in etl.toml)"
            )

    def adapter(self, vendor: str) -> VendorAdapter:
        from etl.vendors import adapter_class
        from etl.vendors.base import VendorContext
        from etl.vendors.plans import PlanCache

        if vendor not in self._adapters:
            keep_calendars(self.root)
            self.check_configured(vendor)
            cls = adapter_class(vendor)
            context = VendorContext(
                settings=self.settings.vendor(vendor),
                now=self.clock,
                state_dir=DataRoot(self.root).governor,
                instruments=instrument_map(self.root, vendor),
                plans=PlanCache.of(self.root, vendor),
                on_rate_wait=partial(self._rate_wait, vendor),
                on_request=partial(self._request_sent, vendor),
            )
            self._adapters[vendor] = cls(context)
        return self._adapters[vendor]

    def capabilities(self) -> Mapping[str, Capabilities]:
        """Every registered vendor's table (built without credentials or network), each
        built when first looked up: a task for one vendor imports only that vendor's adapter
        unless it asks the others (to name the vendors that can serve what it cannot)."""
        keep_calendars(self.root)
        return _VendorTables(self)

    def capability(self, vendor: str) -> Capabilities:
        """One vendor's table, built without credentials or network (a cached plan's rate,
        not a guess); a :class:`BadInputError` for an unknown vendor."""
        from etl.vendors import adapter_class
        from etl.vendors.base import VendorContext
        from etl.vendors.plans import PlanCache

        context = VendorContext(
            settings=self.settings.vendor(vendor),
            now=self.clock,
            plans=PlanCache.of(self.root, vendor),  # a cached plan's rate, not a guess
        )
        return adapter_class(vendor)(context).capabilities()

    async def aclose(self) -> None:
        for adapter in self._adapters.values():
            await adapter.aclose()
        self._adapters.clear()


class _VendorTables(Mapping[str, "Capabilities"]):
    """:meth:`Runtime.capabilities`: vendor name -> table, each built on first lookup."""

    def __init__(self, rt: Runtime) -> None:
        from etl.vendors import VENDOR_NAMES

        self._rt = rt
        self._names = VENDOR_NAMES
        self._built: dict[str, Capabilities] = {}

    def __getitem__(self, vendor: str) -> Capabilities:
        if vendor not in self._names:
            raise KeyError(vendor)
        if vendor not in self._built:
            self._built[vendor] = self._rt.capability(vendor)
        return self._built[vendor]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, vendor: object) -> bool:
        return vendor in self._names


def keep_calendars(root: Path) -> None:
    """Keep the calendars this process builds in ``root`` for the processes after it, and
    read those kept there: a command whose calendars are kept never loads pandas or
    exchange_calendars (issue 10, start-up). Called where vendors or expected bars are about
    to need calendars, not when a Runtime is made (``etl sql`` makes one and loads no numpy)."""
    from etl.calendars.store import keep_sessions_in

    keep_sessions_in(DataRoot(root).calendar_sessions)


def instrument_map(root: Path, vendor: str) -> InstrumentMap:
    """The vendor's code map from the lake's ``instruments`` dataset (empty if never synced)."""
    import json

    from etl.lake.parquet_io import read_columns
    from etl.vendors.base import InstrumentMap

    folder = DataRoot(root).dataset("instruments")
    files = sorted(folder.glob("*/*.parquet")) if folder.is_dir() else []
    codes, ids, extra = {}, {}, {}
    for path in files:
        found = read_columns(path, ("vendor", "symbol", "vendor_code", "vendor_id", "vendor_extra"))
        for who, sym, code, vid, vextra in zip(*found.values(), strict=True):
            if who != vendor:
                continue
            codes[sym] = code
            if vid is not None:
                ids[sym] = vid
            if vextra:
                try:
                    extra[sym] = json.loads(vextra)
                except ValueError:
                    continue
    return InstrumentMap(codes=codes, ids=ids, extra=extra)
