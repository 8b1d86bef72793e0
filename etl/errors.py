"""Every error the warehouse raises on purpose, and the exit code each one maps to.

The tree (the CLI maps the first four branches to docs/contract.md's exit codes)::

    EtlError
    ├── BadInputError              exit 2: the user's request is wrong; nothing ran
    │   └── CapabilityError        no configured vendor can serve what was asked
    ├── ConfigError                exit 3: settings are missing or wrong
    │   └── AuthError              the vendor refused our credentials
    ├── PartialFailure             exit 1: the work ran, some items failed (see the task)
    ├── Interrupted                exit 130: stopped at a safe point; the task can resume
    ├── VendorError                one vendor call failed (raised inside adapters)
    │   ├── TransientVendorError   worth retrying: timeouts, 5xx, rate-limit answers
    │   │   └── RateLimited        the vendor said "too many"; may carry retry_after
    │   ├── PermanentVendorError   the vendor said no to this item; retrying cannot help
    │   ├── QuotaExhausted         the plan's daily quota is spent: stop using this vendor
    │   └── SchemaError            the payload's shape changed: nothing from it is stored
    ├── LakeError                  a write could not be committed; the lake is unchanged
    └── TaskConflict               another process holds the same work

Errors carry structured fields (vendor, symbol, range) and build their message in one
place, so a message never contains a secret unless someone passes one in: adapters pass
redacted URLs only (see :func:`etl.vendors.redact.redact_url`).
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "BadInputError",
    "CapabilityError",
    "ConfigError",
    "EtlError",
    "Interrupted",
    "LakeError",
    "PartialFailure",
    "PermanentVendorError",
    "QuotaExhausted",
    "RateLimited",
    "SchemaError",
    "TaskConflict",
    "TransientVendorError",
    "VendorError",
    "exit_code_for",
]


class EtlError(Exception):
    """Base of every error the warehouse raises deliberately."""

    exit_code = 1

    def __init__(self, message: str, **fields: object) -> None:
        self.fields = {k: v for k, v in fields.items() if v is not None}
        self.bare_message = message
        super().__init__(self._render())

    def _render(self) -> str:
        if not self.fields:
            return self.bare_message
        detail = ", ".join(f"{k}={v}" for k, v in self.fields.items())
        return f"{self.bare_message} ({detail})"


class BadInputError(EtlError):
    """The request itself is wrong; raised before anything is fetched or written."""

    exit_code = 2


class CapabilityError(BadInputError):
    """The vendor cannot serve this dataset, market, frequency or range."""


class ConfigError(EtlError):
    """A setting is missing or invalid; the message names the variable or file to fix."""

    exit_code = 3


class AuthError(ConfigError):
    """The vendor refused our credentials (after one re-login where the vendor has sessions)."""


class PartialFailure(EtlError):
    """The work ran to its end but some items failed; the task record lists them."""

    exit_code = 1


class Interrupted(EtlError):
    """Cancelled or signalled; stopped at a safe point, and the task stays resumable."""

    exit_code = 130


class VendorError(EtlError):
    """One vendor call failed. Subclasses say what to do about it."""

    retryable = False


class TransientVendorError(VendorError):
    """A failure that may pass: retry with backoff."""

    retryable = True


class RateLimited(TransientVendorError):
    """The vendor answered "over the limit"; ``retry_after`` is how long it asked us to wait."""

    def __init__(self, message: str, *, retry_after: float | None = None, **fields: object):
        self.retry_after = retry_after
        super().__init__(message, **fields)


class PermanentVendorError(VendorError):
    """The vendor refused this item for good (bad parameter, unknown code)."""


class QuotaExhausted(VendorError):
    """The plan's quota is spent: stop calling this vendor for the rest of the task."""


class SchemaError(VendorError):
    """The payload no longer has the documented shape; nothing from it may be stored."""


class LakeError(EtlError):
    """A lake commit failed verification or I/O; the previous state is intact."""


class TaskConflict(EtlError):
    """Another running task holds the same selection; this one refused to start."""

    exit_code = 1


def exit_code_for(exc: BaseException) -> int:
    """The CLI's exit code for ``exc``: docs/contract.md's table, 1 for anything unexpected."""
    if isinstance(exc, KeyboardInterrupt):
        return 130
    if isinstance(exc, EtlError):
        return exc.exit_code
    return 1
