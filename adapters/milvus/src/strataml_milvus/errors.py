"""Translating pymilvus / gRPC errors into strataml's hierarchy (never a bare driver error).

Milvus reports failures as :class:`pymilvus.exceptions.MilvusException` with a numeric code
(``merr``: 100 = collection not found, 1100 = invalid parameter, 1102 = parameter too large,
1800/1801 = authentication/permission, 2000 = engine error, 1-13 = service state and rate
limits) or as raw :class:`grpc.RpcError` (``UNAVAILABLE``, ``DEADLINE_EXCEEDED``,
``UNIMPLEMENTED``). Messages never carry the token: anything that looks like one is masked.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from strataml.errors import (
    BackendError,
    Conflict,
    InvalidInput,
    LimitExceeded,
    NotFound,
    StrataError,
    Unavailable,
    Unsupported,
)

__all__ = ["driver_errors", "is_unimplemented", "milvus_call", "redact", "translate"]

_SERVICE_CODES = frozenset(range(1, 14)) - {5, 10}
#: pymilvus's own argument checks (raised before any request; their code is the generic 1)
_CLIENT_SIDE = frozenset(
    {"ParamError", "DataTypeNotMatchException", "DataNotMatchException", "PrimaryKeyException"}
)
_NOT_FOUND = ("not found", "not exist", "doesn't exist", "does not exist", "can't find")
_LIMITS = ("exceed", "too large", "too long", "larger than", "limit")
_TOKEN = re.compile(r"(token|authorization|password)(\W{1,3})([^\s,;'\"]+)", re.IGNORECASE)


def redact(text: str) -> str:
    """Mask anything that looks like a token, password or authorization header value."""
    return _TOKEN.sub(r"\1\2****", text)


def driver_errors() -> tuple[type[BaseException], ...]:
    """The exception types a pymilvus call may raise (imported lazily)."""
    import grpc  # type: ignore[import-untyped, unused-ignore]
    from pymilvus.exceptions import MilvusException  # type: ignore[import-untyped, unused-ignore]

    return (MilvusException, grpc.RpcError)


def _grpc_status(exc: BaseException) -> str | None:
    code = getattr(exc, "code", None)
    if callable(code):
        try:
            value = code()
        except Exception:  # noqa: BLE001 - a half-built RpcError has no code
            return None
        name = getattr(value, "name", None)
        return str(name) if name else None
    return None


def is_unimplemented(exc: BaseException) -> bool:
    """Whether the server does not implement the call (Milvus Lite: aliases, compaction...)."""
    if _grpc_status(exc) == "UNIMPLEMENTED":
        return True
    cause = exc.__cause__
    return cause is not None and cause is not exc and _grpc_status(cause) == "UNIMPLEMENTED"


def _message(exc: BaseException) -> str:
    text = getattr(exc, "message", None)
    if not isinstance(text, str) or not text:
        details = getattr(exc, "details", None)
        text = details() if callable(details) else str(exc)
    text = str(text).strip().splitlines()[0] if str(text).strip() else type(exc).__name__
    return redact(text[:500])


def translate(exc: BaseException, what: str) -> StrataError:
    """Map a pymilvus or gRPC exception to a strataml error; the caller chains it."""
    if isinstance(exc, StrataError):
        return exc
    msg = _message(exc)
    low = msg.lower()
    text = f"{what}: {msg}"
    status = _grpc_status(exc)
    raw_code: Any = getattr(exc, "code", None)
    code = raw_code if isinstance(raw_code, int) else None
    if status == "UNIMPLEMENTED" or is_unimplemented(exc) or code == 10:
        return Unsupported(f"{what}: this Milvus server does not implement the call")
    if status in ("UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED") or "timeout" in low:
        return Unavailable(f"{text} (is the Milvus server up and reachable?)")
    if status in ("UNAUTHENTICATED", "PERMISSION_DENIED") or code in (1800, 1801, 1802):
        return Unavailable(f"{what}: Milvus refused the credentials or the permission; check token")
    if code == 100 or any(s in low for s in _NOT_FOUND):
        return NotFound(text)
    if "already exist" in low or "duplicate" in low:
        return Conflict(text)
    if code == 1102 or (code in (1100, None) and any(s in low for s in _LIMITS)):
        return LimitExceeded(text)
    if code in (1100, 1101) or type(exc).__name__ in _CLIENT_SIDE:
        return InvalidInput(text)
    if code in _SERVICE_CODES or "connect" in low or "not ready" in low:
        return Unavailable(text)
    return BackendError(text)


@contextmanager
def milvus_call(what: str) -> Iterator[None]:
    """Translate any pymilvus/gRPC error raised inside the block (strataml errors pass)."""
    try:
        yield
    except StrataError:
        raise
    except driver_errors() as exc:
        raise translate(exc, what) from exc
    except (OSError, ValueError, TypeError) as exc:  # pymilvus raises these on bad arguments
        raise translate(exc, what) from exc
