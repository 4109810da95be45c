"""pytest plugin (auto-loaded through the ``pytest11`` entry point).

* Applies each contract class's ``xfail`` table as strict xfail markers (an entry naming no
  test of the class is a usage error).
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
    checked: set[type] = set()
    for item in items:
        cls = getattr(item, "cls", None)
        table: dict[str, str] = getattr(cls, "xfail", None) or {}
        if table and isinstance(cls, type) and cls not in checked:
            checked.add(cls)
            check_xfail_table(cls, table)
        name = getattr(item, "originalname", item.name)
        if name in table:
            item.add_marker(pytest.mark.xfail(strict=True, reason=table[name]))


def check_xfail_table(cls: type, table: dict[str, str]) -> None:
    """An ``xfail`` entry naming no test of its class would opt out of nothing, silently (a
    typo, or a test renamed by a newer suite): refuse to run."""
    unknown = sorted(n for n in table if not callable(getattr(cls, n, None)))
    if unknown:
        raise pytest.UsageError(
            f"{cls.__qualname__}.xfail names tests it does not have: {unknown}; "
            "remove or rename the entries (see strataml.testing.ContractBase)"
        )


def profile_option(config: Any) -> str | None:
    value = config.getoption("--strataml-profile", default=None)
    return str(value) if value else None
