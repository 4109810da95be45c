"""The Snowflake training source: versioned, immutable datasets scanned as Arrow record batches.

Layout (in the configured schema)
---------------------------------
* ``_STRATAML_TRAINING_VERSIONS`` -- the catalog: one row per version (name, version, the id of
  its table, rows, the Arrow schema written, created_at, dropped_at). Version numbers are never
  reused, not even after :meth:`~SnowflakeTrainingSource.drop`, so a snapshot id
  (``"<name>@<version>"``) always means one set of rows.
* ``_STRATAML_DS_<id>`` -- one table per version (``id`` a random UUID), with a ``_ROW``
  ordinal (0, 1, ... in write order) and one column per field (names per
  :mod:`strataml_snowflake.names`, types per :mod:`strataml_snowflake.sftypes`).

Writes
------
The batches are streamed to Parquet files and staged (:mod:`strataml_snowflake.stage`); only
when the whole input was read and checked is the version's table created and, in one
transaction, loaded (``COPY INTO``) and entered in the catalog under the next version number
(numbered under the ``training`` lock row, see :mod:`strataml_snowflake.db`). A failure drops
the table: nothing is visible.

Scans
-----
One ``SELECT`` (``ORDER BY _ROW`` for write order) read with the connector's
``fetch_arrow_batches``: one result chunk in memory at a time, re-cut into batches of at most
``batch_size`` rows, in exactly the Arrow types that were written (the catalog keeps the
schema). The session goes back to the pool as soon as the query ran; the result chunks are
downloaded as the scan is iterated.

SQL sources are one ``SELECT``/``WITH`` statement in Snowflake's dialect naming datasets as
``datasets.<name>`` (rewritten to the latest version's table, without ``_ROW``); their columns
come back in the types of :func:`strataml_snowflake.sftypes.arrow_type_of`.

Sharding
--------
Shard ``i`` of ``n`` of a dataset is the ordinal range ``[i*rows/n, (i+1)*rows/n)`` (contiguous,
so Snowflake prunes micro-partitions); SQL sources are sharded by ``HASH`` of all the query's
columns: identical rows land in the same shard, the same on every run.
"""

from __future__ import annotations

import base64
import itertools
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import sqlglot
from sqlglot import exp

from strataml.capabilities import Capabilities
from strataml.errors import InvalidInput, NotFound, SchemaError, StrataError, Unavailable
from strataml.filters import parse_filter
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
from strataml_snowflake.db import Session, SnowflakeDatabase
from strataml_snowflake.features import describe_columns, fetch_batches
from strataml_snowflake.filters import compile_filter
from strataml_snowflake.names import quote, to_sf
from strataml_snowflake.sftypes import ordinal, physical_array, select_expr, sf_type_for
from strataml_snowflake.sql import DIALECT, rewrite_datasets, single_query
from strataml_snowflake.stage import load_into, upload

__all__ = ["SnowflakeTrainingSource"]

CATALOG = "_STRATAML_TRAINING_VERSIONS"
TRAINING_LOCK = "training"
_ROW = to_sf(ROW_COLUMN)
_Q = quote("_STRATAML_Q")


def _decode_dictionaries(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Dictionary-encoded columns are stored as their values (so ranges compare values)."""
    if not any(pa.types.is_dictionary(f.type) for f in batch.schema):
        return batch
    arrays = [c.dictionary_decode() if pa.types.is_dictionary(c.type) else c for c in batch.columns]
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


@dataclass(frozen=True, slots=True)
class _Source:
    """A resolved scan source."""

    relation: str  # a table or a parenthesised query, aliased as _Q
    schema: pa.Schema  # the user-visible columns (as scans return them)
    physical: dict[str, str]  # column name -> Snowflake identifier
    snapshot: str | None
    rows: int | None  # known row count (datasets)
    is_query: bool


class SnowflakeTrainingSource:
    """:class:`~strataml.protocols.TrainingSource` on Snowflake (see the module docstring).

    ``db`` is the stack's session pool; :meth:`close` leaves it open unless ``owns_db``.
    """

    def __init__(self, db: SnowflakeDatabase, *, owns_db: bool = False) -> None:
        from strataml_snowflake import TRAINING_CAPS

        self._db = db
        self._owns_db = owns_db
        self._caps = TRAINING_CAPS
        self._catalog = db.qualified(CATALOG)
        self._closed = False

    @property
    def capabilities(self) -> Capabilities:
        return self._caps

    def _session(self, what: str) -> Any:
        if self._closed:
            raise Unavailable("the training source is closed")
        return self._db.session(what)

    def _ensure(self, s: Session) -> None:
        self._db.ensure("training", s, self._create_catalog)

    def _create_catalog(self, s: Session) -> None:
        s.execute(
            f"CREATE TABLE IF NOT EXISTS {self._catalog} (ID VARCHAR NOT NULL,"
            " NAME VARCHAR NOT NULL, VERSION NUMBER(38,0) NOT NULL, ROWS NUMBER(38,0) NOT NULL,"
            " ARROW_SCHEMA VARCHAR NOT NULL, CREATED_AT TIMESTAMP_NTZ NOT NULL,"
            " DROPPED_AT TIMESTAMP_NTZ)",
            what="creating the training catalog",
        )
        self._db.ensure_lock_row(s, TRAINING_LOCK)

    # ------------------------------------------------------------------------------- writes
    def write(
        self, name: str, data: pa.Table | pa.RecordBatchReader | Iterable[pa.RecordBatch]
    ) -> str:
        """Store ``data`` as a new immutable version of dataset ``name``; return its snapshot id.

        ``data`` is a ``pa.Table``, a ``pa.RecordBatchReader`` or an iterable of
        ``pa.RecordBatch`` (streamed: memory stays bounded by a batch); pandas/polars frames
        are converted. Row order is kept. Raises :class:`InvalidInput` (bad name, no rows, no
        columns, a reserved/duplicate column name, batches that disagree on schema, a type
        Snowflake cannot store); nothing is stored then.
        """
        check_name("dataset", name)
        batches = input_batches(data)
        first = next(batches, None)
        if first is None:
            raise InvalidInput("training data has no rows; a dataset version needs at least one")
        first = _decode_dictionaries(first)
        check_schema(first.schema)
        schema = first.schema
        types = [sf_type_for(f.type, f"training column {f.name!r}")[1] for f in schema]
        names = [_ROW, *(to_sf(n) for n in schema.names)]
        what = f"writing dataset {name!r}"

        def convert(raw: pa.RecordBatch, offset: int) -> pa.RecordBatch:
            batch = _decode_dictionaries(raw)
            if not same_layout(batch.schema, schema):
                raise InvalidInput(
                    f"a record batch has schema {batch.schema} but the first batch has {schema}"
                )
            arrays = [ordinal(offset, batch.num_rows), *map(physical_array, batch.columns)]
            return pa.RecordBatch.from_arrays(arrays, names=names)

        with self._session(what) as s:
            self._ensure(s)
            staged = upload(
                s,
                itertools.chain([first], batches),
                convert,
                self._db.config.stage_file_rows,
                what,
            )
            try:
                if staged.rows == 0:
                    raise InvalidInput(
                        "training data has no rows; a dataset version needs at least one"
                    )
                vid = uuid.uuid4().hex.upper()
                table = self._db.qualified(f"_STRATAML_DS_{vid}")
                columns = ", ".join(
                    f"{quote(n)} {t}" for n, t in zip(names[1:], types, strict=True)
                )
                s.execute(
                    f"CREATE TABLE {table} ({quote(_ROW)} NUMBER(38,0) NOT NULL, {columns})",
                    what=what,
                )
                try:
                    version = self._commit(s, name, vid, table, staged, schema, what)
                except BaseException:
                    try:
                        s.execute(f"DROP TABLE IF EXISTS {table}", what=f"{what}: undoing")
                    except StrataError:
                        s.broken = True
                    raise
            finally:
                staged.remove()
        return f"{name}@{version}"

    def _commit(
        self,
        s: Session,
        name: str,
        vid: str,
        table: str,
        staged: Any,
        schema: pa.Schema,
        what: str,
    ) -> int:
        """Load the rows and enter the version in the catalog, in one transaction."""
        blob = base64.b64encode(schema.serialize().to_pybytes()).decode()
        with self._db.local_lock(TRAINING_LOCK), s.transaction(what):
            loaded = load_into(staged, table, what)
            if loaded != staged.rows:
                raise StrataError(f"{what}: staged {staged.rows} rows but loaded {loaded}")
            self._db.hold(s, TRAINING_LOCK)
            row = s.fetchall(
                f"SELECT COALESCE(MAX(VERSION), 0) + 1 FROM {self._catalog} WHERE NAME = ?",
                [name],
                what=what,
            )
            version = int(row[0][0])
            s.execute(
                f"INSERT INTO {self._catalog} (ID, NAME, VERSION, ROWS, ARROW_SCHEMA, CREATED_AT)"
                " VALUES (?, ?, ?, ?, ?, SYSDATE())",
                [vid, name, version, loaded, blob],
                what=what,
            )
        return version

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
        queries have ``Scan.snapshot = None``. Errors: :class:`NotFound` (dataset, snapshot,
        column), :class:`InvalidInput` (shard, batch size, columns, a snapshot with a query),
        :class:`~strataml.errors.FilterError`, :class:`~strataml.errors.Unsupported` (a nested
        field), :class:`SchemaError` (a query that does not run) -- all raised by ``scan``
        itself, before the first batch is read.
        """
        size = check_batch_size(batch_size)
        part = check_shard(shard)
        what = self._what(source)
        with self._session(f"scanning {what}") as s:
            src = self._resolve(s, source, snapshot)
            cols = check_columns(columns, src.schema, what)
            where, params = self._where(src, filter, part)
            target = pa.schema([src.schema.field(c) for c in cols])
            projection = ", ".join(
                f"{select_expr(f'{_Q}.{quote(src.physical[c])}', target.field(c).type)}"
                f" AS {quote(src.physical[c])}"
                for c in cols
            )
            order = "" if src.is_query else f" ORDER BY {_Q}.{quote(_ROW)}"
            try:
                cur = s.execute(
                    f"SELECT {projection} FROM {src.relation} WHERE {where}{order}",
                    params,
                    what=f"scanning {what}",
                )
            except StrataError as exc:
                raise self._query_error(exc, src) from exc
        return Scan(self._batches(cur, target, size, src, what), target, src.snapshot)

    def _batches(
        self, cur: Any, target: pa.Schema, size: int, src: _Source, what: str
    ) -> Iterator[pa.RecordBatch]:
        try:
            yield from fetch_batches(cur, target, size, f"scanning {what}")
        except StrataError as exc:
            raise self._query_error(exc, src) from exc
        finally:
            cur.close()

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
        what = self._what(source)
        with self._session(f"counting {what}") as s:
            src = self._resolve(s, source, snapshot)
            if src.rows is not None and parse_filter(filter) is None:
                if part is None:
                    return src.rows
                lo, hi = self._range(src.rows, part)
                return hi - lo
            where, params = self._where(src, filter, part)
            try:
                rows = s.fetchall(
                    f"SELECT COUNT(*) FROM {src.relation} WHERE {where}",
                    params,
                    what=f"counting {what}",
                )
            except StrataError as exc:
                raise self._query_error(exc, src) from exc
        return int(rows[0][0])

    def snapshot(self, name: str) -> str:
        """The snapshot id of the dataset's latest version; :class:`NotFound` if unknown."""
        return self.versions(name)[-1]

    def versions(self, name: str) -> list[str]:
        """Snapshot ids of every live version, oldest first; :class:`NotFound` if unknown."""
        check_name("dataset", name)
        with self._session(f"listing versions of {name!r}") as s:
            self._ensure(s)
            rows = s.fetchall(
                f"SELECT VERSION FROM {self._catalog} WHERE NAME = ? AND DROPPED_AT IS NULL"
                " ORDER BY VERSION",
                [name],
                what=f"listing versions of {name!r}",
            )
        if not rows:
            raise NotFound(f"unknown dataset {name!r}")
        return [f"{name}@{int(r[0])}" for r in rows]

    def datasets(self) -> list[str]:
        """Names of every dataset with a live version, sorted."""
        with self._session("listing datasets") as s:
            self._ensure(s)
            rows = s.fetchall(
                f"SELECT DISTINCT NAME FROM {self._catalog} WHERE DROPPED_AT IS NULL",
                what="listing datasets",
            )
        return sorted(str(r[0]) for r in rows)

    def drop(self, name: str) -> None:
        """Delete dataset ``name`` and all its versions (no error if it does not exist).

        Its snapshot ids stay retired: a later write of the same name starts a new version
        number. The live versions leave the catalog in one statement; their tables are dropped
        right after (a crash in between leaves unreachable tables, never a half dataset). A
        version written while the drop runs may survive it.
        """
        check_name("dataset", name)
        what = f"dropping dataset {name!r}"
        with self._session(what) as s:
            self._ensure(s)
            ids = [
                str(r[0])
                for r in s.fetchall(
                    f"SELECT ID FROM {self._catalog} WHERE NAME = ? AND DROPPED_AT IS NULL",
                    [name],
                    what=what,
                )
            ]
            if not ids:
                return
            marks = ", ".join("?" for _ in ids)
            s.execute(
                f"UPDATE {self._catalog} SET DROPPED_AT = SYSDATE() WHERE ID IN ({marks})",
                ids,
                what=what,
            )
            for vid in ids:
                s.execute(
                    f"DROP TABLE IF EXISTS {self._db.qualified(f'_STRATAML_DS_{vid}')}",
                    what=what,
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
    def _what(source: Any) -> str:
        return "query" if isinstance(source, str) and is_query(source) else f"dataset {source!r}"

    @staticmethod
    def _range(rows: int, shard: tuple[int, int]) -> tuple[int, int]:
        i, n = shard
        return i * rows // n, (i + 1) * rows // n

    @staticmethod
    def _query_error(exc: StrataError, src: _Source) -> StrataError:
        if src.is_query and not isinstance(exc, Unavailable | NotFound | InvalidInput):
            return SchemaError(str(exc))
        return exc

    def _resolve(self, s: Session, source: Any, snapshot: Any) -> _Source:
        if not isinstance(source, str):
            raise InvalidInput(f"source must be a dataset name or a SQL query, got {source!r}")
        self._ensure(s)
        if is_query(source):
            if snapshot is not None:
                raise InvalidInput(
                    "snapshot pins a dataset version; a SQL source reads the latest versions "
                    "(scan a dataset by name to pin it)"
                )
            return self._query_source(s, source)
        check_name("dataset", source)
        if snapshot is not None and not isinstance(snapshot, str):
            raise InvalidInput(f"snapshot must be a snapshot id string, got {snapshot!r}")
        return self._dataset_source(s, source, snapshot)

    def _latest(
        self, s: Session, name: str, version: int | None
    ) -> tuple[int, str, int, pa.Schema] | None:
        """``(version, table id, rows, schema)`` of a live version (the latest by default)."""
        query = (
            f"SELECT VERSION, ID, ROWS, ARROW_SCHEMA FROM {self._catalog}"
            " WHERE NAME = ? AND DROPPED_AT IS NULL"
        )
        params: list[Any] = [name]
        if version is not None:
            query += " AND VERSION = ?"
            params.append(version)
        rows = s.fetchall(
            query + " ORDER BY VERSION DESC LIMIT 1", params, what=f"resolving dataset {name!r}"
        )
        if not rows:
            return None
        v, vid, count, blob = rows[0]
        schema = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(str(blob))))
        return int(v), str(vid), int(count), schema

    def _dataset_source(self, s: Session, name: str, snapshot: str | None) -> _Source:
        wanted: int | None = None
        if snapshot is not None:
            m = SNAPSHOT_RE.match(snapshot)
            if m is None or m["name"] != name:
                raise NotFound(f"unknown snapshot {snapshot!r} of dataset {name!r}")
            wanted = int(m["version"])
        found = self._latest(s, name, wanted)
        if found is None:
            if snapshot is None:
                raise NotFound(f"unknown dataset {name!r}")
            raise NotFound(f"unknown snapshot {snapshot!r} of dataset {name!r}")
        version, vid, rows, schema = found
        return _Source(
            relation=f"{self._db.qualified(f'_STRATAML_DS_{vid}')} AS {_Q}",
            schema=schema,
            physical={n: to_sf(n) for n in schema.names},
            snapshot=f"{name}@{version}",
            rows=rows,
            is_query=False,
        )

    def _dataset_relation(self, s: Session, name: str, quoted: bool) -> exp.Expression:
        """``datasets.<name>`` as a subquery over its latest version (without ``_ROW``)."""
        candidates = [name]
        if not quoted:
            candidates += [n for n in self._names(s) if n.lower() == name.lower() and n != name]
        for candidate in candidates:
            found = self._latest(s, candidate, None)
            if found is not None:
                _, vid, _, schema = found
                cols = ", ".join(quote(to_sf(n)) for n in schema.names)
                table = self._db.qualified(f"_STRATAML_DS_{vid}")
                select = sqlglot.parse_one(f"SELECT {cols} FROM {table}", read=DIALECT)
                return exp.Subquery(this=select)
        raise NotFound(f"the query reads unknown dataset {name!r}")

    def _names(self, s: Session) -> list[str]:
        rows = s.fetchall(
            f"SELECT DISTINCT NAME FROM {self._catalog} WHERE DROPPED_AT IS NULL",
            what="listing datasets",
        )
        return [str(r[0]) for r in rows]

    def _query_source(self, s: Session, query: str) -> _Source:
        text = query.strip().rstrip(";").strip()
        tree = single_query(text)
        if rewrite_datasets(tree, lambda n, q: self._dataset_relation(s, n, q)):
            text = tree.sql(dialect=DIALECT)
        relation = f"(\n{text}\n) AS {_Q}"
        try:
            described = s.describe(f"SELECT * FROM {relation}", what="query")
        except StrataError as exc:
            if isinstance(exc, Unavailable | NotFound):
                raise
            raise SchemaError(f"query does not run: {exc}") from exc
        columns = describe_columns(described, "query")
        schema = pa.schema([pa.field(c.name, c.arrow) for c in columns.values()])
        return _Source(
            relation=relation,
            schema=schema,
            physical={c.name: c.ident for c in columns.values()},
            snapshot=None,
            rows=None,
            is_query=True,
        )

    def _where(
        self, src: _Source, spec: Mapping[str, Any] | None, shard: tuple[int, int] | None
    ) -> tuple[str, list[Any]]:
        text, params = compile_filter(spec, src.schema, src.physical, prefix=f"{_Q}.")
        clauses = [text]
        if shard is not None:
            i, n = shard
            if src.rows is not None:
                lo, hi = self._range(src.rows, shard)
                clauses.append(f"{_Q}.{quote(_ROW)} >= ? AND {_Q}.{quote(_ROW)} < ?")
                params = [*params, lo, hi]
            else:
                every = ", ".join(f"{_Q}.{quote(ident)}" for ident in src.physical.values())
                clauses.append(f"MOD(MOD(HASH({every}), {int(n)}) + {int(n)}, {int(n)}) = {int(i)}")
        return " AND ".join(clauses), params
