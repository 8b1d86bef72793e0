"""``etl vendors``: what each vendor serves and whether it is configured; ``check`` connects."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from etl.commands.common import ConfigIdOpt, ConfigOpt, DataDirOpt, JsonOpt, run_async, runtime
from etl.errors import ConfigError

if TYPE_CHECKING:
    from etl.tasks.runtime import Runtime

__all__ = ["register", "vendors_app"]

vendors_app = typer.Typer(
    help="Vendors: capabilities, configuration, connection check.", invoke_without_command=True
)


def _describe(rt: Runtime) -> list[dict[str, Any]]:
    from etl.vendors import ADAPTERS

    docs = []
    for name, caps in rt.capabilities().items():
        cls = ADAPTERS[name]
        vs = rt.settings.vendor(name)
        missing = [s for s in cls.required_settings if not getattr(vs, s, None)]
        datasets = []
        for cap in caps.datasets:
            datasets.append(
                {
                    "dataset": cap.dataset,
                    "markets": sorted(cap.exchanges),
                    "freqs": [
                        f
                        for f in ("1m", "5m", "15m", "30m", "1h", "1d", "1w", "1M")
                        if f in cap.freqs
                    ],
                    "since": cap.since.isoformat() if cap.since else None,
                    "depth": dict(cap.depth) or None,
                    "symbols_per_call": cap.symbols_per_call,
                    "note": cap.note or None,
                }
            )
        docs.append(
            {
                "vendor": name,
                "title": cls.title,
                "configured": not missing,
                "missing": [f"ETL_{name.upper()}_{m.upper()}" for m in missing],
                "base_url": vs.base_url or cls.public_base_url,
                "rate_limit": {
                    "per_second": vs.rate or caps.rate.per_second,
                    "per_minute": caps.rate.per_minute,
                    "in_flight": caps.rate.in_flight,
                    "scope": caps.rate.scope,
                    "from": (vs.rate_from or f"ETL_{name.upper()}_RATE")
                    if vs.rate
                    else "plan default",
                },
                "datasets": datasets,
            }
        )
    return docs


@vendors_app.callback()
def vendors_list(
    ctx: typer.Context,
    data_dir: DataDirOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Each vendor: configured or not, datasets and frequencies it serves, rate limit."""
    if ctx.invoked_subcommand is not None:
        return
    with runtime(data_dir, config, json_out) as (rt, out):
        docs = _describe(rt)

        def human() -> None:
            from rich.console import Console
            from rich.table import Table

            table = Table(show_edge=False, header_style="bold", show_lines=False)
            for col in ("vendor", "configured", "rate/s", "dataset", "markets", "freqs"):
                table.add_column(col)
            for doc in docs:
                first = True
                status = "yes" if doc["configured"] else "no: set " + ", ".join(doc["missing"])
                for ds in doc["datasets"]:
                    table.add_row(
                        doc["vendor"] if first else "",
                        status if first else "",
                        f"{doc['rate_limit']['per_second']:g}" if first else "",
                        ds["dataset"],
                        " ".join(ds["markets"]),
                        " ".join(ds["freqs"]),
                    )
                    first = False
            Console().print(table)

        out.document(docs, human)


@vendors_app.command("check")
def vendors_check(
    vendor: Annotated[str, typer.Argument(help="Vendor name.")],
    data_dir: DataDirOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    config_id: ConfigIdOpt = None,
) -> None:
    """Connect (and log in) once: success, message and response time."""
    from etl.vendors import adapter_class

    with runtime(data_dir, config, json_out, config_id=config_id) as (rt, out):
        adapter_class(vendor)
        adapter = rt.adapter(vendor)

        async def go() -> Any:
            try:
                return await adapter.check()
            finally:
                await adapter.aclose()

        result = run_async(go())
        out.document(
            result.as_dict(),
            lambda: typer.echo(
                f"{vendor}: {'ok' if result.success else 'FAILED'} - {result.message} "
                f"({result.response_time * 1000:.0f} ms)"
            ),
        )
        if not result.success:  # a refused login or an unreachable vendor: configuration
            raise typer.Exit(ConfigError.exit_code)


def register(app: typer.Typer) -> None:
    app.add_typer(vendors_app, name="vendors")
