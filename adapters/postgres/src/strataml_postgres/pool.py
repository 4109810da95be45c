"""Connection pooling (psycopg_pool) shared by the stores of one stack that use the same URL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from strataml.errors import StrataError, Unavailable
from strataml_postgres.config import PostgresConfig
from strataml_postgres.errors import translate

__all__ = ["PgDatabase"]


class PgDatabase:
    """A pool of connections to one database, with the adapter's schema on the search path.

    ``connection()`` yields a pooled connection inside a transaction (committed on success,
    rolled back on error); driver errors leave as strataml errors.
    """

    def __init__(self, config: PostgresConfig) -> None:
        self.config = config
        self.schema = config.schema_name
        # UTC sessions: timestamps render and compare the same whatever the server's zone
        options = f"-c search_path={self.schema},public -c TimeZone=UTC"
        if config.statement_timeout_ms:
            options += f" -c statement_timeout={config.statement_timeout_ms}"
        self._kwargs: dict[str, Any] = {
            "connect_timeout": int(max(1, config.connect_timeout_s)),
            "application_name": config.application_name,
            "options": options,
            "client_encoding": "utf8",
        }
        self._pool: ConnectionPool | None = None
        self._lock = threading.Lock()

    def _open(self) -> ConnectionPool:
        with self._lock:
            if self._pool is not None:
                return self._pool
            pool = ConnectionPool(
                self.config.url.get_secret_value(),
                min_size=self.config.pool_min_size,
                max_size=self.config.pool_max_size,
                timeout=self.config.pool_timeout_s,
                kwargs=self._kwargs,
                check=ConnectionPool.check_connection,
                open=False,
                name="strataml",
            )
            try:
                pool.open(wait=True, timeout=self.config.connect_timeout_s)
                with pool.connection() as conn:
                    # concurrent CREATE SCHEMA IF NOT EXISTS can fail on the catalog's unique
                    # index: serialise the creators (a transaction-scoped advisory lock)
                    conn.execute(
                        "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                        ("strataml:schema\x1f" + self.schema,),
                    )
                    conn.execute(
                        sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                            sql.Identifier(self.schema)
                        )
                    )
            except PoolTimeout as exc:
                pool.close()
                raise Unavailable(
                    f"cannot connect to PostgreSQL at {self._where()} within "
                    f"{self.config.connect_timeout_s:g} s: is the server running, is the URL right?"
                ) from exc
            except Exception as exc:
                pool.close()
                raise translate(exc, "connecting to PostgreSQL") from exc
            self._pool = pool
            return pool

    def _where(self) -> str:
        info = conninfo_to_dict(self.config.url.get_secret_value())
        return f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"

    @contextmanager
    def connection(self, what: str = "PostgreSQL") -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection in a transaction; errors translated, connection returned."""
        pool = self._pool or self._open()
        try:
            with pool.connection() as conn, conn.transaction():
                yield conn
        except StrataError:
            raise
        except PoolTimeout as exc:
            raise self._timeout(pool, what) from exc
        except (psycopg.Error, OSError) as exc:
            raise translate(exc, what) from exc

    def _reachable(self) -> bool:
        """Whether a fresh connection to the server can be opened right now."""
        try:
            with psycopg.connect(
                self.config.url.get_secret_value(),
                **{**self._kwargs, "connect_timeout": max(1, int(self.config.connect_timeout_s))},
            ):
                return True
        except (psycopg.Error, OSError):
            return False

    def _timeout(self, pool: ConnectionPool, what: str) -> Unavailable:
        """Say whether the pool was exhausted or the server could not be reached."""
        timeout = self.config.pool_timeout_s
        if self._reachable():
            return Unavailable(
                f"{what}: all {self.config.pool_max_size} pooled connections stayed busy for "
                f"{timeout:g} s (pool exhausted); raise pool_max_size or pool_timeout_s, lower "
                "the concurrency, or finish or close open scans and readers"
            )
        return Unavailable(
            f"{what}: no connection to PostgreSQL at {self._where()} within {timeout:g} s; "
            "is the server running and reachable?"
        )

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None

    def __repr__(self) -> str:
        return f"<PgDatabase schema={self.schema!r}>"
