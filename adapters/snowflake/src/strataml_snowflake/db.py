"""Sessions to one Snowflake schema, pooled and shared by the stores of a stack.

Every session runs with ``TIMEZONE = 'UTC'`` (timestamps render and compare the same whatever
the account's zone), ``QUOTED_IDENTIFIERS_IGNORE_CASE = FALSE`` (the naming rule of
:mod:`strataml_snowflake.names` relies on it), server-side ``qmark`` parameter binding, and the
configured schema as its current schema (created on first use when ``create_schema``).

Concurrency: Snowflake runs a transaction per session, so a store takes a session from the
pool for each operation (a scan keeps its session until it is exhausted). Cross-session
mutual exclusion (registering views, numbering dataset versions) uses a *lock row*: inside an
explicit transaction, ``UPDATE _STRATAML_LOCKS SET ... WHERE NAME = ?`` takes Snowflake's table
lock (UPDATE/DELETE/MERGE statements on one table never run in parallel), holds it until
``COMMIT``, and every statement after it in the transaction sees what earlier holders committed
(read committed). Threads of one process are also serialised by a process-local lock, so they
never wait on the server for each other.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from strataml.errors import ConfigError, StrataError, Unavailable
from strataml_snowflake.config import SnowflakeConfig
from strataml_snowflake.errors import translate
from strataml_snowflake.names import qualified, quote, to_sf

__all__ = ["LOCKS", "Session", "SnowflakeDatabase"]

#: The lock-row table (one row per lock name).
LOCKS = "_STRATAML_LOCKS"


class Session:
    """One pooled Snowflake connection and what strataml set up on it."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.stage_ready = False
        self.broken = False

    def execute(self, sql: str, params: Sequence[Any] | None = None, what: str = "") -> Any:
        """Run one statement on a new cursor; connector errors become strataml errors."""
        cur = self.conn.cursor()
        try:
            cur.execute(sql, list(params) if params else None)
        except StrataError:
            raise
        except Exception as exc:
            self._note(exc)
            raise translate(exc, what or "running SQL") from exc
        return cur

    def fetchall(
        self, sql: str, params: Sequence[Any] | None = None, what: str = ""
    ) -> list[tuple[Any, ...]]:
        cur = self.execute(sql, params, what)
        try:
            rows: list[tuple[Any, ...]] = cur.fetchall()
        except Exception as exc:
            self._note(exc)
            raise translate(exc, what or "reading a result") from exc
        finally:
            cur.close()
        return rows

    def describe(self, sql: str, params: Sequence[Any] | None = None, what: str = "") -> list[Any]:
        """The result columns of ``sql`` (compiled, not run, where the server can)."""
        cur = self.conn.cursor()
        try:
            described = cur.describe(sql, list(params) if params else None)
        except Exception as exc:
            self._note(exc)
            raise translate(exc, what or "describing a query") from exc
        finally:
            cur.close()
        return list(described or [])

    def _note(self, exc: BaseException) -> None:
        from snowflake.connector import errors as sf

        if isinstance(exc, sf.OperationalError | sf.InterfaceError | OSError):
            self.broken = True

    @contextmanager
    def transaction(self, what: str) -> Iterator[Session]:
        """``BEGIN`` ... ``COMMIT`` (``ROLLBACK`` on any error). DDL inside would commit it:
        callers keep DDL outside."""
        self.execute("BEGIN TRANSACTION", what=what)
        try:
            yield self
        except BaseException:
            try:
                self.execute("ROLLBACK", what=f"{what} (rolling back)")
            except StrataError:
                self.broken = True
            raise
        self.execute("COMMIT", what=what)


class SnowflakeDatabase:
    """A pool of sessions on ``config``'s schema; ``session()`` lends one."""

    def __init__(self, config: SnowflakeConfig) -> None:
        self.config = config
        self.database = to_sf(config.database)
        self.schema = to_sf(config.schema_name)
        self._idle: list[Session] = []
        self._open = 0
        self._cond = threading.Condition()
        self._ready = False
        self._ready_lock = threading.Lock()
        self._local_locks: dict[str, threading.Lock] = {}
        self._ensured: set[str] = set()
        self._closed = False

    def qualified(self, name: str) -> str:
        """``"DB"."SCHEMA"."NAME"`` for an identifier as stored."""
        return qualified(self.database, self.schema, name)

    # ------------------------------------------------------------------------------ connect
    def _connect_args(self) -> dict[str, Any]:
        c = self.config
        host, port, protocol = c.endpoint()
        params: dict[str, Any] = {
            "TIMEZONE": "UTC",
            "QUOTED_IDENTIFIERS_IGNORE_CASE": False,
            "QUERY_TAG": c.query_tag,
        }
        if c.statement_timeout_s:
            params["STATEMENT_TIMEOUT_IN_SECONDS"] = c.statement_timeout_s
        args: dict[str, Any] = {
            "account": c.account,
            "user": c.user,
            "database": self.database,
            "protocol": protocol,
            "login_timeout": c.login_timeout_s,
            "paramstyle": "qmark",
            "autocommit": True,
            "session_parameters": params,
            "application": "strataml",
            "client_session_keep_alive": False,
        }
        if self._ready:
            args["schema"] = self.schema
        if c.password is not None:
            args["password"] = c.password.get_secret_value()
        optional = {
            "authenticator": c.authenticator,
            "warehouse": to_sf(c.warehouse) if c.warehouse else None,
            "role": to_sf(c.role) if c.role else None,
            "host": host,
            "port": port,
            "network_timeout": c.network_timeout_s,
        }
        args.update({k: v for k, v in optional.items() if v is not None})
        return args

    def _new_session(self) -> Session:
        import snowflake.connector

        if self.config.password is None and self.config.authenticator is None:
            raise ConfigError(
                "the Snowflake adapter needs a password (e.g. from $STRATAML_SNOWFLAKE_PASSWORD) "
                "or an authenticator"
            )
        where = self._where()
        try:
            conn = snowflake.connector.connect(**self._connect_args())
        except Exception as exc:
            err = translate(exc, f"connecting to Snowflake at {where}")
            if isinstance(err, Unavailable):
                raise err from exc
            raise Unavailable(str(err)) from exc
        session = Session(conn)
        try:
            self._prepare(session)
        except BaseException:
            with contextlib.suppress(Exception):
                conn.close()
            raise
        return session

    def _prepare(self, session: Session) -> None:
        """Create the schema (first session only) and make it the session's current one."""
        with self._ready_lock:
            if not self._ready and self.config.create_schema:
                session.execute(
                    f"CREATE SCHEMA IF NOT EXISTS {quote(self.database)}.{quote(self.schema)}",
                    what="creating the strataml schema",
                )
            session.execute(
                f"USE SCHEMA {quote(self.database)}.{quote(self.schema)}",
                what="selecting the strataml schema",
            )
            if not self._ready:
                session.execute(
                    f"CREATE TABLE IF NOT EXISTS {self.qualified(LOCKS)} (NAME VARCHAR NOT NULL,"
                    " HOLDER VARCHAR, TAKEN_AT TIMESTAMP_NTZ)",
                    what="creating the lock table",
                )
            self._ready = True

    def _where(self) -> str:
        host, port, protocol = self.config.endpoint()
        host = host or f"{self.config.account}.snowflakecomputing.com"
        return f"{protocol}://{host}{f':{port}' if port else ''}"

    # --------------------------------------------------------------------------------- pool
    @contextmanager
    def session(self, what: str = "Snowflake") -> Iterator[Session]:
        """Lend a session (waiting up to ``pool_timeout_s`` when all are busy)."""
        session = self._acquire(what)
        try:
            yield session
        finally:
            self._release(session)

    def _acquire(self, what: str) -> Session:
        deadline = time.monotonic() + self.config.pool_timeout_s
        with self._cond:
            while True:
                if self._closed:
                    raise Unavailable(f"{what}: the Snowflake stores of this stack are closed")
                if self._idle:
                    return self._idle.pop()
                if self._open < self.config.pool_max_size:
                    self._open += 1
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Unavailable(
                        f"{what}: all {self.config.pool_max_size} Snowflake sessions stayed busy "
                        f"for {self.config.pool_timeout_s:g} s; raise pool_max_size or finish or "
                        "close open scans"
                    )
                self._cond.wait(left)
        try:
            return self._new_session()
        except BaseException:
            with self._cond:
                self._open -= 1
                self._cond.notify()
            raise

    def _release(self, session: Session) -> None:
        with self._cond:
            if session.broken or self._closed:
                self._open -= 1
                with contextlib.suppress(Exception):
                    session.conn.close()
            else:
                self._idle.append(session)
            self._cond.notify()

    def ensure(self, key: str, session: Session, create: Callable[[Session], None]) -> None:
        """Run ``create`` (idempotent DDL such as ``CREATE TABLE IF NOT EXISTS``) once per pool
        for ``key``, so stores built on a shared pool do not repeat it."""
        if key in self._ensured:
            return
        with self.local_lock(f"ensure:{key}"):
            if key not in self._ensured:
                create(session)
                self._ensured.add(key)

    # -------------------------------------------------------------------------------- locks
    def local_lock(self, name: str) -> threading.Lock:
        with self._cond:
            return self._local_locks.setdefault(name, threading.Lock())

    def ensure_lock_row(self, session: Session, name: str) -> None:
        """Make sure the lock row ``name`` exists (a duplicate row from a race is harmless:
        the UPDATE of :meth:`hold` locks the table whatever it matches)."""
        session.execute(
            f"MERGE INTO {self.qualified(LOCKS)} AS t USING (SELECT ? AS NAME) AS s"
            " ON t.NAME = s.NAME WHEN NOT MATCHED THEN INSERT (NAME) VALUES (s.NAME)",
            [name],
            what=f"creating lock {name!r}",
        )

    def hold(self, session: Session, name: str) -> None:
        """Inside a transaction: take the lock ``name`` until the transaction ends."""
        session.execute(
            f"UPDATE {self.qualified(LOCKS)} SET HOLDER = ?, TAKEN_AT = CURRENT_TIMESTAMP()"
            " WHERE NAME = ?",
            [uuid.uuid4().hex, name],
            what=f"taking lock {name!r}",
        )

    def close(self) -> None:
        """Close every idle session; sessions lent out close when they come back."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._open -= len(idle)
            self._cond.notify_all()
        for session in idle:
            with contextlib.suppress(Exception):
                session.conn.close()

    def __repr__(self) -> str:
        return f"<SnowflakeDatabase {self.database}.{self.schema} at {self._where()}>"
