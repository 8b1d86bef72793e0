"""``etl demo``: the whole pipeline, offline, on the embedded ``sim`` vendor, in under a minute.

The steps and queries live in :mod:`etl.commands.demo_run` (imported when the command runs).
"""

from __future__ import annotations

import typer

from etl.commands.common import ConfigOpt, DataDirOpt, JsonOpt, runtime

__all__ = ["register"]


def demo_command(
    data_dir: DataDirOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Run the whole pipeline offline on the embedded sim vendor, then query the result."""
    from etl.commands.demo_run import run

    with runtime(data_dir, config, json_out) as (rt, out):
        run(rt, out, json_out)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_command)
