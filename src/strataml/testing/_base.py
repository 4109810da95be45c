"""Shared machinery of the contract suite."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, ClassVar

import pytest

from strataml.errors import StrataError

__all__ = ["ContractBase", "raises_strata"]


class ContractBase:
    """Base of every contract mixin.

    * ``xfail``: ``{test_name: reason}`` -- the only way to opt out of a test. The plugin marks
      each one ``xfail(strict=True)``, so a test that starts passing fails the run until the
      entry is removed.
    * :meth:`require` skips a test when the store's declared capabilities lack something; the
      skip names the capability (never the backend).
    * ``uid``: a fixture making unique names, so the suite can also run against shared servers.
    """

    xfail: ClassVar[dict[str, str]] = {}

    @staticmethod
    def require(store: Any, *features: str) -> None:
        caps = store.capabilities
        missing = [f for f in features if not caps.supports(f)]
        if missing:
            pytest.skip(f"backend does not declare capability {', '.join(missing)}")

    @pytest.fixture
    def uid(self) -> Callable[[str], str]:
        token = uuid.uuid4().hex[:8]

        def make(prefix: str = "t") -> str:
            return f"{prefix}_{token}"

        return make


def raises_strata(exc_type: type[StrataError]) -> Any:
    """``pytest.raises`` that also insists the error is a strataml error."""
    assert issubclass(exc_type, StrataError)
    return pytest.raises(exc_type)
