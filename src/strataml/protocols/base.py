"""What every store has in common."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from strataml.capabilities import Capabilities


@runtime_checkable
class Store(Protocol):
    """Every store declares its capabilities and can be closed (idempotently).

    Errors: every method of every protocol raises only :class:`~strataml.errors.StrataError`
    subclasses; driver errors are chained as ``__cause__``.
    """

    @property
    def capabilities(self) -> Capabilities: ...

    def close(self) -> None:
        """Release connections and files. Safe to call twice."""
        ...
