"""A real PostgreSQL 18 + pgvector, started by the test setup itself (127.0.0.1, free port)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from strataml.dev.servers import ServerHandle, start_postgres, stop
from strataml.registry import StackContext
from strataml_postgres import PostgresConfig, database


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    handle = start_postgres(tmp_path_factory.mktemp("pg"), durable=False)
    yield handle
    stop(handle)


@pytest.fixture
def pg_config(pg_server: ServerHandle, request: pytest.FixtureRequest) -> PostgresConfig:
    """A config whose schema is unique to the test (an empty, isolated store)."""
    import uuid

    return PostgresConfig(type="postgres", url=pg_server.url, schema=f"t_{uuid.uuid4().hex[:10]}")


@pytest.fixture
def pg_db(pg_config: PostgresConfig) -> Iterator[Any]:
    ctx = StackContext()
    db = database(pg_config, ctx)
    yield db
    ctx.close()
