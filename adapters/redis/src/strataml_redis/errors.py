"""Translating redis-py errors into strataml's hierarchy (never a bare driver error).

Messages never carry secrets: any URL password or ``AUTH`` argument is masked.
"""

from __future__ import annotations

import re

from redis import exceptions as rx

from strataml.errors import BackendError, ConfigError, InvalidInput, StrataError, Unavailable

__all__ = ["DRIVER_ERRORS", "redact", "translate"]

#: What to catch around a redis-py call (cluster client errors do not derive from RedisError;
#: redis-py wraps socket errors in its own ConnectionError). Not OSError: strataml's own
#: Unavailable is one, and must pass through untouched.
DRIVER_ERRORS: tuple[type[BaseException], ...] = (rx.RedisError, rx.RedisClusterException)

_CLUSTER_UNREACHABLE = (
    "cannot be connected",
    "not covered",
    "could not agree",
    "no redis_connection",
)
_URL_PASSWORD = re.compile(r"(\w+://[^:/@\s]*:)[^@/\s]+@")
_AUTH_ARGS = re.compile(r"(\bAUTH\b[^\n]*)", re.IGNORECASE)


def redact(text: str) -> str:
    """Mask the password of any URL and the arguments of any ``AUTH`` in ``text``."""
    text = _URL_PASSWORD.sub(r"\1****@", text)
    return _AUTH_ARGS.sub("AUTH ****", text)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return redact(text.splitlines()[0]) if text else type(exc).__name__


def translate(exc: BaseException, what: str) -> StrataError:
    """Map a redis-py exception to a strataml error; the caller chains it with ``from``."""
    msg = f"{what}: {_first_line(exc)}"
    if isinstance(exc, rx.AuthenticationError | rx.AuthorizationError | rx.NoPermissionError):
        return Unavailable(
            f"{what}: Redis refused the credentials ({type(exc).__name__}); check the user "
            "name and password in the url"
        )
    if isinstance(exc, rx.MaxConnectionsError):
        return Unavailable(
            f"{msg} (all max_connections are busy: raise max_connections or pool_timeout_s)"
        )
    if isinstance(exc, rx.BusyLoadingError):
        return Unavailable(f"{msg} (Redis is loading its dataset; retry shortly)")
    if isinstance(exc, rx.ConnectionError | rx.TimeoutError | OSError):
        return Unavailable(msg)
    if isinstance(exc, rx.ReadOnlyError):
        return Unavailable(f"{msg} (connected to a read-only replica)")
    if isinstance(exc, rx.ClusterDownError | rx.TryAgainError | rx.SlotNotCoveredError):
        return Unavailable(f"{msg} (the cluster is not serving this slot right now; retry)")
    if isinstance(exc, rx.ClusterError):
        return Unavailable(msg)
    if isinstance(exc, rx.RedisClusterException):
        text = str(exc)
        if "not enabled" in text:
            return ConfigError(
                f'{msg} (the url names a server that is not in a cluster: use type = "redis")'
            )
        if any(s in text for s in _CLUSTER_UNREACHABLE):
            return Unavailable(msg)
        return BackendError(msg)
    if isinstance(exc, rx.OutOfMemoryError) or str(exc).startswith("OOM"):
        return BackendError(f"{msg} (Redis reached maxmemory: raise it or use TTLs)")
    if isinstance(exc, rx.DataError):
        return InvalidInput(msg)
    if isinstance(exc, rx.ResponseError) and str(exc).startswith("WRONGTYPE"):
        return BackendError(
            f"{msg} (a key under this store's key_prefix holds something strataml did not "
            "write: use a key_prefix of its own)"
        )
    return BackendError(msg)
