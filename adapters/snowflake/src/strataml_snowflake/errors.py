"""Translating snowflake-connector-python errors into strataml's hierarchy.

Snowflake errors carry an ``errno`` (Snowflake's error code) and an ANSI ``sqlstate``; the
mapping uses both, so the emulator (which reports DuckDB binder errors as ``02000``) and the
real service land in the same strataml types.
"""

from __future__ import annotations

import re

from strataml.errors import (
    BackendError,
    Conflict,
    InvalidInput,
    LimitExceeded,
    NotFound,
    SchemaError,
    StrataError,
    Unavailable,
)

__all__ = ["first_line", "redact", "translate"]

#: Snowflake error codes with a meaning of their own.
_NOT_FOUND = frozenset({2003})  # object does not exist or not authorized
_SCHEMA = frozenset({904, 1003, 1007, 1008, 2001, 2040, 2043, 2262})
_TIMEOUT = frozenset({604, 630})  # statement canceled / reached its timeout
_LOCK_TIMEOUT = frozenset({625})  # waited too long for a lock held by another transaction
_TOO_BIG = frozenset({100069, 100082})  # value too large / result too large


def redact(text: str) -> str:
    """Mask anything that looks like a credential in ``text``."""
    text = re.sub(r"(://[^:/@\s]*:)[^@/\s]+@", r"\1****@", text)
    return re.sub(r"((?:password|token|secret)[\"']?\s*[=:]\s*)\S+", r"\1****", text, flags=re.I)


def first_line(exc: BaseException) -> str:
    """The exception's message without the connector's long tails, secrets masked."""
    msg = getattr(exc, "msg", None) or str(exc)
    lines = [ln.strip() for ln in str(msg).strip().splitlines() if ln.strip()]
    text = " ".join(lines[:2]) if lines else type(exc).__name__
    return redact(text)


def translate(exc: BaseException, what: str) -> StrataError:
    """Map a connector exception to a strataml error; the caller chains it with ``from``."""
    from snowflake.connector import errors as sf

    errno = getattr(exc, "errno", None) or 0
    sqlstate = str(getattr(exc, "sqlstate", None) or "")
    msg = f"{what}: {first_line(exc)}"
    if errno in _NOT_FOUND or sqlstate == "42S02":
        return NotFound(msg)
    if errno in _TIMEOUT or sqlstate == "57014":
        return Unavailable(f"{msg} (statement timeout or cancelled)")
    if errno in _LOCK_TIMEOUT:
        return Conflict(f"{msg} (another transaction holds the lock; retry)")
    if sqlstate == "40001":
        return Conflict(f"{msg} (retry the operation)")
    if errno in _TOO_BIG:
        return LimitExceeded(msg)
    if errno in _SCHEMA or sqlstate.startswith("42") or sqlstate == "02000":
        return SchemaError(msg)
    if sqlstate.startswith("22") or isinstance(exc, sf.DataError):
        return InvalidInput(msg)
    if sqlstate.startswith("08") or isinstance(
        exc, sf.OperationalError | sf.InterfaceError | OSError
    ):
        return Unavailable(msg)
    if isinstance(exc, sf.IntegrityError):
        return InvalidInput(msg)
    if isinstance(exc, sf.ProgrammingError):
        return SchemaError(msg)
    return BackendError(msg)
