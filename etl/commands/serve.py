"""``etl serve`` and ``etl users``: the platform API over this data root, and its accounts.

The server's libraries (FastAPI, uvicorn, argon2) are imported inside the commands, so the
rest of the CLI does not pay for them.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from typing import Annotated

import typer

from etl.commands.common import ConfigOpt, DataDirOpt, JsonOpt, runtime
from etl.errors import BadInputError, ConfigError

__all__ = ["register", "users_app"]

users_app = typer.Typer(help="Accounts of `etl serve`.", no_args_is_help=True)

# Variables a worker process must not inherit: the server's tasks use the stored upstream
# configurations, never the credentials of whoever started the server.
_CREDENTIALS = ("_API_KEY", "_PASSWORD", "_USERNAME")


def _worker_env() -> dict[str, str]:
    return {
        k: v
        for k, v in os.environ.items()
        if not (k.startswith("ETL_") and k.endswith(_CREDENTIALS)) and k != "ETL_SECRET_KEY"
    }


def serve_command(
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port (0: any free port).")] = 8000,
    token_ttl: Annotated[
        int, typer.Option("--token-ttl", help="Seconds a sign-in token lives.")
    ] = 86_400,
    access_log: Annotated[bool, typer.Option("--access-log", help="Log every request.")] = False,
    data_dir: DataDirOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Serve the platform API (/api/v1) and web pages (/) over this data root."""
    with runtime(data_dir, config, json_out) as (rt, out):
        from etl.localkeys import load_key
        from etl.server.accounts import UserStore
        from etl.server.context import ServerContext
        from etl.server.main import bind, serve, utc_now

        if not 0 <= port < 65536:
            raise BadInputError(f"--port must be 0 to 65535, got {port}")
        if not 60 <= token_ttl <= 30 * 86_400:
            raise BadInputError("--token-ttl must be 60 s to 30 days")
        if not UserStore(rt.root).all():
            raise ConfigError(
                f"no account can sign in to {rt.root}: add one first with "
                "`etl users add NAME --role admin` (the password is read from standard input)"
            )
        if host in ("0.0.0.0", "::", ""):  # noqa: S104 - we only compare, and warn
            typer.echo(
                f"etl serve: warning: binding {host or 'every address'} exposes the API to "
                "the network; sign-ins travel in clear without a TLS proxy in front",
                err=True,
            )
        key = load_key(os.environ, rt.root)
        ctx = ServerContext.build(
            rt.settings, key, token_ttl=token_ttl, clock=utc_now, env=_worker_env()
        )
        try:
            sock = bind(host, port)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
        bound = sock.getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        url = f"http://{shown}:{bound}"

        def ready() -> None:
            if json_out:
                doc = {"url": url + "/", "base_url": url + "/api/v1", "pid": os.getpid()}
                sys.stdout.write(json.dumps(doc) + "\n")
                sys.stdout.flush()
                out.as_json = False  # the ready line is the one document: no error one after
            else:
                typer.echo(f"etl serve: {url}/ (API at {url}/api/v1); Ctrl-C stops", err=True)

        serve(ctx, sock, ready=ready, access_log=access_log)


def _read_password(confirm: bool) -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if confirm and getpass.getpass("again: ") != first:
            raise BadInputError("the two passwords differ")
        return first
    line = sys.stdin.readline()
    return line[:-1] if line.endswith("\n") else line


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="User name.")],
    role: Annotated[str, typer.Option("--role", help="admin or user.")] = "user",
    email: Annotated[str | None, typer.Option("--email", help="E-mail address.")] = None,
    data_dir: DataDirOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Add an account; the password comes from standard input (or a prompt)."""
    with runtime(data_dir, config, json_out) as (rt, out):
        from etl.server.accounts import UserStore, check_name, check_password

        check_name(name)
        password = check_password(_read_password(confirm=True))
        account = UserStore(rt.root).add(name, password, role=role, email=email)
        out.document(
            account.public(), lambda: typer.echo(f"user {account.username} ({account.role}) added")
        )


@users_app.command("list")
def users_list(
    data_dir: DataDirOpt = None, json_out: JsonOpt = False, config: ConfigOpt = None
) -> None:
    """The accounts (never their passwords)."""
    with runtime(data_dir, config, json_out) as (rt, out):
        from etl.server.accounts import UserStore

        accounts = UserStore(rt.root).all()
        docs = [{**a.public(), "created_at": a.created_at} for a in accounts]

        def human() -> None:
            if not accounts:
                typer.echo("no accounts: etl users add NAME --role admin")
            for a in accounts:
                state = "" if a.is_active else "  (disabled)"
                typer.echo(f"{a.id:>3}  {a.username:<20} {a.role:<6} {a.email or ''}{state}")

        out.document(docs, human)


@users_app.command("remove")
def users_remove(
    name: Annotated[str, typer.Argument(help="User name.")],
    data_dir: DataDirOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Remove an account; its tokens stop working at once."""
    with runtime(data_dir, config, json_out) as (rt, out):
        from etl.server.accounts import UserStore

        UserStore(rt.root).remove(name)
        out.document({"removed": name}, lambda: typer.echo(f"user {name} removed"))


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_command)
    app.add_typer(users_app, name="users")
