"""The PostgreSQL training source: versioned, immutable datasets scanned as Arrow record batches.

Layout (in the configured schema ``S``)
---------------------------------------
* ``S._strataml_training_versions`` -- the catalog: one row per version (name, version, id,
  rows, the Arrow schema written, created_at, dropped_at). Version numbers are never reused, not
  even after :meth:`~PostgresTrainingSource.drop`, so a snapshot id (``"<name>@<version>"``)
  always means one set of rows.
* ``S._strataml_ds_<id>`` -- one table per version, written once in one transaction by binary
  ``COPY``, with a ``_row bigint`` ordinal (0, 1, ... in write order) and a BRIN index on it.
* ``"S_datasets"."<name>"`` -- a view of each dataset's latest version (without ``_row``), for SQL
  sources, which name it portably as ``datasets.<name>`` (rewritten to this schema):
  ``scan('SELECT label, count(*) FROM datasets.clicks GROUP BY label')``.

Scans
-----
A scan is one ``COPY (SELECT ...) TO STDOUT (FORMAT BINARY)`` read straight from libpq and decoded
column-wise into Arrow batches of at most ``batch_size`` rows (:mod:`strataml_postgres.pgcopy`),
so memory stays bounded by the batch. Datasets come back in write order: the table is
append-only and written once, and the scan runs a plain sequential scan with
``synchronize_seqscans`` and parallel workers off, which returns rows in physical (= insertion)
order. Columns come back with the Arrow types they were written with (the catalog keeps the
schema).

Sharding
--------
Shard ``i`` of ``n`` of a dataset is the contiguous ordinal range ``[i*rows/n, (i+1)*rows/n)``
(the BRIN index lets each worker read only its part of the table). SQL sources are sharded by
a hash of the whole row's text: identical rows land in the same shard, and the split is the
same on every run as long as the query is deterministic.

Filters
-------
Compiled by :mod:`strataml_postgres.filters` after type checks against the source's Arrow
schema; since ``COPY`` takes no bound parameters, values are rendered by psycopg's escaping
literal renderer.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
from psycopg import sql

from strataml.capabilities import Capabilities
from strataml.errors import InvalidInput, NotFound, SchemaError, StrataError, Unavailable
from strataml.filters import parse_filter
from strataml.models import Scan, check_name
from strataml.trainargs import (
    SNAPSHOT_RE,
    check_batch_size,
    check_columns,
    check_schema,
    check_shard,
    input_batches,
    is_query,
    same_layout,
)
from strataml_postgres.filters import compile_filter
from strataml_postgres.pgcopy import (
    ENCODE_ROWS,
    HEADER,
    TRAILER,
    encode_column,
    encode_rows,
    fixed_field,
)
from strataml_postgres.pgtypes import pg_type_for
from strataml_postgres.pool import PgDatabase
from strataml_postgres.sql import (
    advisory_lock,
    decodable,
    describe,
    ident,
    qname,
    run_ddl,
    stream_query,
    user_sql,
    with_literals,
)

__all__ = ["PostgresTrainingSource"]

CATALOG = "_strataml_training_versions"
_ROW = "_row"
_Q = "_strataml_q"
_MAX_IDENT_BYTES = 63


# ---------------------------------------------------------------------------------- helpers


def _decode_dictionaries(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Dictionary-encoded columns are stored as their values (so ranges compare values)."""
    if not any(pa.types.is_dictionary(f.type) for f in batch.schema):
        return batch
    arrays = [c.dictionary_decode() if pa.types.is_dictionary(c.type) else c for c in batch.columns]
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def _is_nested(t: pa.DataType) -> bool:
    """Whether Arrow type ``t`` is stored as ``jsonb`` when not a PostgreSQL array."""
    return bool(
        pa.types.is_struct(t)
        or pa.types.is_map(t)
        or pa.types.is_list(t)
        or pa.types.is_large_list(t)
        or pa.types.is_fixed_size_list(t)
    )


def _json_differs(t: pa.DataType) -> bool:
    """Whether values of ``t`` read from JSON need :func:`_from_json` (a map or a time inside)."""
    if pa.types.is_map(t) or pa.types.is_temporal(t):
        return True
    if pa.types.is_struct(t):
        return any(_json_differs(f.type) for f in t)
    return _is_nested(t) and _json_differs(t.value_type)


def _from_json(value: Any, t: pa.DataType) -> Any:
    """A value of Arrow type ``t`` as it was written to ``jsonb`` (``to_pylist`` then JSON),
    turned back into what ``pa.array`` takes: maps were written as lists of ``[key, value]``
    pairs, and times, dates and timestamps as ISO-8601 strings."""
    if value is None:
        return None
    if pa.types.is_map(t):
        return [(_from_json(k, t.key_type), _from_json(v, t.item_type)) for k, v in value]
    if _is_nested(t) and not pa.types.is_struct(t):
        return [_from_json(v, t.value_type) for v in value]
    if pa.types.is_struct(t):
        return {f.name: _from_json(value.get(f.name), f.type) for f in t}
    if isinstance(value, str):
        if pa.types.is_timestamp(t):
            return dt.datetime.fromisoformat(value)
        if pa.types.is_date(t):
            return dt.date.fromisoformat(value)
        if pa.types.is_time(t):
            return dt.time.fromisoformat(value)
    return value


def _restore(arr: pa.Array, target: pa.DataType, name: str) -> pa.Array:
    """A decoded column in the Arrow type it was written with."""
    if arr.type.equals(target):
        return arr
    if pa.types.is_null(target):  # an all-null column (stored as text): Arrow has no such cast
        return pa.nulls(len(arr))
    if pa.types.is_duration(target) and arr.type == pa.month_day_nano_interval():
        rec = np.frombuffer(
            arr.buffers()[1], dtype=np.dtype([("m", "<i4"), ("d", "<i4"), ("ns", "<i8")])
        )[arr.offset : arr.offset + len(arr)]
        nanos = rec["ns"] + rec["d"].astype(np.int64) * 86_400_000_000_000
        mask = None if arr.null_count == 0 else ~arr.is_valid().to_numpy(zero_copy_only=False)
        return pa.array(nanos, type=pa.duration("ns"), mask=mask).cast(target)
    if pa.types.is_string(arr.type) and _is_nested(target):
        values = [None if v is None else orjson.loads(v) for v in arr.to_pylist()]
        if _json_differs(target):
            values = [_from_json(v, target) for v in values]
        try:
            return pa.array(values, type=target)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise StrataError(f"column {name!r}: cannot restore {target} from JSON: {exc}") from exc
    try:
        return arr.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise StrataError(f"column {name!r}: cannot restore {arr.type} as {target}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class _Source:
    """A resolved scan source."""

    relation: sql.Composable  # a table or a parenthesised query, aliased as _Q
    schema: pa.Schema  # the user-visible columns (as scans return them)
    snapshot: str | None
    rows: int | None  # known row count (datasets)
    is_query: bool


# ------------------------------------------------------------------------------------ store
class PostgresTrainingSource:
    """:class:`~strataml.protocols.TrainingSource` on PostgreSQL (see the module docstring).

    ``db`` is the stack's connection pool; :meth:`close` leaves it open unless ``owns_db``.
    A scan holds one pooled connection (and a read transaction) while it is being iterated.
    """

    def __init__(self, db: PgDatabase, *, owns_db: bool = False) -> None:
        from strataml_postgres import TRAINING_CAPS

        self._db = db
        self._owns_db = owns_db
        self._caps = TRAINING_CAPS
        self._schema = db.schema
        self.datasets_schema = f"{db.schema}_datasets"
        self._catalog = qname(self._schema, CATALOG)
        self._ready = False
        self._ready_lock = threading.Lock()
        self._closed = False

    @property
    def capabilities(self) -> Capabilities:
        return self._caps

    def _ensure(self) -> None:
        if self._closed:
            raise Unavailable("the training source is closed")
        if self._ready:
            return
        with self._ready_lock:
            if self._ready:
                return
            statements = [
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(ident(self.datasets_schema)),
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (id bigserial PRIMARY KEY, name text NOT NULL,"
                    " version integer NOT NULL, rows bigint NOT NULL, arrow_schema bytea NOT NULL,"
                    " created_at timestamptz NOT NULL DEFAULT now(), dropped_at timestamptz,"
                    " UNIQUE (name, version))"
                ).format(self._catalog),
            ]
            with self._db.connection("creating the training catalog") as conn:
                run_ddl(conn, self._schema, statements)
            self._ready = True

    # ------------------------------------------------------------------------------- writes
    def write(
        self, name: str, data: pa.Table | pa.RecordBatchReader | Iterable[pa.RecordBatch]
    ) -> str:
        """Store ``data`` as a new immutable version of dataset ``name``; return its snapshot id.

        ``data`` is a ``pa.Table``, a ``pa.RecordBatchReader`` or an iterable of
        ``pa.RecordBatch`` (streamed in one transaction: memory stays bounded); pandas/polars
        frames are converted. Row order is kept. Raises :class:`InvalidInput` (bad name or a
        name over 63 bytes, no rows, no columns, a reserved/duplicate column name, batches that
        disagree on schema, a type or value PostgreSQL cannot store); nothing is stored then.
        """
        check_name("dataset", name)
        if len(name.encode()) > _MAX_IDENT_BYTES:
            raise InvalidInput(
                f"dataset name {name!r} is longer than PostgreSQL's {_MAX_IDENT_BYTES}-byte "
                "identifiers"
            )
        batches = input_batches(data)
        self._ensure()
        with self._db.connection(f"writing dataset {name!r}") as conn:
            advisory_lock(conn, "dataset", self._schema, name)
            row = conn.execute(
                sql.SQL(
                    "SELECT coalesce(max(version), 0) + 1,"
                    " nextval(pg_get_serial_sequence(%s, 'id')) FROM {} WHERE name = %s"
                ).format(self._catalog),
                (f'"{self._schema}"."{CATALOG}"', name),
            ).fetchone()
            assert row is not None
            version, vid = int(row[0]), int(row[1])
            physical = qname(self._schema, f"_strataml_ds_{vid}")
            schema, rows = self._copy_in(conn, physical, batches)
            conn.execute(
                sql.SQL("CREATE INDEX ON {} USING brin ({})").format(physical, ident(_ROW))
            )
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} (id, name, version, rows, arrow_schema)"
                    " VALUES (%s, %s, %s, %s, %s)"
                ).format(self._catalog),
                (vid, name, version, rows, schema.serialize().to_pybytes()),
            )
            view = qname(self.datasets_schema, name)
            conn.execute(sql.SQL("DROP VIEW IF EXISTS {}").format(view))
            conn.execute(
                sql.SQL("CREATE VIEW {} AS SELECT {} FROM {}").format(
                    view, sql.SQL(", ").join(ident(n) for n in schema.names), physical
                )
            )
        return f"{name}@{version}"

    @staticmethod
    def _copy_in(
        conn: Any, physical: sql.Identifier, batches: Iterator[pa.RecordBatch]
    ) -> tuple[pa.Schema, int]:
        """Create the version's table from the first batch's schema and COPY every batch."""
        first = next(batches, None)
        if first is None:
            raise InvalidInput("training data has no rows; a dataset version needs at least one")
        first = _decode_dictionaries(first)
        check_schema(first.schema)
        schema = first.schema
        types = [pg_type_for(f.type, f"training column {f.name!r}") for f in schema]
        kinds = [k for k, _ in types]
        columns = sql.SQL(", ").join(
            sql.SQL("{} {}").format(ident(f.name), sql.SQL(t))
            for f, (_, t) in zip(schema, types, strict=True)
        )
        conn.execute(
            sql.SQL("CREATE TABLE {} ({} bigint NOT NULL, {})").format(
                physical, ident(_ROW), columns
            )
        )
        written = 0
        statement = sql.SQL("COPY {} FROM STDIN (FORMAT BINARY)").format(physical)
        with conn.cursor() as cur, cur.copy(statement) as copy:
            copy.write(HEADER)
            for i, raw in enumerate(itertools.chain([first], batches)):
                batch = _decode_dictionaries(raw)
                if not same_layout(batch.schema, schema):
                    raise InvalidInput(
                        f"record batch {i} has schema {batch.schema} but the first batch has "
                        f"{schema}"
                    )
                for start in range(0, batch.num_rows, ENCODE_ROWS):
                    part = batch.slice(start, ENCODE_ROWS)
                    n = part.num_rows
                    ordinal = fixed_field(
                        np.arange(written, written + n, dtype=np.int64), ">i8", None
                    )
                    fields = [
                        encode_column(part.column(j), kind, schema.names[j])
                        for j, kind in enumerate(kinds)
                    ]
                    copy.write(encode_rows([ordinal, *fields], n))
                    written += n
            copy.write(TRAILER)
        if written == 0:
            raise InvalidInput("training data has no rows; a dataset version needs at least one")
        return schema, written

    # -------------------------------------------------------------------------------- reads
    def scan(
        self,
        source: str,
        *,
        columns: Sequence[str] | None = None,
        filter: Mapping[str, Any] | None = None,
        batch_size: int = 65_536,
        shard: tuple[int, int] | None = None,
        snapshot: str | None = None,
    ) -> Scan:
        """Stream a dataset (latest version, or ``snapshot``) or a ``SELECT``/``WITH`` query.

        Batches hold at most ``batch_size`` rows. Datasets come in write order (unsharded) with
        the Arrow types they were written with, and ``Scan.snapshot`` is the version read;
        queries have ``Scan.snapshot = None``. The scan holds a pooled connection until it is
        exhausted or garbage-collected. Errors: :class:`NotFound` (dataset, snapshot, column),
        :class:`InvalidInput` (shard, batch size, columns, a snapshot with a query),
        :class:`~strataml.errors.FilterError`, :class:`~strataml.errors.Unsupported` (a nested
        field), :class:`SchemaError` (a query that does not run).
        """
        size = check_batch_size(batch_size)
        part = check_shard(shard)
        src = self._resolve(source, snapshot)
        cols = check_columns(columns, src.schema, self._what(source))
        where = self._where(src, filter, part)
        projection = sql.SQL(", ").join(sql.SQL("{}.{}").format(ident(_Q), ident(c)) for c in cols)
        query = sql.SQL("SELECT {} FROM {} WHERE {}").format(projection, src.relation, where)
        target = pa.schema([src.schema.field(c) for c in cols])
        batches = self._stream(query, size, src, target, self._what(source))
        first = next(batches)
        assert isinstance(first, pa.Schema)
        return Scan(batches, first, src.snapshot)

    def _stream(
        self,
        query: sql.Composable,
        batch_size: int,
        src: _Source,
        target: pa.Schema,
        what: str,
    ) -> Iterator[Any]:
        """Yield the scan's schema, then its batches (one connection held in between)."""
        try:
            with self._db.connection(f"scanning {what}") as conn:
                conn.execute(
                    "SELECT set_config('synchronize_seqscans', 'off', true),"
                    " set_config('max_parallel_workers_per_gather', '0', true)"
                )
                cols = describe(conn, query)
                yield target
                for batch in stream_query(conn, decodable(query, cols), cols, batch_size):
                    if src.is_query:
                        yield batch
                    else:
                        arrays = [
                            _restore(batch.column(i), f.type, f.name) for i, f in enumerate(target)
                        ]
                        yield pa.RecordBatch.from_arrays(arrays, schema=target)
        except StrataError as exc:
            raise self._query_error(exc, src) from exc.__cause__

    def count(
        self,
        source: str,
        *,
        filter: Mapping[str, Any] | None = None,
        shard: tuple[int, int] | None = None,
        snapshot: str | None = None,
    ) -> int:
        """The number of rows :meth:`scan` with the same arguments returns (same errors)."""
        part = check_shard(shard)
        src = self._resolve(source, snapshot)
        if src.rows is not None and parse_filter(filter) is None:
            if part is None:
                return src.rows
            lo, hi = self._range(src.rows, part)
            return hi - lo
        where = self._where(src, filter, part)
        query = sql.SQL("SELECT count(*) FROM {} WHERE {}").format(src.relation, where)
        try:
            with self._db.connection(f"counting {self._what(source)}") as conn:
                row = conn.execute(query).fetchone()
        except StrataError as exc:
            raise self._query_error(exc, src) from exc.__cause__
        assert row is not None
        return int(row[0])

    def snapshot(self, name: str) -> str:
        """The snapshot id of the dataset's latest version; :class:`NotFound` if unknown."""
        return self.versions(name)[-1]

    def versions(self, name: str) -> list[str]:
        """Snapshot ids of every live version, oldest first; :class:`NotFound` if unknown."""
        check_name("dataset", name)
        self._ensure()
        with self._db.connection(f"listing versions of {name!r}") as conn:
            rows = conn.execute(
                sql.SQL(
                    "SELECT version FROM {} WHERE name = %s AND dropped_at IS NULL ORDER BY version"
                ).format(self._catalog),
                (name,),
            ).fetchall()
        if not rows:
            raise NotFound(f"unknown dataset {name!r}")
        return [f"{name}@{int(r[0])}" for r in rows]

    def datasets(self) -> list[str]:
        """Names of every dataset with a live version, sorted."""
        self._ensure()
        with self._db.connection("listing datasets") as conn:
            rows = conn.execute(
                sql.SQL("SELECT DISTINCT name FROM {} WHERE dropped_at IS NULL").format(
                    self._catalog
                )
            ).fetchall()
        return sorted(str(r[0]) for r in rows)

    def drop(self, name: str) -> None:
        """Delete dataset ``name`` and all its versions (no error if it does not exist).

        Its snapshot ids stay retired: a later write of the same name starts a new version number.
        """
        check_name("dataset", name)
        self._ensure()
        with self._db.connection(f"dropping dataset {name!r}") as conn:
            advisory_lock(conn, "dataset", self._schema, name)
            ids = conn.execute(
                sql.SQL(
                    "UPDATE {} SET dropped_at = now() WHERE name = %s AND dropped_at IS NULL"
                    " RETURNING id"
                ).format(self._catalog),
                (name,),
            ).fetchall()
            if not ids:
                return
            conn.execute(
                sql.SQL("DROP VIEW IF EXISTS {}").format(qname(self.datasets_schema, name))
            )
            for (vid,) in ids:
                conn.execute(
                    sql.SQL("DROP TABLE IF EXISTS {}").format(
                        qname(self._schema, f"_strataml_ds_{int(vid)}")
                    )
                )

    def close(self) -> None:
        """Stop serving calls (idempotent); the pool is closed only if this source owns it."""
        if self._closed:
            return
        self._closed = True
        if self._owns_db:
            self._db.close()

    # ------------------------------------------------------------------------------ helpers
    @staticmethod
    def _what(source: str) -> str:
        return "query" if is_query(source) else f"dataset {source!r}"

    @staticmethod
    def _range(rows: int, shard: tuple[int, int]) -> tuple[int, int]:
        i, n = shard
        return i * rows // n, (i + 1) * rows // n

    @staticmethod
    def _query_error(exc: StrataError, src: _Source) -> StrataError:
        if src.is_query and not isinstance(exc, Unavailable | NotFound | InvalidInput):
            return SchemaError(str(exc))
        return exc

    def _resolve(self, source: Any, snapshot: Any) -> _Source:
        if not isinstance(source, str):
            raise InvalidInput(f"source must be a dataset name or a SQL query, got {source!r}")
        self._ensure()
        if is_query(source):
            if snapshot is not None:
                raise InvalidInput(
                    "snapshot pins a dataset version; a SQL source reads the latest versions "
                    "(scan a dataset by name to pin it)"
                )
            return self._query_source(source)
        check_name("dataset", source)
        if snapshot is not None and not isinstance(snapshot, str):
            raise InvalidInput(f"snapshot must be a snapshot id string, got {snapshot!r}")
        return self._dataset_source(source, snapshot)

    def _dataset_source(self, name: str, snapshot: str | None) -> _Source:
        query = (
            "SELECT version, id, rows, arrow_schema FROM {} WHERE name = %s AND dropped_at IS NULL"
        )
        params: list[Any] = [name]
        if snapshot is None:
            query += " ORDER BY version DESC LIMIT 1"
        else:
            m = SNAPSHOT_RE.match(snapshot)
            if m is None or m["name"] != name:
                raise NotFound(f"unknown snapshot {snapshot!r} of dataset {name!r}")
            query += " AND version = %s"
            params.append(int(m["version"]))
        with self._db.connection(f"resolving dataset {name!r}") as conn:
            row = conn.execute(sql.SQL(query).format(self._catalog), params).fetchone()
        if row is None:
            if snapshot is None:
                raise NotFound(f"unknown dataset {name!r}")
            raise NotFound(f"unknown snapshot {snapshot!r} of dataset {name!r}")
        version, vid, rows, blob = row
        schema = pa.ipc.read_schema(pa.py_buffer(bytes(blob)))
        physical = qname(self._schema, f"_strataml_ds_{int(vid)}")
        return _Source(
            relation=sql.SQL("{} AS {}").format(physical, ident(_Q)),
            schema=schema,
            snapshot=f"{name}@{int(version)}",
            rows=int(rows),
            is_query=False,
        )

    def _portable_names(self, text: str) -> str:
        """Point ``datasets.<name>`` (the portable way to name a dataset in a SQL source, the
        same on every backend) at this store's ``"<schema>_datasets"`` views."""
        if not re.search(r'\bdatasets"?\s*\.', text, re.I):
            return text
        import sqlglot
        from sqlglot import exp
        from sqlglot.errors import ParseError

        try:
            tree = sqlglot.parse_one(text, read="postgres")
        except ParseError as exc:
            raise SchemaError(f"query does not parse: {str(exc).splitlines()[0]}") from exc
        changed = False
        for table in tree.find_all(exp.Table):
            if table.db.lower() == "datasets" and not table.catalog:
                table.set("db", exp.to_identifier(self.datasets_schema, quoted=True))
                changed = True
        return tree.sql(dialect="postgres") if changed else text

    def _query_source(self, query: str) -> _Source:
        text = self._portable_names(query.strip().rstrip(";").strip())
        relation = sql.SQL("({}) AS {}").format(user_sql(text), ident(_Q))
        try:
            with self._db.connection("query") as conn:
                cols = describe(conn, sql.SQL("SELECT * FROM {}").format(relation))
        except StrataError as exc:
            if isinstance(exc, Unavailable | NotFound):
                raise
            raise SchemaError(f"query does not run: {exc}") from exc
        names = [c.name for c in cols]
        if len(set(names)) != len(names):
            raise SchemaError(f"the query returns duplicate column names: {names}")
        schema = pa.schema([pa.field(c.name, c.arrow) for c in cols])
        return _Source(relation=relation, schema=schema, snapshot=None, rows=None, is_query=True)

    def _where(
        self, src: _Source, spec: Mapping[str, Any] | None, shard: tuple[int, int] | None
    ) -> sql.Composable:
        text, params = compile_filter(spec, src.schema)
        clauses: list[sql.Composable] = [with_literals(text, params)]
        if shard is not None:
            i, n = shard
            if src.rows is not None:
                lo, hi = self._range(src.rows, shard)
                clauses.append(
                    sql.SQL("{q}.{row} >= {lo} AND {q}.{row} < {hi}").format(
                        q=ident(_Q), row=ident(_ROW), lo=sql.Literal(lo), hi=sql.Literal(hi)
                    )
                )
            else:
                clauses.append(
                    sql.SQL(
                        "mod(mod(hashtextextended({q}::text, 0), {n}) + {n}, {n}) = {i}"
                    ).format(q=ident(_Q), n=sql.Literal(n), i=sql.Literal(i))
                )
        return sql.SQL(" AND ").join(clauses)
