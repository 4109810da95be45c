"""The pgvector store's read-path helpers: session settings and the binary vector format.

Reads run on the database's shared autocommit read pool (:meth:`PgDatabase.read
<strataml_postgres.pool.PgDatabase.read>`: one round trip per statement, no per-checkout
check). This module adds what pgvector needs on those connections:

* :class:`VectorSession` loads pgvector into the backend and sets ``hnsw.ef_search``,
  ``hnsw.iterative_scan`` and ``hnsw.max_scan_tuples`` when a store borrows a connection whose
  settings differ from what it wants (recorded in the connection's session state, so with one
  store a connection is configured once; ``ef_search`` is raised for a query that asks for more
  candidates, and lowered again for the next one);
* NumPy vectors are sent in pgvector's binary format by a dumper registered on the *cursor*
  (:func:`register_vector_dumper`), so other users of the shared connections are unaffected.
"""

from __future__ import annotations

import struct
from typing import Any, Final

import numpy as np
import psycopg
from psycopg.adapt import Dumper
from psycopg.pq import Format

__all__ = [
    "IterativeScan",
    "VectorBinaryDumper",
    "VectorSession",
    "load_vector",
    "register_vector_dumper",
]

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


class VectorSession:
    """The pgvector settings one store wants on the read connections it borrows."""

    def __init__(
        self,
        *,
        ef_search: int,
        iterative_scan: IterativeScan | None,
        max_scan_tuples: int,
        load_library: str,
    ) -> None:
        self.ef_search = ef_search
        self.iterative_scan = iterative_scan
        self.max_scan_tuples = max_scan_tuples
        self._load_library = load_library  # a statement that loads pgvector into the backend

    def apply(self, conn: psycopg.Connection[Any], state: dict[str, Any], ef: int = 0) -> None:
        """Make ``conn`` (described by ``state``) use this store's settings, with
        ``hnsw.ef_search`` at least ``ef`` (at most 1000): no statement when it already does,
        else one."""
        if not state.get("pgvector"):
            conn.execute(self._load_library)
            state["pgvector"] = True
        want = (
            min(_EF_SEARCH_MAX, max(self.ef_search, ef)),
            self.iterative_scan,
            self.max_scan_tuples,
        )
        if state.get("hnsw") == want:
            return
        if self.iterative_scan is None:  # pgvector < 0.8: no iterative scans
            conn.execute("SELECT set_config('hnsw.ef_search', %s, false)", (str(want[0]),))
        else:
            conn.execute(
                "SELECT set_config('hnsw.ef_search', %s, false), "
                "set_config('hnsw.iterative_scan', %s, false), "
                "set_config('hnsw.max_scan_tuples', %s, false)",
                (str(want[0]), self.iterative_scan, str(self.max_scan_tuples)),
            )
        state["hnsw"] = want
