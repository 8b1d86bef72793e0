"""How each kind of task is checked, planned and run: one driver per kind, behind the engine.

The engine (:mod:`etl.tasks.engine`) is the only caller. Drivers share the planner
(:mod:`etl.tasks.plan`), the lifecycle (:mod:`etl.tasks.runner`) and the executor
(:mod:`etl.tasks.pipeline`); they differ only in what the items and the calls are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from etl.errors import BadInputError

if TYPE_CHECKING:
    from etl.tasks.engine import TaskSpec
    from etl.tasks.records import TaskRecord
    from etl.tasks.runtime import Runtime

__all__ = ["Driver", "driver_for"]


class Driver(Protocol):
    def check(self, rt: Runtime, spec: TaskSpec) -> None:
        """Bad input or a capability the vendor lacks: BadInputError (exit 2)."""

    def dry_run(self, rt: Runtime, spec: TaskSpec) -> dict[str, Any]:
        """The plan as a document; nothing fetched, nothing written."""

    async def run(self, rt: Runtime, spec: TaskSpec, record: TaskRecord) -> None:
        """Run (or resume) the task of ``record``; the record holds the outcome."""


class _Backfill:
    def check(self, rt: Runtime, spec: TaskSpec) -> None:
        from etl.tasks.backfill import check_request, request_of

        check_request(rt, request_of(spec))

    def dry_run(self, rt: Runtime, spec: TaskSpec) -> dict[str, Any]:
        raise BadInputError("backfill --dry-run is not available yet")

    async def run(self, rt: Runtime, spec: TaskSpec, record: TaskRecord) -> None:
        from etl.tasks.backfill import execute, request_of

        await execute(rt, record, request_of(spec))


class _Fill:
    def check(self, rt: Runtime, spec: TaskSpec) -> None:
        from etl.tasks.fill import check_vendor

        assert spec.selection is not None
        check_vendor(rt, spec.vendor, spec.selection)

    def dry_run(self, rt: Runtime, spec: TaskSpec) -> dict[str, Any]:
        from etl.tasks.fill import plan_only

        assert spec.selection is not None
        return plan_only(rt, spec.vendor, spec.selection, recheck=spec.recheck)

    async def run(self, rt: Runtime, spec: TaskSpec, record: TaskRecord) -> None:
        from etl.tasks.fill import execute

        assert spec.selection is not None
        await execute(rt, record, spec.vendor, spec.selection, spec.recheck)


class _Instruments:
    def check(self, rt: Runtime, spec: TaskSpec) -> None:
        from etl.tasks.sync import check_instruments

        check_instruments(rt, spec.vendor, spec.market)

    def dry_run(self, rt: Runtime, spec: TaskSpec) -> dict[str, Any]:
        raise BadInputError("instruments sync has no dry run")

    async def run(self, rt: Runtime, spec: TaskSpec, record: TaskRecord) -> None:
        from etl.tasks.sync import run_instruments

        await run_instruments(rt, record, spec.vendor, spec.market)


class _Calendar:
    def check(self, rt: Runtime, spec: TaskSpec) -> None:
        from etl.tasks.sync import check_calendar

        assert spec.market is not None
        check_calendar(rt, spec.vendor, spec.market)

    def dry_run(self, rt: Runtime, spec: TaskSpec) -> dict[str, Any]:
        raise BadInputError("calendar sync has no dry run")

    async def run(self, rt: Runtime, spec: TaskSpec, record: TaskRecord) -> None:
        from etl.tasks.sync import run_calendar

        assert spec.market is not None and spec.start is not None and spec.end is not None
        await run_calendar(rt, record, spec.vendor, spec.market, spec.start, spec.end)


def driver_for(spec: TaskSpec) -> Driver:
    if spec.kind == "backfill":
        return _Backfill()
    if spec.kind == "fill-missing":
        return _Fill()
    if spec.kind == "instruments-sync":
        return _Instruments()
    return _Calendar()
