"""The strataml error hierarchy.

Every error a store raises is a :class:`StrataError`. Adapters translate driver errors into one of
the subclasses below and chain the original (``raise NotFound(...) from exc``), so callers can catch
one family of exceptions whatever the backend, and still reach the driver's error through
``__cause__`` when they need it.

Messages say what went wrong *and what to do about it*; they never contain secrets (passwords,
tokens, full connection URLs).
"""

from __future__ import annotations

__all__ = [
    "AdapterNotInstalled",
    "BackendError",
    "CapabilityError",
    "ConfigError",
    "Conflict",
    "DimensionMismatch",
    "FilterError",
    "InvalidInput",
    "LimitExceeded",
    "NotFound",
    "SchemaError",
    "SkewError",
    "StrataError",
    "TransformError",
    "Unavailable",
    "Unsupported",
]


class StrataError(Exception):
    """Base class of every error strataml raises."""


class ConfigError(StrataError):
    """A profile, adapter configuration or environment override is invalid."""


class AdapterNotInstalled(ConfigError):
    """A profile names a backend whose adapter distribution is not installed."""

    def __init__(self, adapter: str, package: str, role: str | None = None) -> None:
        where = f" (needed for [{role}])" if role else ""
        super().__init__(
            f"backend {adapter!r}{where} is not installed; install it with: pip install {package}"
        )
        self.adapter = adapter
        self.package = package
        self.role = role


class CapabilityError(ConfigError):
    """A profile requires a capability (hybrid search, TTL, aliases, ...) its backend lacks."""


class InvalidInput(StrataError, ValueError):
    """The caller passed data the store cannot accept (wrong shape, type, NaN, non-JSON, ...).

    Raised *before* anything is written: the store is unchanged.
    """


class DimensionMismatch(InvalidInput):
    """A vector's dimension differs from its collection's."""


class FilterError(InvalidInput):
    """A filter is malformed or compares a field with a value of the wrong type."""


class LimitExceeded(InvalidInput):
    """A batch, record or request is larger than the backend accepts (and cannot be split)."""


class NotFound(StrataError, KeyError):
    """A stream, table, feature view, collection or alias does not exist."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class Conflict(StrataError):
    """The operation conflicts with existing state (e.g. a collection already exists)."""


class SchemaError(StrataError):
    """A definition or record conflicts with the stored schema (incompatible change, bad SQL)."""


class SkewError(StrataError):
    """Online features were materialized from a different definition than the caller's."""


class TransformError(StrataError):
    """A request-time transform raised or returned something other than its declared outputs."""


class Unsupported(StrataError, NotImplementedError):
    """The backend cannot do what was asked (an operator, a search mode, a metric).

    Never silently ignored: a filter operator a backend cannot run raises this.
    """


class Unavailable(StrataError, ConnectionError):
    """The backend cannot be reached, timed out, or is locked by another process."""


class BackendError(StrataError):
    """Any other backend failure; the driver's exception is chained as ``__cause__``."""
