"""One DuckDB database shared by the feature store and the training source of a stack.

DuckDB connections are not safe to use from several threads at once; cursors are. The engine
hands each thread its own cursor over one database instance, sets the session to UTC, and
translates DuckDB's exceptions into strataml's.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import duckdb

from strataml.errors import (
    BackendError,
    Conflict,
    InvalidInput,
    NotFound,
    SchemaError,
    StrataError,
    Unavailable,
)

__all__ = ["DuckDBEngine", "translate_duckdb_error"]


def translate_duckdb_error(exc: Exception, what: str) -> StrataError:
    """Map a DuckDB exception to the strataml hierarchy (the caller chains it with ``from``)."""
    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    text = f"{what}: {msg}"
    if isinstance(exc, duckdb.CatalogException):
        if "already exists" in msg:
            return Conflict(text)
        return NotFound(text)
    if isinstance(exc, duckdb.ParserException | duckdb.BinderException):
        return SchemaError(text)
    if isinstance(exc, duckdb.ConversionException | duckdb.InvalidInputException):
        return InvalidInput(text)
    if isinstance(exc, duckdb.ConstraintException | duckdb.TransactionException):
        return Conflict(text)
    if isinstance(exc, duckdb.IOException):
        if "lock" in msg.lower():
            return Unavailable(
                f"{what}: the database file is in use by another process; close that process or "
                "point this stack at another data_dir"
            )
        return Unavailable(text)
    if isinstance(exc, duckdb.OutOfMemoryException):
        return Unavailable(f"{text} (raise memory_limit or lower the batch size)")
    return BackendError(text)


class DuckDBEngine:
    """A DuckDB database file (or ``:memory:``) with per-thread cursors."""

    def __init__(
        self, path: str | Path, *, threads: int | None = None, memory_limit: str | None = None
    ) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        config: dict[str, Any] = {}
        if threads:
            config["threads"] = threads
        if memory_limit:
            config["memory_limit"] = memory_limit
        try:
            target = self.path if self.path == ":memory:" else str(Path(self.path).expanduser())
            self._con = duckdb.connect(target, config=config)
            self._con.execute("SET TimeZone = 'UTC'")
        except duckdb.Error as exc:
            raise translate_duckdb_error(exc, f"opening {self.path}") from exc
        self._local = threading.local()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._lock = threading.Lock()
        self.write_lock = threading.RLock()
        self._closed = False

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's cursor."""
        cur: duckdb.DuckDBPyConnection | None = getattr(self._local, "cursor", None)
        if cur is None:
            if self._closed:
                raise Unavailable(f"DuckDB database {self.path} is closed")
            cur = self._con.cursor()
            cur.execute("SET TimeZone = 'UTC'")
            self._local.cursor = cur
            with self._lock:
                self._cursors.append(cur)
        return cur

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A transaction on this thread's cursor, rolled back on error."""
        cur = self.cursor()
        cur.begin()
        try:
            yield cur
        except BaseException:
            cur.rollback()
            raise
        else:
            cur.commit()

    def fail(self, exc: Exception, what: str) -> NoReturn:
        raise translate_duckdb_error(exc, what) from exc

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with self._lock:
            for cur in self._cursors:
                try:
                    cur.close()
                except duckdb.Error:
                    pass
            self._cursors.clear()
        self._con.close()
