"""A real BigQuery emulator (PyPI ``bqemulator``), started by the test setup itself on
127.0.0.1 and free ports through :func:`strataml_bigquery.devserver.start`, from its own
virtualenv (``$STRATAML_BQEMULATOR`` or one built on demand; see the devserver module).

Tests skip -- saying why -- only when that virtualenv cannot be built (no network to PyPI).
Every store gets a BigQuery dataset of its own (an empty, isolated store), deleted afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from strataml.dev.servers import ServerHandle, stop
from strataml.errors import Unavailable
from strataml.registry import StackContext
from strataml_bigquery import BigQueryConfig, shared_engine
from strataml_bigquery.devserver import emulator_executable, start
from strataml_bigquery.engine import BigQueryEngine

PROJECT = "strataml-test"


@pytest.fixture(scope="session")
def bq_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    try:
        emulator_executable()
    except Unavailable as exc:
        pytest.skip(f"the BigQuery emulator's own virtualenv cannot be built here: {exc}")
    handle = start(
        tmp_path_factory.mktemp("bq"), project=PROJECT, persistent=False, time_travel=False
    )
    yield handle
    stop(handle)


@pytest.fixture
def make_config(bq_server: ServerHandle) -> Callable[..., BigQueryConfig]:
    """Configs pointing at the emulator; each call names a fresh dataset unless given one."""

    def make(**kwargs: Any) -> BigQueryConfig:
        kwargs.setdefault("dataset", f"t_{uuid.uuid4().hex[:10]}")
        kwargs.setdefault("read_api", "rest")
        return BigQueryConfig(
            type="bigquery", project=PROJECT, api_endpoint=bq_server.url, **kwargs
        )

    return make


@pytest.fixture
def bq_engine(make_config: Callable[..., BigQueryConfig]) -> Iterator[BigQueryEngine]:
    """An engine on a dataset of its own, deleted (with its tables) after the test."""
    ctx = StackContext()
    eng: BigQueryEngine = shared_engine(make_config(), ctx)
    yield eng
    try:
        eng.client.delete_dataset(
            f"{eng.project}.{eng.dataset}", delete_contents=True, not_found_ok=True
        )
    finally:
        ctx.close()
