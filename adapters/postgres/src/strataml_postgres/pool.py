"""Connection pooling (psycopg_pool) shared by the stores of one stack that use the same URL.

Two pools per database, both opened lazily:

* the **transaction pool** (:meth:`PgDatabase.connection`): every connection is checked when
  handed out and used inside a transaction, committed or rolled back -- for writes, DDL,
  multi-statement reads and server-side cursors;
* the **read pool** (:meth:`PgDatabase.read`): ``autocommit`` connections handed out without a
  check, for single-statement reads that need neither a transaction nor a consistent view across
  statements. A read costs one round trip instead of four (check, ``BEGIN``, the statement,
  ``COMMIT``): on a loaded two-core machine each round trip costs about as much as an HNSW search,
  so a vector search through the transaction pool ran at 0.55-0.7x the queries/s of the same SQL
  on a bare connection. A connection found broken fails the read once and the read is retried on
  a fresh one (reads are idempotent), which replaces the per-checkout check. Stores that need
  session settings on the read connections (pgvector's ``hnsw.*``) apply them through
  :meth:`PgDatabase.read`'s ``prepare`` hook and remember what they set in the connection's
  :meth:`session state <PgDatabase.read>`, so a setting is sent only when it changes.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from strataml.errors import StrataError, Unavailable
from strataml_postgres.config import PostgresConfig
from strataml_postgres.errors import not_utf8, translate

__all__ = ["PgDatabase"]

T = TypeVar("T")
#: ``prepare(conn, state)``: apply session settings; ``state`` is the connection's own dict.
Prepare = Callable[[psycopg.Connection[Any], dict[str, Any]], None]


class PgDatabase:
    """A pool of connections to one database, with the adapter's schema on the search path.

    ``connection()`` yields a pooled connection inside a transaction (committed on success,
    rolled back on error); driver errors leave as strataml errors, and so does text psycopg
    cannot send (a lone surrogate in SQL or a parameter: :class:`InvalidInput`).
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
        self._reader: ConnectionPool | None = None
        self._state: weakref.WeakKeyDictionary[psycopg.Connection[Any], dict[str, Any]] = (
            weakref.WeakKeyDictionary()
        )
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
        except UnicodeEncodeError as exc:
            raise not_utf8(exc, what) from exc

    # ---------------------------------------------------------------------------- reads
    def read(
        self,
        what: str,
        fn: Callable[[psycopg.Connection[Any]], T],
        *,
        prepare: Prepare | None = None,
    ) -> T:
        """Run ``fn`` -- one read statement (or a few independent ones), idempotent -- on a
        pooled **autocommit** connection, in one round trip per statement.

        ``prepare(conn, state)`` runs first on the borrowed connection: it may send session
        settings and record them in ``state``, a dict that lives as long as the connection.
        A connection that turns out broken is replaced and the read retried once; driver and
        pool errors leave as strataml errors (:class:`Unavailable` when no connection frees
        up within ``pool_timeout_s``).
        """
        for attempt in (1, 2):
            pool = self._reader or self._open_reader()
            try:
                conn = pool.getconn()  # (lighter than pool.connection(): nothing to commit)
                try:
                    if prepare is not None:
                        prepare(conn, self._session_state(conn))
                    return fn(conn)
                finally:
                    pool.putconn(conn)  # a broken connection is discarded and replaced
            except StrataError:
                raise
            except PoolTimeout as exc:
                raise self._timeout(pool, what) from exc
            except psycopg.OperationalError as exc:
                if attempt == 1 and _connection_lost(exc):
                    pool.check()  # drop every other broken idle connection before the retry
                    continue
                raise translate(exc, what) from exc
            except (psycopg.Error, OSError) as exc:
                raise translate(exc, what) from exc
            except UnicodeEncodeError as exc:
                raise not_utf8(exc, what) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _session_state(self, conn: psycopg.Connection[Any]) -> dict[str, Any]:
        state = self._state.get(conn)
        if state is None:
            with self._lock:
                state = self._state.setdefault(conn, {})
        return state

    def _open_reader(self) -> ConnectionPool:
        with self._lock:
            if self._reader is not None:
                return self._reader
            pool = ConnectionPool(
                self.config.url.get_secret_value(),
                min_size=1,
                max_size=self.config.pool_max_size,
                timeout=self.config.pool_timeout_s,
                kwargs={**self._kwargs, "autocommit": True},
                open=False,
                name="strataml-read",
            )
            try:
                pool.open(wait=True, timeout=self.config.connect_timeout_s)
            except PoolTimeout as exc:
                pool.close()
                raise Unavailable(
                    f"cannot connect to PostgreSQL at {self._where()} within "
                    f"{self.config.connect_timeout_s:g} s: is the server running, is the URL right?"
                ) from exc
            self._reader = pool
            return pool

    def session_kwargs(self, *, statement_timeout: bool = True) -> dict[str, Any]:
        """The connection settings every connection of this database uses (schema on the search
        path, UTC, the statement timeout unless ``statement_timeout=False``)."""
        kwargs = dict(self._kwargs)
        if not statement_timeout:
            kwargs["options"] = f"-c search_path={self.schema},public -c TimeZone=UTC"
        return kwargs

    @contextmanager
    def direct_connection(
        self, what: str = "PostgreSQL", *, statement_timeout: bool = True
    ) -> Iterator[psycopg.Connection[Any]]:
        """A new, unpooled **autocommit** connection with the pool's session settings, closed
        afterwards: for statements that cannot run in a transaction block (``VACUUM``,
        ``REINDEX ... CONCURRENTLY``) and may run longer than the statement timeout
        (``statement_timeout=False``). Errors are translated."""
        try:
            conn = psycopg.connect(
                self.config.url.get_secret_value(),
                autocommit=True,
                **self.session_kwargs(statement_timeout=statement_timeout),
            )
        except (psycopg.Error, OSError) as exc:
            raise translate(exc, what) from exc
        try:
            with conn:
                yield conn
        except StrataError:
            raise
        except (psycopg.Error, OSError) as exc:
            raise translate(exc, what) from exc
        except UnicodeEncodeError as exc:
            raise not_utf8(exc, what) from exc

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
            pools, self._pool, self._reader = (self._pool, self._reader), None, None
        for pool in pools:
            if pool is not None:
                pool.close()

    def __repr__(self) -> str:
        return f"<PgDatabase schema={self.schema!r}>"


def _connection_lost(exc: psycopg.OperationalError) -> bool:
    """A failure of the connection itself (not of the statement): worth one retry."""
    state = getattr(exc, "sqlstate", None)
    return state is None or str(state).startswith(("08", "57P"))
