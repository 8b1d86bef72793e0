"""Commands that fetch or reorganise data: backfill, instruments/calendar sync, compact, catalog."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from etl.commands.common import (
    ConfigIdOpt,
    ConfigOpt,
    DataDirOpt,
    JsonOpt,
    catalog_after,
    emit_task,
    learn_plan,
    run_async,
    runtime,
)
from etl.errors import BadInputError
from etl.names import parse_dataset, parse_freq, parse_market, parse_range, parse_symbols
from etl.tasks.items import counted

__all__ = ["calendar_app", "catalog_app", "instruments_app", "register"]

VendorOpt = Annotated[str, typer.Option("--vendor", help="Vendor name (see `etl vendors`).")]

instruments_app = typer.Typer(help="Instrument lists and vendor code maps.", no_args_is_help=True)
calendar_app = typer.Typer(help="Trading calendars.", no_args_is_help=True)
catalog_app = typer.Typer(help="The DuckDB catalog over the lake.", no_args_is_help=True)


@instruments_app.command("sync")
def instruments_sync(
    vendor: VendorOpt,
    market: Annotated[str | None, typer.Option("--market", help="Only this market.")] = None,
    data_dir: DataDirOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    config_id: ConfigIdOpt = None,
) -> None:
    """Refresh the instrument list and the vendor's code map."""
    from etl.catalog import ensure_catalog
    from etl.tasks.sync import sync_instruments

    with runtime(data_dir, config, json_out, config_id=config_id) as (rt, out):
        from etl.tasks import engine

        mkt = parse_market(market) if market else None
        engine.check(rt, engine.TaskSpec.instruments(vendor, mkt))  # exit 2 or 3: no write
        ensure_catalog(rt.root, now=rt.clock())
        record = run_async(sync_instruments(rt, vendor, mkt))
        emit_task(out, record)


@calendar_app.command("sync")
def calendar_sync(
    vendor: VendorOpt,
    market: Annotated[str, typer.Option("--market", help="Market, e.g. SH.")],
    start: Annotated[str, typer.Option("--start", help="First date, YYYY-MM-DD.")],
    end: Annotated[str, typer.Option("--end", help="Last date (inclusive), YYYY-MM-DD.")],
    data_dir: DataDirOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    config_id: ConfigIdOpt = None,
) -> None:
    """Store the market's trading days (every calendar day, open or not) for a range."""
    from etl.catalog import ensure_catalog
    from etl.tasks.sync import sync_calendar

    with runtime(data_dir, config, json_out, config_id=config_id) as (rt, out):
        from etl.tasks import engine

        mkt = parse_market(market)
        first, last = parse_range(start, end)
        engine.check(rt, engine.TaskSpec.calendar(vendor, mkt, first, last))  # before writes
        ensure_catalog(rt.root, now=rt.clock())
        record = run_async(sync_calendar(rt, vendor, mkt, first, last))
        emit_task(out, record)


def backfill_command(
    vendor: VendorOpt,
    dataset: Annotated[
        str,
        typer.Option(
            "--dataset",
            help=(
                "klines, balance_sheet, income, cash_flow, adj_factors, future_varieties or "
                "main_contracts."
            ),
        ),
    ],
    freq: Annotated[str | None, typer.Option("--freq", help="1m 5m 15m 30m 1h 1d 1w 1M.")] = None,
    symbols: Annotated[
        str | None, typer.Option("--symbols", help="Comma list, or @file with one symbol a line.")
    ] = None,
    market: Annotated[
        str | None,
        typer.Option(
            "--market", help="Every instrument of a market (cache-all), instead of --symbols."
        ),
    ] = None,
    start: Annotated[
        str | None,
        typer.Option(
            "--start", help="First trade date (or reporting period for statements), YYYY-MM-DD."
        ),
    ] = None,
    end: Annotated[str | None, typer.Option("--end", help="Last one, inclusive.")] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Print the plan (calls, bars, seconds); fetch nothing."),
    ] = False,
    refetch: Annotated[
        bool,
        typer.Option("--refetch", help="Fetch bars the lake already holds again (klines)."),
    ] = False,
    data_dir: DataDirOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    config_id: ConfigIdOpt = None,
) -> None:
    """Fetch a range from a vendor and store it (a resumable task)."""
    from etl.tasks.backfill import BackfillRequest, backfill, check_request, plan_backfill

    with runtime(data_dir, config, json_out, config_id=config_id) as (rt, out):
        ds = parse_dataset(dataset)
        f = parse_freq(freq).name if freq else None
        syms = tuple(str(s) for s in parse_symbols(symbols, cwd=Path.cwd())) if symbols else ()
        first = last = None
        if start or end:
            if not (start and end):
                raise BadInputError("give both --start and --end")
            first, last = parse_range(start, end)
        if market and symbols:
            raise BadInputError("give --symbols or --market, not both")
        if market:
            from etl.tasks.expected import Selection, market_symbols

            if first is None or last is None:
                raise BadInputError("--market needs --start and --end")
            syms = tuple(
                market_symbols(rt.root, Selection(ds, first, last, f, (), parse_market(market)))
            )
        req = BackfillRequest(vendor, ds, syms, f, first, last, refetch)
        check_request(rt, req)  # exit 2 before the catalog or anything else is touched
        if dry_run:
            doc = plan_backfill(rt, req)
            if learn_plan(rt, vendor):  # the rate was a guess: plan again at the real one
                doc = plan_backfill(rt, req)
            bars = f" for ~{doc['rows_expected']:,} bars" if doc["rows_expected"] else ""
            out.document(
                doc,
                lambda: typer.echo(
                    f"plan: {counted(doc['requests'], 'request')} in "
                    f"{counted(doc['calls'], 'call')}{bars}; "
                    f"~{doc['seconds_at_rate_limit']} s at {doc['rate_limit_per_second']}/s; "
                    "nothing fetched"
                ),
            )
            return
        rt.check_configured(vendor)  # exit 3 before the catalog is made
        with catalog_after(rt):
            record = run_async(backfill(rt, req))
        emit_task(out, record)


def compact_command(
    dataset: Annotated[str | None, typer.Option("--dataset", help="Only this dataset.")] = None,
    data_dir: DataDirOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Merge the small files of each partition bucket into one, and mirror klines files for
    fast one-symbol reads (readers never see a gap)."""
    with runtime(data_dir, config, json_out) as (rt, out):
        ds = parse_dataset(dataset) if dataset else None
        results = rt.lake.compact(ds, now=rt.clock())
        doc = {
            "datasets": [
                {
                    "dataset": r.dataset,
                    "partitions": r.partitions,
                    "files_removed": r.files_removed,
                    "files_added": r.files_added,
                    "buckets_compacted": r.compacted_buckets,
                    "mirrors_written": r.mirrors_written,
                }
                for r in results
            ]
        }

        def human() -> None:
            for r in results:
                if r.files_removed:
                    typer.echo(
                        f"{r.dataset}: {r.files_removed} files -> {r.files_added} "
                        f"in {r.partitions} partitions"
                    )
                if r.mirrors_written:
                    typer.echo(f"{r.dataset}: {r.mirrors_written} files mirrored for fast reads")
            if not any(r.files_removed or r.mirrors_written for r in results):
                typer.echo("nothing to compact")

        out.document(doc, human)


@catalog_app.command("rebuild")
def catalog_rebuild(
    data_dir: DataDirOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Rebuild the catalog (and every partition manifest) from the lake's Parquet files alone."""
    from etl import schema as schemas
    from etl.catalog import build_catalog

    with runtime(data_dir, config, json_out) as (rt, out):
        now = rt.clock()
        stats = {}
        rt.lake.sweep()
        for name in schemas.schemas():
            manifests = rt.lake.rebuild_manifests(name, now=now)
            stats[name] = {
                "partitions": len(manifests),
                "files": sum(len(m.files) for m in manifests),
                "rows": sum(m.rows for m in manifests),
            }
        path = build_catalog(rt.root, now=now)
        doc = {"catalog": str(path), "datasets": stats}

        def human() -> None:
            typer.echo(f"rebuilt {path}")
            for name, s in stats.items():
                typer.echo(
                    f"  {name:<17} {s['rows']:>12,} rows  {s['files']:>5} files  "
                    f"{s['partitions']:>4} partitions"
                )

        out.document(doc, human)


def verify_command(
    dataset: Annotated[str | None, typer.Option("--dataset", help="Only this dataset.")] = None,
    repair: Annotated[
        bool,
        typer.Option(
            "--repair",
            help="Take damaged files out (kept in lake/.quarantine); fill-missing refetches.",
        ),
    ] = False,
    data_dir: DataDirOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Check every lake file against the digest and row count recorded when it was written."""
    from etl.dataroot import DataRoot
    from etl.lake.verify import verify_lake

    with runtime(data_dir, config, json_out) as (rt, out):
        names = [parse_dataset(dataset)] if dataset else None
        lake_dir = DataRoot(rt.root).lake
        if not lake_dir.is_dir():  # a typo must not read as "every file is as written"
            raise BadInputError(
                f"no lake at {lake_dir}: check --data-dir, ETL_DATA_DIR or data_dir in etl.toml"
            )
        findings = verify_lake(rt.root, names, repair=repair, now=rt.clock())
        doc = {"ok": not findings, "repaired": repair, "findings": [f.doc() for f in findings]}

        def human() -> None:
            for f in findings:
                held = f", held {f.rows} rows" if f.rows is not None else ""
                span = f" {f.min_time} .. {f.max_time}" if f.min_time else ""
                done = " -> quarantined" if f.repaired and "missing" not in f.problem else ""
                typer.echo(f"{f.dataset}/{f.partition}/{f.file}: {f.problem}{held}{span}{done}")
            if not findings:
                typer.echo("every file is as written")
            elif not repair:
                typer.echo("run `etl verify --repair`, then fill-missing, to fetch them again")

        out.document(doc, human)
        if findings and not repair:
            raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(instruments_app, name="instruments")
    app.add_typer(calendar_app, name="calendar")
    app.add_typer(catalog_app, name="catalog")
    app.command("backfill")(backfill_command)
    app.command("compact")(compact_command)
    app.command("verify")(verify_command)
