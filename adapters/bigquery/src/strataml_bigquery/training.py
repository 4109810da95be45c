"""The BigQuery training source: immutable table-per-version datasets scanned as Arrow batches.

Layout (in the configured BigQuery dataset, next to the feature store's tables)
--------------------------------------------------------------------------------
* ``_strataml_training`` -- the catalog: one row per version (name, version, physical table,
  rows, the Arrow schema written, created_at, dropped_at). Version numbers are never reused,
  not even after :meth:`~BigQueryTrainingSource.drop`, so a snapshot id always means one set of
  rows.
* ``_strataml_ds__<name>__<random>`` -- one table per version, written by one load job (atomic:
  all rows or none) and never modified, with an INT64 ``_row`` ordinal (0, 1, ... in write order)
  that orders scans (``ORDER BY _row``) and splits shards (``MOD(_row, n) = i``).
* Snapshot ids are ``"<name>@<version>"``. A source remembers the physical table, row count
  and schema of the versions it resolved (they never change), so scanning a pinned snapshot
  again costs no catalog query; if another process dropped it meanwhile, its table is gone and
  the scan raises :class:`~strataml.errors.NotFound` all the same.
* The catalog row is written last, by one ``MERGE`` that allocates the next version number
  and inserts only if that number is still free (retried when a concurrent writer took it),
  so a version becomes visible only once its rows are in.

SQL sources
-----------
A ``SELECT``/``WITH`` query in BigQuery's dialect that names datasets as ``datasets.<name>``
(backquote names BigQuery would not parse: ``datasets.`my-set```); each is rewritten to the
latest version's table (without ``_row``) before the query is dry-run and run. Unqualified
table names resolve to the dataset. SQL sources are sharded by
``MOD(FARM_FINGERPRINT(TO_JSON_STRING(row)), n)``: identical rows land in the same shard, and
the split is the same on every run as long as the query is deterministic.

Types and filters
-----------------
Columns are stored as :mod:`strataml_bigquery.bqtypes` maps them, and scans cast them back to the
Arrow schema that was written (``int8`` stays ``int8``, time zones and nanosecond units come
back; values are floored to microseconds, and a NULL list reads back empty). Filters are
compiled with :class:`~strataml_bigquery.sql.BigQueryFilter` (named, typed parameters, quoted
identifiers) after :func:`~strataml.filters.check_types` against that schema; NaN counts as
absent, strings compared with time columns are read as ISO-8601.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from strataml.arrowutil import field_types
from strataml.capabilities import Capabilities
from strataml.errors import BackendError, InvalidInput, NotFound, Unavailable
from strataml.filters import (
    check_types,
    coerce_temporal,
    fields_used,
    parse_filter,
    require_ops,
)
from strataml.models import Scan, check_name
from strataml.trainargs import (
    ROW_COLUMN,
    SNAPSHOT_RE,
    check_batch_size,
    check_columns,
    check_schema,
    check_shard,
    input_batches,
    is_query,
    same_layout,
)
from strataml_bigquery.bqtypes import BQColumn, arrow_type, bq_column, result_schema
from strataml_bigquery.engine import BigQueryEngine, Query
from strataml_bigquery.spool import Spool
from strataml_bigquery.sql import (
    BigQueryFilter,
    infer_param,
    quote,
    rewrite_datasets,
    scalar_param,
    typed_filter,
)

__all__ = ["CATALOG", "PHYSICAL_PREFIX", "BigQueryTrainingSource"]

CATALOG = "_strataml_training"
PHYSICAL_PREFIX = "_strataml_ds__"
_ALIAS = "_strataml_q"
_ALLOCATION_ATTEMPTS = 5

_CATALOG_COLUMNS = [
    BQColumn("name", "STRING"),
    BQColumn("version", "INT64"),
    BQColumn("physical", "STRING"),
    BQColumn("rows", "INT64"),
    BQColumn("schema", "STRING"),
    BQColumn("created_at", "TIMESTAMP"),
    BQColumn("dropped_at", "TIMESTAMP"),
]


@dataclass(frozen=True, slots=True)
class _Source:
    """A resolved scan source."""

    relation: str  # a table or a parenthesised query, aliased _ALIAS
    schema: pa.Schema  # the user-visible columns, as scans return them
    bq_types: dict[str, str]  # column -> BigQuery type (for typed filter parameters)
    untyped: frozenset[str]  # columns with no type (every value NULL)
    snapshot: str | None
    rows: int | None
    is_query: bool


def _decode(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Dictionary-encoded columns are stored as their values (so ranges compare values)."""
    if not any(pa.types.is_dictionary(f.type) for f in batch.schema):
        return batch
    arrays = [c.dictionary_decode() if pa.types.is_dictionary(c.type) else c for c in batch.columns]
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def _readable(logical: pa.Schema, columns: Sequence[BQColumn]) -> pa.Schema:
    """The schema scans return: each written type when BigQuery's can be cast back to it,
    else BigQuery's own (``columns`` are the stored columns, without ``_row``)."""
    fields = []
    for f, col in zip(logical, columns, strict=True):
        stored = arrow_type(col)
        if pa.types.is_null(f.type):
            fields.append(f)
            continue
        try:
            pa.array([], stored).cast(f.type)
            fields.append(f)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            fields.append(pa.field(f.name, stored))
    return pa.schema(fields)


def _encode_schema(schema: pa.Schema) -> str:
    return base64.b64encode(schema.serialize().to_pybytes()).decode("ascii")


def _decode_schema(text: str) -> pa.Schema:
    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(text)))


class BigQueryTrainingSource:
    """:class:`~strataml.protocols.TrainingSource` on BigQuery (see the module docstring).

    ``engine`` is the stack's client (shared with the feature store); :meth:`close` leaves it
    open unless ``owns_engine``.
    """

    def __init__(self, engine: BigQueryEngine, *, owns_engine: bool = False) -> None:
        from strataml_bigquery import TRAINING_CAPS

        self._engine = engine
        self._owns_engine = owns_engine
        self._caps = TRAINING_CAPS
        self._ready = False
        self._closed = False
        #: (name, version) -> (physical table, rows, schema): facts of an immutable version
        self._versions: dict[tuple[str, int], tuple[str, int, str]] = {}

    @property
    def capabilities(self) -> Capabilities:
        return self._caps

    def close(self) -> None:
        """Stop serving calls (idempotent); the engine is closed only if this source owns it."""
        if self._closed:
            return
        self._closed = True
        if self._owns_engine:
            self._engine.close()

    def _ensure(self) -> None:
        if self._closed:
            raise Unavailable("this BigQuery training source is closed")
        if not self._ready:
            self._engine.ensure_dataset()
            self._engine.create_table(CATALOG, _CATALOG_COLUMNS, exists_ok=True)
            self._ready = True

    @property
    def _catalog(self) -> str:
        return self._engine.ref(CATALOG)

    # ------------------------------------------------------------------------------- writes
    def write(
        self, name: str, data: pa.Table | pa.RecordBatchReader | Iterable[pa.RecordBatch]
    ) -> str:
        """Store ``data`` as a new immutable version of dataset ``name``; return its snapshot id.

        ``data`` is a ``pa.Table``, a ``pa.RecordBatchReader`` or an iterable of
        ``pa.RecordBatch`` (streamed through a local Parquet file: memory stays bounded);
        pandas/polars frames are converted. Row order is kept. Errors: :class:`InvalidInput`
        (bad name, no rows, no columns, a reserved/duplicate column name, batches that
        disagree, a type BigQuery cannot store) -- raised before anything is sent -- and the
        translated BigQuery errors; in every case no version is added.
        """
        check_name("dataset", name)
        batches = input_batches(data)
        what = f"writing dataset {name!r}"
        self._ensure()
        with Spool(what) as spool:
            logical: pa.Schema | None = None
            for i, raw in enumerate(batches):
                batch = _decode(raw)
                if logical is None:
                    check_schema(batch.schema)
                    logical = pa.schema([pa.field(f.name, f.type) for f in batch.schema])
                    spool.start(logical, row_column=ROW_COLUMN)
                elif not same_layout(batch.schema, logical):
                    raise InvalidInput(
                        f"record batch {i} has schema {batch.schema} but the first batch has "
                        f"{logical}"
                    )
                spool.write(batch, with_row=True)
            spool.close()
            if logical is None or spool.rows == 0:
                raise InvalidInput(
                    "training data has no rows; a dataset version needs at least one"
                )
            readable = _readable(logical, spool.columns[1:])
            physical = f"{PHYSICAL_PREFIX}{name}__{uuid.uuid4().hex[:12]}"
            try:
                self._engine.load_parquet(spool.path, physical, spool.columns, what)
                version = self._commit(name, physical, spool.rows, readable, what)
            except BaseException:
                self._engine.drop_quietly(physical)
                raise
        return f"{name}@{version}"

    def _commit(self, name: str, physical: str, rows: int, schema: pa.Schema, what: str) -> int:
        """Add the catalog row (the next free version number); return the version."""
        params = [
            scalar_param("name", infer_param(name)),
            scalar_param("physical", infer_param(physical)),
            scalar_param("rows", infer_param(rows)),
            scalar_param("schema", infer_param(_encode_schema(schema))),
        ]
        merge = (
            f"MERGE {self._catalog} AS t USING (SELECT @name AS name, (SELECT "
            f"COALESCE(MAX(version), 0) + 1 FROM {self._catalog} WHERE name = @name) AS version, "
            "@physical AS physical, @rows AS rows, @schema AS schema) AS s "
            "ON t.name = s.name AND t.version = s.version WHEN NOT MATCHED THEN INSERT "
            "(name, version, physical, rows, schema, created_at, dropped_at) VALUES (s.name, "
            "s.version, s.physical, s.rows, s.schema, CURRENT_TIMESTAMP(), NULL)"
        )
        lookup = Query(
            f"SELECT version FROM {self._catalog} WHERE physical = @physical",
            [scalar_param("physical", infer_param(physical))],
        )
        for _ in range(_ALLOCATION_ATTEMPTS):
            self._engine.catalog(Query(merge, params), what)
            found = self._engine.rows(lookup, what)
            if found:
                return int(found[0][0])
        raise BackendError(
            f"{what}: no free version number after {_ALLOCATION_ATTEMPTS} attempts "
            "(concurrent writers); retry"
        )

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

        Batches hold at most ``batch_size`` rows (REST pages of ``max(batch_size,
        scan_page_rows)`` rows, or Storage Read API messages, are cut to size). Datasets come in
        write order (unsharded) and ``Scan.snapshot`` is the version read; queries have
        ``Scan.snapshot = None``. The query runs here (errors surface from ``scan``); pages are
        fetched as the scan is iterated. Errors: :class:`NotFound` (dataset, snapshot, column),
        :class:`InvalidInput` (shard, batch size, columns, a snapshot with a query),
        :class:`FilterError`, :class:`Unsupported` (a nested field), :class:`SchemaError` (a
        query that does not run), :class:`LimitExceeded` (the cost guard).
        """
        size = check_batch_size(batch_size)
        part = check_shard(shard)
        src = self._resolve(source, snapshot)
        what = self._what(source)
        cols = check_columns(columns, src.schema, what)
        where, params = self._where(src, filter, part)
        projection = ", ".join(quote(c) for c in cols)
        order = "" if src.is_query else f" ORDER BY {quote(ROW_COLUMN)}"
        sql = f"SELECT {projection} FROM {src.relation} WHERE {where}{order}"
        schema = pa.schema([src.schema.field(c) for c in cols])
        rows = self._engine.query(
            Query(sql, params),
            f"scanning {what}",
            user_sql=src.is_query,
            page_size=max(size, self._engine.config.scan_page_rows),
        )
        return Scan(
            self._engine.batches(rows, schema, size, f"scanning {what}"), schema, src.snapshot
        )

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
        if parse_filter(filter) is None and src.rows is not None:
            if part is None:
                return src.rows
            i, n = part  # _row is 0 .. rows-1, so shard i holds ceil((rows - i) / n) rows
            return max(0, (src.rows - i + n - 1) // n)
        where, params = self._where(src, filter, part)
        what = self._what(source)
        found = self._engine.query(
            Query(f"SELECT COUNT(*) AS n FROM {src.relation} WHERE {where}", params),
            f"counting {what}",
            user_sql=src.is_query,
        )
        return int(next(iter(found))[0])

    def snapshot(self, name: str) -> str:
        """The snapshot id of the dataset's latest version; :class:`NotFound` if unknown."""
        return self.versions(name)[-1]

    def versions(self, name: str) -> list[str]:
        """Snapshot ids of every live version, oldest first; :class:`NotFound` if unknown."""
        check_name("dataset", name)
        self._ensure()
        rows = self._engine.rows(
            Query(
                f"SELECT version FROM {self._catalog} WHERE name = @name AND dropped_at IS NULL",
                [scalar_param("name", infer_param(name))],
            ),
            f"listing versions of {name!r}",
        )
        if not rows:
            raise NotFound(f"unknown dataset {name!r}")
        return [f"{name}@{v}" for v in sorted(int(r[0]) for r in rows)]

    def datasets(self) -> list[str]:
        """Names of every dataset with a live version, sorted."""
        self._ensure()
        rows = self._engine.rows(
            Query(f"SELECT DISTINCT name FROM {self._catalog} WHERE dropped_at IS NULL"),
            "listing datasets",
        )
        return sorted(str(r[0]) for r in rows)

    def drop(self, name: str) -> None:
        """Delete dataset ``name`` and all its versions (no error if it does not exist).

        The catalog rows are retired first (readers stop seeing the dataset at once), then the
        version tables are deleted. Version numbers stay retired: a later write of the same
        name starts after them.
        """
        check_name("dataset", name)
        self._ensure()
        what = f"dropping dataset {name!r}"
        by_name = [scalar_param("name", infer_param(name))]
        live = self._engine.rows(
            Query(
                f"SELECT physical FROM {self._catalog} WHERE name = @name AND dropped_at IS NULL",
                by_name,
            ),
            what,
        )
        if not live:
            return
        self._engine.catalog(
            Query(
                f"UPDATE {self._catalog} SET dropped_at = CURRENT_TIMESTAMP() "
                "WHERE name = @name AND dropped_at IS NULL",
                by_name,
            ),
            what,
        )
        for key in [k for k in self._versions if k[0] == name]:
            del self._versions[key]
        for (physical,) in live:
            self._engine.delete_table(str(physical))

    # ------------------------------------------------------------------------------ helpers
    @staticmethod
    def _what(source: str) -> str:
        return "query" if is_query(source) else f"dataset {source!r}"

    def _resolve(self, source: Any, snapshot: Any) -> _Source:
        if not isinstance(source, str):
            raise InvalidInput(f"source must be a dataset name or a SQL query, got {source!r}")
        if is_query(source):
            if snapshot is not None:
                raise InvalidInput(
                    "snapshot pins a dataset version; a SQL source reads the latest versions "
                    "(scan a dataset by name to pin it)"
                )
            self._ensure()
            return self._query_source(source)
        check_name("dataset", source)
        if snapshot is not None and not isinstance(snapshot, str):
            raise InvalidInput(f"snapshot must be a snapshot id string, got {snapshot!r}")
        self._ensure()
        return self._dataset_source(source, snapshot)

    def _live_versions(self, name: str) -> list[tuple[int, str, int, str]]:
        rows = self._engine.rows(
            Query(
                f"SELECT version, physical, rows, schema FROM {self._catalog} "
                "WHERE name = @name AND dropped_at IS NULL",
                [scalar_param("name", infer_param(name))],
            ),
            f"resolving dataset {name!r}",
        )
        return [(int(r[0]), str(r[1]), int(r[2]), str(r[3])) for r in rows]

    def _dataset_source(self, name: str, snapshot: str | None) -> _Source:
        wanted: int | None = None
        if snapshot is not None:
            m = SNAPSHOT_RE.match(snapshot)
            if m is None or m["name"] != name:
                raise NotFound(f"unknown snapshot {snapshot!r} of dataset {name!r}")
            wanted = int(m["version"])
        cached = None if wanted is None else self._versions.get((name, wanted))
        if cached is not None:  # a pinned version never changes; if dropped, its table is gone
            version, (physical, rows, encoded) = wanted, cached
        else:
            live = self._live_versions(name)
            if not live:
                raise NotFound(f"unknown dataset {name!r}")
            if wanted is None:
                found = max(live)
            else:
                matching = [v for v in live if v[0] == wanted]
                if not matching:
                    raise NotFound(f"unknown snapshot {snapshot!r} of dataset {name!r}")
                found = matching[0]
            version, physical, rows, encoded = found
            self._versions[(name, version)] = (physical, rows, encoded)
        schema = _decode_schema(encoded)
        types: dict[str, str] = {}
        untyped: set[str] = set()
        for f in schema:
            col = bq_column(f.name, f.type, f"dataset {name!r}")[0]
            types[f.name] = col.type
            if col.null_typed:
                untyped.add(f.name)
        return _Source(
            relation=f"{self._engine.ref(physical)} AS {_ALIAS}",
            schema=schema,
            bq_types=types,
            untyped=frozenset(untyped),
            snapshot=f"{name}@{version}",
            rows=rows,
            is_query=False,
        )

    def _latest_relation(self, name: str) -> str:
        """``datasets.<name>`` in a SQL source: its latest version, without ``_row``."""
        if not isinstance(name, str) or not name:
            raise NotFound(f"unknown dataset {name!r}")
        live = self._live_versions(name)
        if not live:
            raise NotFound(f"unknown dataset {name!r} (named in the query as datasets.{name})")
        physical = max(live)[1]
        return f"SELECT * EXCEPT ({quote(ROW_COLUMN)}) FROM {self._engine.ref(physical)}"

    def _query_source(self, query: str) -> _Source:
        text = query.strip().rstrip(";").strip()
        sql, _ = rewrite_datasets(text, self._latest_relation)
        columns, _ = self._engine.dry_run(Query(sql), "query", user_sql=True)
        if not columns:
            raise BackendError("query: BigQuery reported no result columns")
        return _Source(
            relation=f"(\n{sql}\n) AS {_ALIAS}",
            schema=result_schema(columns),
            bq_types={c.name: ("ARRAY" if c.repeated else c.type) for c in columns},
            untyped=frozenset(),
            snapshot=None,
            rows=None,
            is_query=True,
        )

    def _where(
        self, src: _Source, spec: Mapping[str, Any] | None, shard: tuple[int, int] | None
    ) -> tuple[str, list[Any]]:
        expr = parse_filter(spec)
        clauses: list[str] = []
        params: list[Any] = []
        if expr is not None:
            types = field_types(src.schema)
            nan_columns = frozenset(f.name for f in src.schema if pa.types.is_floating(f.type))
            compiler = BigQueryFilter(nan_columns, src.untyped)
            require_ops(expr, self.capabilities.filter_ops, compiler.backend)
            for name in fields_used(expr):
                compiler.column(name)  # Unsupported for nested fields, before NotFound
            unknown = sorted(f for f in fields_used(expr) if f not in types)
            if unknown:
                raise NotFound(
                    f"the filter names column(s) {unknown} the source does not have; "
                    f"columns: {src.schema.names}"
                )
            check_types(expr, types)
            typed = typed_filter(coerce_temporal(expr, types), src.bq_types)
            sql, params = compiler.compile(typed)
            clauses.append(sql)
        if shard is not None:
            i, n = shard
            if src.is_query:
                h = f"FARM_FINGERPRINT(TO_JSON_STRING({_ALIAS}))"
                clauses.append(f"MOD(MOD({h}, @_shard_n) + @_shard_n, @_shard_n) = @_shard_i")
            else:
                clauses.append(f"MOD({quote(ROW_COLUMN)}, @_shard_n) = @_shard_i")
            params = [
                *params,
                scalar_param("_shard_n", infer_param(n)),
                scalar_param("_shard_i", infer_param(i)),
            ]
        return (" AND ".join(clauses) if clauses else "TRUE"), params
