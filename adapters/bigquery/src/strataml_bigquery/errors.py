"""Translating google-cloud-bigquery / google-api-core errors into strataml's hierarchy.

BigQuery reports a machine-readable ``reason`` with every failed request or job
(``invalidQuery``, ``notFound``, ``bytesBilledLimitExceeded``, ...); the mapping keys on it first
and on the HTTP status class second. Messages keep the first line of BigQuery's message and
never carry credentials (key material is masked if a message ever echoes it).
"""

from __future__ import annotations

import concurrent.futures
import functools
import re
from collections.abc import Iterator
from contextlib import contextmanager

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

__all__ = ["driver_errors", "reason_of", "redact", "translate", "translated"]

_SECRET = re.compile(
    r'("?(?:private_key|private_key_id|client_secret|refresh_token|access_token)"?\s*[:=]\s*)'
    r'("[^"]*"|\S+)',
    re.IGNORECASE,
)
_BEARER = re.compile(r"(Bearer\s+)\S+", re.IGNORECASE)

_LIMIT_REASONS = frozenset(
    {
        "bytesBilledLimitExceeded",
        "resourcesExceeded",
        "responseTooLarge",
        "billingTierLimitExceeded",
    }
)
_RETRY_REASONS = frozenset(
    {"quotaExceeded", "rateLimitExceeded", "backendError", "internalError", "jobBackendError"}
)


@functools.cache
def driver_errors() -> tuple[type[BaseException], ...]:
    """The exception types a google-cloud-bigquery call can raise (imported lazily)."""
    from google.api_core import exceptions as gexc
    from google.auth import exceptions as auth_exc
    from requests import exceptions as req_exc

    return (
        gexc.GoogleAPIError,
        auth_exc.GoogleAuthError,
        req_exc.RequestException,
        concurrent.futures.TimeoutError,
    )


def redact(text: str) -> str:
    """Mask key material and bearer tokens in ``text``."""
    return _BEARER.sub(r"\1****", _SECRET.sub(r"\1****", text))


def reason_of(exc: BaseException) -> str | None:
    """BigQuery's ``reason`` of the first error a request or job reported, if any."""
    errors = getattr(exc, "errors", None)
    if isinstance(errors, list):
        for item in errors:
            if isinstance(item, dict) and item.get("reason"):
                return str(item["reason"])
    return None


def _message(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc)
    text = str(text).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return redact(first)


def translate(exc: BaseException, what: str, *, query: bool = False) -> StrataError:
    """Map a client exception to a strataml error; the caller chains it with ``from``.

    ``query`` says the failing call ran SQL the caller wrote (a view, a query source): a
    query BigQuery rejects is then a :class:`SchemaError` rather than bad input.
    """
    from google.api_core import exceptions as gexc
    from google.auth import exceptions as auth_exc

    reason = reason_of(exc)
    msg = f"{what}: {_message(exc)}"
    if reason in _LIMIT_REASONS:
        return LimitExceeded(f"{msg} ({reason})")
    if reason in _RETRY_REASONS or isinstance(
        exc, gexc.ServerError | gexc.TooManyRequests | gexc.RetryError
    ):
        return Unavailable(f"{msg} (BigQuery is busy or failing; retry)")
    if isinstance(exc, auth_exc.GoogleAuthError | gexc.Unauthorized) or reason == "accessDenied":
        return Unavailable(
            f"{what}: BigQuery refused the credentials ({type(exc).__name__}); check "
            "credentials_file / credentials_json and the account's roles"
        )
    if isinstance(exc, gexc.NotFound) or reason == "notFound":
        return NotFound(msg)
    if isinstance(exc, gexc.Conflict) or reason == "duplicate":
        return Conflict(msg)
    if isinstance(exc, concurrent.futures.TimeoutError | gexc.DeadlineExceeded):
        return Unavailable(f"{what}: timed out (raise query_timeout_s / request_timeout_s)")
    if isinstance(exc, gexc.BadRequest) or reason in ("invalidQuery", "invalid"):
        if query or reason == "invalidQuery":
            return SchemaError(msg)
        return InvalidInput(msg)
    if isinstance(exc, gexc.Forbidden):
        return Unavailable(f"{msg} (permission denied)")
    if not isinstance(exc, gexc.GoogleAPIError):  # transport errors: connection, timeout
        return Unavailable(msg)
    return BackendError(msg)


@contextmanager
def translated(what: str, *, query: bool = False) -> Iterator[None]:
    """Client errors raised inside become strataml errors (the original chained)."""
    try:
        yield
    except StrataError:
        raise
    except driver_errors() as exc:
        raise translate(exc, what, query=query) from exc
