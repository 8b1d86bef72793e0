"""Job definitions: one TOML file per job under ``jobs/``, checked before anything runs.

A job file says *when* (``[schedule]``), *what* (``action``, the selection, the window) and
*from whom* (``vendor``, or ``vendors`` tried in turn). Every problem is reported as
``<file>: <field>: <what is wrong>`` so a user fixes the right line of the right file; all
problems of a folder are collected, not just the first.

Vendors, and what each serves, come from the adapter registry at run time (the
``Capabilities`` passed in), so a vendor registered tomorrow is valid tomorrow without a change
here. Shape checks (actions, keys, names) need no registry; see :mod:`etl.scheduler.validate`
for the checks against the capability tables.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from etl.calendars import market_spec
from etl.errors import BadInputError
from etl.names import DATASETS, FREQS, MARKETS, parse_symbol
from etl.scheduler.cron import CronError, JobTrigger
from etl.scheduler.session import SessionRule, SessionTrigger
from etl.scheduler.window import Window, WindowError, parse_window

__all__ = [
    "ACTIONS",
    "JobFileError",
    "JobSpec",
    "Schedule",
    "parse_job",
]

ACTIONS: Final = (
    "fill-missing", "backfill", "instruments-sync", "calendar-sync",
    "main-contracts-snapshot", "compact", "record",
)  # fmt: skip
DEFAULT_TIMEZONE: Final = "Asia/Shanghai"
_NAME_RE: Final = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")  # it names a lock file: keep it tame
_TOP_KEYS: Final = frozenset({
    "name", "description", "schedule", "action", "vendor", "vendors", "market", "markets",
    "symbols", "dataset", "freq", "window", "start", "end", "recheck", "channels",
})  # fmt: skip
_SCHEDULE_KEYS: Final = frozenset(
    {"cron", "timezone", "grace_seconds", "trading_days_only", "calendar"}
)
# A record job's [schedule] follows its market's sessions instead of a cron expression.
_RECORD_SCHEDULE_KEYS: Final = frozenset(
    {"calendar", "before_open_minutes", "after_close_minutes", "hours", "grace_seconds"}
)
DEFAULT_BEFORE_OPEN: Final = 5
DEFAULT_AFTER_CLOSE: Final = 5
_MAX_MARGIN: Final = 720  # minutes: half a day either side is already more than a margin
# Which datasets each action can take (None: the action has a fixed one, or none at all).
_DATASETS: Final[dict[str, tuple[str, ...]]] = {
    "fill-missing": ("klines", "balance_sheet", "income", "cash_flow"),
    "backfill": (
        "klines", "balance_sheet", "income", "cash_flow", "future_varieties", "main_contracts",
        "adj_factors",
    ),
    "compact": DATASETS,
}  # fmt: skip
SNAPSHOTS: Final = ("future_varieties", "main_contracts")
STATEMENTS: Final = ("balance_sheet", "income", "cash_flow")
# Datasets a job selects symbols (or markets) and a date window for.
SELECTED: Final = ("klines", *STATEMENTS, "adj_factors")


class JobFileError(BadInputError):
    """A job file is wrong; the message starts with the file and the field to fix."""

    def __init__(self, file: Path | str, field: str | None, problem: str) -> None:
        self.file = _shown(Path(file))
        self.field = field
        self.problem = problem
        where = f"{self.file}: {field}" if field else self.file
        super().__init__(f"{where}: {problem}")


def _shown(file: Path) -> str:
    """The path as the user would type it: relative to the working directory when inside."""
    try:
        return str(file.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(file)


@dataclass(frozen=True)
class Schedule:
    cron: str
    timezone: str = DEFAULT_TIMEZONE
    grace_seconds: int | None = None  # None: a missed run is caught up however late
    trading_days_only: bool = False
    calendar: tuple[str, ...] = ()  # the markets whose trading days count
    session: SessionRule | None = None  # record jobs: the session windows instead of cron


@dataclass(frozen=True)
class JobSpec:
    """One validated job file."""

    name: str
    file: Path
    schedule: Schedule
    action: str
    vendors: tuple[str, ...] = ()
    dataset: str | None = None
    freq: str | None = None
    markets: tuple[str, ...] = ()
    symbols: tuple[str, ...] = ()
    window: Window | None = None
    recheck: bool = False
    description: str = ""
    channels: tuple[str, ...] = ()  # record jobs: the feed's channels (empty: the default)

    @property
    def exchanges(self) -> tuple[str, ...]:
        """Markets, or the exchanges of the symbols (vendor suffixes included)."""
        if self.markets:
            return self.markets
        return tuple(dict.fromkeys(s.rsplit(".", 1)[1] for s in self.symbols))

    def trigger(self) -> JobTrigger | SessionTrigger:
        if self.schedule.session is not None:
            return SessionTrigger(self.schedule.session)
        markets = self.schedule.calendar if self.schedule.trading_days_only else ()
        return JobTrigger(self.schedule.cron, self.schedule.timezone, markets)

    def selection_text(self) -> str:
        if self.action == "record":
            where = ",".join(self.markets) or (
                ",".join(self.symbols[:3]) + ("..." if len(self.symbols) > 3 else "")
            )
            return f"{','.join(self.channels) or 'default channels'} of {where}"
        if self.action == "compact":
            return self.dataset or "every dataset"
        what = " ".join(x for x in (self.dataset, self.freq) if x)
        where = ",".join(self.markets) or (
            ",".join(self.symbols[:3]) + ("..." if len(self.symbols) > 3 else "")
        )
        return " ".join(x for x in (what, where, self.window.text if self.window else "") if x)


# -- reading ---------------------------------------------------------------------------------


class _Reader:
    """Typed access to one file's table; each accessor raises JobFileError naming the key."""

    def __init__(self, file: Path, doc: Mapping[str, Any], prefix: str = "") -> None:
        self.file, self.doc, self.prefix = file, doc, prefix

    def err(self, key: str | None, problem: str) -> JobFileError:
        return JobFileError(self.file, f"{self.prefix}{key}" if key else None, problem)

    def has(self, key: str) -> bool:
        return key in self.doc

    def text(self, key: str, *, required: bool = False) -> str | None:
        value = self.doc.get(key)
        if value is None:
            if required:
                raise self.err(key, "missing (required)")
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.err(key, f"must be a non-empty string, got {value!r}")
        return value.strip()

    def texts(self, one: str, many: str) -> tuple[str, ...]:
        """``one = "x"`` or ``many = ["x", "y"]`` (not both)."""
        if one in self.doc and many in self.doc:
            raise self.err(many, f"give {one} or {many}, not both")
        if one in self.doc:
            return (self.text(one) or "",)
        value = self.doc.get(many)
        if value is None:
            return ()
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(v, str) and v for v in value)
        ):
            raise self.err(many, f"must be a non-empty list of strings, got {value!r}")
        return tuple(dict.fromkeys(v.strip() for v in value))

    def flag(self, key: str) -> bool:
        value = self.doc.get(key, False)
        if not isinstance(value, bool):
            raise self.err(key, f"must be true or false, got {value!r}")
        return value

    def unknown_keys(self, allowed: frozenset[str]) -> None:
        extra = sorted(set(self.doc) - allowed)
        if extra:
            raise self.err(extra[0], f"unknown key; known keys: {', '.join(sorted(allowed))}")


def _calendar_markets(s: _Reader, raw: object, *, allow_empty: bool) -> tuple[str, ...]:
    """``schedule.calendar``: a known market or a list of them."""
    if isinstance(raw, str):
        calendar: tuple[str, ...] = (raw,)
    elif isinstance(raw, list) and (allow_empty or raw) and all(isinstance(m, str) for m in raw):
        calendar = tuple(raw)
    else:
        raise s.err("calendar", f"must be a market or a list of markets, got {raw!r}")
    for market in calendar:
        if market not in MARKETS:
            raise s.err("calendar", f"unknown market {market!r}; use one of {' '.join(MARKETS)}")
    return calendar


def _schedule(r: _Reader, calendar_default: tuple[str, ...]) -> Schedule:
    raw = r.doc.get("schedule")
    if raw is None:
        raise r.err("schedule", 'missing (required): a table with at least cron = "..."')
    if not isinstance(raw, dict):
        raise r.err("schedule", 'must be a table, e.g. schedule = { cron = "30 17 * * 1-5" }')
    s = _Reader(r.file, raw, "schedule.")
    s.unknown_keys(_SCHEDULE_KEYS)
    cron = s.text("cron", required=True) or ""
    tz = s.text("timezone") or DEFAULT_TIMEZONE
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise s.err("timezone", f"unknown time zone {tz!r} (use an IANA name)") from None
    try:
        JobTrigger(cron, tz)
    except CronError as exc:
        raise s.err("cron", f"invalid cron expression {cron!r}: {exc}") from None
    grace = raw.get("grace_seconds")
    if grace is not None and (isinstance(grace, bool) or not isinstance(grace, int) or grace < 1):
        raise s.err("grace_seconds", f"must be a positive whole number of seconds, got {grace!r}")
    only = s.flag("trading_days_only")
    raw_calendar = raw.get("calendar")
    if raw_calendar is None:
        calendar = calendar_default
    else:
        calendar = _calendar_markets(s, raw_calendar, allow_empty=True)
    if only and not calendar:
        raise s.err(
            "trading_days_only",
            'needs a market calendar: give the job a market, or schedule.calendar = "SH"',
        )
    return Schedule(cron, tz, grace, only, calendar if only else ())


def _markets_and_symbols(r: _Reader) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A job's ``market``/``markets`` (known markets) and ``symbols`` (parsed, deduplicated)."""
    markets = r.texts("market", "markets")
    for m in markets:
        if m not in MARKETS:
            key = "market" if r.has("market") else "markets"
            raise r.err(key, f"unknown market {m!r}; use one of {' '.join(MARKETS)}")
    symbols: tuple[str, ...] = ()
    if "symbols" in r.doc:
        raw = r.doc["symbols"]
        if not isinstance(raw, list) or not raw or not all(isinstance(s, str) for s in raw):
            raise r.err("symbols", f"must be a non-empty list of symbols, got {raw!r}")
        try:
            symbols = tuple(dict.fromkeys(str(parse_symbol(s)) for s in raw))
        except BadInputError as exc:
            raise r.err("symbols", str(exc)) from None
    return markets, symbols


def _selection(
    r: _Reader, action: str
) -> tuple[str | None, str | None, tuple[str, ...], tuple[str, ...]]:
    dataset = r.text("dataset")
    if action == "main-contracts-snapshot":
        if dataset not in (None, "main_contracts"):
            raise r.err("dataset", "main-contracts-snapshot stores main_contracts only")
        dataset = "main_contracts"
    elif action in ("instruments-sync", "calendar-sync"):
        fixed = action.split("-", maxsplit=1)[0]
        if dataset not in (None, fixed):
            raise r.err("dataset", f"{action} stores {fixed} only")
        dataset = fixed
    elif dataset is not None and dataset not in _DATASETS[action]:
        raise r.err(
            "dataset",
            f"{action} cannot take {dataset!r}; use one of {', '.join(_DATASETS[action])}",
        )
    elif dataset is None and action != "compact":
        raise r.err("dataset", f"missing (required for {action})")
    freq = r.text("freq")
    if freq is not None and freq not in FREQS:
        raise r.err("freq", f"unknown frequency {freq!r}; use one of {' '.join(FREQS)}")
    if dataset == "klines" and freq is None:
        raise r.err("freq", "missing (required for klines)")
    if dataset != "klines" and freq is not None:
        raise r.err("freq", f"applies to klines only, not {dataset}")
    markets, symbols = _markets_and_symbols(r)
    if markets and symbols:
        raise r.err("symbols", "give market(s) or symbols, not both")
    if symbols and action in ("calendar-sync", "instruments-sync"):
        raise r.err("symbols", f"{action} takes markets, not symbols")
    if action == "calendar-sync" and not markets:
        raise r.err("market", "missing: calendar-sync needs market or markets")
    if dataset in SELECTED and not (markets or symbols):
        raise r.err("market", f"missing: {action} of {dataset} needs market, markets or symbols")
    if (markets or symbols) and (dataset in SNAPSHOTS or action == "compact"):
        raise r.err("market" if markets else "symbols", f"{action} of {dataset} takes no selection")
    return dataset, freq, markets, symbols


def market_zone(market: str) -> str:
    return market_spec(market).tz


def _date_text(r: _Reader, key: str) -> str | None:
    """``start = 2024-01-02`` (a TOML date) or ``start = "2024-01-02"``."""
    value = r.doc.get(key)
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value.isoformat()
    return r.text(key)


def _window(r: _Reader, action: str, dataset: str | None) -> Window | None:
    needs = action == "calendar-sync" or dataset in SELECTED
    if r.has("window") and (r.has("start") or r.has("end")):
        raise r.err("window", "give window or start/end, not both")
    if not needs:
        for key in ("window", "start", "end"):
            if r.has(key):
                raise r.err(key, f"{action} of {dataset or 'the lake'} takes no window")
        return None
    text = r.text("window")
    start, end = _date_text(r, "start"), _date_text(r, "end")
    if text is None and start is None:
        raise r.err("window", 'missing: e.g. window = "last 10 sessions", or start/end dates')
    try:
        window = parse_window(text, start, end)
    except WindowError as exc:
        raise r.err(exc.key, str(exc)) from None
    if window.kind == "periods" and dataset not in STATEMENTS:
        raise r.err("window", f"'{window.text}' counts reporting periods: statements only")
    if window.kind == "sessions" and dataset in STATEMENTS:
        raise r.err("window", "statements are selected by reporting periods: 'last N periods'")
    return window


def parse_job(file: Path, doc: Mapping[str, Any]) -> JobSpec:
    """A :class:`JobSpec` from one parsed TOML document, or the first :class:`JobFileError`."""
    r = _Reader(file, doc)
    r.unknown_keys(_TOP_KEYS)
    name = r.text("name", required=True) or ""
    if not _NAME_RE.match(name):
        raise r.err("name", f"{name!r} must be lower case letters, digits, '-' or '_'")
    action = r.text("action", required=True) or ""
    if action not in ACTIONS:
        raise r.err("action", f"unknown action {action!r}; use one of {', '.join(ACTIONS)}")
    vendors = r.texts("vendor", "vendors")
    if action == "compact" and vendors:
        raise r.err("vendor" if r.has("vendor") else "vendors", "compact uses no vendor")
    if action != "compact" and not vendors:
        raise r.err("vendor", f'missing: {action} needs vendor = "..." or vendors = [...]')
    if action == "record":
        return _record_job(r, name, vendors)
    if r.has("channels"):
        raise r.err("channels", "applies to record jobs only")
    dataset, freq, markets, symbols = _selection(r, action)
    window = _window(r, action, dataset)
    calendar = markets or tuple(
        dict.fromkeys(e for s in symbols if (e := s.rsplit(".", 1)[1]) in MARKETS)
    )
    if r.has("recheck") and action != "fill-missing":
        raise r.err("recheck", "applies to fill-missing only")
    return JobSpec(
        name=name,
        file=file,
        schedule=_schedule(r, calendar),
        action=action,
        vendors=vendors,
        dataset=dataset,
        freq=freq,
        markets=markets,
        symbols=symbols,
        window=window,
        recheck=r.flag("recheck"),
        description=r.text("description") or "",
    )


# -- record jobs -----------------------------------------------------------------------------


def _minutes(s: _Reader, key: str, default: int) -> int:
    value = s.doc.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_MARGIN:
        raise s.err(
            key, f"must be a whole number of minutes from 0 to {_MAX_MARGIN}, got {value!r}"
        )
    return value


def _hours(s: _Reader) -> tuple[dt.time, dt.time] | None:
    text = s.text("hours")
    if text is None:
        return None
    first, sep, last = text.partition("-")
    try:
        if not sep:
            raise ValueError
        start, end = dt.time.fromisoformat(first.strip()), dt.time.fromisoformat(last.strip())
    except ValueError:
        raise s.err(
            "hours", f'must be "HH:MM-HH:MM" (local time, seconds allowed), got {text!r}'
        ) from None
    if end <= start:
        raise s.err("hours", f"{text!r} ends before it starts: a window is within one day")
    return start, end


def _record_schedule(r: _Reader, selected: tuple[str, ...]) -> Schedule:
    """``[schedule]`` of a record job: the calendar's sessions and margins, no cron."""
    raw = r.doc.get("schedule", {})
    if not isinstance(raw, dict):
        raise r.err("schedule", "must be a table, e.g. [schedule] before_open_minutes = 10")
    s = _Reader(r.file, raw, "schedule.")
    for key in ("cron", "timezone", "trading_days_only"):
        if key in raw:
            raise s.err(
                key,
                "a record job follows its market's sessions: remove it, and set "
                "before_open_minutes / after_close_minutes (or hours) instead",
            )
    s.unknown_keys(_RECORD_SCHEDULE_KEYS)
    raw_calendar = raw.get("calendar")
    if raw_calendar is None:
        calendar = tuple(m for m in selected if m in MARKETS)
        if not calendar:
            raise s.err(
                "calendar",
                f"missing: {', '.join(selected)} has no exchange calendar; name the market "
                'whose sessions to follow, e.g. schedule.calendar = "FX"',
            )
    else:
        calendar = _calendar_markets(s, raw_calendar, allow_empty=False)
    hours = _hours(s)
    around = [m for m in calendar if m == "CC"]  # trades every day, all day
    if around and hours is None:
        raise s.err(
            "hours",
            "missing: CC trades around the clock, so its session window never closes; give "
            'hours = "HH:MM-HH:MM", or run `etl record` as a service instead (README)',
        )
    grace = raw.get("grace_seconds")
    if grace is not None and (isinstance(grace, bool) or not isinstance(grace, int) or grace < 1):
        raise s.err("grace_seconds", f"must be a positive whole number of seconds, got {grace!r}")
    rule = SessionRule(
        calendar,
        _minutes(s, "before_open_minutes", DEFAULT_BEFORE_OPEN),
        _minutes(s, "after_close_minutes", DEFAULT_AFTER_CLOSE),
        hours,
    )
    return Schedule("", market_zone(calendar[0]), grace, True, calendar, session=rule)


def _record_job(r: _Reader, name: str, vendors: tuple[str, ...]) -> JobSpec:
    """A record job: one vendor, a market or symbols, channels, a session window."""
    if len(vendors) != 1:
        raise r.err("vendors", 'a record job takes one vendor: vendor = "infoway"')
    for key in ("dataset", "freq", "window", "start", "end", "recheck"):
        if r.has(key):
            raise r.err(key, "a record job takes no " + key + " (it records its feed's channels)")
    if len(r.texts("market", "markets")) > 1:
        raise r.err("markets", "a record job takes one market (or symbols): one job per market")
    markets, symbols = _markets_and_symbols(r)
    if markets and symbols:
        raise r.err("symbols", "give market or symbols, not both")
    if not (markets or symbols):
        raise r.err("symbols", 'missing: a record job needs market = "SH" or symbols = [...]')
    channels: tuple[str, ...] = ()
    if r.has("channels"):
        raw = r.doc["channels"]
        if not isinstance(raw, list) or not raw or not all(isinstance(x, str) and x for x in raw):
            raise r.err("channels", f'must be a non-empty list, e.g. ["trades"], got {raw!r}')
        channels = tuple(dict.fromkeys(raw))
    selected = markets or tuple(dict.fromkeys(x.rsplit(".", 1)[1] for x in symbols))
    return JobSpec(
        name=name,
        file=r.file,
        schedule=_record_schedule(r, selected),
        action="record",
        vendors=vendors,
        markets=markets,
        symbols=symbols,
        description=r.text("description") or "",
        channels=channels,
    )


def read_job_file(file: Path) -> JobSpec:
    try:
        doc = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise JobFileError(file, None, f"not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise JobFileError(file, None, f"cannot be read: {exc}") from None
    return parse_job(file, doc)
