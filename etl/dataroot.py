"""The data root's layout: the one place that knows where anything lives under it.

    <root>/catalog.duckdb                                   views only; rebuildable
    <root>/lake/<dataset>/<k>=<v>/.../part-*.parquet        data (only .parquet under here)
    <root>/lake/.manifest/<dataset>/<k>=<v>/....json        one manifest per partition
    <root>/lake/.manifest/<dataset>/....json.pending        a swap's journal (next manifest)
    <root>/lake/.staging/                                   partitions being built
    <root>/lake/.locks/<dataset>/<partition>.lock           per-partition write locks
    <root>/lake/.schema/<dataset>/...                       zero-row schema anchors
    <root>/lake/.mirror/<dataset>/<k>=<v>/.../part-*.arrow  symbol-major copies (derived)
    <root>/lake/.mirror/klines/freq=<f>/history.arrow  every year of <f>, a batch per symbol
    <root>/lake/.quarantine/<dataset>/<k>=<v>/.../part-*    damaged files taken out by verify
    <root>/state/<dataset>/...                              the warehouse's own datasets
    <root>/state/governor/  state/claims/  state/jobs/       rate state, fill claims, job locks
    <root>/state/plans/<vendor>.json                        the plan a vendor reported, dated
    <root>/state/depths/<vendor>.json                       depths learned from its answers
    <root>/state/calendars/<calendar>.npz                   exchange calendars' schedules,
                                                            built once a day (derived)
    <root>/state/scheduler.sqlite                           the scheduler's job store
    <root>/state/upstreams.json                             upstream configurations (secrets
                                                            encrypted under a key kept elsewhere)
    <root>/state/server/users.json  instance.json           ``etl serve``'s accounts (hashed)
    <root>/tasks/<id>.json  <id>.lock  <id>.state  <id>.cancel   task records and their runs
    <root>/tasks/<id>.requests                              one byte per vendor request sent
    <root>/tasks/<id>.plan                                  a fill's calls, as its first run planned
    <root>/tasks/<id>.spool/<n>.arrow                       answers received, not yet committed
    <root>/logs/etl-error-*.log                             tracebacks of unexpected errors

Nothing else builds a path under ``lake/``, ``state/`` or ``tasks/``: modules ask a
:class:`DataRoot` (or the partition helpers below). Partition values are checked against a
strict pattern before they become folder names, so a symbol or a date never becomes a path
unchecked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from etl.errors import LakeError

if TYPE_CHECKING:
    from etl.schema import DatasetSchema

__all__ = ["DataRoot", "PartitionKey"]

_SAFE_VALUE: Final = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_SAFE_NAME: Final = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")


@dataclass(frozen=True, order=True)
class PartitionKey:
    """One partition: its folder values in declaration order (empty for unpartitioned)."""

    items: tuple[tuple[str, str], ...]

    @property
    def relpath(self) -> str:
        return "/".join(f"{k}={v}" for k, v in self.items)

    @property
    def values(self) -> dict[str, str]:
        return dict(self.items)

    @property
    def flat(self) -> str:
        """A file-name-safe label (``freq=1d~year=2024``, ``_root``)."""
        return "~".join(f"{k}={v}" for k, v in self.items) or "_root"

    @classmethod
    def of(cls, **values: object) -> PartitionKey:
        """A key from folder values in the order given (``of(freq="1d", year=2024)``)."""
        items = []
        for name, value in values.items():
            text = str(value)
            if not _SAFE_VALUE.match(text):
                raise LakeError(f"unsafe partition value {text!r} for {name}")
            items.append((name, text))
        return cls(tuple(items))

    @classmethod
    def from_values(cls, schema: DatasetSchema, values: Mapping[str, object]) -> PartitionKey:
        return cls.of(**{part.name: values[part.name] for part in schema.partitions})

    @classmethod
    def parse(cls, schema: DatasetSchema, relpath: str) -> PartitionKey:
        parts = [p for p in relpath.split("/") if p]
        values = dict(p.split("=", 1) for p in parts)
        if list(values) != [p.name for p in schema.partitions]:
            raise LakeError(f"{relpath!r} is not a partition of {schema.name}")
        return cls.from_values(schema, values)


def _name(text: str) -> str:
    """A dataset, job or vendor name checked before it becomes a path component."""
    if not _SAFE_NAME.match(text):
        raise LakeError(f"unsafe name {text!r} for a path under the data root")
    return text


@dataclass(frozen=True)
class DataRoot:
    """Paths under one data root. It computes paths only: it creates and reads nothing."""

    root: Path

    # -- top level -------------------------------------------------------------------------

    @property
    def catalog(self) -> Path:
        return self.root / "catalog.duckdb"

    @property
    def catalog_lock(self) -> Path:
        """Held while the catalog is built (its temporary files sit beside it)."""
        return self.root / ".catalog.lock"

    @property
    def lake(self) -> Path:
        return self.root / "lake"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def tasks(self) -> Path:
        return self.root / "tasks"

    @property
    def logs(self) -> Path:
        """Tracebacks of unexpected errors (``etl-error-<time>-<pid>.log``)."""
        return self.root / "logs"

    # -- datasets and partitions -----------------------------------------------------------

    def dataset(self, name: str) -> Path:
        """``lake/<name>`` for user datasets; ``state/<name>`` for the warehouse's own."""
        from etl import schema as schemas

        area = schemas.get(name).area
        return (self.state if area == "state" else self.lake) / _name(name)

    def partition(self, dataset: str, key: PartitionKey) -> Path:
        base = self.dataset(dataset)
        return base / key.relpath if key.items else base

    def partition_of(self, dataset: str, /, **values: object) -> Path:
        """A partition folder from leading partition values (``freq="1d", year=2024``): a
        whole partition, or the folder above several when fewer values are given."""
        return self.partition(dataset, PartitionKey.of(**values))

    def manifest(self, dataset: str, key: PartitionKey) -> Path:
        rel = key.relpath if key.items else "_root"
        return self.manifests / _name(dataset) / f"{rel}.json"

    def manifest_pending(self, dataset: str, key: PartitionKey) -> Path:
        """The next manifest while a swap is under way: the swap's journal (etl.lake.swap)."""
        path = self.manifest(dataset, key)
        return path.with_name(path.name + ".pending")

    @property
    def manifests(self) -> Path:
        return self.lake / ".manifest"

    @property
    def staging(self) -> Path:
        return self.lake / ".staging"

    @property
    def locks(self) -> Path:
        return self.lake / ".locks"

    def lock(self, dataset: str, key: PartitionKey) -> Path:
        return self.locks / _name(dataset) / f"{key.flat}.lock"

    def lock_by_flat(self, dataset: str, flat: str) -> Path:
        """The partition lock named as a staging folder names it (``freq=1d~year=2024``)."""
        return self.locks / _name(dataset) / f"{flat}.lock"

    def quarantined(self, dataset: str, key: PartitionKey, name: str) -> Path:
        """Where ``etl verify --repair`` keeps a damaged file it took out of a partition."""
        folder = self.lake / ".quarantine" / _name(dataset)
        return (folder / key.relpath if key.items else folder) / name

    @property
    def mirrors(self) -> Path:
        return self.lake / ".mirror"

    def mirror(self, dataset: str, key: PartitionKey, parquet_name: str) -> Path:
        """The uncompressed Arrow copy of one of a partition's Parquet files (etl.lake.mirror):
        named after the file, whose name no other file ever takes."""
        folder = self.mirrors / _name(dataset)
        folder = folder / key.relpath if key.items else folder
        return folder / (parquet_name.removesuffix(".parquet") + ".arrow")

    def history(self, dataset: str, leading: PartitionKey) -> Path:
        """The symbol-major copy of every year of ``leading`` (``freq=1d``) in one file
        (etl.lake.history), beside the yearly mirrors' folders."""
        return self.mirrors / _name(dataset) / leading.relpath / "history.arrow"

    @property
    def schema_anchors(self) -> Path:
        return self.lake / ".schema"

    def schema_anchor(self, schema: DatasetSchema) -> Path:
        """A zero-row file inside a placeholder partition, so every view stays typed."""
        folder = self.schema_anchors / _name(schema.name)
        for part in schema.partitions:
            folder = folder / f"{part.name}={'0' if part.type.startswith('int') else '_'}"
        return folder / "anchor.parquet"

    @property
    def schema_fingerprint(self) -> Path:
        return self.schema_anchors / "FINGERPRINT"

    @property
    def manifest_anchor(self) -> Path:
        return self.manifests / "_anchor" / "anchor.json"

    # -- tasks -----------------------------------------------------------------------------

    def task_record(self, task_id: int) -> Path:
        return self.tasks / f"{int(task_id)}.json"

    def task_lock(self, task_id: int) -> Path:
        return self.tasks / f"{int(task_id)}.lock"

    def task_state(self, task_id: int) -> Path:
        """Resume state (what is already committed); not JSON-globbed by the catalog."""
        return self.tasks / f"{int(task_id)}.state"

    def task_cancel(self, task_id: int) -> Path:
        return self.tasks / f"{int(task_id)}.cancel"

    def task_requests(self, task_id: int) -> Path:
        """The task's request journal: one byte appended per vendor request, as it is sent
        (so a SIGKILLed run's requests are counted too)."""
        return self.tasks / f"{int(task_id)}.requests"

    def task_plan(self, task_id: int) -> Path:
        """The calls a task's first run planned (fill-missing), written once: a resumed run
        runs those not done instead of planning anew over what a kill left."""
        return self.tasks / f"{int(task_id)}.plan"

    def task_spool(self, task_id: int) -> Path:
        """A task's spool: each answer as it arrives (``<n>.arrow``), until committed."""
        return self.tasks / f"{int(task_id)}.spool"

    @property
    def task_seq(self) -> Path:
        return self.tasks / ".seq"

    @property
    def task_seq_lock(self) -> Path:
        return self.tasks / ".seq.lock"

    @property
    def task_anchor(self) -> Path:
        return self.tasks / "_anchor" / "anchor.json"

    # -- the warehouse's own state -----------------------------------------------------------

    @property
    def governor(self) -> Path:
        return self.state / "governor"

    @property
    def claims(self) -> Path:
        return self.state / "claims"

    def vendor_plan(self, vendor: str) -> Path:
        """What the vendor said about our plan (Infoway's /package/info) and when: every
        process applies the plan's rate from its first request."""
        return self.state / "plans" / f"{_name(vendor)}.json"

    def vendor_plan_lock(self, vendor: str) -> Path:
        """Held while one process asks the vendor for the plan (the others wait for it)."""
        return self.state / "plans" / f"{_name(vendor)}.lock"

    def vendor_depths(self, vendor: str) -> Path:
        """Depths learned from a vendor's answers (per symbol and frequency, the date before
        which it answered no bars), for vendors that publish none (:mod:`etl.tasks.depths`)."""
        return self.state / "depths" / f"{_name(vendor)}.json"

    def vendor_depths_lock(self, vendor: str) -> Path:
        return self.state / "depths" / f"{_name(vendor)}.lock"

    def calendar_sessions(self, calendar: str) -> Path:
        """An exchange_calendars calendar's schedule (``XNYS``), as built today: derived, so
        deleting it costs only a rebuild (:mod:`etl.calendars.sessions`)."""
        if not _SAFE_VALUE.match(calendar):
            raise LakeError(f"unsafe calendar name {calendar!r}")
        return self.state / "calendars" / f"{calendar}.npz"

    @property
    def recorders(self) -> Path:
        """Markers of running recorders (:mod:`etl.recorder.down`)."""
        return self.state / "recorders"

    def recorder_marker(self, vendor: str, pid: int) -> Path:
        """One running ``etl record``'s marker: left behind only if it was killed."""
        return self.recorders / f"{_name(vendor)}.{int(pid)}.json"

    def job_lock(self, job: str) -> Path:
        return self.state / "jobs" / f"{_name(job)}.lock"

    @property
    def scheduler_store(self) -> Path:
        return self.state / "scheduler.sqlite"

    @property
    def scheduler_lock(self) -> Path:
        return self.state / "scheduler.lock"

    @property
    def upstreams(self) -> Path:
        """Upstream configurations (``/configs/sdk``); their secrets are stored encrypted."""
        return self.state / "upstreams.json"

    @property
    def upstreams_lock(self) -> Path:
        return self.state / "upstreams.lock"

    @property
    def server(self) -> Path:
        return self.state / "server"

    @property
    def server_users(self) -> Path:
        """``etl users``: names, roles and argon2 hashes (never a password in clear)."""
        return self.server / "users.json"

    @property
    def server_users_lock(self) -> Path:
        return self.server / "users.lock"

    @property
    def server_instance(self) -> Path:
        """This warehouse's random id: the audience of its tokens (not a secret)."""
        return self.server / "instance.json"
