"""Translating weaviate-client errors into strataml's hierarchy (never a bare driver error).

Messages are redacted: URLs lose their credentials, ``Authorization`` values and the configured
API key are masked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from strataml.errors import (
    BackendError,
    ConfigError,
    Conflict,
    InvalidInput,
    LimitExceeded,
    NotFound,
    StrataError,
    Unavailable,
    Unsupported,
)

__all__ = ["is_missing", "redact", "translate"]

_MISSING = re.compile(
    r"not found|does not exist|could not find|no such (class|collection|tenant)|"
    r"tenant .* not (found|exist)|class .* not found",
    re.I,
)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without URL credentials, bearer tokens or any of ``secrets``."""
    text = re.sub(r"(https?://[^:/@\s]*:)[^@/\s]+@", r"\1****@", text)
    text = re.sub(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+", r"\1****", text, flags=re.I)
    text = re.sub(
        r"((?:api[_-]?key|authorization)[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]+",
        r"\1****",
        text,
        flags=re.I,
    )
    for secret in secrets:
        if secret:
            text = text.replace(secret, "****")
    return text


def _message(exc: BaseException, secrets: Iterable[str]) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    first = str(text).strip().splitlines()[0] if str(text).strip() else type(exc).__name__
    return redact(first[:500], secrets)


def is_missing(exc: BaseException) -> bool:
    """Whether a weaviate error says a collection, tenant or alias does not exist."""
    status = getattr(exc, "status_code", None)
    return status == 404 or bool(_MISSING.search(str(getattr(exc, "message", None) or exc)))


def translate(exc: BaseException, what: str, secrets: Iterable[str] = ()) -> StrataError:
    """Map a weaviate-client exception to a strataml error; the caller chains it."""
    from weaviate import exceptions as we

    if isinstance(exc, StrataError):
        return exc
    msg = f"{what}: {_message(exc, secrets)}"
    if isinstance(
        exc,
        we.WeaviateConnectionError
        | we.WeaviateTimeoutError
        | we.WeaviateGRPCUnavailableError
        | we.WeaviateStartUpError
        | we.WeaviateClosedClientError
        | we.WeaviateRetryError,
    ):
        return Unavailable(f"{msg} (is the Weaviate server reachable?)")
    if isinstance(exc, we.AuthenticationFailedError | we.InsufficientPermissionsError):
        return ConfigError(f"{msg} (check api_key and the key's permissions)")
    if isinstance(exc, we.WeaviateUnsupportedFeatureError):
        return Unsupported(f"{msg} (upgrade the Weaviate server)")
    if isinstance(exc, we.ObjectAlreadyExistsError):
        return Conflict(msg)
    if isinstance(exc, we.WeaviateInvalidInputError):
        return InvalidInput(msg)
    if isinstance(exc, we.UnexpectedStatusCodeError):
        status = exc.status_code
        lowered = msg.lower()
        if status in (401, 403):
            return ConfigError(f"{msg} (check api_key and the key's permissions)")
        if status == 404:
            return NotFound(msg)
        if status == 413:
            return LimitExceeded(f"{msg} (split the request)")
        if status == 422 and "already exists" in lowered:
            return Conflict(msg)
        if status in (400, 422):
            return InvalidInput(msg)
        if status == 429 or status >= 500:
            return Unavailable(f"{msg} (retry later)")
        return BackendError(msg)
    if isinstance(exc, we.WeaviateQueryError):
        lowered = msg.lower()
        if is_missing(exc):
            return NotFound(msg)
        if "message larger than max" in lowered or "resource_exhausted" in lowered:
            return LimitExceeded(f"{msg} (lower batch_size or max_request_bytes)")
        if "unavailable" in lowered or "deadline" in lowered:
            return Unavailable(msg)
        return BackendError(msg)
    if isinstance(exc, we.WeaviateBaseError):
        return BackendError(msg)
    if isinstance(exc, TimeoutError | ConnectionError | OSError):
        return Unavailable(msg)
    return BackendError(msg)
