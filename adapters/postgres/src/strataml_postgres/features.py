"""The PostgreSQL feature store: source tables loaded from Arrow, versioned SQL feature views.

* **Tables** are created from the Arrow schema (:mod:`strataml_postgres.pgtypes`) and loaded with
  binary ``COPY``. Appends add new columns (``ALTER TABLE ... ADD COLUMN``; older rows read
  null) and accept an incoming type that widens losslessly into the stored one (``integer``
  into ``bigint``, integers into ``double precision``, any timestamp or date into a timestamp);
  anything else is a :class:`~strataml.errors.SchemaError` raised before a row is written. Rows,
  new columns and the optional checkpoint commit in one transaction; a per-table advisory lock
  serialises concurrent loaders of one table.
* **Catalog**: view definitions in ``_strataml_views`` (one row per name and version, the
  definition as JSON), checkpoints in ``_strataml_checkpoints``. Tables whose name starts with
  ``_strataml`` are strataml's own and are never listed by :meth:`~PostgresFeatureStore.tables`.
* **View SQL** is written in the canonical dialect and transpiled with sqlglot in one place,
  :func:`strataml_postgres.sql.transpile`.
* **Point-in-time joins** (:meth:`~PostgresFeatureStore.historical`): the labels go to a
  temporary table (binary COPY) with their row number; each view is materialised into a
  temporary table restricted to the labels' entities and indexed on ``(entities, event time)``;
  then one query joins every label row to each view with
  ``LEFT JOIN LATERAL (... WHERE entity = label.entity AND ts <= label.ts ORDER BY ts DESC
  LIMIT 1)`` -- one index probe per label and view -- nulls values older than the TTL with a
  ``CASE``, and returns the rows in label order.
* Timestamps compare in UTC: ``timestamptz`` is converted with ``AT TIME ZONE 'UTC'``, naive
  timestamps are UTC, dates are midnight UTC. PostgreSQL keeps microseconds.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, LiteralString

import psycopg
import pyarrow as pa
from psycopg import sql

from strataml.capabilities import Capabilities
from strataml.errors import InvalidInput, NotFound, SchemaError, StrataError, Unavailable
from strataml.features.evolution import (
    definition_for_compute,
    evolve,
    refused,
)
from strataml.features.loading import INTERNAL_PREFIX, prepare_load
from strataml.features.refs import (
    check_view_ref,
    compute_window,
    plan_features,
    prepare_labels,
    resolve_view,
)
from strataml.models import FeatureView
from strataml_postgres.pgcopy import (
    HEADER,
    TRAILER,
    CopyOutReader,
    decode_rows,
    encode_batch,
    encode_column,
    encode_rows,
)
from strataml_postgres.pgtypes import ResultColumn, kind_of_oid, pg_type_for, result_column
from strataml_postgres.pool import PgDatabase
from strataml_postgres.sql import (
    DIALECT,
    advisory_lock,
    decodable,
    describe,
    ident,
    is_query,
    qname,
    run_ddl,
    stream_query,
    transpile,
    user_sql,
)

__all__ = ["PostgresFeatureStore"]

VIEWS = "_strataml_views"
CHECKPOINTS = "_strataml_checkpoints"

_LABELS = "_strataml_labels"
_ROW = "_strataml_row"
_LTS = "_strataml_lts"
_VTS = "_strataml_vts"
_TIME_KINDS = frozenset({"timestamp", "timestamptz", "date"})
_FAMILY = {
    "int2": "number",
    "int4": "number",
    "int8": "number",
    "float4": "number",
    "float8": "number",
    "numeric": "number",
    "timestamp": "time",
    "timestamptz": "time",
    "date": "time",
}
_WIDENS: dict[str, frozenset[str]] = {
    "int2": frozenset({"int2", "int4", "int8", "float4", "float8", "numeric"}),
    "int4": frozenset({"int4", "int8", "float8", "numeric"}),
    "int8": frozenset({"int8", "float8", "numeric"}),
    "float4": frozenset({"float4", "float8"}),
    "timestamp": frozenset({"timestamp", "timestamptz"}),
    "timestamptz": frozenset({"timestamp", "timestamptz"}),
    "date": frozenset({"date", "timestamp", "timestamptz"}),
}


@dataclass(frozen=True)
class _Bound:
    """A view as the engine sees it: transpiled SQL and each result column."""

    view: FeatureView
    sql: str
    columns: dict[str, ResultColumn]


def _kind(col: ResultColumn) -> str:
    return kind_of_oid(col.oid) or f"oid:{col.oid}"


def _utc_naive(expr: sql.Composable, kind: str) -> sql.Composable:
    """``expr`` (a timestamp, timestamptz or date) as a naive UTC ``timestamp``."""
    if kind == "timestamptz":
        return sql.SQL("({} AT TIME ZONE 'UTC')").format(expr)
    if kind == "date":
        return sql.SQL("CAST({} AS timestamp)").format(expr)
    return expr


class PostgresFeatureStore:
    """:class:`~strataml.protocols.FeatureStore` on PostgreSQL (see the module docstring).

    ``db`` is the stack's connection pool (shared with the training source and ingest store);
    :meth:`close` leaves it open unless ``owns_db``. SQL passed to :meth:`sql` and tables
    named in view SQL live in the configured schema (it is on the ``search_path``).
    """

    def __init__(self, db: PgDatabase, *, owns_db: bool = False) -> None:
        from strataml_postgres import FEATURES_CAPS

        self._db = db
        self._owns_db = owns_db
        self._caps = FEATURES_CAPS
        self._schema = db.schema
        self._views = qname(self._schema, VIEWS)
        self._checkpoints = qname(self._schema, CHECKPOINTS)
        self._ready = False
        self._ready_lock = threading.Lock()
        self._closed = False

    # ------------------------------------------------------------------------------- basics
    @property
    def capabilities(self) -> Capabilities:
        return self._caps

    @property
    def dialect(self) -> str:
        """``postgres`` (sqlglot's name for PostgreSQL's dialect)."""
        return DIALECT

    def close(self) -> None:
        """Stop serving calls; the pool is closed only if this store owns it. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._owns_db:
            self._db.close()

    def _ensure(self) -> None:
        if self._closed:
            raise Unavailable("the feature store is closed")
        if self._ready:
            return
        with self._ready_lock:
            if self._ready:
                return
            statements = [
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (name text NOT NULL, version integer NOT NULL,"
                    " fingerprint text NOT NULL, definition text NOT NULL,"
                    " created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (name, version))"
                ).format(self._views),
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (key text PRIMARY KEY, value text NOT NULL,"
                    " updated_at timestamptz NOT NULL DEFAULT now())"
                ).format(self._checkpoints),
            ]
            with self._db.connection("creating the feature store's catalog") as conn:
                run_ddl(conn, self._schema, statements)
            self._ready = True

    # ------------------------------------------------------------------------------- tables
    def load(
        self,
        table: str,
        data: pa.Table | pa.RecordBatchReader | Iterable[pa.RecordBatch],
        *,
        mode: Literal["append", "replace"] = "append",
        checkpoint: tuple[str, str] | None = None,
    ) -> int:
        """Load rows into ``table`` (created if missing); return how many were loaded.

        ``append`` adds rows (and any new columns); ``replace`` swaps the table's rows and
        schema for ``data``. ``checkpoint=(key, value)`` is committed in the same transaction as
        the rows. Errors: :class:`InvalidInput` (bad name, mode, checkpoint or data, a value
        PostgreSQL cannot store such as a NUL character in text or sub-microsecond timestamps),
        :class:`SchemaError` (a column whose type cannot be appended to the stored one); on any
        error nothing is written.
        """
        reader = prepare_load(table, data, mode, checkpoint)
        names = reader.schema.names
        incoming = {
            f.name: pg_type_for(f.type, f"load {table}: column {f.name!r}") for f in reader.schema
        }
        self._ensure()
        target = qname(self._schema, table)
        with self._db.connection(f"load {table}") as conn:
            advisory_lock(conn, "table", self._schema, table)
            existing = self._table_columns(conn, table)
            if existing is None or mode == "replace":
                kinds = [incoming[n][0] for n in names]
                conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(target))
                columns = sql.SQL(", ").join(
                    sql.SQL("{} {}").format(ident(n), sql.SQL(incoming[n][1])) for n in names
                )
                conn.execute(sql.SQL("CREATE TABLE {} ({})").format(target, columns))
            else:
                names = _match_case(names, existing)
                kinds, ddl = _plan_append(table, names, reader.schema, existing, incoming)
                for name, type_sql in ddl:
                    conn.execute(
                        sql.SQL("ALTER TABLE {} ADD COLUMN {} {}").format(
                            target,
                            ident(name),
                            sql.SQL(type_sql),
                        )
                    )
            statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
                target, sql.SQL(", ").join(ident(n) for n in names)
            )
            loaded = 0
            with conn.cursor() as cur, cur.copy(statement) as copy:
                copy.write(HEADER)
                for batch in reader:
                    for piece in encode_batch(batch, kinds):
                        copy.write(piece)
                    loaded += batch.num_rows
                copy.write(TRAILER)
            if checkpoint is not None:
                conn.execute(
                    sql.SQL(
                        "INSERT INTO {} (key, value) VALUES (%s, %s) ON CONFLICT (key)"
                        " DO UPDATE SET value = excluded.value, updated_at = now()"
                    ).format(self._checkpoints),
                    checkpoint,
                )
        return loaded

    def _table_columns(self, conn: Any, table: str) -> dict[str, tuple[str | None, str]] | None:
        """``name -> (kind, SQL type)`` of an existing table's columns, ``None`` if it is absent."""
        rows = conn.execute(
            "SELECT a.attname, a.atttypid, format_type(a.atttypid, a.atttypmod)"
            " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0"
            " AND NOT a.attisdropped"
            " WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p')"
            " ORDER BY a.attnum",
            (self._schema, table),
        ).fetchall()
        if not rows:
            return None
        return {
            str(name): (kind_of_oid(int(oid)), str(type_sql))
            for name, oid, type_sql in rows
            if name is not None
        }

    def checkpoint(self, key: str) -> str | None:
        """The value last stored with ``checkpoint=(key, value)``, or ``None``."""
        if not isinstance(key, str) or not key:
            raise InvalidInput("checkpoint keys are non-empty strings")
        self._ensure()
        with self._db.connection(f"reading checkpoint {key!r}") as conn:
            row = conn.execute(
                sql.SQL("SELECT value FROM {} WHERE key = %s").format(self._checkpoints), (key,)
            ).fetchone()
        return None if row is None else str(row[0])

    def tables(self) -> list[str]:
        """Source tables of the schema, sorted: not views, not strataml's own tables (names
        starting with ``_strataml``), and not the pgvector store's collection tables when a
        ``pgvector`` store shares the schema."""
        self._ensure()
        with self._db.connection("listing tables") as conn:
            rows = conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = %s AND c.relkind IN ('r', 'p')"
                " AND NOT starts_with(lower(c.relname), %s)",
                (self._schema, INTERNAL_PREFIX),
            ).fetchall()
            names = {str(r[0]) for r in rows}
        return sorted(names)

    # -------------------------------------------------------------------------------- views
    def register(self, view: FeatureView) -> FeatureView:
        """Validate and persist a view definition; return it with ``features`` resolved.

        The SQL must be one query that runs and yields the entity columns, the timestamp column
        (timestamp, timestamptz or date) and the features (when ``features`` is omitted: every
        other column, in query order; each must be an identifier). Registering an existing
        name/version again returns the stored definition when the fingerprint is unchanged and
        raises :class:`SchemaError` otherwise. Errors: :class:`SchemaError`,
        :class:`InvalidInput`.
        """
        if not isinstance(view, FeatureView):
            raise InvalidInput(f"register() takes a FeatureView, not {type(view).__name__}")
        self._ensure()
        stored = self._lookup(view.name, view.version)
        if stored is not None:
            return self._same_or_fail(view, *stored)
        resolved = self._bind(view).view
        with self._db.connection(f"registering feature view {view.ref}") as conn:
            cur = conn.execute(
                sql.SQL(
                    "INSERT INTO {} (name, version, fingerprint, definition)"
                    " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING"
                ).format(self._views),
                (
                    resolved.name,
                    resolved.version,
                    resolved.fingerprint,
                    resolved.model_dump_json(),
                ),
            )
            inserted = cur.rowcount == 1
        if inserted:
            return resolved
        stored = self._lookup(view.name, view.version)  # registered concurrently
        assert stored is not None
        return self._same_or_fail(view, *stored)

    def _same_or_fail(
        self, view: FeatureView, existing: FeatureView, fingerprint: str
    ) -> FeatureView:
        same = (
            view
            if view.features is not None
            else view.model_copy(update={"features": existing.features})
        )
        if same.fingerprint == fingerprint:
            return existing
        evolved = evolve(view, existing, lambda v: self._bind(v).view)
        if evolved is None:
            raise refused(view, self._latest_version(view.name))
        with self._db.connection(f"evolving feature view {view.ref}") as conn:
            cur = conn.execute(
                sql.SQL(
                    "UPDATE {} SET fingerprint = %s, definition = %s"
                    " WHERE name = %s AND version = %s AND fingerprint = %s"
                ).format(self._views),
                (
                    evolved.fingerprint,
                    evolved.model_dump_json(),
                    evolved.name,
                    evolved.version,
                    fingerprint,
                ),
            )
            if cur.rowcount == 1:
                return evolved
        stored = self._lookup(view.name, view.version)  # evolved concurrently: check again
        assert stored is not None
        return self._same_or_fail(view, *stored)

    def _bind(self, view: FeatureView) -> _Bound:
        """Check ``view`` against the engine; return it with features resolved and its types."""
        text = transpile(view.sql, view.ref)
        try:
            with self._db.connection(f"checking feature view {view.ref}") as conn:
                cols = describe(conn, user_sql(text))
        except Unavailable:
            raise
        except StrataError as exc:
            raise SchemaError(f"feature view {view.ref}: SQL does not run: {exc}") from exc
        if len({c.name for c in cols}) != len(cols):
            raise SchemaError(f"feature view {view.ref}: the query returns duplicate column names")
        columns = {c.name: c for c in cols}
        stamp = columns.get(view.timestamp)
        resolved = resolve_view(
            view,
            [c.name for c in cols],
            temporal=stamp is not None and _kind(stamp) in _TIME_KINDS,
        )
        return _Bound(resolved, text, columns)

    def _lookup(self, name: str, version: int | None) -> tuple[FeatureView, str] | None:
        query: LiteralString = "SELECT definition, fingerprint FROM {} WHERE name = %s"
        params: list[Any] = [name]
        if version is not None:
            query += " AND version = %s"
            params.append(version)
        query += " ORDER BY version DESC LIMIT 1"
        self._ensure()
        with self._db.connection(f"reading feature view {name}") as conn:
            row = conn.execute(sql.SQL(query).format(self._views), params).fetchone()
        if row is None:
            return None
        return FeatureView.model_validate_json(row[0]), str(row[1])

    def _latest_version(self, name: str) -> int:
        with self._db.connection(f"reading feature view {name}") as conn:
            row = conn.execute(
                sql.SQL("SELECT max(version) FROM {} WHERE name = %s").format(self._views), (name,)
            ).fetchone()
        return int(row[0]) if row and row[0] is not None else 0

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
        self._ensure()
        with self._db.connection("listing feature views") as conn:
            rows = conn.execute(sql.SQL("SELECT definition FROM {}").format(self._views)).fetchall()
        out = [FeatureView.model_validate_json(r[0]) for r in rows]
        return sorted(out, key=lambda v: (v.name, v.version))

    def _for_compute(self, view: str | FeatureView) -> _Bound:
        return self._bind(definition_for_compute(view, self.get_view, self._lookup))

    # ------------------------------------------------------------------------------ compute
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
        at most ``batch_size`` rows, through a binary ``COPY`` (bounded memory); with
        ``latest=True`` only each entity's newest row in the window, ordered by the entity
        columns (``DISTINCT ON``).

        Columns: the entities, the timestamp (naive UTC ``timestamp[us]``) and the features. A
        name means the latest registered version; a :class:`FeatureView` must match its
        registered definition (:class:`SchemaError` otherwise) or, if unregistered, is validated
        and computed without being stored. The reader holds a pooled connection until it is
        exhausted or closed. Errors: :class:`NotFound`, :class:`SchemaError`,
        :class:`InvalidInput`.
        """
        lo, hi = compute_window(start, end, batch_size)
        bound = self._for_compute(view)
        v = bound.view
        assert v.features is not None
        src = ident("_strataml_v")
        ts_col = sql.SQL("{}.{}").format(src, ident(v.timestamp))
        cols: list[sql.Composable] = [sql.SQL("{}.{}").format(src, ident(e)) for e in v.entities]
        cols.append(
            sql.SQL("{} AS {}").format(
                _utc_naive(ts_col, _kind(bound.columns[v.timestamp])), ident(v.timestamp)
            )
        )
        cols += [sql.SQL("{}.{}").format(src, ident(f)) for f in v.features]
        query: sql.Composable = sql.SQL("SELECT * FROM (SELECT {} FROM ({}) AS {}) AS _c").format(
            sql.SQL(", ").join(cols), user_sql(bound.sql), src
        )
        where: list[sql.Composable] = []
        for op, value in ((">=", lo), ("<", hi)):
            if value is not None:
                where.append(
                    sql.SQL("_c.{} {} {}").format(
                        ident(v.timestamp),
                        sql.SQL(op),
                        sql.Literal(value),
                    )
                )
        if where:
            query = sql.SQL("{} WHERE {}").format(query, sql.SQL(" AND ").join(where))
        if latest:
            keys = sql.SQL(", ").join(sql.SQL("_l.{}").format(ident(e)) for e in v.entities)
            query = sql.SQL(
                "SELECT DISTINCT ON ({keys}) * FROM ({q}) AS _l ORDER BY {keys}, _l.{ts} DESC"
            ).format(keys=keys, q=query, ts=ident(v.timestamp))
        batches = self._stream(query, batch_size, f"computing feature view {v.ref}")
        schema = next(batches)
        assert isinstance(schema, pa.Schema)
        return pa.RecordBatchReader.from_batches(schema, batches)

    def _stream(self, query: sql.Composable, batch_size: int, what: str) -> Iterator[Any]:
        """Yield the result's schema, then its batches (the connection is held in between)."""
        self._ensure()
        with self._db.connection(what) as conn:
            cols = describe(conn, query)
            yield pa.schema([pa.field(c.name, c.arrow) for c in cols])
            yield from stream_query(
                conn,
                decodable(query, cols),
                cols,
                batch_size,
            )

    # --------------------------------------------------------------------------- historical
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
        order requested (duplicates dropped). Label timestamps are compared at microsecond
        precision (finer ones are floored, which never admits a later feature row). When
        several view rows share an entity key and event time, which one is used is unspecified.

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
        entities: list[str] = []
        for bound in groups.values():
            lacking = [e for e in bound.view.entities if e not in names]
            if lacking:
                raise InvalidInput(
                    f"labels lack entity column(s) {lacking} of feature view {bound.view.ref}"
                )
            for e in bound.view.entities:
                label_kind = pg_type_for(table.schema.field(e).type, f"labels column {e!r}")[0]
                view_kind = _kind(bound.columns[e])
                if _FAMILY.get(label_kind, label_kind) != _FAMILY.get(view_kind, view_kind):
                    raise InvalidInput(
                        f"labels column {e!r} ({table.schema.field(e).type}) cannot be compared "
                        f"with {bound.view.ref}'s {e!r} ({view_kind})"
                    )
                if e not in entities:
                    entities.append(e)
        result = self._point_in_time(table, timestamp, entities, groups, outputs)
        out = table
        for name, column in zip(result.column_names, result.columns, strict=True):
            out = out.append_column(name, column)
        return out

    def _plan(
        self, refs: Sequence[str], full_names: bool
    ) -> tuple[dict[tuple[str, int], _Bound], list[tuple[tuple[str, int], str, str]]]:
        """Resolve references (:func:`strataml.features.refs.plan_features`) and bind each
        view to this engine."""
        plan = plan_features(refs, self.get_view, full_names=full_names)
        return {key: self._bind(view) for key, view in plan.views.items()}, plan.outputs

    def _point_in_time(
        self,
        labels: pa.Table,
        timestamp: str,
        entities: list[str],
        groups: dict[tuple[str, int], _Bound],
        outputs: list[tuple[tuple[str, int], str, str]],
    ) -> pa.Table:
        """The feature columns for every label row, in label order (one transaction)."""
        kinds = {
            e: pg_type_for(labels.schema.field(e).type, f"labels column {e!r}") for e in entities
        }
        fields = [
            encode_column(pa.array(range(labels.num_rows), type=pa.int64()), "int8", _ROW),
            *(encode_column(labels.column(e), kinds[e][0], e) for e in entities),
            encode_column(labels.column(timestamp), "timestamp", timestamp, floor_ns=True),
        ]
        lab = ident(_LABELS)
        what = "point-in-time join"
        with self._db.connection(what) as conn:
            conn.execute(
                sql.SQL("CREATE TEMP TABLE {} ({} bigint, {}, {} timestamp) ON COMMIT DROP").format(
                    lab,
                    ident(_ROW),
                    sql.SQL(", ").join(
                        sql.SQL("{} {}").format(ident(e), sql.SQL(kinds[e][1])) for e in entities
                    ),
                    ident(_LTS),
                )
            )
            with (
                conn.cursor() as cur,
                cur.copy(sql.SQL("COPY {} FROM STDIN (FORMAT BINARY)").format(lab)) as copy,
            ):
                copy.write(HEADER)
                copy.write(encode_rows(fields, labels.num_rows))
                copy.write(TRAILER)
            conn.execute(sql.SQL("ANALYZE {}").format(lab))
            joins: list[sql.Composable] = []
            select: list[sql.Composable] = []
            for g, (key, bound) in enumerate(groups.items()):
                table = ident(f"_strataml_pit_{g}")
                alias = ident(f"g{g}")
                self._materialize(conn, table, bound, [o for o in outputs if o[0] == key])
                v = bound.view
                match = sql.SQL(" AND ").join(
                    sql.SQL("v.{} = l.{}").format(ident(e), ident(e)) for e in v.entities
                )
                wanted = list(dict.fromkeys(f for k, f, _ in outputs if k == key))
                joins.append(
                    sql.SQL(
                        " LEFT JOIN LATERAL (SELECT v.{vts}, {cols} FROM {table} AS v"
                        " WHERE {match} AND v.{vts} <= l.{lts} ORDER BY v.{vts} DESC LIMIT 1)"
                        " AS {alias} ON TRUE"
                    ).format(
                        vts=ident(_VTS),
                        lts=ident(_LTS),
                        cols=sql.SQL(", ").join(sql.SQL("v.{}").format(ident(f)) for f in wanted),
                        table=table,
                        match=match,
                        alias=alias,
                    )
                )
                for k, feature, out in outputs:
                    if k != key:
                        continue
                    value = sql.SQL("{}.{}").format(alias, ident(feature))
                    if v.ttl is not None:
                        value = sql.SQL("CASE WHEN {}.{} >= l.{} - {} THEN {} END").format(
                            alias, ident(_VTS), ident(_LTS), sql.Literal(v.ttl), value
                        )
                    select.append(sql.SQL("{} AS {}").format(value, ident(out)))
            query = sql.SQL("SELECT l.{}, {} FROM {} AS l{}").format(
                ident(_ROW), sql.SQL(", ").join(select), lab, sql.Composed(joins)
            )
            cols = describe(conn, query)
            ordered = decodable(query, cols, order_by_first=True)  # the label row number
            batches = list(stream_query(conn, ordered, cols, 1 << 20))
        schema = pa.schema([pa.field(c.name, c.arrow) for c in cols])
        result = pa.Table.from_batches(batches, schema=schema).drop_columns([_ROW])
        if result.num_rows != labels.num_rows:
            raise StrataError(f"{what}: expected {labels.num_rows} rows, got {result.num_rows}")
        return result

    @staticmethod
    def _materialize(
        conn: Any, table: sql.Identifier, bound: _Bound, outputs: list[tuple[Any, str, str]]
    ) -> None:
        """The view's rows for the labels' entities (up to the last label time), indexed on
        ``(entities, event time)`` for the LATERAL probes."""
        v = bound.view
        src = ident("s")
        ents = [sql.SQL("s.{}").format(ident(e)) for e in v.entities]
        ts_col = sql.SQL("s.{}").format(ident(v.timestamp))
        wanted = list(dict.fromkeys(f for _, f, _ in outputs))
        cols = [
            *ents,
            sql.SQL("{} AS {}").format(
                _utc_naive(ts_col, _kind(bound.columns[v.timestamp])), ident(_VTS)
            ),
            *(sql.SQL("s.{}").format(ident(f)) for f in wanted),
        ]
        label_ents = sql.SQL(", ").join(sql.SQL("l.{}").format(ident(e)) for e in v.entities)
        conn.execute(
            sql.SQL(
                "CREATE TEMP TABLE {table} ON COMMIT DROP AS SELECT {cols} FROM ({view}) AS {src}"
                " WHERE ({ents}) IN (SELECT {label_ents} FROM {labels} AS l)"
            ).format(
                table=table,
                cols=sql.SQL(", ").join(cols),
                view=user_sql(bound.sql),
                src=src,
                ents=sql.SQL(", ").join(ents),
                label_ents=label_ents,
                labels=ident(_LABELS),
            )
        )
        conn.execute(
            sql.SQL("CREATE INDEX ON {} ({}, {})").format(
                table, sql.SQL(", ").join(ident(e) for e in v.entities), ident(_VTS)
            )
        )
        conn.execute(sql.SQL("ANALYZE {}").format(table))

    # ---------------------------------------------------------------------------------- sql
    def sql(self, query: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> pa.Table:
        """Run SQL in PostgreSQL's dialect with psycopg placeholders (``%s`` with a sequence,
        ``%(name)s`` with a mapping; ``%%`` for a literal ``%`` when params are given) and
        return the result as Arrow (an empty table for statements without one). Queries are
        read through binary COPY with the same types as :meth:`compute`.

        Errors: :class:`SchemaError` (SQL that does not parse or bind), :class:`NotFound`
        (unknown table), :class:`InvalidInput` (bad parameters or values: one psycopg cannot
        adapt, more or fewer values than placeholders, a missing name).
        """
        if not isinstance(query, str) or not query.strip():
            raise InvalidInput("query must be a non-empty SQL string")
        if params is not None and (
            isinstance(params, str | bytes) or not isinstance(params, Sequence | Mapping)
        ):
            raise InvalidInput("params must be a sequence or a mapping of values")
        bind: Any = (
            None if not params else (dict(params) if isinstance(params, Mapping) else list(params))
        )
        self._ensure()
        text = query.strip().rstrip(";")
        with self._db.connection("running SQL") as conn:
            if not is_query(text):
                with _binding(bind):
                    cur = conn.execute(user_sql(text), bind)
                if cur.description is None:
                    return pa.table({})
                names = [c.name for c in cur.description]
                rows = cur.fetchall()
                return pa.table({n: pa.array([r[i] for r in rows]) for i, n in enumerate(names)})
            # COPY takes no bound parameters: merge them as literals once, so the query that
            # is described is the one that is copied (a bound 3 is a smallint, a literal 3 an
            # integer: describing one and copying the other misread the column)
            if bind is not None:
                with _binding(bind):
                    text = psycopg.ClientCursor(conn).mogrify(text, bind)
            inner = user_sql(text)
            wrapped = sql.SQL("SELECT * FROM ({}) AS _strataml_d LIMIT 0").format(inner)
            cur = conn.execute(wrapped)
            assert cur.description is not None
            cols = [
                result_column(c.name, c.type_code, c.precision, c.scale) for c in cur.description
            ]
            select = decodable(inner, cols)
            statement = sql.SQL("COPY ({}) TO STDOUT (FORMAT BINARY)").format(select)
            schema = pa.schema([pa.field(c.name, c.arrow) for c in cols])
            batches = list(_copy_batches(conn, statement, cols))
        return pa.Table.from_batches(batches, schema=schema)


@contextmanager
def _binding(bind: Any) -> Iterator[None]:
    """Client-side failures to bind ``sql()``'s parameters (a value psycopg cannot adapt, more
    or fewer values than placeholders, a missing name, a bare ``%``) as :class:`InvalidInput`;
    errors of the server (which carry a SQLSTATE) pass through to be translated."""
    try:
        yield
    except psycopg.ProgrammingError as exc:
        if bind is None or exc.sqlstate is not None:
            raise
        raise InvalidInput(
            f"running SQL: cannot bind the parameters: {exc} (placeholders are %s with a "
            "sequence or %(name)s with a mapping; write %% for a literal %)"
        ) from exc


def _copy_batches(
    conn: Any, statement: sql.Composable, cols: list[ResultColumn]
) -> Iterator[pa.RecordBatch]:
    """Batches of a ``COPY ... TO STDOUT (FORMAT BINARY)``."""
    schema = pa.schema([pa.field(c.name, c.arrow) for c in cols])
    with conn.cursor() as cur, cur.copy(statement) as copy:
        reader = CopyOutReader(conn, copy)
        while not reader.done:
            buf, lens = reader.read(1 << 16)
            if lens:
                yield pa.RecordBatch.from_arrays(decode_rows(buf, lens, cols), schema=schema)


def _match_case(names: list[str], existing: dict[str, Any]) -> list[str]:
    """Incoming column names spelled as the table spells them (matched case-insensitively)."""
    by_lower = {name.lower(): name for name in existing}
    return [n if n in existing else by_lower.get(n.lower(), n) for n in names]


def _plan_append(
    table: str,
    names: list[str],
    schema: pa.Schema,
    existing: dict[str, tuple[str | None, str]],
    incoming: dict[str, tuple[str, str]],
) -> tuple[list[str], list[tuple[str, str]]]:
    """The kinds to encode the incoming columns as, and the columns to add; :class:`SchemaError`
    when a column cannot take the incoming type (nothing is changed yet). ``names`` are the
    incoming columns as the table spells them."""
    kinds: list[str] = []
    add: list[tuple[str, str]] = []
    bad: list[str] = []
    for name, f in zip(names, schema, strict=True):
        kind, type_sql = incoming[f.name]
        if name not in existing:
            add.append((name, type_sql))
            kinds.append(kind)
            continue
        have_kind, have_sql = existing[name]
        if (pa.types.is_null(f.type) and have_kind is not None) or (
            have_kind is not None
            and (have_kind == kind or have_kind in _WIDENS.get(kind, frozenset()))
        ):
            kinds.append(have_kind)
        else:
            bad.append(f"{f.name!r} is {have_sql} in the table but {f.type} in the data")
    if bad:
        raise SchemaError(
            f"load {table}: incompatible column types: {'; '.join(bad)}; cast the data or load "
            "it with mode='replace'"
        )
    return kinds, add
