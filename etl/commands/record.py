"""``etl record``: record a vendor's WebSocket feed into the lake until SIGTERM, SIGINT or
``--duration`` seconds (docs/contract.md "Commands and exit codes")."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from etl.commands.common import ConfigOpt, DataDirOpt, JsonOpt, runtime
from etl.errors import BadInputError

__all__ = ["register"]


def record_command(
    vendor: Annotated[str, typer.Option("--vendor", help="infoway, mdapi or stocktv.")],
    symbols: Annotated[
        str | None, typer.Option("--symbols", help="Comma list, or @file with one symbol a line.")
    ] = None,
    market: Annotated[
        str | None, typer.Option("--market", help="Every synced instrument of a market.")
    ] = None,
    channels: Annotated[
        str | None,
        typer.Option(
            "--channels",
            help="Infoway: trades, klines, depth (default trades,klines); mdapi and StockTV: "
            "quotes.",
        ),
    ] = None,
    duration: Annotated[
        float | None, typer.Option("--duration", help="Stop after SEC seconds.")
    ] = None,
    status_every: Annotated[
        float, typer.Option("--status-every", help="Seconds between status lines on stderr.")
    ] = 10.0,
    heartbeat: Annotated[
        float | None,
        typer.Option(
            "--heartbeat",
            hidden=True,
            help="Seconds between heartbeats (default: the vendor's); silence for two "
            "periods is a stall. For tests against emulators.",
        ),
    ] = None,
    data_dir: DataDirOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Record a vendor's WebSocket feed into the lake; gaps are repaired over REST.

    Trades go to ticks, quotes to quotes, whole minutes to klines (source live). Commits at
    least every 2 s; SIGTERM or Ctrl-C commit and exit 0."""
    with runtime(data_dir, config, json_out, progress=False) as (rt, out):
        from etl.catalog import ensure_catalog
        from etl.names import parse_symbols
        from etl.recorder.start import build, record, select_symbols

        if bool(symbols) == bool(market):
            raise BadInputError("give --symbols or --market (one of them)")
        if duration is not None and not duration > 0:
            raise BadInputError(f"invalid --duration {duration}: give seconds > 0")
        if not status_every > 0:
            raise BadInputError("--status-every must be > 0 seconds")
        given = parse_symbols(symbols, cwd=Path.cwd()) if symbols else None
        syms = select_symbols(rt, vendor, given, market)
        chosen = [c.strip() for c in channels.split(",") if c.strip()] if channels else None
        recorder, used = build(
            rt, vendor, syms, chosen, duration=duration, status_every=status_every
        )
        if heartbeat is not None:
            if not heartbeat > 0:
                raise BadInputError("--heartbeat must be > 0 seconds")
            for feed in recorder.feeds:
                feed.heartbeat = heartbeat
        record(rt, recorder)  # a refused key raises here, before anything is written
        ensure_catalog(rt.root, now=rt.clock())
        doc = recorder.document(used)

        def human() -> None:
            typer.echo(
                f"recorded {vendor}: {doc['messages']} messages, {doc['ticks_written']} ticks, "
                f"{doc['quotes_written']} quotes, {doc['bars_written']} bars, "
                f"{doc['reconnects']} reconnects, {len(doc['gaps'])} gaps"
            )

        out.document(doc, human)
        failed = recorder.never_connected()
        if failed and not recorder.stopped_early:  # a signal's stop exits 0 (the contract)
            typer.echo(
                f"etl: error: {failed}: check ETL_{vendor.upper()}_WS_URL and the network",
                err=True,
            )
            raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("record")(record_command)
