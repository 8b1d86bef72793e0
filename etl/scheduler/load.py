"""Loading a jobs folder and checking each job against the vendors' capability tables.

Shape errors come from :mod:`etl.scheduler.spec`; here each job is also checked against the
registry as it is *now* (``Runtime.capabilities()``): its vendors exist, and between them they
serve its dataset, frequency and markets. Every vendor in a chain must serve part of the
selection (a vendor that serves none of it could only ever be skipped, which is a mistake
worth saying).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from etl.errors import BadInputError
from etl.scheduler.spec import JobFileError, JobSpec, read_job_file
from etl.vendors.base import Capabilities

__all__ = ["JobSet", "check_job", "load_jobs"]


@dataclass
class JobSet:
    """The valid jobs of a folder by name, and every file's problems."""

    folder: Path
    jobs: dict[str, JobSpec] = field(default_factory=dict)
    errors: list[JobFileError] = field(default_factory=list)

    def get(self, name: str) -> JobSpec:
        """The job called ``name``; its own file's error, or an unknown-job error (exit 2)."""
        if name in self.jobs:
            return self.jobs[name]
        own = [e for e in self.errors if Path(e.file).stem == name]
        if own:
            raise own[0]
        known = ", ".join(sorted(self.jobs)) or "none"
        raise BadInputError(f"unknown job {name!r} in {self.folder}; jobs: {known}")

    def raise_errors(self) -> None:
        """One error listing every broken file (the scheduler refuses to start with any)."""
        if self.errors:
            lines = "\n  ".join(str(e) for e in self.errors)
            noun = "file has" if len(self.errors) == 1 else "files have"
            raise BadInputError(f"{len(self.errors)} job {noun} errors:\n  {lines}")


def _vendor_key(job: JobSpec) -> str:
    return "vendors" if len(job.vendors) > 1 else "vendor"


def check_job(job: JobSpec, caps: Mapping[str, Capabilities]) -> None:
    """Raise a :class:`JobFileError` if the job's vendors cannot serve what it asks."""
    key = _vendor_key(job)
    for vendor in job.vendors:
        if vendor not in caps:
            raise JobFileError(
                job.file, key, f"unknown vendor {vendor!r}; registered: {', '.join(sorted(caps))}"
            )
    if job.action == "record":
        _check_record(job, key)
        return
    if job.action == "compact" or job.dataset is None:
        return
    dataset, freq = job.dataset, job.freq
    exchanges: tuple[str | None, ...] = job.exchanges or (None,)
    what = " ".join(x for x in (dataset, freq) if x)
    for vendor in job.vendors:
        if not any(caps[vendor].serves(dataset, e, freq) for e in exchanges):
            where = f" for {', '.join(e for e in exchanges if e)}" if exchanges != (None,) else ""
            able = [
                n for n, c in caps.items() if any(c.serves(dataset, e, freq) for e in exchanges)
            ]
            raise JobFileError(
                job.file, key, f"{vendor} does not serve {what}{where}; {_can(able)}"
            )
    for exchange in exchanges:
        if exchange and not any(caps[v].serves(dataset, exchange, freq) for v in job.vendors):
            able = [n for n, c in caps.items() if c.serves(dataset, exchange, freq)]
            raise JobFileError(
                job.file, key, f"no vendor of this job serves {what} for {exchange}; {_can(able)}"
            )


def _check_record(job: JobSpec, key: str) -> None:
    """The recorder's own checks (one owner): the vendor has a feed, the channels and
    markets are its feed's."""
    from etl.names import parse_symbol
    from etl.recorder.feeds import CHANNELS, check_selection

    vendor = job.vendors[0]
    if vendor not in CHANNELS:
        raise JobFileError(
            job.file, key, f"{vendor} has no real-time feed; use one of {', '.join(CHANNELS)}"
        )
    try:
        check_selection(vendor, [], job.channels)
    except BadInputError as exc:
        raise JobFileError(job.file, "channels", exc.bare_message) from None
    try:
        check_selection(vendor, [parse_symbol(s) for s in job.symbols], [], job.markets)
    except BadInputError as exc:
        raise JobFileError(
            job.file, "market" if job.markets else "symbols", exc.bare_message
        ) from None


def _can(vendors: list[str]) -> str:
    return f"vendors that can: {', '.join(sorted(vendors)) or 'none'}"


def load_jobs(folder: Path, caps: Mapping[str, Capabilities]) -> JobSet:
    """Every ``*.toml`` of ``folder``, parsed and checked; problems are collected per file."""
    if not folder.is_dir():
        raise BadInputError(f"no jobs folder {folder}: create it, or pass --jobs-dir DIR")
    found = JobSet(folder)
    for file in sorted(p for p in folder.glob("*.toml") if not p.name.startswith(".")):
        try:
            job = read_job_file(file)
            check_job(job, caps)
        except JobFileError as exc:
            found.errors.append(exc)
            continue
        if job.name in found.jobs:
            other = found.jobs[job.name].file.name
            found.errors.append(
                JobFileError(file, "name", f"duplicate job name {job.name!r} (also in {other})")
            )
            continue
        found.jobs[job.name] = job
    return found
