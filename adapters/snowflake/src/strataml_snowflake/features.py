"""The Snowflake feature store: source tables loaded from Arrow, versioned SQL feature views.

* **Tables** get a column per Arrow field (:mod:`strataml_snowflake.sftypes`) and are bulk-loaded
  through a stage (:mod:`strataml_snowflake.stage`). Appends add new columns and accept an
  incoming type that widens losslessly into the stored one (integers into ``NUMBER``/``FLOAT``,
  dates into timestamps, naive and zoned timestamps into each other as instants); anything
  else is a :class:`~strataml.errors.SchemaError` raised before anything is written.
* **Transactions**: the rows (``COPY INTO``) and the checkpoint (``DELETE`` + ``INSERT`` of the
  key) commit in one transaction. Snowflake commits every DDL statement on its own, so schema
  changes happen outside it and are undone if the load fails: a new table is created first
  (dropped on failure), new columns are added first (dropped on failure); ``replace`` with the
  same columns is ``DELETE`` + ``COPY`` + checkpoint in one transaction, and ``replace`` with
  other columns fills a new table and puts it in place with one atomic ``CREATE OR REPLACE
  TABLE ... AS SELECT`` (the rows are written twice), then stores the checkpoint. A failure
  between the two leaves the new rows with the old checkpoint: the loader replays a replace,
  it never skips one.
* **Catalog**: view definitions in ``_STRATAML_VIEWS`` (one row per name and version, the
  definition as JSON), checkpoints in ``_STRATAML_CHECKPOINTS``. Snowflake does not enforce
  unique constraints, so registration is serialised by a lock row (see
  :mod:`strataml_snowflake.db`): look up, insert if absent, commit -- concurrent registrations
  of one name/version keep exactly one definition and the others get it back (same
  fingerprint) or a :class:`SchemaError` (different logic).
* **View SQL** is canonical (DuckDB) SQL transpiled by sqlglot (:func:`~strataml_snowflake.sql.
  transpile_view`); names follow :mod:`strataml_snowflake.names`.
* **Point-in-time joins**: :mod:`strataml_snowflake.pit`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import pyarrow as pa

from strataml.capabilities import Capabilities
from strataml.errors import InvalidInput, NotFound, SchemaError, StrataError, Unavailable
from strataml.features.evolution import definition_for_compute, evolve, refused
from strataml.features.loading import INTERNAL_PREFIX, prepare_load
from strataml.features.refs import (
    check_view_ref,
    compute_window,
    plan_features,
    prepare_labels,
    resolve_view,
)
from strataml.models import FeatureView
from strataml_snowflake.db import Session, SnowflakeDatabase
from strataml_snowflake.names import from_sf, quote, to_sf
from strataml_snowflake.sftypes import (
    arrow_type_of,
    conform,
    kind_of_description,
    physical_batch,
    select_expr,
    sf_type_for,
    split,
)
from strataml_snowflake.sql import DIALECT, positional, transpile_view, utc_ntz
from strataml_snowflake.stage import Inline, Staged, load_into, upload

__all__ = ["Column", "SnowflakeFeatureStore", "fetch_batches"]

VIEWS = "_STRATAML_VIEWS"
CHECKPOINTS = "_STRATAML_CHECKPOINTS"
VIEWS_LOCK = "views"
_C = '"_C"'

_WIDENS: dict[str, frozenset[str]] = {
    "number": frozenset({"number", "decimal", "float"}),
    "decimal": frozenset({"decimal", "float"}),
    "date": frozenset({"date", "ts", "tstz"}),
    "ts": frozenset({"ts", "tstz"}),
    "tstz": frozenset({"ts", "tstz"}),
}


@dataclass(frozen=True)
class Column:
    """A result or table column: strataml name, Snowflake identifier, kind, Arrow type."""

    name: str
    ident: str
    kind: str
    arrow: pa.DataType


@dataclass(frozen=True)
class Bound:
    """A view as the engine sees it: Snowflake SQL and its columns (by strataml name)."""

    view: FeatureView
    sql: str
    columns: dict[str, Column]


def describe_columns(described: Sequence[Any], what: str) -> dict[str, Column]:
    """Result columns by strataml name; :class:`SchemaError` if two fold to one name."""
    out: dict[str, Column] = {}
    for d in described:
        name = from_sf(str(d.name))
        if name in out:
            raise SchemaError(f"{what}: the query returns the column {name!r} twice")
        out[name] = Column(name, str(d.name), kind_of_description(d), arrow_type_of(d))
    return out


def fetch_batches(
    cur: Any, schema: pa.Schema, batch_size: int, what: str
) -> Iterator[pa.RecordBatch]:
    """The cursor's result as batches of ``schema`` of at most ``batch_size`` rows, read with
    ``fetch_arrow_batches`` (one result chunk in memory at a time)."""
    from strataml_snowflake.errors import translate

    if cur.description is None:
        return
    try:
        chunks = cur.fetch_arrow_batches(force_microsecond_precision=_micro(schema))
        for chunk in chunks:
            if chunk.num_rows:
                yield from split(conform(chunk, schema), batch_size)
    except StrataError:
        raise
    except Exception as exc:
        raise translate(exc, what) from exc


def _micro(schema: pa.Schema) -> bool:
    """Read timestamps at microseconds unless the target needs nanoseconds (Snowflake's
    default TIMESTAMP(9) would otherwise fail for dates outside 1677..2262)."""
    return not any(pa.types.is_timestamp(f.type) and f.type.unit == "ns" for f in schema)


class SnowflakeFeatureStore:
    """:class:`~strataml.protocols.FeatureStore` on Snowflake (see the module docstring).

    ``db`` is the stack's session pool (shared with the training source); :meth:`close` leaves
    it open unless ``owns_db``. Tables named in view SQL and in :meth:`sql` resolve in the
    configured schema (the sessions' current schema).
    """

    def __init__(self, db: SnowflakeDatabase, *, owns_db: bool = False) -> None:
        from strataml_snowflake import FEATURES_CAPS

        self._db = db
        self._owns_db = owns_db
        self._caps = FEATURES_CAPS
        self._views = db.qualified(VIEWS)
        self._checkpoints = db.qualified(CHECKPOINTS)
        self._closed = False

    # ------------------------------------------------------------------------------- basics
    @property
    def capabilities(self) -> Capabilities:
        return self._caps

    @property
    def dialect(self) -> str:
        """``snowflake`` (sqlglot's name for Snowflake's dialect)."""
        return DIALECT

    def close(self) -> None:
        """Stop serving calls; the pool is closed only if this store owns it. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._owns_db:
            self._db.close()

    def _ensure(self, s: Session) -> None:
        if self._closed:
            raise Unavailable("the feature store is closed")
        self._db.ensure("features", s, self._create_catalog)

    def _create_catalog(self, s: Session) -> None:
        s.execute(
            f"CREATE TABLE IF NOT EXISTS {self._views} (NAME VARCHAR NOT NULL,"
            " VERSION NUMBER(38,0) NOT NULL, FINGERPRINT VARCHAR NOT NULL,"
            " DEFINITION VARCHAR NOT NULL, CREATED_AT TIMESTAMP_NTZ NOT NULL)",
            what="creating the view catalog",
        )
        s.execute(
            f'CREATE TABLE IF NOT EXISTS {self._checkpoints} ("KEY" VARCHAR NOT NULL,'
            ' "VALUE" VARCHAR NOT NULL, UPDATED_AT TIMESTAMP_NTZ NOT NULL)',
            what="creating the checkpoint table",
        )
        self._db.ensure_lock_row(s, VIEWS_LOCK)

    def _session(self, what: str) -> Any:
        if self._closed:
            raise Unavailable("the feature store is closed")
        return self._db.session(what)

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

        ``append`` adds rows (and any new columns; older rows read null, absent columns load
        null); ``replace`` swaps the table's rows and schema for ``data``.
        ``checkpoint=(key, value)`` commits in the same transaction as the rows. Errors:
        :class:`InvalidInput` (bad name, mode, checkpoint or data, a type Snowflake cannot
        store), :class:`SchemaError` (a column whose type cannot be appended to the stored
        one); on any error nothing is written (see the module docstring for DDL).
        """
        reader = prepare_load(table, data, mode, checkpoint)
        incoming = {
            f.name: sf_type_for(f.type, f"load {table}: column {f.name!r}") for f in reader.schema
        }
        what = f"load {table}"
        physical = to_sf(table)
        target = self._db.qualified(physical)
        with self._session(what) as s, self._db.local_lock(f"table:{physical}"):
            self._ensure(s)
            existing = self._table_columns(s, physical)
            if existing is None or mode == "replace":
                names = [to_sf(n) for n in reader.schema.names]
                targets: list[pa.DataType | None] = [None] * len(names)
                add: list[tuple[str, str]] = []
            else:
                names, targets, add = _plan_append(table, reader.schema, existing, incoming)
            staged = upload(
                s,
                iter(reader),
                lambda b, _n: physical_batch(b, names, targets),
                self._db.config.stage_file_rows,
                what,
            )
            try:
                if existing is None:
                    return self._create_and_copy(
                        s, target, names, reader.schema, incoming, staged, checkpoint, what
                    )
                if mode == "replace":
                    same = [(to_sf(f.name), incoming[f.name][0]) for f in reader.schema] == [
                        (c.ident, c.kind) for c in existing.values()
                    ]
                    if same:
                        with s.transaction(what):
                            s.execute(f"DELETE FROM {target}", what=what)
                            loaded = load_into(staged, target, what)
                            self._store_checkpoint(s, checkpoint, what)
                        return loaded
                    return self._swap_in(
                        s, target, names, reader.schema, incoming, staged, checkpoint, what
                    )
                return self._append(s, target, add, staged, checkpoint, what)
            finally:
                staged.remove()

    def _columns_ddl(
        self, names: list[str], schema: pa.Schema, incoming: dict[str, tuple[str, str]]
    ) -> str:
        return ", ".join(
            f"{quote(n)} {incoming[f.name][1]}" for n, f in zip(names, schema, strict=True)
        )

    def _create_and_copy(
        self,
        s: Session,
        target: str,
        names: list[str],
        schema: pa.Schema,
        incoming: dict[str, tuple[str, str]],
        staged: Staged | Inline,
        checkpoint: tuple[str, str] | None,
        what: str,
    ) -> int:
        s.execute(
            f"CREATE TABLE {target} ({self._columns_ddl(names, schema, incoming)})", what=what
        )
        try:
            with self._atomic(s, checkpoint, what):
                loaded = load_into(staged, target, what)
                self._store_checkpoint(s, checkpoint, what)
        except BaseException:
            self._undo(s, f"DROP TABLE IF EXISTS {target}")
            raise
        return loaded

    def _swap_in(
        self,
        s: Session,
        target: str,
        names: list[str],
        schema: pa.Schema,
        incoming: dict[str, tuple[str, str]],
        staged: Staged | Inline,
        checkpoint: tuple[str, str] | None,
        what: str,
    ) -> int:
        """``replace`` with other columns: fill a fresh table, then replace the target with it
        in one atomic ``CREATE OR REPLACE TABLE ... AS SELECT`` (readers see the old rows or
        the new ones, never an empty or missing table), then store the checkpoint."""
        fresh = self._db.qualified(f"_STRATAML_SWAP_{uuid.uuid4().hex.upper()}")
        s.execute(f"CREATE TABLE {fresh} ({self._columns_ddl(names, schema, incoming)})", what=what)
        try:
            loaded = load_into(staged, fresh, what)
            s.execute(f"CREATE OR REPLACE TABLE {target} AS SELECT * FROM {fresh}", what=what)
        finally:
            self._undo(s, f"DROP TABLE IF EXISTS {fresh}")
        if checkpoint is not None:
            with s.transaction(what):
                self._store_checkpoint(s, checkpoint, what)
        return loaded

    def _append(
        self,
        s: Session,
        target: str,
        add: list[tuple[str, str]],
        staged: Staged | Inline,
        checkpoint: tuple[str, str] | None,
        what: str,
    ) -> int:
        added: list[str] = []
        try:
            for ident, type_sql in add:
                s.execute(f"ALTER TABLE {target} ADD COLUMN {quote(ident)} {type_sql}", what=what)
                added.append(ident)
            with self._atomic(s, checkpoint, what):
                loaded = load_into(staged, target, what)
                self._store_checkpoint(s, checkpoint, what)
        except BaseException:
            for ident in reversed(added):
                self._undo(s, f"ALTER TABLE {target} DROP COLUMN {quote(ident)}")
            raise
        return loaded

    @staticmethod
    def _atomic(s: Session, checkpoint: tuple[str, str] | None, what: str) -> Any:
        """A transaction when rows and a checkpoint must commit together; a lone ``COPY INTO``
        is atomic by itself (autocommit), which saves two round trips."""
        return s.transaction(what) if checkpoint is not None else contextlib.nullcontext()

    @staticmethod
    def _undo(s: Session, statement: str) -> None:
        """A compensating statement after a failure (its own failure must not mask that)."""
        try:
            s.execute(statement, what="undoing a failed load")
        except StrataError:
            s.broken = True

    def _store_checkpoint(self, s: Session, checkpoint: tuple[str, str] | None, what: str) -> None:
        if checkpoint is None:
            return
        key, value = checkpoint
        s.execute(
            f'DELETE FROM {self._checkpoints} WHERE "KEY" = ?',
            [key],
            what=f"{what}: storing the checkpoint",
        )
        s.execute(
            f'INSERT INTO {self._checkpoints} ("KEY", "VALUE", UPDATED_AT)'
            " VALUES (?, ?, SYSDATE())",
            [key, value],
            what=f"{what}: storing the checkpoint",
        )

    def _table_columns(self, s: Session, physical: str) -> dict[str, Column] | None:
        """An existing table's columns by Snowflake identifier, ``None`` if it is absent."""
        try:
            described = s.describe(
                f"SELECT * FROM {self._db.qualified(physical)} LIMIT 0",
                what=f"reading the columns of {physical}",
            )
        except NotFound:
            return None
        return {
            str(d.name): Column(
                from_sf(str(d.name)), str(d.name), kind_of_description(d), arrow_type_of(d)
            )
            for d in described
        }

    def checkpoint(self, key: str) -> str | None:
        """The value last stored with ``checkpoint=(key, value)``, or ``None``."""
        if not isinstance(key, str) or not key:
            raise InvalidInput("checkpoint keys are non-empty strings")
        with self._session(f"reading checkpoint {key!r}") as s:
            self._ensure(s)
            rows = s.fetchall(
                f'SELECT "VALUE" FROM {self._checkpoints} WHERE "KEY" = ?'
                " ORDER BY UPDATED_AT DESC LIMIT 1",
                [key],
                what=f"reading checkpoint {key!r}",
            )
        return None if not rows else str(rows[0][0])

    def tables(self) -> list[str]:
        """Source tables of the schema, sorted: not views, not strataml's own tables (names
        starting with ``_strataml``, case-insensitively)."""
        with self._session("listing tables") as s:
            self._ensure(s)
            rows = s.fetchall(
                f"SELECT TABLE_NAME FROM {quote(self._db.database)}.INFORMATION_SCHEMA.TABLES"
                " WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE'",
                [self._db.schema],
                what="listing tables",
            )
        names = {from_sf(str(r[0])) for r in rows}
        return sorted(n for n in names if not n.lower().startswith(INTERNAL_PREFIX))

    # -------------------------------------------------------------------------------- views
    def register(self, view: FeatureView) -> FeatureView:
        """Validate and persist a view definition; return it with ``features`` resolved.

        The SQL must be one query that compiles and yields the entity columns, the timestamp
        column (a timestamp or date) and the features (when ``features`` is omitted: every
        other column, in query order; each must be an identifier). Registering an existing
        name/version again returns the stored definition when the fingerprint is unchanged,
        stores the new one when it only *adds* columns
        (:func:`strataml.features.evolution.additive_change`), and raises
        :class:`SchemaError` otherwise -- also when several sessions register at once (the
        view lock serialises them). Errors: :class:`SchemaError`, :class:`InvalidInput`.
        """
        if not isinstance(view, FeatureView):
            raise InvalidInput(f"register() takes a FeatureView, not {type(view).__name__}")
        what = f"registering feature view {view.ref}"
        with self._session(what) as s:
            self._ensure(s)
            stored = self._lookup(s, view.name, view.version)
            if stored is None:
                resolved = self._bind(s, view).view
                with self._locked(s, what):
                    stored = self._lookup(s, view.name, view.version)
                    if stored is None:
                        s.execute(
                            f"INSERT INTO {self._views} (NAME, VERSION, FINGERPRINT, DEFINITION,"
                            " CREATED_AT) VALUES (?, ?, ?, ?, SYSDATE())",
                            [
                                resolved.name,
                                resolved.version,
                                resolved.fingerprint,
                                resolved.model_dump_json(),
                            ],
                            what=what,
                        )
                        return resolved
            return self._settle(s, view, *stored)

    @contextmanager
    def _locked(self, s: Session, what: str) -> Iterator[None]:
        """A transaction holding the view lock (in this process and on the server)."""
        with self._db.local_lock(VIEWS_LOCK), s.transaction(what):
            self._db.hold(s, VIEWS_LOCK)
            yield

    def _settle(
        self, s: Session, view: FeatureView, existing: FeatureView, fingerprint: str
    ) -> FeatureView:
        """Re-registration of a stored name/version: the same definition, an additive change
        (stored in place of the old one) or a refusal."""
        same = (
            view
            if view.features is not None
            else view.model_copy(update={"features": existing.features})
        )
        if same.fingerprint == fingerprint:
            return existing
        evolved = evolve(view, existing, lambda v: self._bind(s, v).view)
        if evolved is None:
            raise refused(view, max(v.version for v in self._all_views(s, view.name)))
        what = f"evolving feature view {view.ref}"
        with self._locked(s, what):
            current = self._lookup(s, view.name, view.version)
            if current is not None and current[1] == fingerprint:
                s.execute(
                    f"UPDATE {self._views} SET FINGERPRINT = ?, DEFINITION = ?"
                    " WHERE NAME = ? AND VERSION = ?",
                    [evolved.fingerprint, evolved.model_dump_json(), view.name, view.version],
                    what=what,
                )
                return evolved
        if current is None:  # pragma: no cover - views are never deleted
            raise NotFound(f"feature view {view.ref} disappeared while it was being evolved")
        return self._settle(s, view, *current)  # changed concurrently: decide again

    def _lookup(self, s: Session, name: str, version: int) -> tuple[FeatureView, str] | None:
        rows = s.fetchall(
            f"SELECT DEFINITION, FINGERPRINT FROM {self._views} WHERE NAME = ? AND VERSION = ?"
            " ORDER BY CREATED_AT LIMIT 1",
            [name, version],
            what=f"reading feature view {name}@{version}",
        )
        if not rows:
            return None
        return FeatureView.model_validate_json(rows[0][0]), str(rows[0][1])

    def _all_views(self, s: Session, name: str | None = None) -> list[FeatureView]:
        where, params = ("WHERE NAME = ?", [name]) if name is not None else ("", [])
        rows = s.fetchall(
            f"SELECT DEFINITION FROM {self._views} {where} ORDER BY NAME, VERSION, CREATED_AT",
            params,
            what="reading feature views",
        )
        seen: dict[tuple[str, int], FeatureView] = {}
        for (definition,) in rows:
            v = FeatureView.model_validate_json(definition)
            seen.setdefault((v.name, v.version), v)
        return [seen[k] for k in sorted(seen)]

    def get_view(self, name: str, version: int | None = None) -> FeatureView:
        """A registered view (latest version when ``version`` is ``None``); :class:`NotFound`."""
        check_view_ref(name, version)
        with self._session(f"reading feature view {name!r}") as s:
            self._ensure(s)
            return self._get_view(s, name, version)

    def _get_view(self, s: Session, name: str, version: int | None) -> FeatureView:
        if version is not None:
            found = self._lookup(s, name, version)
            if found is None:
                if not self._all_views(s, name):
                    raise NotFound(f"unknown feature view {name!r}")
                raise NotFound(f"feature view {name!r} has no version {version}")
            return found[0]
        views = self._all_views(s, name)
        if not views:
            raise NotFound(f"unknown feature view {name!r}")
        return views[-1]

    def views(self) -> list[FeatureView]:
        """Every registered view and version, sorted by name then version."""
        with self._session("listing feature views") as s:
            self._ensure(s)
            return self._all_views(s)

    def _bind(self, s: Session, view: FeatureView) -> Bound:
        """Check ``view`` against the engine; return it with features resolved and its columns."""
        sql = transpile_view(view.sql, f"feature view {view.ref}")
        try:
            described = s.describe(
                f'SELECT * FROM ({sql}) AS "_V"', what=f"feature view {view.ref}"
            )
        except (Unavailable, InvalidInput):
            raise
        except StrataError as exc:
            raise SchemaError(f"feature view {view.ref}: the SQL does not run: {exc}") from exc
        columns = describe_columns(described, f"feature view {view.ref}")
        ts = columns.get(view.timestamp)
        temporal = ts is not None and ts.kind in ("ts", "tstz", "date")
        resolved = resolve_view(view, list(columns), temporal=temporal)
        return Bound(resolved, sql, columns)

    # ------------------------------------------------------------------------------ compute
    def _for_compute(self, s: Session, view: str | FeatureView) -> Bound:
        """A name means its latest version; a definition must match its registered one (or be
        an older definition of a version evolved since), or is computed unregistered."""

        def latest(name: str) -> FeatureView:
            check_view_ref(name, None)
            return self._get_view(s, name, None)

        def lookup(name: str, version: int) -> tuple[FeatureView, str] | None:
            return self._lookup(s, name, version)

        return self._bind(s, definition_for_compute(view, latest, lookup))

    def compute(
        self,
        view: str | FeatureView,
        *,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        batch_size: int = 65_536,
        latest: bool = False,
    ) -> pa.RecordBatchReader:
        """Stream the view's rows with event time in ``[start, end)`` (UTC; either bound
        optional) as Arrow batches of at most ``batch_size`` rows; with ``latest=True`` only
        each entity's newest row in the window, ordered by the entity columns (``QUALIFY
        ROW_NUMBER()``, reduced in Snowflake).

        Columns: the entities, the timestamp (naive UTC ``timestamp[us]``) and the features. A
        name means the latest registered version; a :class:`FeatureView` must match its
        registered definition (:class:`SchemaError` otherwise) or, if unregistered, is
        validated and computed without being stored. The query runs before this returns (its
        session goes back to the pool); result chunks are downloaded as the stream is read.
        Errors: :class:`NotFound`, :class:`SchemaError`, :class:`InvalidInput`.
        """
        lo, hi = compute_window(start, end, batch_size)
        if not isinstance(latest, bool):
            raise InvalidInput(f"latest must be a bool, not {latest!r}")
        with self._session("computing a feature view") as s:
            self._ensure(s)
            bound = self._for_compute(s, view)
            v = bound.view
            what = f"computing feature view {v.ref}"
            assert v.features is not None
            ts = bound.columns[v.timestamp]
            when = utc_ntz(f'"_V".{quote(ts.ident)}', ts.kind)
            n = len(v.entities)
            keep = [bound.columns[c] for c in (*v.entities, *v.features)]
            cols = [f'"_V".{quote(c.ident)} AS {quote(c.ident)}' for c in keep]
            cols.insert(n, f"{when} AS {quote(ts.ident)}")
            out = [*keep[:n], Column(v.timestamp, ts.ident, "ts", pa.timestamp("us")), *keep[n:]]
            picks = [
                f"{select_expr(f'{_C}.{quote(c.ident)}', c.arrow)} AS {quote(c.ident)}" for c in out
            ]
            where, params = ["TRUE"], []
            if lo is not None:
                where.append(f"{when} >= ?")
                params.append(lo)
            if hi is not None:
                where.append(f"{when} < ?")
                params.append(hi)
            inner = (
                f'SELECT {", ".join(cols)} FROM ({bound.sql}) AS "_V" WHERE {" AND ".join(where)}'
            )
            query = f"SELECT {', '.join(picks)} FROM ({inner}) AS {_C}"
            if latest:
                keys = ", ".join(f"{_C}.{quote(c.ident)}" for c in keep[:n])
                query += (
                    f" QUALIFY ROW_NUMBER() OVER (PARTITION BY {keys}"
                    f" ORDER BY {_C}.{quote(ts.ident)} DESC) = 1 ORDER BY {keys}"
                )
            schema = pa.schema([pa.field(c.name, c.arrow) for c in out])
            cur = s.execute(query, params, what=what)

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                yield from fetch_batches(cur, schema, batch_size, what)
            finally:
                cur.close()

        return pa.RecordBatchReader.from_batches(schema, batches())

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
        order requested (duplicates dropped). Timestamps compare in UTC at full precision.
        When several view rows share an entity key and event time, one of them is used.

        Errors: :class:`InvalidInput` (labels lacking the timestamp or an entity column, a
        timestamp column that is not a timestamp/date, an entity column whose type cannot be
        compared with the view's, bad or clashing references), :class:`NotFound` (unknown
        view, version or feature), :class:`SchemaError` (a view whose SQL no longer runs).
        """
        from strataml_snowflake.pit import point_in_time

        table = prepare_labels(self, labels, features, timestamp=timestamp, start=start, end=end)
        names = table.column_names
        with self._session("point-in-time join") as s:
            self._ensure(s)
            plan = plan_features(
                features, lambda n, v: self._get_view(s, n, v), full_names=full_names
            )
            groups = {key: self._bind(s, view) for key, view in plan.views.items()}
            clash = sorted(set(names) & {out for _, _, out in plan.outputs})
            if clash:
                raise InvalidInput(
                    f"feature output names {clash} clash with label columns; rename those label "
                    "columns or pass full_names=True"
                )
            entities = _check_entities(table, groups)
            result = point_in_time(self._db, s, table, timestamp, entities, groups, plan.outputs)
        out = table
        for name, column in zip(result.column_names, result.columns, strict=True):
            out = out.append_column(name, column)
        return out

    # ---------------------------------------------------------------------------------- sql
    def sql(self, query: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> pa.Table:
        """Run SQL in Snowflake's dialect and return the result as Arrow (an empty table for
        statements without one). Parameters are bound server-side: ``?`` placeholders with a
        sequence, ``:name`` with a mapping. Column names follow
        :mod:`strataml_snowflake.names` (``ID`` comes back as ``id``).

        Errors: :class:`SchemaError` (SQL that does not parse or compile),
        :class:`NotFound` (unknown table), :class:`InvalidInput` (bad parameters or values).
        """
        if not isinstance(query, str) or not query.strip():
            raise InvalidInput("query must be a non-empty SQL string")
        if params is not None and (
            isinstance(params, str | bytes) or not isinstance(params, Sequence | Mapping)
        ):
            raise InvalidInput("params must be a sequence or a mapping of values")
        text = query.strip().rstrip(";")
        bind: list[Any] = []
        if isinstance(params, Mapping):
            text, bind = positional(text, params)
        elif params:
            bind = list(params)
        with self._session("running SQL") as s:
            cur = s.execute(text, bind, what="running SQL")
            try:
                if cur.description is None:
                    return pa.table({})
                columns = describe_columns(cur.description, "query")
                schema = pa.schema([pa.field(c.name, c.arrow) for c in columns.values()])
                if getattr(cur, "_query_result_format", "arrow") != "arrow":
                    rows = cur.fetchall()
                    data = {
                        c.name: pa.array([r[i] for r in rows])
                        for i, c in enumerate(columns.values())
                    }
                    return pa.table(data)
                batches = list(fetch_batches(cur, schema, 1 << 30, "running SQL"))
            finally:
                cur.close()
        return pa.Table.from_batches(batches, schema=schema)


def _plan_append(
    table: str,
    schema: pa.Schema,
    existing: dict[str, Column],
    incoming: dict[str, tuple[str, str]],
) -> tuple[list[str], list[pa.DataType | None], list[tuple[str, str]]]:
    """For appending ``schema`` to a table with ``existing`` columns: the physical name and the
    Arrow type to convert each incoming column to, and the columns to add. :class:`SchemaError`
    (nothing changed yet) when a column cannot take the incoming type."""
    by_lower = {ident.lower(): ident for ident in existing}
    names: list[str] = []
    targets: list[pa.DataType | None] = []
    add: list[tuple[str, str]] = []
    bad: list[str] = []
    for f in schema:
        kind, type_sql = incoming[f.name]
        ident = to_sf(f.name)
        if ident not in existing:
            ident = by_lower.get(f.name.lower(), ident)
        names.append(ident)
        if ident not in existing:
            add.append((ident, type_sql))
            targets.append(None)
            continue
        col = existing[ident]
        if kind == "null" or kind == col.kind or col.kind in _WIDENS.get(kind, frozenset()):
            targets.append(_append_target(f.type, col))
        else:
            bad.append(f"{f.name!r} is {col.kind} in the table but {f.type} in the data")
    if bad:
        raise SchemaError(
            f"load {table}: incompatible column types: {'; '.join(bad)}; cast the data or load "
            "it with mode='replace'"
        )
    return names, targets, add


def _append_target(incoming: pa.DataType, col: Column) -> pa.DataType | None:
    """The Arrow type an incoming column is converted to before it is appended to ``col``."""
    if pa.types.is_null(incoming):
        return None
    if col.kind in ("ts", "tstz"):
        unit = incoming.unit if pa.types.is_timestamp(incoming) else "us"
        return pa.timestamp(unit, tz="UTC" if col.kind == "tstz" else None)
    if col.kind in ("number", "float", "decimal"):
        return col.arrow
    return None


def _check_entities(table: pa.Table, groups: dict[tuple[str, int], Bound]) -> list[str]:
    """The entity columns of every view: present in the labels, of a comparable type."""
    from strataml_snowflake.sftypes import kind_of_arrow

    family = {
        "number": "number",
        "decimal": "number",
        "float": "number",
        "ts": "time",
        "tstz": "time",
        "date": "time",
    }
    entities: list[str] = []
    for bound in groups.values():
        view = bound.view
        lacking = [e for e in view.entities if e not in table.column_names]
        if lacking:
            raise InvalidInput(f"labels lack entity column(s) {lacking} of feature view {view.ref}")
        for e in view.entities:
            label_kind = kind_of_arrow(table.schema.field(e).type)
            view_kind = bound.columns[e].kind
            if family.get(label_kind, label_kind) != family.get(view_kind, view_kind):
                raise InvalidInput(
                    f"labels column {e!r} ({table.schema.field(e).type}) cannot be compared "
                    f"with {view.ref}'s {e!r} ({view_kind})"
                )
            if e not in entities:
                entities.append(e)
    return entities
