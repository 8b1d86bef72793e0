"""``etl detect-missing`` and ``etl fill-missing``: what the calendar says should exist and
the lake lacks, and fetching only that."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

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

if TYPE_CHECKING:
    from etl.tasks.expected import Selection
    from etl.tasks.runtime import Runtime

__all__ = ["register"]

DatasetOpt = Annotated[str, typer.Option("--dataset", help="klines or a statements dataset.")]
FreqOpt = Annotated[str | None, typer.Option("--freq", help="1m 5m 15m 30m 1h 1d 1w 1M.")]
SymbolsOpt = Annotated[str | None, typer.Option("--symbols", help="Comma list or @file.")]
MarketOpt = Annotated[str | None, typer.Option("--market", help="Every instrument of a market.")]
StartOpt = Annotated[str, typer.Option("--start", help="First trade date, YYYY-MM-DD.")]
EndOpt = Annotated[str, typer.Option("--end", help="Last trade date (inclusive).")]


def check_market(rt: Runtime, sel: Selection, vendor: str = "V") -> None:
    """A market's selection needs the market's instruments in the lake: without them, exit 2
    before the catalog or a task record is made (a refusal writes nothing)."""
    if sel.market and not sel.symbols:
        from etl.tasks.expected import market_symbols

        market_symbols(rt.root, sel, vendor)


def selection(
    dataset: str, freq: str | None, symbols: str | None, market: str | None, start: str, end: str
) -> Selection:
    """Parse and cross-check a selection; every mistake is exit 2 before any work."""
    from etl.tasks.expected import STATEMENT_DATASETS, Selection

    ds = parse_dataset(dataset)
    if ds != "klines" and ds not in STATEMENT_DATASETS:
        raise BadInputError(f"detect/fill handle klines and statements, not {ds}")
    if ds == "klines" and not freq:
        raise BadInputError("--freq is required for klines")
    if ds != "klines" and freq:
        raise BadInputError(f"--freq applies to klines only, not {ds}")
    if bool(symbols) == bool(market):
        raise BadInputError("give exactly one of --symbols or --market")
    first, last = parse_range(start, end)
    syms = tuple(str(s) for s in parse_symbols(symbols, cwd=Path.cwd())) if symbols else ()
    return Selection(
        ds,
        first,
        last,
        parse_freq(freq).name if freq else None,
        syms,
        parse_market(market) if market else None,
    )


def detect_command(
    dataset: DatasetOpt,
    start: StartOpt,
    end: EndOpt,
    freq: FreqOpt = None,
    symbols: SymbolsOpt = None,
    market: MarketOpt = None,
    data_dir: DataDirOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """List what the calendar says should exist and the lake lacks, by gap state."""
    from etl.catalog import ensure_catalog
    from etl.tasks.detect_task import detect_missing

    with runtime(data_dir, config, json_out) as (rt, out):
        sel = selection(dataset, freq, symbols, market, start, end)
        check_market(rt, sel)
        ensure_catalog(rt.root, now=rt.clock())
        _record, doc = detect_missing(rt, sel)

        def human() -> None:
            typer.echo(
                f"{doc['dataset']} {doc['freq'] or ''} {doc['start']}..{doc['end']}: "
                f"{doc['total_count']} symbols, {doc['complete_count']} complete, "
                f"{doc['missing_count']} with gaps; {doc['present_rows']:,}/"
                f"{doc['expected_rows']:,} slots present"
            )
            states = ", ".join(f"{k} {v:,}" for k, v in doc["states"].items() if v)
            if states:
                typer.echo(f"  absent slots: {states}")
            for gap in doc["gaps"][:20]:
                typer.echo(
                    f"  {gap['symbol']:<14} {gap['start']} .. {gap['end']}  "
                    f"{gap['bars']:>6} bars  {gap['state']}"
                )
            if len(doc["gaps"]) > 20:
                typer.echo(f"  ... {len(doc['gaps']) - 20} more gaps (--json for all)")
            if doc["unjudged"]:
                typer.echo(f"  not judged (no calendar): {len(doc['unjudged'])} symbols", err=True)

        out.document(doc, human)


def fill_command(
    vendor: Annotated[str, typer.Option("--vendor", help="Vendor to fetch from.")],
    dataset: DatasetOpt,
    start: StartOpt,
    end: EndOpt,
    freq: FreqOpt = None,
    symbols: SymbolsOpt = None,
    market: MarketOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan; fetch nothing.")
    ] = False,
    recheck: Annotated[
        bool, typer.Option("--recheck", help="Ask again for slots the vendor confirmed empty.")
    ] = False,
    data_dir: DataDirOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    config_id: ConfigIdOpt = None,
) -> None:
    """Fetch only what detect-missing finds (a resumable task)."""
    from etl.tasks.fill import fill_missing, plan_only

    with runtime(data_dir, config, json_out, config_id=config_id) as (rt, out):
        sel = selection(dataset, freq, symbols, market, start, end)
        if dry_run:
            doc = plan_only(rt, vendor, sel, recheck=recheck)  # bad input: exit 2 first
            if learn_plan(rt, vendor):  # the rate was a guess: plan again at the real one
                doc = plan_only(rt, vendor, sel, recheck=recheck)
            out.document(
                doc,
                lambda: typer.echo(
                    f"plan: {counted(doc['requests'], 'request')} in "
                    f"{counted(doc['calls'], 'call')} for "
                    f"{doc['rows_expected']:,} slots; ~{doc['seconds_at_rate_limit']} s at "
                    f"{doc['rate_limit_per_second']}/s; {doc['unfillable']:,} slots unfillable"
                ),
            )
            return
        from etl.tasks import engine

        engine.check(rt, engine.TaskSpec.fill(vendor, sel, recheck=recheck))  # 2 or 3: no write
        check_market(rt, sel, vendor)
        with catalog_after(rt):
            record = run_async(fill_missing(rt, vendor, sel, recheck=recheck))
        emit_task(out, record)


def register(app: typer.Typer) -> None:
    app.command("detect-missing")(detect_command)
    app.command("fill-missing")(fill_command)
