"""The BigQuery feature store: source tables loaded from Arrow, versioned SQL feature views.

* **Loads** spool the Arrow input to a Parquet file (bounded memory; every conversion error is
  raised before BigQuery is called). When the data has exactly the table's columns (or the
  table is missing) and there is no checkpoint, one load job into the table does it (atomic).
  Otherwise the file is loaded into a staging table, then the rows move into the target with
  one ``INSERT ... SELECT`` (by column name, see :mod:`strataml_bigquery.loadplan`). With a
  checkpoint, or in ``replace`` mode, the INSERT, the ``DELETE`` of the old rows and the
  checkpoint ``MERGE`` run in one multi-statement **transaction** (``BEGIN TRANSACTION ...
  COMMIT TRANSACTION``; BigQuery rolls it back if any statement fails), so the checkpoint is
  committed with the rows. BigQuery transactions cannot contain DDL on permanent tables, so
  three steps run before it: creating a missing target table, adding new columns (``ALTER
  TABLE ... ADD COLUMN``, nullable, one statement per column), and -- for ``replace`` with a
  *changed* schema -- ``CREATE OR REPLACE TABLE ... AS SELECT``, after which the checkpoint is
  stored by its own statement (replacing is idempotent, so a loader resuming from the previous
  checkpoint converges).
* **Appends** add new columns (older rows read NULL) and accept an incoming type that widens
  (INT64 into FLOAT64/NUMERIC/BIGNUMERIC, NUMERIC into BIGNUMERIC/FLOAT64, DATE into
  DATETIME/TIMESTAMP, DATETIME and TIMESTAMP into each other, in UTC); anything else is a
  :class:`~strataml.errors.SchemaError` raised before anything is written. A column with no
  Arrow type (all NULL) is stored as STRING.
* **Catalog**: ``_strataml_views`` (one row per name and version, the definition as JSON;
  registered with a ``MERGE`` that inserts only if absent, so two writers cannot both win) and
  ``_strataml_checkpoints``. Tables whose names start with ``_strataml`` are strataml's own.
* **View SQL** is written in the canonical dialect and transpiled with sqlglot
  (:func:`strataml_bigquery.sql.transpile`); unqualified table names resolve to the dataset.
* **Point-in-time joins** (:mod:`strataml_bigquery.pit`): the labels' row number, entity keys
  and UTC timestamp are loaded into a staging table; one query then computes, per view, a
  window over the union of the view's rows and the label rows partitioned by entity and ordered
  by ``(time, feature rows first)``: ``LAST_VALUE(STRUCT(event time, features...) IGNORE
  NULLS)`` carries the latest feature row at or before each label (BigQuery has no ``ASOF
  JOIN``). NULL feature values stay NULL (the whole row is carried, never one column's last
  non-null value), NULL entity keys never match, values older than the TTL are nulled with a
  ``CASE``, and the label rows come back in input order.
* Timestamps compare in UTC: TIMESTAMP is an instant, DATETIME and naive Arrow timestamps are UTC,
  DATE is midnight UTC; label times finer than microseconds are floored.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import pyarrow as pa

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
from strataml.models import FeatureView
from strataml_bigquery.bqtypes import (
    TIME_TYPES,
    BQColumn,
    bq_column,
    family,
    from_schema_field,
    result_schema,
    type_sql,
    upload_schema,
)
from strataml_bigquery.engine import BigQueryEngine, Query
from strataml_bigquery.loadplan import LoadPlan, checkpoint_merge, plan_load
from strataml_bigquery.pit import ROW, BoundView, labels_table, pit_sql
from strataml_bigquery.spool import Spool
from strataml_bigquery.sql import DIALECT, Param, infer_param, quote, scalar_param, user_params

__all__ = ["CHECKPOINTS", "STAGE_PREFIX", "VIEWS", "BigQueryFeatureStore"]

VIEWS = "_strataml_views"
CHECKPOINTS = "_strataml_checkpoints"
STAGE_PREFIX = "_strataml_stage_"

_VIEW_COLUMNS = [
    BQColumn("name", "STRING"),
    BQColumn("version", "INT64"),
    BQColumn("fingerprint", "STRING"),
    BQColumn("definition", "STRING"),
    BQColumn("created_at", "TIMESTAMP"),
]
_CHECKPOINT_COLUMNS = [
    BQColumn("key", "STRING"),
    BQColumn("value", "STRING"),
    BQColumn("updated_at", "TIMESTAMP"),
]


def _utc_datetime_sql(expr: str, bq_type: str) -> str:
    """``expr`` (TIMESTAMP, DATETIME or DATE) as a naive UTC DATETIME."""
    if bq_type == "DATETIME":
        return expr
    if bq_type == "TIMESTAMP":
        return f"DATETIME({expr}, 'UTC')"
    return f"DATETIME({expr})"


def _is_script(text: str) -> bool:
    """Whether ``text`` holds several statements (so it must not be sent as a dry run)."""
    import sqlglot
    from sqlglot.errors import SqlglotError

    try:
        return len([t for t in sqlglot.parse(text, read=DIALECT) if t is not None]) > 1
    except SqlglotError:
        return text.rstrip().rstrip(";").count(";") > 0


class BigQueryFeatureStore:
    """:class:`~strataml.protocols.FeatureStore` on BigQuery (see the module docstring).

    ``engine`` is the stack's client (shared with the training source); :meth:`close` leaves it
    open unless ``owns_engine``. Tables named in view SQL and in :meth:`sql` resolve to the
    configured dataset.
    """

    def __init__(self, engine: BigQueryEngine, *, owns_engine: bool = False) -> None:
        from strataml_bigquery import FEATURES_CAPS

        self._engine = engine
        self._owns_engine = owns_engine
        self._caps = FEATURES_CAPS
        self._ready = False
        self._ready_lock = threading.Lock()
        self._closed = False

    # ------------------------------------------------------------------------------- basics
    @property
    def capabilities(self) -> Capabilities:
        return self._caps

    @property
    def dialect(self) -> str:
        """``bigquery`` (sqlglot's name for GoogleSQL)."""
        return DIALECT

    def close(self) -> None:
        """Stop serving calls; the engine is closed only if this store owns it. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._owns_engine:
            self._engine.close()

    def _ensure(self) -> None:
        if self._closed:
            raise Unavailable("the feature store is closed")
        if self._ready:
            return
        with self._ready_lock:
            if self._ready:
                return
            self._engine.ensure_dataset()
            self._engine.create_table(VIEWS, _VIEW_COLUMNS, exists_ok=True)
            self._engine.create_table(CHECKPOINTS, _CHECKPOINT_COLUMNS, exists_ok=True)
            self._ready = True

    def _ref(self, name: str) -> str:
        return self._engine.ref(name)

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
        schema for ``data``. ``checkpoint=(key, value)`` commits in the same transaction as the
        rows (the one exception, a ``replace`` that changes the schema, is in the module
        docstring). Errors: :class:`InvalidInput` (bad name, mode, checkpoint, data or a type
        BigQuery cannot store), :class:`SchemaError` (a column whose type cannot be appended),
        :class:`LimitExceeded` (the cost guard); on any of them no row and no checkpoint is
        written.
        """
        reader = prepare_load(table, data, mode, checkpoint)
        what = f"load {table}"
        incoming, _ = upload_schema(reader.schema, what)
        self._ensure()
        plan = plan_load(table, mode, self._engine.columns(table), incoming)
        with Spool(what) as spool:
            spool.spool_reader(reader)
            if plan.direct and checkpoint is None:  # one load job: atomic, and free
                self._engine.load_parquet(
                    spool.path, table, spool.columns, what, truncate=plan.truncate
                )
                return spool.rows
            stage = f"{STAGE_PREFIX}{uuid.uuid4().hex}"
            try:
                self._engine.create_table(stage, spool.columns, staging=True)
                self._engine.load_parquet(spool.path, stage, spool.columns, what)
                self._commit(table, stage, plan, checkpoint, what)
            finally:
                self._engine.drop_quietly(stage)
            return spool.rows

    def _commit(
        self,
        table: str,
        stage: str,
        plan: LoadPlan,
        checkpoint: tuple[str, str] | None,
        what: str,
    ) -> None:
        """Move the staged rows into ``table`` (and store the checkpoint) per ``plan``."""
        engine = self._engine
        target, source = self._ref(table), self._ref(stage)
        if plan.ctas:
            engine.query(Query(f"CREATE OR REPLACE TABLE {target} AS SELECT * FROM {source}"), what)
            if checkpoint is not None:
                engine.catalog(Query(checkpoint_merge(self._ref(CHECKPOINTS), *checkpoint)), what)
            return
        if plan.create is not None:
            engine.create_table(table, plan.create, exists_ok=True)
        for col in plan.add:
            engine.catalog(
                Query(
                    f"ALTER TABLE {target} ADD COLUMN IF NOT EXISTS {quote(col.name)} "
                    f"{type_sql(col)}"
                ),
                what,
            )
        insert = (
            f"INSERT INTO {target} ({', '.join(plan.targets)}) "
            f"SELECT {', '.join(plan.selects)} FROM {source}"
        )
        if not plan.truncate and checkpoint is None:
            engine.query(Query(insert), what)  # one statement: atomic on its own
            return
        engine.dry_run(Query(insert), what)  # the cost guard of the script's data statement
        statements = ["BEGIN TRANSACTION"]
        if plan.truncate:
            statements.append(f"DELETE FROM {target} WHERE TRUE")
        statements.append(insert)
        if checkpoint is not None:
            statements.append(checkpoint_merge(self._ref(CHECKPOINTS), *checkpoint))
        statements.append("COMMIT TRANSACTION")
        engine.script(";\n".join(statements) + ";", what)

    def checkpoint(self, key: str) -> str | None:
        """The value last stored with ``checkpoint=(key, value)``, or ``None``."""
        if not isinstance(key, str) or not key:
            raise InvalidInput("checkpoint keys are non-empty strings")
        self._ensure()
        rows = self._engine.rows(
            Query(
                f"SELECT value FROM {self._ref(CHECKPOINTS)} WHERE key = @key",
                [scalar_param("key", infer_param(key))],
            ),
            f"reading checkpoint {key!r}",
        )
        return str(rows[0][0]) if rows else None

    def tables(self) -> list[str]:
        """Source tables (not strataml's own catalog, staging or dataset tables), sorted."""
        self._ensure()
        names = self._engine.list_tables()
        return sorted(n for n in names if not n.lower().startswith(INTERNAL_PREFIX))

    # -------------------------------------------------------------------------------- views
    def register(self, view: FeatureView) -> FeatureView:
        """Validate and persist a view definition; return it with ``features`` resolved.

        The SQL (canonical dialect) must be one query that BigQuery accepts (a dry run) and
        that returns the entity columns, the timestamp column (TIMESTAMP, DATETIME or DATE) and
        the features. Registering an existing name/version returns the stored definition when
        the fingerprint is unchanged, evolves it when the change only adds columns
        (:mod:`strataml.features.evolution`), and raises :class:`SchemaError` otherwise. The
        catalog row is inserted by a ``MERGE`` that only inserts when the name/version is
        absent, and evolved by an ``UPDATE`` conditioned on the fingerprint read, so concurrent
        writers never overwrite each other. Errors: :class:`SchemaError`,
        :class:`InvalidInput`, :class:`LimitExceeded`.
        """
        if not isinstance(view, FeatureView):
            raise InvalidInput(f"register() takes a FeatureView, not {type(view).__name__}")
        self._ensure()
        stored = self._lookup(view.name, view.version)
        if stored is not None:
            return self._same_or_evolve(view, *stored)
        resolved = self._bind(view).view
        inserted = self._engine.catalog(
            Query(
                f"MERGE {self._ref(VIEWS)} AS t USING (SELECT @name AS name, @version AS version,"
                " @fingerprint AS fingerprint, @definition AS definition) AS s"
                " ON t.name = s.name AND t.version = s.version WHEN NOT MATCHED THEN INSERT"
                " (name, version, fingerprint, definition, created_at) VALUES (s.name,"
                " s.version, s.fingerprint, s.definition, CURRENT_TIMESTAMP())",
                self._definition_params(resolved),
            ),
            f"registering feature view {view.ref}",
        )
        if inserted.num_dml_affected_rows == 1:
            return resolved
        stored = self._lookup(view.name, view.version)  # registered concurrently
        if stored is None:
            raise BackendError(f"feature view {view.ref} was neither inserted nor found")
        return self._same_or_evolve(view, *stored)

    @staticmethod
    def _definition_params(view: FeatureView) -> list[Any]:
        return [
            scalar_param("name", infer_param(view.name)),
            scalar_param("version", infer_param(view.version)),
            scalar_param("fingerprint", infer_param(view.fingerprint)),
            scalar_param("definition", infer_param(view.model_dump_json())),
        ]

    def _same_or_evolve(
        self, view: FeatureView, existing: FeatureView, fingerprint: str
    ) -> FeatureView:
        """The stored definition if ``view`` has its logic; the evolved one if ``view`` only
        adds columns (compare-and-swap on the fingerprint); :class:`SchemaError` otherwise."""
        if same_logic(view, existing, fingerprint):
            return existing
        evolved = evolve(view, existing, lambda v: self._bind(v).view)
        if evolved is None:
            raise refused(view, self._latest_version(view.name))
        updated = self._engine.catalog(
            Query(
                f"UPDATE {self._ref(VIEWS)} SET fingerprint = @fingerprint, "
                "definition = @definition WHERE name = @name AND version = @version "
                "AND fingerprint = @old",
                [
                    *self._definition_params(evolved),
                    scalar_param("old", infer_param(fingerprint)),
                ],
            ),
            f"evolving feature view {view.ref}",
        )
        if updated.num_dml_affected_rows == 1:
            return evolved
        stored = self._lookup(view.name, view.version)  # evolved concurrently: check again
        if stored is None:
            raise BackendError(f"feature view {view.ref} disappeared while evolving")
        return self._same_or_evolve(view, *stored)

    def _bind(self, view: FeatureView) -> BoundView:
        """Check ``view`` against BigQuery (a dry run); return it with features resolved, its
        result columns and the bytes it scans."""
        sql = transpile_view(view)
        try:
            columns, estimate = self._engine.dry_run(
                Query(sql), f"feature view {view.ref}", user_sql=True
            )
        except NotFound as exc:
            raise SchemaError(f"feature view {view.ref}: SQL does not run: {exc}") from exc
        names = [c.name for c in columns]
        if len(set(names)) != len(names):
            raise SchemaError(f"feature view {view.ref}: the query returns duplicate column names")
        by_name = {c.name: c for c in columns}
        ts = by_name.get(view.timestamp)
        temporal = ts is not None and ts.type in TIME_TYPES and not ts.repeated
        resolved = resolve_view(view, names, temporal=temporal)
        return BoundView(resolved, sql, by_name, estimate)

    def _lookup(self, name: str, version: int | None) -> tuple[FeatureView, str] | None:
        self._ensure()
        sql = f"SELECT definition, fingerprint FROM {self._ref(VIEWS)} WHERE name = @name"
        params = [scalar_param("name", infer_param(name))]
        if version is not None:
            sql += " AND version = @version"
            params.append(scalar_param("version", infer_param(version)))
        rows = self._engine.rows(
            Query(sql + " ORDER BY version DESC LIMIT 1", params), f"reading feature view {name}"
        )
        if not rows:
            return None
        return FeatureView.model_validate_json(rows[0][0]), str(rows[0][1])

    def _latest_version(self, name: str) -> int:
        rows = self._engine.rows(
            Query(
                f"SELECT MAX(version) AS v FROM {self._ref(VIEWS)} WHERE name = @name",
                [scalar_param("name", infer_param(name))],
            ),
            f"reading feature view {name}",
        )
        return int(rows[0][0]) if rows and rows[0][0] is not None else 0

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
        rows = self._engine.rows(
            Query(f"SELECT definition FROM {self._ref(VIEWS)} ORDER BY name, version"),
            "listing feature views",
        )
        out = [FeatureView.model_validate_json(r[0]) for r in rows]
        return sorted(out, key=lambda v: (v.name, v.version))

    def _for_compute(self, view: str | FeatureView) -> BoundView:
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
        """Stream the view's rows (event time in ``[start, end)`` when given) as Arrow batches
        of at most ``batch_size`` rows; with ``latest=True`` only each entity's newest row in
        the window, ordered by the entity columns (``QUALIFY ROW_NUMBER()``).

        Columns: the entities, the timestamp (naive UTC ``timestamp[us]``) and the features. A
        name means the latest registered version; a :class:`FeatureView` must match its
        registered definition (or be an older definition of an evolved version), or, if
        unregistered, is validated and computed without being stored. The query runs (and its
        errors surface) here; pages are fetched as the reader is consumed. The cost guard uses
        the view's dry-run estimate (the window only narrows it). Errors: :class:`NotFound`,
        :class:`SchemaError`, :class:`InvalidInput`, :class:`LimitExceeded`.
        """
        lo, hi = compute_window(start, end, batch_size)
        self._ensure()
        bound = self._for_compute(view)
        v = bound.view
        ts = quote(v.timestamp)
        ts_type = bound.columns[v.timestamp].type
        cols = [f"s.{quote(e)}" for e in v.entities]
        cols.append(f"{_utc_datetime_sql('s.' + ts, ts_type)} AS {ts}")
        cols += [f"s.{quote(f)}" for f in v.features or ()]
        sql = f"SELECT * FROM (SELECT {', '.join(cols)} FROM ({bound.sql}) AS s) AS c"
        where: list[str] = []
        params: list[Any] = []
        for name, op, value in (("start", ">=", lo), ("end", "<", hi)):
            if value is not None:
                where.append(f"c.{ts} {op} @{name}")
                params.append(scalar_param(name, Param("DATETIME", value)))
        if where:
            sql += " WHERE " + " AND ".join(where)
        if latest:
            keys = ", ".join(f"c.{quote(e)}" for e in v.entities)
            sql += (
                f" QUALIFY ROW_NUMBER() OVER (PARTITION BY {keys} ORDER BY c.{ts} DESC) = 1"
                f" ORDER BY {keys}"
            )
        out_cols = [
            *(bound.columns[e] for e in v.entities),
            BQColumn(v.timestamp, "DATETIME"),
            *(bound.columns[f] for f in v.features or ()),
        ]
        schema = result_schema(out_cols)
        what = f"computing feature view {v.ref}"
        rows = self._engine.query(
            Query(sql, params),
            what,
            user_sql=True,
            page_size=max(batch_size, self._engine.config.scan_page_rows),
            dry_run=False,
            estimate=bound.estimate,
        )
        return pa.RecordBatchReader.from_batches(
            schema, self._engine.batches(rows, schema, batch_size, what)
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
        precision (finer ones are floored). When several view rows share an entity key and
        event time, which one is used is unspecified. The join is one query (see
        :mod:`strataml_bigquery.pit`); its cost guard is the sum of the views' dry-run
        estimates and the staged labels (an upper bound).

        Errors: :class:`InvalidInput` (labels lacking the timestamp or an entity column, a
        timestamp column that is not a timestamp/date, an entity column whose type cannot be
        compared with the view's, bad or clashing references, start/end with labels),
        :class:`NotFound` (unknown view, version or feature), :class:`SchemaError` (a view
        whose SQL no longer runs), :class:`LimitExceeded` (the cost guard).
        """
        table = prepare_labels(self, labels, features, timestamp=timestamp, start=start, end=end)
        names = table.column_names
        self._ensure()
        plan = plan_features(features, self.get_view, full_names=full_names)
        groups = {key: self._bind(view) for key, view in plan.views.items()}
        clash = sorted(set(names) & {out for _, _, out in plan.outputs})
        if clash:
            raise InvalidInput(
                f"feature output names {clash} clash with label columns; rename those label "
                "columns or pass full_names=True"
            )
        entities = self._label_entities(table, list(groups.values()))
        keys = list(groups)
        wanted = [[(f, out) for k, f, out in plan.outputs if k == key] for key in keys]
        out_cols = [
            BQColumn(out, groups[k].columns[f].type, groups[k].columns[f].repeated)
            for k, f, out in plan.outputs
        ]
        result = self._point_in_time(
            table, timestamp, entities, [groups[k] for k in keys], wanted, out_cols
        )
        out = table
        for col in out_cols:
            out = out.append_column(col.name, result.column(col.name))
        return out

    @staticmethod
    def _label_entities(table: pa.Table, views: list[BoundView]) -> dict[str, BQColumn]:
        """The labels' entity columns as staged; :class:`InvalidInput` when one is missing or
        cannot be compared with a view's (numbers with numbers, times with times...)."""
        names = table.column_names
        entities: dict[str, BQColumn] = {}
        for bound in views:
            lacking = [e for e in bound.view.entities if e not in names]
            if lacking:
                raise InvalidInput(
                    f"labels lack entity column(s) {lacking} of feature view {bound.view.ref}"
                )
            for e in bound.view.entities:
                label_col = bq_column(e, table.schema.field(e).type, "labels")[0]
                view_col = bound.columns[e]
                if (
                    label_col.repeated
                    or view_col.repeated
                    or (
                        not label_col.null_typed and family(label_col.type) != family(view_col.type)
                    )
                ):
                    raise InvalidInput(
                        f"labels column {e!r} ({table.schema.field(e).type}) cannot be compared "
                        f"with {bound.view.ref}'s {e!r} ({type_sql(view_col)})"
                    )
                entities[e] = view_col if label_col.null_typed else label_col
        return entities

    def _point_in_time(
        self,
        labels: pa.Table,
        timestamp: str,
        entities: dict[str, BQColumn],
        groups: list[BoundView],
        wanted: list[list[tuple[str, str]]],
        out_cols: list[BQColumn],
    ) -> pa.Table:
        """The feature columns for every label row, in label order."""
        what = "point-in-time join"
        schema = result_schema([BQColumn(ROW, "INT64"), *out_cols])
        if labels.num_rows == 0:
            return schema.empty_table()
        staged = labels_table(labels, timestamp, entities)
        stage = f"{STAGE_PREFIX}pit_{uuid.uuid4().hex}"
        sql_text, params = pit_sql(self._ref(stage), entities, groups, wanted)
        estimate = sum(g.estimate for g in groups) + staged.nbytes
        with Spool(what) as spool:
            spool.start(staged.schema)
            for batch in staged.to_batches():
                spool.write(batch)
            spool.close()
            try:
                self._engine.create_table(stage, spool.columns, staging=True)
                self._engine.load_parquet(spool.path, stage, spool.columns, what)
                rows = self._engine.query(
                    Query(sql_text, params), what, user_sql=True, dry_run=False, estimate=estimate
                )
                result = self._engine.arrow(rows, schema, what)
            finally:
                self._engine.drop_quietly(stage)
        if result.num_rows != labels.num_rows:
            raise BackendError(f"{what}: expected {labels.num_rows} rows, got {result.num_rows}")
        return result

    # ---------------------------------------------------------------------------------- sql
    def sql(self, query: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> pa.Table:
        """Run GoogleSQL (``?`` placeholders bound from a sequence, ``@name`` ones from a
        mapping; values typed by :func:`strataml_bigquery.sql.infer_param`, or pass
        ``google.cloud.bigquery`` parameter objects) and return the result as Arrow (an empty
        table for statements without one). Unqualified table names resolve to the dataset.
        Every statement is dry-run first (the cost guard); a script (several statements) only
        gets ``maximum_bytes_billed``.

        Errors: :class:`SchemaError` (SQL BigQuery rejects), :class:`NotFound` (unknown
        table), :class:`InvalidInput` (bad parameters), :class:`LimitExceeded`.
        """
        if not isinstance(query, str) or not query.strip():
            raise InvalidInput("query must be a non-empty SQL string")
        if params is not None and (
            isinstance(params, str | bytes) or not isinstance(params, Sequence | Mapping)
        ):
            raise InvalidInput("params must be a sequence or a mapping of values")
        self._ensure()
        text = query.strip()
        statement = Query(text, user_params(params))
        if not _is_script(text) and self._engine.config.max_bytes_billed is not None:
            self._engine.dry_run(statement, "running SQL", user_sql=True)
        job, rows = self._engine.run_job(statement, "running SQL", user_sql=True)
        columns = [from_schema_field(f) for f in rows.schema or ()]
        if job.statement_type not in (None, "SELECT", "SCRIPT") or not columns:
            return pa.table({})  # DDL and DML return no rows
        return self._engine.arrow(rows, result_schema(columns), "running SQL")


def transpile_view(view: FeatureView) -> str:
    """The view's SQL in BigQuery's dialect (:func:`strataml_bigquery.sql.transpile`)."""
    from strataml_bigquery.sql import transpile

    return transpile(view.sql, view.ref)
