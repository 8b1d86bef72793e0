"""The command line (docs/contract.md "Commands"): a thin edge over the task functions."""

from __future__ import annotations

import typer

from etl.commands import data, demo, emulate, gaps, jobs, query, serve
from etl.commands.tasks import tasks_app
from etl.commands.vendors import vendors_app

__all__ = ["app", "main"]

app = typer.Typer(
    name="etl",
    help="Market-data warehouse: vendor adapters -> Parquet lake -> DuckDB catalog.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(vendors_app, name="vendors")
app.add_typer(tasks_app, name="tasks")
data.register(app)
query.register(app)
demo.register(app)
gaps.register(app)
emulate.register(app)
jobs.register(app)
serve.register(app)


def main() -> None:
    try:
        app()
    except BrokenPipeError:  # `etl sql ... | head`: the reader left; that is not an error
        import os
        import sys

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(0)


if __name__ == "__main__":
    main()
