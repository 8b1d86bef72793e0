"""The command line (docs/contract.md "Commands"): a thin edge over the task functions.

Start-up is lazy. ``etl --help`` must answer within 0.3 s and a task command must reach its
first vendor request within 0.5 s, while polars, duckdb, pyarrow, httpx, numpy,
exchange_calendars and apscheduler each take 0.1-0.5 s to import. So this module imports
none of them, nor any command module: :data:`COMMANDS` names each top-level command, the
module that defines it and its one-line help, and :class:`LazyGroup` imports that module
only when the command runs (or its own ``--help`` is asked for). ``etl --help`` is drawn
from the table alone.

Registering a new command
-------------------------
1. Put it in a module under ``etl/commands/`` with a function ``register(app: typer.Typer)``
   that adds it: ``app.command("name")(function)`` for a command, ``app.add_typer(sub,
   name="name")`` for a group. One module may register several names.
2. At the top of that module import only light things: ``typer``, ``etl.commands.common``
   (the shared options and :func:`~etl.commands.common.runtime`), ``etl.errors``,
   ``etl.names``, ``etl.config``, the standard library. Import everything else (polars,
   duckdb, pyarrow, httpx, numpy, pandas, exchange_calendars, apscheduler, rich, and the
   ``etl`` packages that pull them in: ``etl.tasks``, ``etl.lake``, ``etl.catalog``,
   ``etl.vendors``, ``etl.scheduler``, ...) inside the command's body; types used only in
   annotations go under ``if TYPE_CHECKING:``.
3. Add one line to :data:`COMMANDS`: ``"name": ("etl.commands.module", "One-line help.")``,
   the help being the first paragraph of the command's own help (its docstring, or a
   group's ``help=``).

``tests/cli/test_startup.py`` holds every entry to this: the help matches, the module
registers the name, and neither ``import etl.cli`` nor loading any command imports a heavy
module; it also times ``etl --help`` in a subprocess.

Every command also takes ``-v/--verbose`` (repeat for debug) and ``--log-file PATH``, before
or after its name; they are added here, not in each command.
"""

from __future__ import annotations

import functools
import importlib
import json
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Final

import typer
from typer._click.exceptions import ClickException  # typer's own click: what it raises
from typer.core import TyperCommand, TyperGroup

from etl import __version__
from etl.commands import common

__all__ = ["COMMANDS", "LazyGroup", "app", "main"]

# name -> (module whose register() adds it, one-line help shown by `etl --help`), in the
# order `etl --help` lists them: set-up, fetching, tasks and jobs, reading, upkeep.
COMMANDS: Final[dict[str, tuple[str, str]]] = {
    "demo": (
        "etl.commands.demo",
        "Run the whole pipeline offline on the embedded sim vendor, then query the result.",
    ),
    "vendors": ("etl.commands.vendors", "Vendors: capabilities, configuration, connection check."),
    "emulate": (
        "etl.commands.emulate",
        "Serve VENDOR's emulator on 127.0.0.1; print one ready line, then serve until stopped.",
    ),
    "instruments": ("etl.commands.data", "Instrument lists and vendor code maps."),
    "calendar": ("etl.commands.data", "Trading calendars."),
    "backfill": (
        "etl.commands.data",
        "Fetch a range from a vendor and store it (a resumable task).",
    ),
    "detect-missing": (
        "etl.commands.gaps",
        "List what the calendar says should exist and the lake lacks, by gap state.",
    ),
    "fill-missing": (
        "etl.commands.gaps",
        "Fetch only what detect-missing finds (a resumable task).",
    ),
    "record": (
        "etl.commands.record",
        "Record a vendor's WebSocket feed into the lake; gaps are repaired over REST.",
    ),
    "tasks": ("etl.commands.tasks", "Task records: list, show, resume, cancel."),
    "jobs": ("etl.commands.jobs", "Scheduled jobs (jobs/*.toml): list them, run one now."),
    "scheduler": (
        "etl.commands.jobs",
        "Run every job on its schedule until SIGTERM (one scheduler per data root).",
    ),
    "sql": (
        "etl.commands.query",
        "Read-only SQL over the catalog; works while backfills are writing.",
    ),
    "duckdb": (
        "etl.commands.shell",
        "Open catalog.duckdb in the DuckDB shell, read-only (arguments go to the shell).",
    ),
    "compact": (
        "etl.commands.data",
        "Merge the small files of each partition bucket into one, and mirror klines files "
        "for fast one-symbol reads (readers never see a gap).",
    ),
    "verify": (
        "etl.commands.data",
        "Check every lake file against the digest and row count recorded when it was written.",
    ),
    "catalog": ("etl.commands.data", "The DuckDB catalog over the lake."),
    "serve": (
        "etl.commands.serve",
        "Serve the platform API (/api/v1) and web pages (/) over this data root.",
    ),
    "users": ("etl.commands.serve", "Accounts of `etl serve`."),
}


@functools.cache
def load_command(name: str) -> Any:
    """The real command (a click command or group) called ``name``: imports its module."""
    module_name, _ = COMMANDS[name]
    module = importlib.import_module(module_name)
    holder = typer.Typer(rich_markup_mode=None, add_completion=False)
    module.register(holder)
    built = typer.main.get_command(holder)
    commands = getattr(built, "commands", None)
    if commands is not None:
        if name not in commands:
            raise LookupError(f"{module_name}.register() does not add a command {name!r}")
        built = commands[name]
    _add_log_options(built)
    return built


class _Listed(TyperCommand):
    """A command's name and help for ``etl --help``: never run (its module is not imported)."""


class _LoadedOnUse(Mapping[str, Any]):
    """``group.commands`` for code that walks a click tree (tests, completion): each command
    is imported when it is looked up."""

    def __getitem__(self, name: str) -> Any:
        if name not in COMMANDS:
            raise KeyError(name)
        return load_command(name)

    def __iter__(self) -> Iterator[str]:
        return iter(COMMANDS)

    def __len__(self) -> int:
        return len(COMMANDS)


class LazyGroup(TyperGroup):
    """The top-level group: commands come from :data:`COMMANDS`, imported when used."""

    _listing = False

    @property  # type: ignore[override]
    def commands(self) -> Mapping[str, Any]:
        return _LoadedOnUse()

    @commands.setter
    def commands(self, value: Mapping[str, Any]) -> None:
        if value:
            raise TypeError("add a command to etl.cli.COMMANDS, not to the group")

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in COMMANDS:
            return None
        if self._listing:
            text = COMMANDS[cmd_name][1]
            return _Listed(name=cmd_name, help=text, short_help=text)
        return load_command(cmd_name)

    def make_context(
        self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any
    ) -> Any:
        argv = list(args)
        try:
            ctx = super().make_context(info_name, args, parent=parent, **extra)
        except ClickException as exc:
            _usage_error_document(exc, argv)
            raise
        ctx.meta[_ARGV] = argv
        return ctx

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except ClickException as exc:  # a subcommand's own arguments did not parse
            _usage_error_document(exc, ctx.meta.get(_ARGV, ()))
            raise

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True  # the command list comes from the table: nothing imported
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


_ARGV: Final = "etl.argv"


def _usage_error_document(exc: ClickException, argv: Iterable[str]) -> None:
    """With ``--json``, a usage error (an unknown option, a value of the wrong type) prints
    the same error document as every other refusal, so that a script reading stdout gets one
    document whatever went wrong; click itself only writes the usage text to stderr."""
    args = list(argv)
    if "--" in args:
        args = args[: args.index("--")]
    if "--json" not in args:
        return
    doc = {
        "error": {"type": type(exc).__name__, "message": exc.format_message()},
        "exit_code": exc.exit_code,
    }
    sys.stdout.write(json.dumps(doc, ensure_ascii=False) + "\n")
    sys.stdout.flush()


_VERBOSE_HELP: Final = "More log lines on stderr: -v info, -vv debug."
_LOG_FILE_HELP: Final = "Also write every log line (debug included) to PATH."

VerboseOpt = Annotated[
    int, typer.Option("-v", "--verbose", count=True, help=_VERBOSE_HELP, show_default=False)
]
LogFileOpt = Annotated[
    Path | None,
    typer.Option("--log-file", dir_okay=False, help=_LOG_FILE_HELP, show_default=False),
]


def _log_params() -> list[Any]:
    """The two options as typer builds them (from a throw-away command's signature)."""
    holder = typer.Typer()

    @holder.command()
    def options(verbose: VerboseOpt = 0, log_file: LogFileOpt = None) -> None:
        """Never run."""

    return list(typer.main.get_command(holder).params)


def _add_log_options(command: Any) -> None:
    """Give ``command`` (and every command below it) ``-v/--verbose`` and ``--log-file``,
    so they work after the command's name as well as before it."""
    for sub in getattr(command, "commands", {}).values():
        _add_log_options(sub)
    if getattr(command, "commands", None) is not None or command.callback is None:
        return
    if (command.context_settings or {}).get("ignore_unknown_options"):
        return  # its arguments go to another program (etl duckdb): -v would eat one of them
    taken = {opt for p in command.params for opt in getattr(p, "opts", ())}
    if taken & {"-v", "--verbose", "--log-file"}:
        return
    command.params += _log_params()
    inner = command.callback

    def callback(*args: Any, verbose: int = 0, log_file: Any = None, **kwargs: Any) -> Any:
        common.set_log_options(
            verbose=verbose or 0, log_file=Path(log_file) if log_file is not None else None
        )
        return inner(*args, **kwargs)

    command.callback = callback


app = typer.Typer(
    name="etl",
    cls=LazyGroup,
    help="Market-data warehouse: vendor adapters -> Parquet lake -> DuckDB catalog.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"etl {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version."
        ),
    ] = False,
    verbose: VerboseOpt = 0,
    log_file: LogFileOpt = None,
) -> None:
    """Market-data warehouse: vendor adapters -> Parquet lake -> DuckDB catalog."""
    common.set_log_options(verbose=verbose, log_file=log_file)


def main() -> None:
    try:
        app()
    except BrokenPipeError:  # `etl sql ... | head`: the reader left; that is not an error
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(0)
    except Exception as exc:  # a bug: one line here, the traceback in a file
        sys.exit(common.report_unexpected(exc))


if __name__ == "__main__":
    main()
