"""Scrub credentials from anything that may reach a log, an exception message or a task record.

Two rules, applied together (the dlt way: a short list of secret parameter names):

* every known secret value (API key, password, session token) is replaced by ``***``, in its
  clear form and its URL-encoded forms;
* the value of any secret-looking parameter is replaced by ``***`` whatever it is: query and
  fragment parameters of URLs (``?key=…``, StockTV's key travels there), ``name=value`` pairs
  and ``"name": "value"`` pairs in free text, ``Authorization: Bearer …`` headers.

A secret shorter than :data:`MIN_SECRET_LEN` characters is masked only where it is the whole
text: replacing every ``a`` of a one-letter key would mangle everything and hide nothing.

The second rule catches what the first cannot know about (a token minted by a login, a key
from a setting nobody passed in). Over-redacting is harmless; a leak is not.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from typing import Any, Final
from urllib.parse import quote, quote_plus, unquote, unquote_plus, urlsplit, urlunsplit

__all__ = [
    "MASK",
    "MIN_SECRET_LEN",
    "SECRET_PARAMS",
    "RedactingFilter",
    "is_secret_name",
    "redact_text",
    "redact_tree",
    "redact_url",
]

MASK: Final = "***"
MIN_SECRET_LEN: Final = 4  # shorter secrets are masked only where they are the whole text

# Parameter names whose values are credentials, compared lower case with "-" read as "_".
SECRET_PARAMS: Final = frozenset(
    {
        "key", "apikey", "api_key", "appkey", "app_key", "secret", "secret_key", "client_secret",
        "token", "access_token", "refresh_token", "id_token", "auth", "auth_token",
        "authorization", "password", "passwd", "pwd", "pass", "passphrase", "sign",
        "signature", "sig", "session", "sessionid", "session_id", "jwt", "credential",
        "credentials", "private_key",
    }
)  # fmt: skip
_SECRET_SUFFIXES: Final = ("_key", "_token", "_secret", "_password", "_signature")

# name=value inside a URL query or free text (values end at a separator or a quote).
_PAIR_RE: Final = re.compile(r"(?P<name>[A-Za-z0-9_.\-]+)=(?P<value>[^&\s#\"'<>;,)]*)")
# "name": "value" in JSON-looking text.
_JSON_RE: Final = re.compile(r'"(?P<name>[A-Za-z0-9_.\-]+)"(?P<sep>\s*:\s*)"(?:[^"\\]|\\.)*"')
# name: value in header-looking text ("apiKey: abc", "Authorization: Bearer abc").
_HEADER_RE: Final = re.compile(
    r"(?P<name>[A-Za-z][A-Za-z0-9_\-]*)(?P<sep>\s*:\s*)(?P<value>(?:Bearer\s+|Basic\s+)?[^\s,;'\"]+)"
)
_BEARER_RE: Final = re.compile(r"(?i)\b(Bearer|Basic)\s+[A-Za-z0-9\-._~+/]+=*")


def is_secret_name(name: str) -> bool:
    """Whether a parameter or header called ``name`` carries a credential."""
    norm = unquote(name).strip().lower().replace("-", "_")
    return norm in SECRET_PARAMS or norm.endswith(_SECRET_SUFFIXES)


def _forms(secrets: Iterable[str]) -> list[str]:
    """Each secret, plus the encodings it takes in a URL, longest first (so a secret that
    contains another is replaced whole)."""
    found: set[str] = set()
    for secret in secrets:
        if len(secret) < MIN_SECRET_LEN:
            continue
        found.update({secret, quote(secret, safe=""), quote_plus(secret, safe="")})
    return sorted(found, key=len, reverse=True)


def _holds_secret(value: str, secrets: Sequence[str]) -> bool:
    """Whether ``value``, decoded either way, contains a secret (in whatever encoding)."""
    return any(s in form for form in (value, unquote(value), unquote_plus(value)) for s in secrets)


def _mask_pairs(text: str, secrets: Sequence[str] = ()) -> str:
    def pair(m: re.Match[str]) -> str:
        name, value = m["name"], m["value"]
        if value and (is_secret_name(name) or _holds_secret(value, secrets)):
            return f"{name}={MASK}"
        return m[0]

    return _PAIR_RE.sub(pair, text)


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every secret value and every secret-looking parameter value masked."""
    secrets = [s for s in secrets if s]
    if text in secrets:
        return MASK
    for form in _forms(secrets):
        text = text.replace(form, MASK)
    text = _BEARER_RE.sub(lambda m: f"{m[1]} {MASK}", text)
    text = _mask_pairs(text)

    def json_pair(m: re.Match[str]) -> str:
        return f'"{m["name"]}"{m["sep"]}"{MASK}"' if is_secret_name(m["name"]) else m[0]

    def header(m: re.Match[str]) -> str:
        if not is_secret_name(m["name"]) or m["value"].startswith(MASK):
            return m[0]
        return f"{m['name']}{m['sep']}{MASK}"

    text = _JSON_RE.sub(json_pair, text)
    return _HEADER_RE.sub(header, text)


def redact_tree(value: Any, secrets: Iterable[str] = ()) -> Any:
    """``value`` (JSON-like: dicts, lists, strings) with :func:`redact_text` applied to every
    string value; keys are left alone, so a document keeps its shape and stays readable."""
    secrets = [s for s in secrets if s]
    if isinstance(value, str):
        return redact_text(value, secrets)
    if isinstance(value, dict):
        return {k: redact_tree(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_tree(v, secrets) for v in value]
    return value


def redact_url(url: object, secrets: Iterable[str] = ()) -> str:
    """``url`` (a string or an ``httpx.URL``) safe to log: the password of its user info, the
    values of secret-looking query and fragment parameters, and every known secret masked."""
    text = str(url)
    try:
        parts = urlsplit(text)
    except ValueError:  # not a URL after all: fall back to the text rules
        return redact_text(text, secrets)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{host}" if ":" in userinfo else f"{MASK}@{host}"
    known = [s for s in secrets if len(s) >= MIN_SECRET_LEN]
    path = parts.path
    if _holds_secret(path, known):
        path = unquote(path)
        for secret in sorted(known, key=len, reverse=True):
            path = path.replace(secret, MASK)
    query, fragment = _mask_pairs(parts.query, known), _mask_pairs(parts.fragment, known)
    return redact_text(urlunsplit((parts.scheme, netloc, path, query, fragment)), known)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts each record's message before any handler sees it.

    Attach it to loggers we do not control (httpx logs every request URL at INFO, and
    StockTV's key travels in the query string); :meth:`add` registers more secret values.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets: set[str] = {s for s in secrets if s}

    def add(self, secrets: Iterable[str]) -> None:
        self._secrets.update(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact_text(message, self._secrets)
        if clean != message:
            record.msg, record.args = clean, None
        return True
