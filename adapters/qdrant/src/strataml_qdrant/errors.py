"""Translating qdrant-client errors into strataml's hierarchy (never a bare driver error).

qdrant-client raises :class:`~qdrant_client.http.exceptions.UnexpectedResponse` (an HTTP status
from the server), :class:`~qdrant_client.http.exceptions.ResponseHandlingException` (the request
did not complete: connection refused, timeout), :class:`grpc.RpcError` (gRPC transport) and, in
local mode, plain ``ValueError`` / ``RuntimeError``. Messages never carry the URL's credentials
or the API key.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

from strataml.errors import (
    BackendError,
    Conflict,
    InvalidInput,
    LimitExceeded,
    NotFound,
    StrataError,
    Unavailable,
)

__all__ = ["redact", "translate"]

_URL_SECRET = re.compile(r"(\w+://[^:/@\s]*:)[^@/\s]+@")
_KEY_HEADER = re.compile(r"(api[-_]?key['\"]?\s*[:=]\s*['\"]?)[^'\"\s,}]+", re.IGNORECASE)
_NOT_FOUND = re.compile(r"not found|doesn't exist|does not exist|not exist", re.IGNORECASE)
_EXISTS = re.compile(r"already exists", re.IGNORECASE)


def redact(text: str) -> str:
    """Mask URL passwords and API keys in ``text``."""
    return _KEY_HEADER.sub(r"\1****", _URL_SECRET.sub(r"\1****@", text))


def _first_line(text: str, fallback: str) -> str:
    text = text.strip()
    return redact(text.splitlines()[0])[:500] if text else fallback


def _server_message(exc: Any) -> str:
    """The ``status.error`` of a Qdrant error response, else its raw first line."""
    try:
        body = exc.structured()
        error = body.get("status", {}).get("error")
        if isinstance(error, str) and error:
            return _first_line(error, "")
    except Exception:  # noqa: BLE001 - a body that is not JSON is reported raw
        pass
    content = getattr(exc, "content", b"") or b""
    return _first_line(content.decode("utf-8", "replace"), "")


def _by_status(status: int | None, msg: str) -> StrataError:
    if status == 404:
        return NotFound(msg)
    if status == 409:
        return Conflict(msg)
    if status == 413:
        return LimitExceeded(f"{msg} (the request is larger than the server's limit)")
    if status in (401, 403):
        return Unavailable(f"{msg} (Qdrant refused the credentials: check api_key)")
    if status in (408, 429) or (status is not None and status >= 500):
        return Unavailable(msg)
    if status == 400 or status == 422:
        if _NOT_FOUND.search(msg):
            return NotFound(msg)
        if _EXISTS.search(msg):
            return Conflict(msg)
        return InvalidInput(msg)
    return BackendError(msg)


def _grpc_module() -> Any:
    """grpcio (a dependency of qdrant-client; untyped), or ``None``."""
    try:
        return importlib.import_module("grpc")
    except ImportError:  # pragma: no cover - grpcio is a dependency of qdrant-client
        return None


def _grpc(exc: Any, what: str) -> StrataError:
    grpc = _grpc_module()

    code = exc.code() if callable(getattr(exc, "code", None)) else None
    details = exc.details() if callable(getattr(exc, "details", None)) else ""
    msg = f"{what}: {_first_line(str(details or ''), type(exc).__name__)}"
    mapping: dict[Any, int] = {
        grpc.StatusCode.NOT_FOUND: 404,
        grpc.StatusCode.ALREADY_EXISTS: 409,
        grpc.StatusCode.INVALID_ARGUMENT: 400,
        grpc.StatusCode.FAILED_PRECONDITION: 400,
        grpc.StatusCode.RESOURCE_EXHAUSTED: 413,
        grpc.StatusCode.UNAUTHENTICATED: 401,
        grpc.StatusCode.PERMISSION_DENIED: 403,
        grpc.StatusCode.DEADLINE_EXCEEDED: 408,
        grpc.StatusCode.UNAVAILABLE: 503,
        grpc.StatusCode.CANCELLED: 503,
    }
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED and "rate" in msg.lower():
        return Unavailable(f"{msg} (rate limited; retry later)")
    return _by_status(mapping.get(code), msg)


def translate(exc: BaseException, what: str) -> StrataError:
    """Map a qdrant-client exception to a strataml error; the caller chains it with ``from``.

    ``what`` says what was being done (``"searching 'docs'"``); strataml errors pass through.
    """
    if isinstance(exc, StrataError):
        return exc
    from qdrant_client.common.client_exceptions import ResourceExhaustedResponse
    from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

    if isinstance(exc, UnexpectedResponse):
        detail = _server_message(exc) or f"HTTP {exc.status_code}"
        return _by_status(exc.status_code, f"{what}: {detail}")
    if isinstance(exc, ResourceExhaustedResponse):
        return Unavailable(f"{what}: rate limited by the server; retry in {exc.retry_after_s} s")
    if isinstance(exc, ResponseHandlingException):
        source = exc.source
        return Unavailable(
            f"{what}: the Qdrant server did not answer "
            f"({type(source).__name__}: {_first_line(str(source), 'no detail')})"
        )
    grpc = _grpc_module()
    if grpc is not None and isinstance(exc, grpc.RpcError):
        return _grpc(exc, what)
    text = _first_line(str(exc), type(exc).__name__)
    msg = f"{what}: {text}"
    if isinstance(exc, RuntimeError):
        if "already accessed by another instance" in text:
            return Unavailable(
                f"{msg} (local mode allows one client per directory: close the other store, "
                "or use a Qdrant server for concurrent access)"
            )
        if "closed" in text:
            return Unavailable(f"{what}: the local Qdrant instance is closed")
        return BackendError(msg)
    if isinstance(exc, TimeoutError | ConnectionError | OSError):
        return Unavailable(msg)
    if isinstance(exc, ValueError | TypeError | KeyError):
        if _NOT_FOUND.search(text):
            return NotFound(msg)
        if _EXISTS.search(text):
            return Conflict(msg)
        return InvalidInput(msg)
    return BackendError(msg)
