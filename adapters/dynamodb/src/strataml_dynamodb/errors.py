"""Translating botocore errors into strataml's hierarchy (never a bare driver error).

Messages carry the DynamoDB error code and message (which never contain credentials) and what
to do about it; the driver's exception is chained by the caller (``raise ... from exc``).
"""

from __future__ import annotations

from typing import Any

from botocore import exceptions as bx

from strataml.errors import (
    BackendError,
    ConfigError,
    Conflict,
    InvalidInput,
    LimitExceeded,
    NotFound,
    StrataError,
    Unavailable,
)

__all__ = ["DRIVER_ERRORS", "error_code", "translate"]

#: What to catch around a boto3 call (not OSError: strataml's Unavailable is one).
DRIVER_ERRORS: tuple[type[BaseException], ...] = (bx.BotoCoreError, bx.ClientError)

_THROTTLED = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "LimitExceededException",
        "InternalServerError",
        "ServiceUnavailable",
        "InternalFailure",
        "TransactionInProgressException",
    }
)
_AUTH = frozenset(
    {
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "ExpiredTokenException",
        "MissingAuthenticationTokenException",
        "IncompleteSignature",
        "InvalidClientTokenId",
    }
)
_UNREACHABLE = (
    bx.EndpointConnectionError,
    bx.ConnectTimeoutError,
    bx.ReadTimeoutError,
    bx.ConnectionClosedError,
    bx.ProxyConnectionError,
    bx.SSLError,
    bx.HTTPClientError,
)


def error_code(exc: BaseException) -> str:
    """The DynamoDB error code of a ``ClientError`` (``""`` for anything else)."""
    if isinstance(exc, bx.ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def cancellation_codes(exc: BaseException) -> list[str]:
    """The per-action reason codes of a ``TransactionCanceledException`` (``"None"`` for the
    actions that did not fail)."""
    if not isinstance(exc, bx.ClientError):
        return []
    reasons: Any = exc.response.get("CancellationReasons") or []
    return [str(r.get("Code", "None")) for r in reasons]


def _message(exc: BaseException) -> str:
    if isinstance(exc, bx.ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code', 'ClientError')}: {err.get('Message', '')}".strip()
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def translate(exc: BaseException, what: str) -> StrataError:
    """Map a botocore exception to a strataml error; the caller chains it with ``from``."""
    msg = f"{what}: {_message(exc)}"
    if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
        return ConfigError(
            f"{what}: no AWS credentials found; set aws_access_key_id/aws_secret_access_key, "
            "a profile, or the standard AWS environment variables"
        )
    if isinstance(exc, bx.NoRegionError):
        return ConfigError(f"{what}: no AWS region; set `region`")
    if isinstance(exc, bx.ParamValidationError):
        return InvalidInput(msg)
    if isinstance(exc, _UNREACHABLE):
        return Unavailable(f"{msg} (is the endpoint reachable?)")
    code = error_code(exc)
    if code in _AUTH:
        return Unavailable(
            f"{what}: DynamoDB refused the credentials or permissions ({code}); check the "
            "access key, session token and IAM policy"
        )
    if code in _THROTTLED:
        return Unavailable(
            f"{msg} (throttled or temporarily failing after max_retries retries: raise "
            "capacity, use PAY_PER_REQUEST, or retry later)"
        )
    if code == "ResourceNotFoundException":
        return NotFound(f"{msg} (does the table exist in this region?)")
    if code == "ResourceInUseException":
        return Conflict(f"{msg} (the table is being created, updated or deleted; retry)")
    if code in {"ConditionalCheckFailedException", "TransactionConflictException"}:
        return Conflict(f"{msg} (another writer changed the same item; retry)")
    if code == "TransactionCanceledException":
        reasons = cancellation_codes(exc)
        if any(r in {"TransactionConflict", "ConditionalCheckFailed"} for r in reasons):
            return Conflict(f"{msg} (another writer changed the same item; retry)")
        if any(r in {"ThrottlingError", "ProvisionedThroughputExceeded"} for r in reasons):
            return Unavailable(f"{msg} (throttled)")
        if any("size" in str(r).lower() for r in reasons):
            return LimitExceeded(msg)
        return BackendError(msg)
    if code == "ItemCollectionSizeLimitExceededException":
        return LimitExceeded(msg)
    if code == "ValidationException":
        text = msg.lower()
        if "size" in text and ("exceed" in text or "too large" in text):
            return LimitExceeded(f"{msg} (an item is over DynamoDB's 400 KB limit)")
        return BackendError(msg)
    return BackendError(msg)
