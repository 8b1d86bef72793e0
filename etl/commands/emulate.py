"""``etl emulate VENDOR``: serve a vendor's emulator on 127.0.0.1 until SIGINT/SIGTERM.

The edge of the emulators: it reads the settings (so ``ETL_<VENDOR>_API_KEY``, or
AmazingData's username and password, become the only credentials accepted), checks every
option before binding (a bad SPEC or vendor exits 2 and nothing listens), then prints one
ready line on stdout: the base URL, or with ``--json`` ``{"vendor","base_url","ws_url"}``.
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
import sys
import threading
from types import FrameType
from typing import Annotated

import typer

from etl.commands.common import ConfigOpt, DataDirOpt, JsonOpt, Output
from etl.config import Secret, load_settings
from etl.errors import BadInputError, EtlError

__all__ = ["register"]


def _parse_now(text: str | None) -> dt.datetime | None:
    """ISO-8601; an instant without a zone is taken as UTC."""
    if text is None:
        return None
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadInputError(
            f"invalid --now {text!r}: use ISO-8601, e.g. 2024-06-28T12:00:00Z"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _parse_extra(items: list[str] | None) -> dict[str, str]:
    extra = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise BadInputError(f"invalid --option {item!r}: use KEY=VALUE, e.g. token_ttl=60")
        extra[key.strip()] = value.strip()
    return extra


def _reveal(secret: Secret | None) -> str | None:
    return None if secret is None else secret.reveal()


def emulate(
    vendor: Annotated[str, typer.Argument(help="Vendor whose emulator to serve.")],
    port: Annotated[int, typer.Option("--port", help="Port on 127.0.0.1; 0 = a free one.")] = 0,
    faults: Annotated[
        str,
        typer.Option(
            "--faults",
            help="Faults to inject: a comma list of NAME\\[:VARIANT]\\[@WHEN], e.g. "
            "rate_limit_burst@3-5,bad_prices:nan@p0.1. WHEN is N, N-M, N+ or pX and counts "
            "the requests each fault applies to; none = every one. An unknown name is refused "
            "with the list of known ones; what each does: docs/vendors/README.md.",
        ),
    ] = "",
    now: Annotated[
        str | None,
        typer.Option("--now", help="Freeze the data clock (ISO-8601; no zone = UTC)."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the synthetic data.")] = 0,
    latency: Annotated[
        float, typer.Option("--latency", help="Seconds added to every answer.")
    ] = 0.0,
    speed: Annotated[
        float | None,
        typer.Option(
            "--speed",
            help="Replay: N market seconds per real second from --now (or the real time), "
            "for REST and the WebSocket feed alike.",
        ),
    ] = None,
    option: Annotated[
        list[str] | None,
        typer.Option("--option", help="Vendor option KEY=VALUE (AmazingData: token_ttl=60)."),
    ] = None,
    log_requests: Annotated[
        bool, typer.Option("--log-requests", help="Log every request on stderr.")
    ] = False,
    data_dir: DataDirOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Serve VENDOR's emulator on 127.0.0.1; print one ready line, then serve until stopped."""
    from etl.emulators import EmulatorOptions, EmulatorServer, emulator_class

    out = Output(json_out)
    try:
        cls = emulator_class(vendor)
        settings = load_settings(data_dir=data_dir, config=config).vendor(vendor)
        options = EmulatorOptions(
            now=_parse_now(now),
            seed=seed,
            api_key=_reveal(settings.api_key),
            username=settings.username,
            password=_reveal(settings.password),
            faults=faults,
            latency=latency,
            extra=_parse_extra(option),
            speed=speed,
        )
        emulator = cls(options)
        if not 0 <= port <= 65535:
            raise BadInputError(f"invalid --port {port}: use 0..65535")
        try:
            server = EmulatorServer(emulator, port=port)
        except OSError as exc:
            raise BadInputError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}") from exc
    except EtlError as exc:
        out.fail(exc)
    if log_requests:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        server_log = logging.getLogger("etl.emulators.server")
        server_log.addHandler(handler)
        server_log.setLevel(logging.DEBUG)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    server.start()
    try:
        out.document(server.ready(), lambda: typer.echo(server.base_url))
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()


def register(app: typer.Typer) -> None:
    app.command("emulate")(emulate)
