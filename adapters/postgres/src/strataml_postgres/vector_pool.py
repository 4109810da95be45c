"""The pgvector store's read path: a check-free, autocommit connection pool.

Why a second pool
-----------------
The shared :class:`~strataml_postgres.pool.PgDatabase` pool checks every connection it hands out
(a round trip) and wraps each use in a transaction (``BEGIN`` and ``COMMIT``: two more), and
HNSW settings would need a ``SET LOCAL`` per query (a fourth). On a loaded two-core machine each
round trip costs about as much as an HNSW search itself, so a search through it ran at
0.55-0.7x the queries/s of the same SQL through a bare psycopg connection. Reads here are single
statements, so they need neither the check nor an explicit transaction:

* connections are ``autocommit``; each search, get or count is **one** statement, one round
  trip (hybrid search is one ``UNION ALL`` statement);
* the pgvector session settings (``hnsw.iterative_scan``, ``hnsw.ef_search``,
  ``hnsw.max_scan_tuples``) are set once when a connection is created, and ``ef_search`` is
  raised per connection only when a query asks for more candidates than it allows;
* NumPy vectors are sent in pgvector's binary format (registered on these private connections
  only, so other stores sharing the main pool are unaffected);
* a connection found broken fails the read once and the read is retried on a fresh one (reads
  are idempotent), which replaces the per-checkout check.

Writes and DDL keep using the shared pool and its transactions.
"""

from __future__ import annotations

import struct
import threading
import weakref
from collections.abc import Callable
from typing import Any, Final, TypeVar

import numpy as np
import psycopg
from psycopg.adapt import Dumper
from psycopg.pq import Format
from psycopg_pool import ConnectionPool, PoolTimeout

from strataml.errors import StrataError, Unavailable
from strataml_postgres.config import PostgresConfig
from strataml_postgres.errors import translate

__all__ = ["IterativeScan", "VectorBinaryDumper", "VectorReader", "register_vector_dumper"]

T = TypeVar("T")
IterativeScan = str  # "relaxed_order" | "strict_order" | "off"; None: pgvector < 0.8
_HEADER: Final = struct.Struct(">HH")
_EF_SEARCH_MAX: Final = 1000  # pgvector's limit; iterative scans go further when needed


class VectorBinaryDumper(Dumper):
    """A 1-D NumPy array in pgvector's binary wire format (``int16 dim, int16 0, float4[]``).

    The OID is left unspecified (0): the server infers ``vector`` from the operator or the
    column, so the dumper needs no per-database type lookup.
    """

    format = Format.BINARY
    oid = 0

    def dump(self, obj: Any) -> bytes:
        arr = np.asarray(obj, dtype=">f4")
        return _HEADER.pack(arr.shape[0], 0) + arr.tobytes()


def register_vector_dumper(context: psycopg.Connection[Any] | psycopg.Cursor[Any]) -> None:
    """Send NumPy arrays bound through ``context`` as pgvector vectors (binary)."""
    context.adapters.register_dumper(np.ndarray, VectorBinaryDumper)


def load_vector(data: bytes | memoryview | None) -> list[float] | None:
    """A ``vector`` column read in binary format -> a list of floats."""
    if data is None:
        return None
    arr = np.frombuffer(data, dtype=">f4", offset=_HEADER.size)
    return arr.astype(np.float64).tolist()  # type: ignore[no-any-return]


class VectorReader:
    """Autocommit connections for the store's single-statement reads (see module docstring)."""

    def __init__(
        self,
        config: PostgresConfig,
        *,
        ef_search: int,
        iterative_scan: IterativeScan | None,
        max_scan_tuples: int,
        load_library: str,
    ) -> None:
        self.config = config
        self.ef_search = ef_search
        self.iterative_scan = iterative_scan
        self.max_scan_tuples = max_scan_tuples
        self._load_library = load_library  # a statement that loads pgvector into the backend
        # the same session settings as the shared pool (PgDatabase), plus autocommit
        options = f"-c search_path={config.schema_name},public -c TimeZone=UTC"
        if config.statement_timeout_ms:
            options += f" -c statement_timeout={config.statement_timeout_ms}"
        self._kwargs: dict[str, Any] = {
            "autocommit": True,
            "connect_timeout": int(max(1, config.connect_timeout_s)),
            "application_name": config.application_name,
            "options": options,
            "client_encoding": "utf8",
        }
        self._pool: ConnectionPool | None = None
        self._lock = threading.Lock()
        self._ef: weakref.WeakKeyDictionary[psycopg.Connection[Any], int] = (
            weakref.WeakKeyDictionary()
        )

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        register_vector_dumper(conn)
        conn.execute(self._load_library)
        conn.execute("SELECT set_config('hnsw.ef_search', %s, false)", (str(self.ef_search),))
        if self.iterative_scan is not None:  # pgvector >= 0.8
            conn.execute(
                "SELECT set_config('hnsw.iterative_scan', %s, false), "
                "set_config('hnsw.max_scan_tuples', %s, false)",
                (self.iterative_scan, str(self.max_scan_tuples)),
            )
        self._ef[conn] = self.ef_search

    def _open(self) -> ConnectionPool:
        with self._lock:
            if self._pool is None:
                self._pool = ConnectionPool(
                    self.config.url.get_secret_value(),
                    min_size=1,
                    max_size=self.config.pool_max_size,
                    timeout=self.config.pool_timeout_s,
                    kwargs=self._kwargs,
                    configure=self._configure,
                    open=False,
                    name="strataml-vectors",
                )
                try:
                    self._pool.open(wait=True, timeout=self.config.connect_timeout_s)
                except PoolTimeout as exc:
                    self._pool.close()
                    self._pool = None
                    raise Unavailable(
                        "cannot open read connections to PostgreSQL within "
                        f"{self.config.connect_timeout_s:g} s"
                    ) from exc
            return self._pool

    def run(self, what: str, fn: Callable[[psycopg.Connection[Any]], T], *, ef: int = 0) -> T:
        """Run ``fn`` (one read statement) on a pooled autocommit connection.

        ``ef`` raises ``hnsw.ef_search`` on that connection to at least ``ef`` (at most 1000)
        first. A
        connection that turns out broken is replaced and the read retried once; every driver
        or pool error leaves as a strataml error.
        """
        for attempt in (1, 2):
            pool = self._pool or self._open()
            try:
                conn = pool.getconn()  # (lighter than pool.connection(): nothing to commit)
                try:
                    want = min(_EF_SEARCH_MAX, max(self.ef_search, ef))
                    if self._ef.get(conn) != want:
                        conn.execute("SELECT set_config('hnsw.ef_search', %s, false)", (str(want),))
                        self._ef[conn] = want
                    return fn(conn)
                finally:
                    pool.putconn(conn)  # a broken connection is discarded and replaced
            except StrataError:
                raise
            except psycopg.OperationalError as exc:
                if attempt == 1 and _connection_lost(exc):
                    pool.check()  # drop every other broken idle connection before the retry
                    continue
                raise translate(exc, what) from exc
            except (psycopg.Error, OSError, PoolTimeout) as exc:
                raise translate(exc, what) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None


def _connection_lost(exc: psycopg.OperationalError) -> bool:
    """A failure of the connection itself (not of the statement): worth one retry."""
    state = getattr(exc, "sqlstate", None)
    return state is None or str(state).startswith(("08", "57P"))
