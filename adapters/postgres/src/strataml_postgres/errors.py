"""Translating psycopg errors into strataml's hierarchy (never a bare driver error)."""

from __future__ import annotations

import re

import psycopg
from psycopg import errors as pg

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

__all__ = ["not_utf8", "redact_dsn", "translate"]


def redact_dsn(text: str) -> str:
    """Mask passwords in any URI or ``password=...`` fragment of ``text``."""
    text = re.sub(r"(://[^:/@\s]*:)[^@/\s]+@", r"\1****@", text)
    return re.sub(r"(password\s*=\s*)\S+", r"\1****", text, flags=re.I)


def not_utf8(exc: UnicodeEncodeError, what: str) -> InvalidInput:
    """The error for text psycopg cannot encode for the server (a lone surrogate such as
    ``"\\ud800"`` in SQL, a parameter, a filter value or a name); the caller chains it."""
    bad = exc.object[exc.start : exc.end] if isinstance(exc.object, str) else ""
    return InvalidInput(
        f"{what}: text that is not valid Unicode ({bad!r} at position {exc.start}, "
        f"{exc.reason}) cannot be sent to PostgreSQL"
    )


def translate(exc: BaseException, what: str) -> StrataError:
    """Map a psycopg / pool exception to a strataml error; the caller chains it with ``from``."""
    from psycopg_pool import PoolTimeout, TooManyRequests

    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    msg = f"{what}: {redact_dsn(first)}"
    if isinstance(exc, PoolTimeout | TooManyRequests):
        return Unavailable(
            f"{what}: no free database connection within the pool timeout "
            "(raise pool_max_size or pool_timeout_s, or lower concurrency)"
        )
    if isinstance(exc, pg.UndefinedTable | pg.UndefinedObject | pg.InvalidSchemaName):
        return NotFound(msg)
    if isinstance(exc, pg.UndefinedColumn | pg.UndefinedFunction):
        return SchemaError(msg)
    if isinstance(exc, pg.UniqueViolation | pg.DuplicateTable | pg.DuplicateObject):
        return Conflict(msg)
    if isinstance(exc, pg.SerializationFailure | pg.DeadlockDetected | pg.LockNotAvailable):
        return Conflict(f"{msg} (retry the operation)")
    if isinstance(exc, pg.ProgramLimitExceeded):
        return LimitExceeded(msg)
    if isinstance(exc, pg.QueryCanceled):
        return Unavailable(f"{msg} (statement timeout)")
    if isinstance(exc, psycopg.errors.SyntaxError | pg.SyntaxErrorOrAccessRuleViolation):
        return SchemaError(msg)
    if isinstance(exc, psycopg.DataError | pg.IntegrityError):
        return InvalidInput(msg)
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return Unavailable(msg)
    return BackendError(msg)
