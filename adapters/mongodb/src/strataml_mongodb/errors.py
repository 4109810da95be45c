"""Translating pymongo errors into strataml's hierarchy (never a bare driver error).

Messages are redacted (:func:`redact`): pymongo can echo the connection string or host lists
with credentials, and strataml messages never carry secrets.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from strataml.errors import (
    BackendError,
    ConfigError,
    Conflict,
    InvalidInput,
    LimitExceeded,
    StrataError,
    Unavailable,
)

__all__ = ["DUPLICATE_KEY", "redact", "split_write_errors", "translate"]

#: MongoDB's duplicate-key error code (a unique index refused a document).
DUPLICATE_KEY: Final = 11000
_TOO_LARGE: Final = frozenset({10334, 17419, 17420})  # BSONObjectTooLarge, ...toolarge
_AUTH: Final = frozenset({13, 18, 8000})  # Unauthorized, AuthenticationFailed, Atlas auth
_CONFLICT: Final = frozenset({112, 251, 246, 24})  # WriteConflict, NoSuchTransaction, ...
_TIMEOUT: Final = frozenset({50, 262, 89, 202})  # MaxTimeMSExpired, ExceededTimeLimit, ...
_NOT_PRIMARY: Final = frozenset({10107, 13435, 11600, 11602, 189, 91, 13436})
_ILLEGAL: Final = frozenset({20, 263})  # IllegalOperation, OperationNotSupportedInTransaction


def redact(text: str) -> str:
    """Mask passwords in connection strings and ``password=`` fragments of ``text``."""
    text = re.sub(r"(mongodb(?:\+srv)?://[^:/@\s]*:)[^@\s]+@", r"\1****@", text)
    return re.sub(r"(password\s*[=:]\s*)\S+", r"\1****", text, flags=re.I)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return redact(text.splitlines()[0]) if text else type(exc).__name__


def split_write_errors(
    details: Mapping[str, Any],
) -> tuple[int, list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    """A :class:`pymongo.errors.BulkWriteError`'s ``details`` as ``(inserted, duplicate-key
    errors, other errors)`` (each error with its ``index`` in the batch sent)."""
    inserted = int(details.get("nInserted", 0) or 0)
    errors: Sequence[Mapping[str, Any]] = details.get("writeErrors", []) or []
    dups = [e for e in errors if e.get("code") == DUPLICATE_KEY]
    others = [e for e in errors if e.get("code") != DUPLICATE_KEY]
    for wce in details.get("writeConcernErrors", []) or []:
        others.append(wce)
    return inserted, dups, others


def _code_error(code: int | None, msg: str, labels: Sequence[str] = ()) -> StrataError | None:
    if code in _TOO_LARGE or "too large" in msg.lower():
        return LimitExceeded(f"{msg} (MongoDB documents are at most 16 MiB)")
    if code == DUPLICATE_KEY:
        return Conflict(msg)
    if code in _AUTH:
        return ConfigError(f"{msg} (check the credentials and roles in the connection string)")
    if code in _CONFLICT or "TransientTransactionError" in labels:
        return Conflict(f"{msg} (a concurrent writer won; retry the operation)")
    if code in _TIMEOUT:
        return Unavailable(f"{msg} (the server's time limit was reached)")
    if code in _NOT_PRIMARY:
        return Unavailable(f"{msg} (no writable primary: retry once the replica set elects one)")
    if code in _ILLEGAL:
        return ConfigError(
            f"{msg} (the deployment cannot run this; on a standalone server use "
            "transactions = 'never' or 'auto')"
        )
    return None


def translate(exc: BaseException, what: str) -> StrataError:
    """Map a pymongo/bson exception to a strataml error; the caller chains it with ``from``."""
    from bson.errors import BSONError, InvalidDocument
    from pymongo import errors as pm

    msg = f"{what}: {_first_line(exc)}"
    if isinstance(exc, StrataError):
        return exc
    if isinstance(exc, pm.DocumentTooLarge):
        return LimitExceeded(f"{msg} (MongoDB documents are at most 16 MiB)")
    if isinstance(exc, pm.BulkWriteError):
        _, dups, others = split_write_errors(exc.details)
        first = (others or dups or [{}])[0]
        text = f"{what}: {redact(str(first.get('errmsg', 'bulk write failed')))}"
        return _code_error(first.get("code"), text) or BackendError(text)
    if isinstance(exc, pm.ConfigurationError | pm.InvalidURI):
        return ConfigError(msg)
    if isinstance(exc, pm.InvalidName | pm.InvalidOperation):
        return InvalidInput(msg) if isinstance(exc, pm.InvalidName) else Unavailable(msg)
    if isinstance(exc, InvalidDocument | BSONError):
        return InvalidInput(msg)
    if isinstance(exc, pm.ExecutionTimeout | pm.WTimeoutError):
        return Unavailable(f"{msg} (the server's time limit was reached)")
    if isinstance(exc, pm.ConnectionFailure | pm.AutoReconnect | pm.ServerSelectionTimeoutError):
        return Unavailable(f"{msg} (is the MongoDB server reachable?)")
    if isinstance(exc, pm.OperationFailure):
        labels = [lbl for lbl in ("TransientTransactionError",) if exc.has_error_label(lbl)]
        return _code_error(exc.code, msg, labels) or BackendError(msg)
    if isinstance(exc, pm.PyMongoError):
        labels = [lbl for lbl in ("TransientTransactionError",) if exc.has_error_label(lbl)]
        return _code_error(None, msg, labels) or BackendError(msg)
    if isinstance(exc, OverflowError):
        return InvalidInput(msg)
    return BackendError(msg)
