"""The embedded training source: versioned datasets in DuckDB, scanned as Arrow record batches.

Layout (in the stack's DuckDB database, next to the feature store's tables in ``main``)
------------------------------------------------------------------------------------------
* ``_strataml_training._strataml_versions`` -- the catalog: one row per version (name, version,
  physical table, rows, created_at, dropped_at). Version numbers are never reused, not even after
  :meth:`~DuckDBTrainingSource.drop`, so a snapshot id always means one set of rows.
* ``_strataml_training."_strataml_<name>__v<version>"`` -- one immutable table per version, with a
  ``_row BIGINT`` ordinal (0, 1, ... in write order) that orders the rows and splits them into
  shards (``_row % n = i``).
* ``datasets."<name>"`` -- a view of the latest version (without ``_row``): SQL sources read
  datasets as ``datasets.<name>``, e.g. ``scan("SELECT label, count(*) FROM datasets.clicks GROUP
  BY label")``. Unqualified names resolve to ``main``, the feature store's schema.

Snapshot ids are ``"<name>@<version>"``. DuckDB identifiers are case-insensitive, so two live
datasets cannot differ only by case (:class:`~strataml.errors.Conflict`).

Order and sharding
------------------
Rows come back in write order without an ``ORDER BY``: DuckDB keeps insertion order for plain
scans, filters and projections while ``preserve_insertion_order`` is on (the default), and the
catalog records whether it was on when the version was written. If it was off at write time or is
off at scan time, scans add ``ORDER BY _row``. SQL sources are sharded by ``hash(row) % n``: every
row lands in exactly one shard (identical rows in the same one), and the split is the same on every
run as long as the query itself is deterministic.

Filters
-------
Compiled with :class:`~strataml.filters.SQLFilterCompiler` (bound parameters, quoted identifiers)
after :func:`~strataml.filters.check_types` against the source's Arrow schema. A float column's NaN
counts as absent, as in :func:`~strataml.filters.matches`; a string compared with a timestamp or
date column is parsed as ISO-8601 (:class:`~strataml.errors.FilterError` if it is not one). A
filter on a column the source does not have raises :class:`~strataml.errors.NotFound`.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from strataml._time import to_utc_naive, utcnow
from strataml.arrowutil import field_types
from strataml.capabilities import Capabilities
from strataml.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    SchemaError,
    StrataError,
    Unavailable,
)
from strataml.filters import (
    SQLFilterCompiler,
    check_types,
    coerce_temporal,
    fields_used,
    parse_filter,
    require_ops,
)
from strataml.local import DUCKDB_TRAINING_CAPS
from strataml.local.duckdb_engine import DuckDBEngine, translate_duckdb_error
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

__all__ = ["DATASET_SCHEMA", "DuckDBTrainingSource"]

#: The schema holding one view per dataset (``datasets.<name>`` in SQL sources).
DATASET_SCHEMA = "datasets"
_INTERNAL = "_strataml_training"
_CATALOG = f"{_INTERNAL}._strataml_versions"
_ROW = "_row"
_QUERY_ALIAS = '"_strataml_q"'
_INPUT_VIEW = "_strataml_training_input"
_STREAM_FLUSH_ROWS = 262_144


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# ------------------------------------------------------------------------------------ filters
class _DuckDBFilter(SQLFilterCompiler):
    """Compile filters for one source: NaN in float columns is absent, datetimes bind as UTC."""

    backend = "DuckDB"
    paramstyle = "qmark"

    def __init__(self, nan_columns: frozenset[str]) -> None:
        super().__init__()
        self._nan_columns = nan_columns

    def column(self, field: str) -> str:
        col = super().column(field)
        if field in self._nan_columns:
            return f"nullif({col}, 'NaN'::DOUBLE)"
        return col

    def bind(self, value: Any) -> str:
        if isinstance(value, dt.datetime):
            value = to_utc_naive(value)
        return super().bind(value)


# ---------------------------------------------------------------------------------- sources
@dataclass(frozen=True, slots=True)
class _Source:
    """A resolved scan source: what to select from and what it holds."""

    relation: str  # a table name or a parenthesised query, aliased as _QUERY_ALIAS
    schema: pa.Schema  # the user-visible columns
    snapshot: str | None
    rows: int | None  # known row count (datasets)
    shard_expr: str  # SQL giving a non-negative integer to split shards on
    shard_type: str  # its SQL type (parameters are cast to it: an untyped one is 10x slower)
    order_by: str  # "" or an ORDER BY clause
    is_query: bool


# ----------------------------------------------------------------------------------- writing


def _decode(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Dictionary-encoded columns are stored as their values (so ranges compare values)."""
    if not any(pa.types.is_dictionary(f.type) for f in batch.schema):
        return batch
    arrays = [c.dictionary_decode() if pa.types.is_dictionary(c.type) else c for c in batch.columns]
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


# ---------------------------------------------------------------------------------- scanning
def _stream_error(exc: BaseException, what: str, is_query: bool) -> StrataError:
    """Translate an error raised while a result streams (DuckDB surfaces it as an Arrow error)."""
    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    kinds: list[tuple[str, type[duckdb.Error]]] = [
        ("Out of Memory Error", duckdb.OutOfMemoryException),
        ("IO Error", duckdb.IOException),
        ("Conversion Error", duckdb.ConversionException),
        ("Invalid Input Error", duckdb.InvalidInputException),
    ]
    for prefix, cls in kinds:
        if msg.startswith(prefix):
            err = translate_duckdb_error(cls(msg), what)
            if is_query and not isinstance(err, Unavailable):
                return SchemaError(f"{what}: {msg}")
            return err
    return (
        SchemaError(f"{what}: {msg}") if is_query else translate_duckdb_error(Exception(msg), what)
    )


def _split(batch: pa.RecordBatch, batch_size: int) -> Iterator[pa.RecordBatch]:
    if batch.num_rows <= batch_size:
        yield batch
        return
    for start in range(0, batch.num_rows, batch_size):
        yield batch.slice(start, batch_size)


class DuckDBTrainingSource:
    """:class:`~strataml.protocols.TrainingSource` over an embedded DuckDB database.

    ``engine`` is usually shared with the stack's feature store; :meth:`close` leaves it open
    unless ``owns_engine`` is true. See the module docstring for the layout, the SQL name of a
    dataset (``datasets.<name>``), ordering, sharding and filter semantics.
    """

    def __init__(self, engine: DuckDBEngine, *, owns_engine: bool = False) -> None:
        self._engine = engine
        self._owns_engine = owns_engine
        self._closed = False
        self._schemas: dict[str, pa.Schema] = {}
        self._schema_lock = threading.Lock()
        try:
            with engine.write_lock, engine.transaction() as cur:
                cur.execute(f"CREATE SCHEMA IF NOT EXISTS {DATASET_SCHEMA}")
                cur.execute(f"CREATE SCHEMA IF NOT EXISTS {_INTERNAL}")
                cur.execute(
                    f"CREATE TABLE IF NOT EXISTS {_CATALOG} ("
                    " name VARCHAR NOT NULL, version BIGINT NOT NULL, physical VARCHAR NOT NULL,"
                    " rows BIGINT NOT NULL, ordered BOOLEAN NOT NULL,"
                    " created_at TIMESTAMP NOT NULL, dropped_at TIMESTAMP)"
                )
        except duckdb.Error as exc:
            raise translate_duckdb_error(exc, "creating the training catalog") from exc

    @property
    def capabilities(self) -> Capabilities:
        return DUCKDB_TRAINING_CAPS

    # ------------------------------------------------------------------------------- writes
    def write(
        self, name: str, data: pa.Table | pa.RecordBatchReader | Iterable[pa.RecordBatch]
    ) -> str:
        """Store ``data`` as a new immutable version of dataset ``name``; return its snapshot id.

        ``data`` is a ``pa.Table``, a ``pa.RecordBatchReader`` or an iterable of
        ``pa.RecordBatch`` (streamed: memory stays bounded); pandas/polars frames are converted.
        Row order is kept. Raises :class:`InvalidInput` (bad name, no rows, no columns, a
        reserved/duplicate column name, batches that disagree on schema, a type DuckDB cannot
        store) and :class:`Conflict` (another live dataset's name differs only by case); in every
        case nothing is written.
        """
        self._check_open()
        check_name("dataset", name)
        batches = input_batches(data)
        with self._engine.write_lock:
            try:
                with self._engine.transaction() as cur:
                    snapshot = self._write(cur, name, batches)
            except duckdb.Error as exc:
                if isinstance(exc, duckdb.NotImplementedException):
                    raise InvalidInput(f"writing dataset {name!r}: {exc}") from exc
                raise translate_duckdb_error(exc, f"writing dataset {name!r}") from exc
        return snapshot

    def _write(
        self, cur: duckdb.DuckDBPyConnection, name: str, batches: Iterator[pa.RecordBatch]
    ) -> str:
        other = cur.execute(
            f"SELECT name FROM {_CATALOG} WHERE lower(name) = lower(?) AND name <> ?"
            " AND dropped_at IS NULL LIMIT 1",
            [name, name],
        ).fetchall()
        if other:
            raise Conflict(
                f"dataset {other[0][0]!r} exists and DuckDB names are case-insensitive; drop it or "
                f"choose a name other than {name!r}"
            )
        row = cur.execute(
            f"SELECT coalesce(max(version), 0) FROM {_CATALOG} WHERE lower(name) = lower(?)",
            [name],
        ).fetchall()
        version = int(row[0][0]) + 1
        physical = f"_strataml_{name}__v{version}"
        target = f"{_INTERNAL}.{_ident(physical)}"
        rows = self._load(cur, target, batches)
        setting = cur.execute("SELECT current_setting('preserve_insertion_order')").fetchall()
        ordered = bool(setting[0][0])
        cur.execute(
            f"INSERT INTO {_CATALOG} VALUES (?, ?, ?, ?, ?, ?, NULL)",
            [name, version, physical, rows, ordered, utcnow()],
        )
        cur.execute(
            f"CREATE OR REPLACE VIEW {DATASET_SCHEMA}.{_ident(name)} AS "
            f"SELECT * EXCLUDE ({_ident(_ROW)}) FROM {target}"
        )
        return f"{name}@{version}"

    def _load(
        self, cur: duckdb.DuckDBPyConnection, target: str, batches: Iterator[pa.RecordBatch]
    ) -> int:
        """Insert every batch (with its ``_row`` ordinal) into a new table; return the rows."""
        schema: pa.Schema | None = None
        pending: list[pa.RecordBatch] = []
        pending_rows = 0
        written = 0
        created = False
        for i, raw in enumerate(batches):
            batch = _decode(raw)
            if schema is None:
                check_schema(batch.schema)
                # nullability flags and metadata may differ between batches: names/types rule
                schema = pa.schema([pa.field(f.name, f.type) for f in batch.schema])
            elif not same_layout(batch.schema, schema):
                raise InvalidInput(
                    f"record batch {i} has schema {batch.schema} but the first batch has {schema}"
                )
            if batch.num_rows == 0:
                continue
            pending.append(pa.RecordBatch.from_arrays(batch.columns, schema=schema))
            pending_rows += batch.num_rows
            if pending_rows >= _STREAM_FLUSH_ROWS:
                self._insert(cur, target, pending, written, create=not created)
                created, written, pending, pending_rows = True, written + pending_rows, [], 0
        if pending:
            self._insert(cur, target, pending, written, create=not created)
            written += pending_rows
        if written == 0:
            raise InvalidInput("training data has no rows; a dataset version needs at least one")
        return written

    @staticmethod
    def _insert(
        cur: duckdb.DuckDBPyConnection,
        target: str,
        batches: list[pa.RecordBatch],
        offset: int,
        *,
        create: bool,
    ) -> None:
        table = pa.Table.from_batches(batches)
        ordinal = pa.array(np.arange(offset, offset + table.num_rows, dtype=np.int64))
        table = table.add_column(0, _ROW, ordinal)
        cur.register(_INPUT_VIEW, table)
        try:
            if create:
                cur.execute(f"CREATE TABLE {target} AS SELECT * FROM {_INPUT_VIEW}")
            else:
                cur.execute(f"INSERT INTO {target} SELECT * FROM {_INPUT_VIEW}")
        finally:
            cur.unregister(_INPUT_VIEW)

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

        Batches hold at most ``batch_size`` rows. Datasets come in write order (unsharded) and
        ``Scan.snapshot`` is the version read; queries have ``Scan.snapshot = None``. Errors:
        :class:`NotFound` (dataset, snapshot, column), :class:`InvalidInput` (shard, batch
        size, columns, a snapshot with a query), :class:`FilterError`, :class:`Unsupported`
        (a nested field), :class:`SchemaError` (a query that does not run).
        """
        self._check_open()
        size = check_batch_size(batch_size)
        part = check_shard(shard)
        src = self._resolve(source, snapshot)
        cols = check_columns(columns, src.schema, self._what(source))
        where, params = self._where(src, filter, part)
        projection = ", ".join(_ident(c) for c in cols)
        sql = f"SELECT {projection} FROM {src.relation} WHERE {where}{src.order_by}"
        return self._stream(sql, params, size, src, self._what(source))

    def count(
        self,
        source: str,
        *,
        filter: Mapping[str, Any] | None = None,
        shard: tuple[int, int] | None = None,
        snapshot: str | None = None,
    ) -> int:
        """The number of rows :meth:`scan` with the same arguments returns (same errors)."""
        self._check_open()
        part = check_shard(shard)
        src = self._resolve(source, snapshot)
        expr = parse_filter(filter)
        if expr is None and src.rows is not None:
            if part is None:
                return src.rows
            i, n = part  # _row is 0 .. rows-1, so shard i holds ceil((rows - i) / n) rows
            return max(0, (src.rows - i + n - 1) // n)
        where, params = self._where(src, filter, part)
        try:
            row = (
                self._engine.cursor()
                .execute(f"SELECT count(*) FROM {src.relation} WHERE {where}", params)
                .fetchall()
            )
        except duckdb.Error as exc:
            raise self._query_error(exc, src, self._what(source)) from exc
        return int(row[0][0])

    def snapshot(self, name: str) -> str:
        """The snapshot id of the dataset's latest version; :class:`NotFound` if unknown."""
        return self.versions(name)[-1]

    def versions(self, name: str) -> list[str]:
        """Snapshot ids of every live version, oldest first; :class:`NotFound` if unknown."""
        self._check_open()
        check_name("dataset", name)
        rows = self._fetch(
            f"SELECT version FROM {_CATALOG} WHERE name = ? AND dropped_at IS NULL",
            [name],
            f"listing versions of {name!r}",
        )
        if not rows:
            raise NotFound(f"unknown dataset {name!r}")
        return [f"{name}@{v}" for v in sorted(int(r[0]) for r in rows)]

    def datasets(self) -> list[str]:
        """Names of every dataset with a live version, sorted."""
        self._check_open()
        rows = self._fetch(
            f"SELECT DISTINCT name FROM {_CATALOG} WHERE dropped_at IS NULL",
            [],
            "listing datasets",
        )
        return sorted(str(r[0]) for r in rows)

    def drop(self, name: str) -> None:
        """Delete dataset ``name`` and all its versions (no error if it does not exist).

        Its snapshot ids stay retired: a later write of the same name starts a new version number.
        """
        self._check_open()
        check_name("dataset", name)
        with self._engine.write_lock:
            try:
                with self._engine.transaction() as cur:
                    tables = cur.execute(
                        f"SELECT physical FROM {_CATALOG} WHERE name = ? AND dropped_at IS NULL",
                        [name],
                    ).fetchall()
                    if not tables:
                        return
                    cur.execute(f"DROP VIEW IF EXISTS {DATASET_SCHEMA}.{_ident(name)}")
                    for (physical,) in tables:
                        cur.execute(f"DROP TABLE IF EXISTS {_INTERNAL}.{_ident(physical)}")
                    cur.execute(
                        f"UPDATE {_CATALOG} SET dropped_at = ? WHERE name = ?"
                        " AND dropped_at IS NULL",
                        [utcnow(), name],
                    )
            except duckdb.Error as exc:
                raise translate_duckdb_error(exc, f"dropping dataset {name!r}") from exc
        with self._schema_lock:
            for (physical,) in tables:
                self._schemas.pop(physical, None)

    def close(self) -> None:
        """Stop serving calls (idempotent); the engine is closed only if this source owns it."""
        if self._closed:
            return
        self._closed = True
        if self._owns_engine:
            self._engine.close()

    # ------------------------------------------------------------------------------ helpers
    def _check_open(self) -> None:
        if self._closed:
            raise Unavailable("this DuckDB training source is closed")

    @staticmethod
    def _what(source: str) -> str:
        return "query" if is_query(source) else f"dataset {source!r}"

    def _fetch(self, sql: str, params: list[Any], what: str) -> list[tuple[Any, ...]]:
        try:
            return self._engine.cursor().execute(sql, params).fetchall()
        except duckdb.Error as exc:
            raise translate_duckdb_error(exc, what) from exc

    def _resolve(self, source: Any, snapshot: Any) -> _Source:
        if not isinstance(source, str):
            raise InvalidInput(f"source must be a dataset name or a SQL query, got {source!r}")
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
        wanted: int | None = None
        if snapshot is not None:
            m = SNAPSHOT_RE.match(snapshot)
            if m is None or m["name"] != name:
                raise NotFound(f"unknown snapshot {snapshot!r} of dataset {name!r}")
            wanted = int(m["version"])
        # every live version (a handful); picked here, as ORDER BY ... LIMIT 1 costs a millisecond
        rows = self._fetch(
            f"SELECT version, physical, rows, ordered,"
            f" current_setting('preserve_insertion_order') FROM {_CATALOG}"
            " WHERE name = ? AND dropped_at IS NULL",
            [name],
            f"resolving dataset {name!r}",
        )
        if not rows:
            raise NotFound(f"unknown dataset {name!r}")
        if wanted is None:
            found = max(rows, key=lambda r: int(r[0]))
        else:
            matching = [r for r in rows if int(r[0]) == wanted]
            if not matching:
                raise NotFound(f"unknown snapshot {snapshot!r} of dataset {name!r}")
            found = matching[0]
        version, physical, count, ordered, preserving = found
        relation = f"{_INTERNAL}.{_ident(physical)}"
        return _Source(
            relation=f"{relation} AS {_QUERY_ALIAS}",
            schema=self._physical_schema(physical, relation),
            snapshot=f"{name}@{int(version)}",
            rows=int(count),
            shard_expr=_ident(_ROW),
            shard_type="BIGINT",
            order_by="" if ordered and preserving else f" ORDER BY {_ident(_ROW)}",
            is_query=False,
        )

    def _physical_schema(self, physical: str, relation: str) -> pa.Schema:
        cached = self._schemas.get(physical)
        if cached is not None:
            return cached
        try:
            rel = self._engine.cursor().sql(f"SELECT * EXCLUDE ({_ident(_ROW)}) FROM {relation}")
            schema: pa.Schema = rel.limit(0).to_arrow_table().schema
        except duckdb.Error as exc:
            raise translate_duckdb_error(exc, f"reading {physical}") from exc
        with self._schema_lock:
            self._schemas[physical] = schema
        return schema

    def _query_source(self, query: str) -> _Source:
        text = query.strip().rstrip(";").strip()
        cur = self._engine.cursor()
        try:
            statements = cur.extract_statements(text)
        except duckdb.Error as exc:
            raise SchemaError(f"query does not parse: {str(exc).splitlines()[0]}") from exc
        if len(statements) != 1 or statements[0].type.name != "SELECT":
            raise SchemaError("a SQL source must be exactly one SELECT/WITH statement")
        relation = f"(\n{text}\n) AS {_QUERY_ALIAS}"
        try:
            schema: pa.Schema = cur.sql(f"SELECT * FROM {relation} LIMIT 0").to_arrow_table().schema
        except duckdb.Error as exc:
            raise self._query_error(exc, None, "query") from exc
        return _Source(
            relation=relation,
            schema=schema,
            snapshot=None,
            rows=None,
            shard_expr=f"hash({_QUERY_ALIAS})",
            shard_type="UBIGINT",
            order_by="",
            is_query=True,
        )

    @staticmethod
    def _query_error(exc: duckdb.Error, src: _Source | None, what: str) -> StrataError:
        err = translate_duckdb_error(exc, what)
        if (src is None or src.is_query) and not isinstance(err, Unavailable | NotFound):
            return SchemaError(str(err))
        return err

    def _where(
        self, src: _Source, spec: Mapping[str, Any] | None, shard: tuple[int, int] | None
    ) -> tuple[str, list[Any]]:
        expr = parse_filter(spec)
        clauses: list[str] = []
        params: list[Any] = []
        if expr is not None:
            types = field_types(src.schema)
            nan_columns = frozenset(f.name for f in src.schema if pa.types.is_floating(f.type))
            compiler = _DuckDBFilter(nan_columns)
            require_ops(expr, self.capabilities.filter_ops, compiler.backend)
            for field in fields_used(expr):
                compiler.column(field)  # Unsupported for nested fields, before NotFound
            unknown = sorted(f for f in fields_used(expr) if f not in types)
            if unknown:
                raise NotFound(
                    f"the filter names column(s) {unknown} the source does not have; "
                    f"columns: {src.schema.names}"
                )
            check_types(expr, types)
            sql, params = compiler.compile(coerce_temporal(expr, types))
            clauses.append(sql)
        if shard is not None:
            i, n = shard
            t = src.shard_type
            clauses.append(f"({src.shard_expr} % CAST(? AS {t}) = CAST(? AS {t}))")
            params = [*params, n, i]
        return (" AND ".join(clauses) if clauses else "TRUE"), params

    def _stream(
        self, sql: str, params: list[Any], batch_size: int, src: _Source, what: str
    ) -> Scan:
        try:
            cur = self._engine.cursor().cursor()
        except duckdb.Error as exc:
            raise translate_duckdb_error(exc, f"scanning {what}") from exc
        try:
            cur.execute("SET TimeZone = 'UTC'")
            # no parameters: run unprepared (a prepared statement costs a few % on full scans)
            reader = cur.sql(sql, params=params or None).to_arrow_reader(batch_size)
            first = self._next(reader, what, src.is_query)  # errors surface from scan()
        except duckdb.Error as exc:
            cur.close()
            raise self._query_error(exc, src, f"scanning {what}") from exc
        except BaseException:
            cur.close()
            raise
        schema: pa.Schema = reader.schema
        return Scan(
            self._batches(cur, reader, first, batch_size, what, src.is_query), schema, src.snapshot
        )

    @staticmethod
    def _next(reader: pa.RecordBatchReader, what: str, is_query: bool) -> pa.RecordBatch | None:
        try:
            batch: pa.RecordBatch = reader.read_next_batch()
        except StopIteration:
            return None
        except (OSError, pa.ArrowException) as exc:
            raise _stream_error(exc, f"scanning {what}", is_query) from exc
        return batch

    def _batches(
        self,
        cur: duckdb.DuckDBPyConnection,
        reader: pa.RecordBatchReader,
        first: pa.RecordBatch | None,
        batch_size: int,
        what: str,
        is_query: bool,
    ) -> Iterator[pa.RecordBatch]:
        try:
            batch = first
            while batch is not None:
                if batch.num_rows:
                    yield from _split(batch, batch_size)
                batch = self._next(reader, what, is_query)
        finally:
            reader.close()
            try:
                cur.close()
            except duckdb.Error:
                pass
