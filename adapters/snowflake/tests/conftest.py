"""A real Snowflake emulator (fakesnow in server mode), started by the test setup itself
(127.0.0.1, free port, stopped by PID).

The contract suite names everything it creates uniquely (the ``uid`` fixture), so its tests
share one schema and one session pool (``sf_db``, per test session): each fresh schema costs a
login and the catalog DDL, seconds over a whole run. Tests that need a schema of their own use
``fresh_db``."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest

from strataml.dev.servers import ServerHandle, stop
from strataml.registry import StackContext
from strataml_snowflake import SnowflakeConfig, database
from strataml_snowflake.db import SnowflakeDatabase
from strataml_snowflake.devserver import start


@pytest.fixture(scope="session")
def sf_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    handle = start(tmp_path_factory.mktemp("fakesnow"))
    yield handle
    stop(handle)


def make_config(server: ServerHandle, **overrides: object) -> SnowflakeConfig:
    """A config for the emulator with a schema of its own (an empty, isolated store)."""
    values: dict[str, object] = {
        "type": "snowflake",
        "account": "fakesnow",
        "user": "strataml",
        "password": "not-a-real-secret",
        "url": server.url,  # what `strataml dev up` exports as STRATAML_SNOWFLAKE_URL
        "database": "strataml_test",
        "schema": f"t_{uuid.uuid4().hex[:10]}",
        # the emulator answers its own bugs with HTTP 500, which the connector retries: bound it
        "network_timeout_s": int(os.environ.get("STRATAML_TEST_SF_NETWORK_TIMEOUT", "60")),
    }
    values.update(overrides)
    return SnowflakeConfig.model_validate(values)


@pytest.fixture(scope="session")
def sf_config(sf_server: ServerHandle) -> Callable[..., SnowflakeConfig]:
    """``sf_config(**overrides)``: a config for the emulator with a schema of its own."""
    return lambda **overrides: make_config(sf_server, **overrides)


@pytest.fixture(scope="session")
def sf_db(sf_server: ServerHandle) -> Iterator[SnowflakeDatabase]:
    """One schema and session pool shared by the contract tests."""
    ctx = StackContext()
    db = database(make_config(sf_server), ctx)
    yield db
    ctx.close()


@pytest.fixture
def fresh_db(sf_server: ServerHandle) -> Iterator[SnowflakeDatabase]:
    """A schema of its own (an empty store), for tests that look at whole listings."""
    ctx = StackContext()
    db = database(make_config(sf_server), ctx)
    yield db
    ctx.close()
