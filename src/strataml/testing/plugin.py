"""pytest plugin (auto-loaded through the ``pytest11`` entry point).

* Applies each contract class's ``xfail`` table as strict xfail markers.
* ``--strataml-profile PATH_OR_NAME`` runs the contract suite against a configured stack
  (used by ``strataml contract``).
"""

from __future__ import annotations

from typing import Any

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("strataml")
    group.addoption(
        "--strataml-profile",
        default=None,
        help="run the strataml contract suite against this profile (name or .toml path)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        cls = getattr(item, "cls", None)
        table: dict[str, str] = getattr(cls, "xfail", None) or {}
        name = getattr(item, "originalname", item.name)
        if name in table:
            item.add_marker(pytest.mark.xfail(strict=True, reason=table[name]))


def profile_option(config: Any) -> str | None:
    value = config.getoption("--strataml-profile", default=None)
    return str(value) if value else None
