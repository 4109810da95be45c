"""The embedded feature store: source tables and versioned SQL feature views in DuckDB.

* Tables are loaded from Arrow through DuckDB's zero-copy Arrow scan. Appends add new columns
  (``ALTER TABLE ... ADD COLUMN``, old rows read null) and accept a column whose incoming type
  widens losslessly into the stored one (``INTEGER`` into ``BIGINT``, any integer into ``DOUBLE``,
  any timestamp into a timestamp); anything else is a :class:`~strataml.errors.SchemaError`
  raised before a row is written. A column whose stored type is ``NULL`` (it only ever held
  nulls) takes the first real type appended to it.
* Rows, new columns and the optional checkpoint are written in one DuckDB transaction.
* View definitions live in ``_strataml_views`` (one row per name and version, the definition as
  JSON), checkpoints in ``_strataml_checkpoints``; neither is listed by :meth:`tables`.
* View SQL is written in the canonical dialect and transpiled to the engine's in one place
  (:meth:`DuckDBFeatureStore._engine_sql`), so engines other than DuckDB follow the same path.
* :meth:`historical` runs one ``ASOF LEFT JOIN`` per view (labels on the left, so no label row is
  ever dropped), nulls values older than the view's TTL with a ``CASE`` instead of filtering,
  restores the input order through a row-number column and appends the feature columns to the
  caller's labels table untouched (same column types, same time zones).
* Timestamps are compared in UTC: ``TIMESTAMP WITH TIME ZONE`` is converted with
  ``timezone('UTC', ...)``, naive timestamps are taken as UTC. The comparison runs at nanosecond
  precision when either side is nanosecond-precise, otherwise at microseconds.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import duckdb
import numpy as np
import pyarrow as pa
import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from strataml.capabilities import Capabilities
from strataml.errors import BackendError, InvalidInput, NotFound, SchemaError, Unavailable
from strataml.features.evolution import (
    definition_for_compute,
    evolve,
    refused,
    same_logic,
)
from strataml.features.loading import INTERNAL_PREFIX, prepare_load
from strataml.features.refs import (
    check_view_ref,
    compute_window,
    plan_features,
    prepare_labels,
    resolve_view,
)
from strataml.local import DUCKDB_FEATURES_CAPS
from strataml.local.duckdb_engine import DuckDBEngine, translate_duckdb_error
from strataml.models import CANONICAL_DIALECT, FeatureView

__all__ = ["DuckDBFeatureStore"]

VIEWS_TABLE = "_strataml_views"
CHECKPOINTS_TABLE = "_strataml_checkpoints"

_ROW = "__strataml_row"
_LTS = "__strataml_lts"
_VTS = "__strataml_vts"

_SIGNED = {"TINYINT": 1, "SMALLINT": 2, "INTEGER": 3, "BIGINT": 4, "HUGEINT": 5}
_UNSIGNED = {"UTINYINT": 1, "USMALLINT": 2, "UINTEGER": 3, "UBIGINT": 4, "UHUGEINT": 5}
_TIMESTAMPS = {
    "TIMESTAMP",
    "TIMESTAMP_S",
    "TIMESTAMP_MS",
    "TIMESTAMP_NS",
    "TIMESTAMP WITH TIME ZONE",
}
_TIME_TYPES = _TIMESTAMPS | {"DATE"}
_NULL_TYPE = '"NULL"'


def _q(name: str) -> str:
    """Quote an identifier."""
    return '"' + name.replace('"', '""') + '"'


def _family(duck_type: str) -> str:
    """Coarse type family, for checking label and view entity columns can be compared."""
    if duck_type in _SIGNED or duck_type in _UNSIGNED or duck_type in ("FLOAT", "DOUBLE"):
        return "number"
    if duck_type.startswith("DECIMAL"):
        return "number"
    if duck_type in _TIME_TYPES:
        return "time"
    return duck_type


def _assignable(src: str, dst: str) -> bool:
    """Whether a column of DuckDB type ``src`` can be appended to one of type ``dst`` losslessly
    enough to do it silently."""
    if src in (dst, _NULL_TYPE):
        return True
    if src in _SIGNED:
        return (dst in _SIGNED and _SIGNED[src] <= _SIGNED[dst]) or dst in ("FLOAT", "DOUBLE")
    if src in _UNSIGNED:
        if dst in _UNSIGNED:
            return _UNSIGNED[src] <= _UNSIGNED[dst]
        return (dst in _SIGNED and _UNSIGNED[src] < _SIGNED[dst]) or dst in ("FLOAT", "DOUBLE")
    if src == "FLOAT" or src.startswith("DECIMAL"):
        return dst == "DOUBLE"
    if src in _TIME_TYPES:
        return dst in _TIMESTAMPS
    return False


def _utc_sql(expr: str, duck_type: str, target: str) -> str:
    """SQL turning a timestamp/date expression into a naive-UTC ``target`` timestamp."""
    if duck_type == "TIMESTAMP WITH TIME ZONE":
        expr = f"timezone('UTC', {expr})"
        duck_type = "TIMESTAMP"
    return expr if duck_type == target else f"CAST({expr} AS {target})"


def _arrow_of(rel: Any) -> pa.Table:
    """A relation's rows as an Arrow table (DuckDB >= 1.4 spells it ``to_arrow_table``)."""
    fetch = getattr(rel, "to_arrow_table", None) or rel.arrow
    table: pa.Table = fetch()
    return table


def _reader_of(rel: Any, batch_size: int) -> pa.RecordBatchReader:
    fetch = getattr(rel, "to_arrow_reader", None) or rel.fetch_record_batch
    reader: pa.RecordBatchReader = fetch(batch_size)
    return reader


@contextmanager
def _translated(what: str) -> Iterator[None]:
    """DuckDB errors raised inside become strataml errors (the driver's error chained)."""
    try:
        yield
    except duckdb.Error as exc:
        raise translate_duckdb_error(exc, what) from exc


@dataclass(frozen=True)
class _Bound:
    """A view as the engine sees it: transpiled SQL and the DuckDB type of every column."""

    view: FeatureView
    sql: str
    types: dict[str, str]


class _Feed:
    """Wraps the caller's batches: remembers an exception raised while DuckDB pulls them, so
    :meth:`DuckDBFeatureStore.load` can re-raise the caller's error instead of DuckDB's."""

    def __init__(self, reader: pa.RecordBatchReader) -> None:
        self.error: Exception | None = None
        self._src = reader
        self.reader = pa.RecordBatchReader.from_batches(reader.schema, self._pull())

    def _pull(self) -> Iterator[pa.RecordBatch]:
        try:
            yield from self._src
        except Exception as exc:
            self.error = exc
            raise


class DuckDBFeatureStore:
    """:class:`~strataml.protocols.FeatureStore` on an embedded DuckDB database.

    The ``engine`` is shared with the training source of the same stack and is not closed by
    :meth:`close`. Writers (load, register) are serialised by the engine's write lock; readers
    run concurrently on per-thread cursors and see committed data only.
    """

    def __init__(self, engine: DuckDBEngine) -> None:
        self._engine = engine
        self._closed = False
        with engine.write_lock, _translated("creating the feature store's catalog tables"):
            cur = engine.cursor()
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS {VIEWS_TABLE} (name VARCHAR NOT NULL, "
                "version INTEGER NOT NULL, fingerprint VARCHAR NOT NULL, "
                "definition VARCHAR NOT NULL, created_at TIMESTAMP NOT NULL)"
            )
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS {CHECKPOINTS_TABLE} (key VARCHAR NOT NULL, "
                "value VARCHAR NOT NULL, updated_at TIMESTAMP NOT NULL)"
            )

    # ------------------------------------------------------------------------------ basics
    @property
    def capabilities(self) -> Capabilities:
        return DUCKDB_FEATURES_CAPS

    @property
    def dialect(self) -> str:
        """The engine's SQL dialect: ``duckdb``, which is also the canonical one."""
        return "duckdb"

    def close(self) -> None:
        """Stop using the engine (which the stack closes). Safe to call twice."""
        self._closed = True

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        if self._closed:
            raise Unavailable("the feature store is closed")
        return self._engine.cursor()

    def _engine_sql(self, sql: str, ref: str) -> str:
        """Transpile view SQL from the canonical dialect to the engine's (the one place this
        happens). Exactly one query statement is accepted."""
        try:
            trees = [t for t in sqlglot.parse(sql, read=CANONICAL_DIALECT) if t is not None]
        except SqlglotError as exc:
            raise SchemaError(f"feature view {ref}: SQL does not parse: {exc}") from exc
        if len(trees) != 1 or not isinstance(trees[0], exp.Query):
            raise SchemaError(f"feature view {ref}: the SQL must be exactly one SELECT query")
        return trees[0].sql(dialect=self.dialect)

    # ------------------------------------------------------------------------------ tables
    def load(
        self,
        table: str,
        data: pa.Table | pa.RecordBatchReader | Iterable[pa.RecordBatch],
        *,
        mode: Literal["append", "replace"] = "append",
        checkpoint: tuple[str, str] | None = None,
    ) -> int:
        """Load rows into ``table`` (created if missing); return how many were loaded.

        ``append`` adds rows (and any new columns: older rows read null); ``replace`` swaps the
        table's rows and schema for ``data``. ``checkpoint=(key, value)`` is committed in the same
        transaction as the rows. Errors: :class:`InvalidInput` (bad name, mode, checkpoint or
        data), :class:`SchemaError` (a column whose type cannot be appended to the stored one);
        on any error nothing is written (rows, columns and checkpoint are rolled back).
        """
        reader = prepare_load(table, data, mode, checkpoint)
        feed = _Feed(reader)
        with self._engine.write_lock:
            cur = self._cursor()
            incoming = self._arrow_types(cur, reader.schema)
            existing = self._table_types(cur, table)
            plan = (
                []
                if existing is None or mode == "replace"
                else _plan_append(table, existing, incoming)
            )
            src = f"__strataml_load_{uuid.uuid4().hex}"
            cur.register(src, feed.reader)
            try:
                with self._engine.transaction() as tx:
                    for stmt in plan:
                        tx.execute(stmt)
                    if existing is None or mode == "replace":
                        stmt = f"CREATE OR REPLACE TABLE {_q(table)} AS SELECT * FROM {src}"
                    else:
                        stmt = f"INSERT INTO {_q(table)} BY NAME SELECT * FROM {src}"
                    counted = tx.execute(stmt).fetchall()
                    loaded = int(counted[0][0]) if counted else 0
                    if checkpoint is not None:
                        self._store_checkpoint(tx, *checkpoint)
            except duckdb.Error as exc:
                if feed.error is not None:
                    raise feed.error from None
                raise translate_duckdb_error(exc, f"load {table}") from exc
            finally:
                cur.unregister(src)
        return loaded

    def _arrow_types(self, cur: duckdb.DuckDBPyConnection, schema: pa.Schema) -> dict[str, str]:
        name = f"__strataml_schema_{uuid.uuid4().hex}"
        with _translated("reading the incoming schema"):
            cur.register(name, schema.empty_table())
            try:
                rows = cur.sql(f"DESCRIBE SELECT * FROM {name}").fetchall()
            finally:
                cur.unregister(name)
        return {str(r[0]): str(r[1]) for r in rows}

    def _table_types(self, cur: duckdb.DuckDBPyConnection, table: str) -> dict[str, str] | None:
        with _translated(f"reading the schema of {table}"):
            found = cur.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
                "AND schema_name = current_schema() AND NOT temporary "
                "AND lower(table_name) = lower(?)",
                [table],
            ).fetchall()
            if not found:
                return None
            rows = cur.sql(f"DESCRIBE {_q(str(found[0][0]))}").fetchall()
        return {str(r[0]): str(r[1]) for r in rows}

    def checkpoint(self, key: str) -> str | None:
        """The value last stored with ``checkpoint=(key, value)``, or ``None``."""
        if not isinstance(key, str) or not key:
            raise InvalidInput("checkpoint keys are non-empty strings")
        with _translated(f"reading checkpoint {key!r}"):
            row = (
                self._cursor()
                .execute(f"SELECT value FROM {CHECKPOINTS_TABLE} WHERE key = ?", [key])
                .fetchall()
            )
        return str(row[0][0]) if row else None

    @staticmethod
    def _store_checkpoint(tx: duckdb.DuckDBPyConnection, key: str, value: str) -> None:
        tx.execute(f"DELETE FROM {CHECKPOINTS_TABLE} WHERE key = ?", [key])
        tx.execute(
            f"INSERT INTO {CHECKPOINTS_TABLE} VALUES (?, ?, ?)",
            [key, value, dt.datetime.now(dt.UTC).replace(tzinfo=None)],
        )

    def tables(self) -> list[str]:
        """Source tables (not views, not strataml's own catalog tables), sorted."""
        with _translated("listing tables"):
            rows = (
                self._cursor()
                .execute(
                    "SELECT table_name FROM duckdb_tables() "
                    "WHERE database_name = current_database() "
                    "AND schema_name = current_schema() AND NOT temporary "
                    "AND NOT starts_with(lower(table_name), ?) ORDER BY table_name",
                    [INTERNAL_PREFIX],
                )
                .fetchall()
            )
        return [str(r[0]) for r in rows]

    # ------------------------------------------------------------------------------- views
    def register(self, view: FeatureView) -> FeatureView:
        """Validate and persist a view definition; return it with ``features`` resolved.

        The SQL must be one query that runs and yields the entity columns, the timestamp column
        (a timestamp or date) and the features (when ``features`` is omitted: every other
        column, in query order; each must be an identifier). Registering an existing
        name/version again returns the stored definition when the fingerprint is unchanged
        (omitted ``features`` are taken to mean the stored ones) and raises
        :class:`SchemaError` otherwise. Errors: :class:`SchemaError`, :class:`InvalidInput`.
        """
        if not isinstance(view, FeatureView):
            raise InvalidInput(f"register() takes a FeatureView, not {type(view).__name__}")
        with self._engine.write_lock:
            stored = self._lookup(view.name, view.version)
            if stored is not None:
                if same_logic(view, *stored):
                    return stored[0]
                evolved = evolve(view, stored[0], lambda v: self._bind(v).view)
                if evolved is None:
                    raise refused(view, self._latest_version(view.name))
                with (
                    _translated(f"evolving feature view {view.ref}"),
                    self._engine.transaction() as tx,
                ):
                    tx.execute(
                        f"UPDATE {VIEWS_TABLE} SET fingerprint = ?, definition = ? "
                        "WHERE name = ? AND version = ?",
                        [
                            evolved.fingerprint,
                            evolved.model_dump_json(),
                            evolved.name,
                            evolved.version,
                        ],
                    )
                return evolved
            resolved = self._bind(view).view
            with (
                _translated(f"registering feature view {view.ref}"),
                self._engine.transaction() as tx,
            ):
                tx.execute(
                    f"INSERT INTO {VIEWS_TABLE} VALUES (?, ?, ?, ?, ?)",
                    [
                        resolved.name,
                        resolved.version,
                        resolved.fingerprint,
                        resolved.model_dump_json(),
                        dt.datetime.now(dt.UTC).replace(tzinfo=None),
                    ],
                )
        return resolved

    def _bind(self, view: FeatureView) -> _Bound:
        """Check ``view`` against the engine; return it with features resolved and its types."""
        sql = self._engine_sql(view.sql, view.ref)
        try:
            rows = self._cursor().sql(f"DESCRIBE SELECT * FROM ({sql}) AS _q").fetchall()
        except duckdb.Error as exc:
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise SchemaError(f"feature view {view.ref}: SQL does not run: {msg}") from exc
        if len({str(r[0]) for r in rows}) != len(rows):
            raise SchemaError(f"feature view {view.ref}: the query returns duplicate column names")
        types = {str(r[0]): str(r[1]) for r in rows}
        resolved = resolve_view(
            view, list(types), temporal=types.get(view.timestamp) in _TIME_TYPES
        )
        return _Bound(resolved, sql, types)

    def _lookup(self, name: str, version: int | None) -> tuple[FeatureView, str] | None:
        query = f"SELECT definition, fingerprint FROM {VIEWS_TABLE} WHERE name = ?"
        params: list[Any] = [name]
        if version is not None:
            query += " AND version = ?"
            params.append(version)
        with _translated(f"reading feature view {name}"):
            row = (
                self._cursor().execute(query + " ORDER BY version DESC LIMIT 1", params).fetchall()
            )
        if not row:
            return None
        return FeatureView.model_validate_json(row[0][0]), str(row[0][1])

    def _latest_version(self, name: str) -> int:
        with _translated(f"reading feature view {name}"):
            row = (
                self._cursor()
                .execute(f"SELECT max(version) FROM {VIEWS_TABLE} WHERE name = ?", [name])
                .fetchall()
            )
        return int(row[0][0]) if row and row[0][0] is not None else 0

    def get_view(self, name: str, version: int | None = None) -> FeatureView:
        """A registered view (latest version when ``version`` is ``None``); :class:`NotFound`
        if there is none, :class:`InvalidInput` for a malformed name or version."""
        check_view_ref(name, version)
        found = self._lookup(name, version)
        if found is None:
            which = f"{name}@{version}" if version is not None else name
            known = sorted({v.name for v in self.views()})
            raise NotFound(f"feature view {which} is not registered (registered: {known})")
        return found[0]

    def views(self) -> list[FeatureView]:
        """Every registered view and version, sorted by name then version."""
        with _translated("listing feature views"):
            rows = (
                self._cursor()
                .execute(f"SELECT definition FROM {VIEWS_TABLE} ORDER BY name, version")
                .fetchall()
            )
        return [FeatureView.model_validate_json(r[0]) for r in rows]

    def _for_compute(self, view: str | FeatureView) -> _Bound:
        return self._bind(definition_for_compute(view, self.get_view, self._lookup))

    # ----------------------------------------------------------------------------- compute
    def compute(
        self,
        view: str | FeatureView,
        *,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        batch_size: int = 65_536,
        latest: bool = False,
    ) -> pa.RecordBatchReader:
        """Stream the view's rows (event time in ``[start, end)`` when given) as Arrow batches of
        at most ``batch_size`` rows; with ``latest=True`` only each entity's newest row in the
        window, ordered by the entity columns (``QUALIFY row_number()``).

        Columns: the entities, the timestamp (naive UTC; nanosecond precision kept where the
        source has it) and the features. A name means the latest registered version; a
        :class:`FeatureView` must match its registered definition (:class:`SchemaError`
        otherwise) or, if unregistered, is validated and computed without being stored.
        Errors: :class:`NotFound`, :class:`SchemaError`, :class:`InvalidInput`.
        """
        lo, hi = compute_window(start, end, batch_size)
        bound = self._for_compute(view)
        v = bound.view
        ts_type = bound.types[v.timestamp]
        target = "TIMESTAMP_NS" if ts_type == "TIMESTAMP_NS" else "TIMESTAMP"
        cols = [f"s.{_q(e)}" for e in v.entities]
        cols.append(f"{_utc_sql('s.' + _q(v.timestamp), ts_type, target)} AS {_q(v.timestamp)}")
        cols += [f"s.{_q(f)}" for f in v.features or ()]
        query = f"SELECT * FROM (SELECT {', '.join(cols)} FROM ({bound.sql}) AS s) AS c"
        where, params = [], []
        for op, value in ((">=", lo), ("<", hi)):
            if value is not None:
                where.append(f"c.{_q(v.timestamp)} {op} ?")
                params.append(value)
        if where:
            query += " WHERE " + " AND ".join(where)
        if latest:
            keys = ", ".join(f"c.{_q(e)}" for e in v.entities)
            query += (
                f" QUALIFY row_number() OVER (PARTITION BY {keys} "
                f"ORDER BY c.{_q(v.timestamp)} DESC) = 1 ORDER BY {keys}"
            )
        what = f"computing feature view {v.ref}"
        with _translated(what):
            cur = self._cursor().cursor()
            try:
                cur.execute("SET TimeZone = 'UTC'")
                rel = cur.sql(query, params=params or None)
                reader = _reader_of(rel, batch_size)
            except BaseException:
                cur.close()
                raise
        return pa.RecordBatchReader.from_batches(
            reader.schema, _stream(reader, rel, cur, batch_size, what)
        )

    # -------------------------------------------------------------------------- historical
    def historical(
        self,
        labels: Any,
        features: Sequence[str],
        *,
        timestamp: str = "ts",
        full_names: bool = False,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
    ) -> pa.Table:
        """Point-in-time correct training data: ``labels`` plus the requested features.

        ``labels=None``: the label rows are the entity keys and event times of the first
        referenced view's rows with event time in ``[start, end)``
        (:func:`strataml.features.refs.label_spine`).

        For each label row and view: the feature values of the view row with the same entity
        key and the latest event time at or before the label's ``timestamp`` (never a later
        one), null when there is none or when ``label_ts - feature_ts > ttl``. Label rows come
        back once each, in input order, with their columns untouched; features follow in the
        order requested (duplicates dropped). When several view rows share an entity key and
        event time, which one is used is unspecified.

        Errors: :class:`InvalidInput` (labels lacking the timestamp or an entity column, a
        timestamp column that is not a timestamp/date, an entity column whose type cannot be
        compared with the view's, bad or clashing references), :class:`NotFound` (unknown
        view, version or feature), :class:`SchemaError` (a view whose SQL no longer runs).
        """
        table = prepare_labels(self, labels, features, timestamp=timestamp, start=start, end=end)
        names = table.column_names
        groups, outputs = self._plan(features, full_names)
        clash = sorted(set(names) & {out for _, _, out in outputs})
        if clash:
            raise InvalidInput(
                f"feature output names {clash} clash with label columns; rename those label "
                "columns or pass full_names=True"
            )
        for bound in groups.values():
            lacking = [e for e in bound.view.entities if e not in names]
            if lacking:
                raise InvalidInput(
                    f"labels lack entity column(s) {lacking} of feature view {bound.view.ref}"
                )
        results: dict[tuple[str, int], pa.Table] = {}
        cur = self._cursor()
        for key, bound in groups.items():
            wanted = [(f, out) for k, f, out in outputs if k == key]
            results[key] = self._asof(cur, table, timestamp, bound, wanted)
        out_table = table
        for key, _, out in outputs:
            out_table = out_table.append_column(out, results[key].column(out))
        return out_table

    def _plan(
        self, refs: Sequence[str], full_names: bool
    ) -> tuple[dict[tuple[str, int], _Bound], list[tuple[tuple[str, int], str, str]]]:
        """Resolve references (:func:`strataml.features.refs.plan_features`) and bind each
        view to this engine."""
        plan = plan_features(refs, self.get_view, full_names=full_names)
        return {key: self._bind(view) for key, view in plan.views.items()}, plan.outputs

    def _asof(
        self,
        cur: duckdb.DuckDBPyConnection,
        labels: pa.Table,
        timestamp: str,
        bound: _Bound,
        wanted: list[tuple[str, str]],
    ) -> pa.Table:
        """One view's features for every label row, ordered like the labels."""
        v = bound.view
        cols = list(dict.fromkeys([*v.entities, timestamp]))
        left = labels.select(cols).append_column(
            _ROW, pa.array(np.arange(labels.num_rows, dtype=np.int64))
        )
        reg = f"__strataml_labels_{uuid.uuid4().hex}"
        what = f"point-in-time join with {v.ref}"
        with _translated(what):
            cur.register(reg, left)
            try:
                label_types = {
                    str(r[0]): str(r[1])
                    for r in cur.sql(f"DESCRIBE SELECT * FROM {reg}").fetchall()
                }
                for e in v.entities:
                    lt, vt = _family(label_types[e]), _family(bound.types[e])
                    if _NULL_TYPE not in (lt, vt) and lt != vt:
                        raise InvalidInput(
                            f"labels column {e!r} ({label_types[e]}) cannot be compared with "
                            f"{v.ref}'s {e!r} ({bound.types[e]})"
                        )
                query, params = _asof_sql(reg, timestamp, label_types[timestamp], bound, wanted)
                result = _arrow_of(cur.sql(query, params=params or None))
            finally:
                cur.unregister(reg)
        if result.num_rows != labels.num_rows:
            raise BackendError(f"{what}: expected {labels.num_rows} rows, got {result.num_rows}")
        return result

    # --------------------------------------------------------------------------------- sql
    def sql(self, query: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> pa.Table:
        """Run SQL in DuckDB's dialect with ``?``/``$1`` (sequence) or ``$name`` (mapping)
        parameters bound; return the result as Arrow (an empty table for statements without
        one). Errors: :class:`SchemaError` (SQL that does not parse or bind),
        :class:`NotFound` (unknown table), :class:`InvalidInput` (bad parameters or values)."""
        if not isinstance(query, str) or not query.strip():
            raise InvalidInput("query must be a non-empty SQL string")
        if params is not None and (
            isinstance(params, str | bytes) or not isinstance(params, Sequence | Mapping)
        ):
            raise InvalidInput("params must be a sequence or a mapping of values")
        bind: Any = (
            None
            if params is None
            else (dict(params) if isinstance(params, Mapping) else list(params))
        )
        with _translated("running SQL"):
            try:
                rel = self._cursor().sql(query, params=bind)
            except duckdb.NotImplementedException as exc:
                if "transform python value" not in str(exc):
                    raise
                # a parameter of a Python type DuckDB has no SQL type for: the caller's value
                raise InvalidInput(f"running SQL: a parameter cannot be bound: {exc}") from exc
            return pa.table({}) if rel is None else _arrow_of(rel)


def _plan_append(table: str, existing: dict[str, str], incoming: dict[str, str]) -> list[str]:
    """DDL making ``table`` accept ``incoming`` columns; :class:`SchemaError` if it cannot."""
    by_lower = {name.lower(): (name, typ) for name, typ in existing.items()}
    stmts: list[str] = []
    bad: list[str] = []
    for name, typ in incoming.items():
        have = by_lower.get(name.lower())
        if have is None:
            stmts.append(f"ALTER TABLE {_q(table)} ADD COLUMN {_q(name)} {typ}")
        elif have[1] == _NULL_TYPE and typ != _NULL_TYPE:
            stmts.append(f"ALTER TABLE {_q(table)} ALTER COLUMN {_q(have[0])} TYPE {typ}")
        elif not _assignable(typ, have[1]):
            bad.append(f"{name!r} is {have[1]} in the table but {typ} in the data")
    if bad:
        raise SchemaError(
            f"load {table}: incompatible column types: {'; '.join(bad)}; cast the data or load "
            "it with mode='replace'"
        )
    return stmts


def _asof_sql(
    reg: str, timestamp: str, label_ts_type: str, bound: _Bound, wanted: list[tuple[str, str]]
) -> tuple[str, list[Any]]:
    v = bound.view
    view_ts_type = bound.types[v.timestamp]
    if label_ts_type not in _TIME_TYPES:
        raise InvalidInput(f"labels column {timestamp!r} is {label_ts_type}, not a timestamp")
    target = "TIMESTAMP_NS" if "TIMESTAMP_NS" in (label_ts_type, view_ts_type) else "TIMESTAMP"
    ents = [_q(e) for e in v.entities]
    left = (
        f"SELECT {_q(_ROW)}, {', '.join(ents)}, "
        f"{_utc_sql(_q(timestamp), label_ts_type, target)} AS {_q(_LTS)} FROM {reg}"
    )
    right_cols = [
        *[f"s.{e}" for e in ents],
        f"{_utc_sql('s.' + _q(v.timestamp), view_ts_type, target)} AS {_q(_VTS)}",
        *[f"s.{_q(f)}" for f in dict.fromkeys(f for f, _ in wanted)],
    ]
    right = f"SELECT {', '.join(right_cols)} FROM ({bound.sql}) AS s"
    params: list[Any] = []
    select = [f"l.{_q(_ROW)}"]
    for feature, out in wanted:
        if v.ttl is None:
            select.append(f"v.{_q(feature)} AS {_q(out)}")
        else:
            select.append(
                f"CASE WHEN v.{_q(_VTS)} >= l.{_q(_LTS)} - to_microseconds(?::BIGINT) "
                f"THEN v.{_q(feature)} END AS {_q(out)}"
            )
            params.append(v.ttl // dt.timedelta(microseconds=1))
    on = [f"l.{e} = v.{e}" for e in ents]
    on.append(f"l.{_q(_LTS)} >= v.{_q(_VTS)}")
    query = (
        f"SELECT {', '.join(select)} FROM ({left}) AS l ASOF LEFT JOIN ({right}) AS v "
        f"ON {' AND '.join(on)} ORDER BY l.{_q(_ROW)}"
    )
    return query, params


def _stream(
    reader: pa.RecordBatchReader,
    rel: Any,
    cur: duckdb.DuckDBPyConnection,
    batch_size: int,
    what: str,
) -> Iterator[pa.RecordBatch]:
    """Yield ``reader``'s batches cut to ``batch_size``; close the dedicated cursor at the end."""
    try:
        for batch in reader:
            for offset in range(0, batch.num_rows, batch_size):
                yield batch.slice(offset, batch_size)
    except duckdb.Error as exc:
        raise translate_duckdb_error(exc, what) from exc
    finally:
        del rel
        cur.close()
