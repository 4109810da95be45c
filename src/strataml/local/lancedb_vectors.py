"""The embedded vector store: LanceDB tables in a directory (no server).

Layout
------
One Lance table per collection with the columns ``id``, ``tenant``, ``vector``
(``fixed_size_list<float32>[dim]``), ``text``, and one typed column per metadata field, named
``m_<field>`` and added when the field first appears. The collection's shape (dimension, metric,
tenancy, user metadata) is stored in the table's schema metadata; each metadata column carries
its :class:`~strataml.filters.FieldType` in its field metadata, so the table alone describes the
collection and survives reopening.

========================  ==========================================================
field type                column
========================  ==========================================================
string / int / float      ``string`` / ``int64`` / ``float64``
bool                      ``bool``
timestamp / date          ``timestamp[us, UTC]`` (read back as aware UTC) / ``date32``
list                      JSON text (lists are stored, returned, never filtered)
========================  ==========================================================

An ``int`` field that receives floats is widened to ``float64`` in place (its existing values
become floats; integers beyond 2**53 lose precision).

Reads and writes
----------------
* Upserts are one ``merge_insert`` on ``id`` (``tenant, id`` when multi-tenant; one atomic
  commit, safe against concurrent writers), validated completely beforehand
  (:mod:`strataml.vectors.batch`); duplicate ids in a batch: last wins.
* Filters compile to a SQL ``where`` (escaped literals, backtick-quoted columns) that LanceDB
  applies *before* ranking (``prefilter=True``); the tenant predicate is always part of it.
* Dense search is exhaustive until a collection reaches ``index_threshold`` rows; the upsert that
  crosses it starts building an ``IVF_FLAT`` index (about sqrt(rows) partitions, the collection's
  metric) in a background thread and returns at once: searches stay exact (exhaustive) until the
  index is committed, then probe it. The index is retrained when the collection has grown 4x.
  Unindexed rows are folded in by a compaction every so many writes or rows; a store opening a
  collection starts from what the indexes already cover (not from zero), so a new process does
  not compact on its first write.
  :meth:`~LanceDBVectorStore.optimize` waits for a build in progress (or builds the index itself
  when it is due). Queries probe ``nprobes`` partitions, more when a filter leaves fewer than
  ``k`` candidates; IVF_FLAT distances are exact, so ``refine_factor`` (exact re-ranking) only
  applies to a quantized index found on an existing table. Rows written after the index are
  searched exhaustively until the periodic compaction folds them in.
* Keyword search is LanceDB's native BM25 full-text index on ``text`` (stemmed, lower-cased,
  stop words removed); rows not yet indexed are searched too, so upserted text is searchable at
  once. Hybrid search runs both legs and fuses them (:mod:`strataml.vectors.fusion`).
* LanceDB distances are converted to the score contract of :class:`~strataml.models.Hit`:
  squared L2 -> Euclidean, ``1 - cos`` as is, ``1 - dot`` -> ``-dot``. A zero vector (stored
  or queried) has no cosine distance (LanceDB drops such rows): a cosine search that returns
  fewer than ``k`` hits adds the matching rows it left out, ranked last with distance 2.0.

Aliases
-------
LanceDB has no native alias: the aliases live in ``_strataml_aliases.json`` next to the tables
(``{"format": 1, "aliases": {alias: collection}}``), replaced atomically (write a temporary file,
fsync, ``os.replace``, fsync the directory) under an exclusive lock file
(``_strataml_aliases.lock``, ``flock``) that also guards creating and dropping collections, so
the namespace rules hold across processes. Every call resolves its name through the file: a
``stat`` per call, the file re-read when it changed (so a repoint by another process is seen by
the next call; a reader sees the old target or the new one). A scan resolves once, when it
starts.

Scans and health
----------------
* :meth:`~LanceDBVectorStore.scan` streams one table version with Lance's scanner
  (``to_batches``): projected columns, the tenant predicate pushed down, bounded memory.
  :meth:`~LanceDBVectorStore.scan_metadata` reads only ``id`` and the named ``m_`` columns
  and hands Lance's Arrow batches over as they are.
* :meth:`~LanceDBVectorStore.stats`: ``deleted`` is the current version's deletion-file row count
  (rows deleted or overwritten that the data files still hold), the index comes from Lance's
  index statistics.
* :meth:`~LanceDBVectorStore.optimize`: Lance's ``optimize`` (compaction that materialises
  deletions, new rows folded into the indexes, versions older than an hour removed), the ANN
  index built or retrained when due. Lance only rewrites a lone fragment when more than 10 % of
  it is deleted; below that, ``optimize`` rewrites one row in place (same values) so that the
  fragment is compacted too. Every step is a new table version: readers are never blocked.

Consistency: writes are visible at once to this store; writes from other processes (or other
store instances) become visible within about one second; alias changes at once.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import re
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import orjson
import pyarrow as pa

from strataml._json import dumps_record
from strataml.capabilities import Capabilities
from strataml.errors import (
    BackendError,
    ConfigError,
    Conflict,
    FilterError,
    InvalidInput,
    LimitExceeded,
    NotFound,
    SchemaError,
    StrataError,
    Unavailable,
    Unsupported,
)
from strataml.filters import (
    And,
    Compare,
    Expr,
    FieldType,
    Not,
    Op,
    Or,
    SQLFilterCompiler,
    check_types,
    coerce_temporal,
    fields_used,
    matches,
    parse_filter,
)
from strataml.local import LANCEDB_CAPS
from strataml.models import (
    CollectionInfo,
    CollectionStats,
    Hit,
    Metric,
    SearchMode,
    VectorRecord,
    check_name,
    score_from_bm25,
    score_from_distance,
)
from strataml.protocols.vectors import Records, VectorLike
from strataml.vectors.batch import (
    VectorBatch,
    check_alpha,
    check_k,
    check_tenant,
    normalize_ids,
    prepare_batch,
    query_vector,
    resolve_mode,
    stored_records,
)
from strataml.vectors.columns import (
    ARROW_TYPES,
    check_batch_size,
    check_fields,
    metadata_schema,
)
from strataml.vectors.fusion import DEFAULT_FUSION, candidate_pool, fuse_hits

__all__ = ["LanceDBVectorStore", "translate_lance_error"]

_log = logging.getLogger(__name__)

META_PREFIX: Final = "m_"
_SCHEMA_KEY: Final = b"strataml"
_TYPE_KEY: Final = b"strataml.type"
_FORMAT: Final = 1
_METRICS: Final = ("cosine", "l2", "dot")
#: Column types of metadata fields: the scalar ones as in ``scan_metadata``; lists as JSON text
_ARROW: Final[dict[FieldType, pa.DataType]] = {**ARROW_TYPES, FieldType.LIST: pa.string()}
_ID_CHUNK: Final = 4096
#: The largest dimension a vector column can have (Arrow's fixed-size lists have int32 sizes).
_MAX_DIM: Final = 2**31 - 1
#: LanceDB takes row counts (``limit``, batch sizes) as 32-bit integers; any larger ``k`` or
#: ``batch_size`` is valid and means "all": passed on as this (no table holds more rows)
_MAX_ROWS: Final = 2**32 - 1
#: Fold unindexed rows into the indexes and compact after this many writes / rows. Rows the
#: indexes do not cover yet are searched exhaustively (keyword search tokenizes them on every
#: query), so a bulk load is also folded in whenever the unindexed rows reach the indexed ones
#: (at least _OPTIMIZE_MIN_ROWS): the collection doubles between optimizes, O(log n) of them
#: while it is loaded, and at most half of a growing collection is ever searched exhaustively.
_OPTIMIZE_WRITES: Final = 64
_OPTIMIZE_ROWS: Final = 50_000
_OPTIMIZE_MIN_ROWS: Final = 256
#: Old table versions are removed by ``optimize`` once they are this old.
_KEEP_VERSIONS: Final = dt.timedelta(hours=1)
#: Other processes' writes (and cached schemas, collection handles) are re-checked after this
#: long: LanceDB's read-consistency interval.
_SCHEMA_TTL_S = 1.0
#: The ANN index is rebuilt (k-means retrained) once a collection has grown this many times
#: past the size it was trained on; in between, ``optimize`` assigns new rows to partitions.
_RETRAIN_GROWTH: Final = 4
#: A failed background index build is retried after this long (or by ``optimize``).
_BUILD_RETRY_S: Final = 60.0
#: Lance's compaction target: a fragment this large is never merged with its neighbours.
_FRAGMENT_ROWS: Final = 1024 * 1024
_ALIAS_FILE: Final = "_strataml_aliases.json"
_ALIAS_LOCK: Final = "_strataml_aliases.lock"
#: The alias file is re-read while its mtime is this recent (file timestamps are coarse).
_ALIAS_SETTLE_S: Final = 0.05


# ------------------------------------------------------------------------------------- errors
def translate_lance_error(exc: BaseException, what: str) -> StrataError:
    """Map a LanceDB/Lance exception to the strataml hierarchy (the caller chains it)."""
    if isinstance(exc, StrataError):
        return exc
    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    text = f"{what}: {msg}"
    low = msg.lower()
    if "not found" in low:
        return NotFound(text)
    if "already exists" in low:
        return Conflict(text)
    if "commit conflict" in low or "conflicting" in low:
        return Conflict(f"{text} (a concurrent write won; retry)")
    if "filter expression" in low:
        return FilterError(text)
    if isinstance(exc, TimeoutError | ConnectionError) or "lock" in low:
        return Unavailable(text)
    if isinstance(exc, OSError) or "io error" in low:
        return Unavailable(text)
    return BackendError(text)


@contextmanager
def _engine(what: str) -> Iterator[None]:
    try:
        yield
    except StrataError:
        raise
    except Exception as exc:
        raise translate_lance_error(exc, what) from exc


# ------------------------------------------------------------------------------------ filters
class _LanceFilterCompiler(SQLFilterCompiler):
    """The filter language as a LanceDB (DataFusion) ``where``: inline escaped literals,
    backtick-quoted ``m_<field>`` columns. Fields no record has are absent, so a comparison on
    them compiles to its constant truth value."""

    paramstyle = "inline"
    quote_char = "`"
    backend = "LanceDB"
    supported_ops = LANCEDB_CAPS.filter_ops
    nested_fields = LANCEDB_CAPS.nested_fields

    def __init__(self, fields: Mapping[str, FieldType]) -> None:
        super().__init__()
        self.fields = fields
        self._cast = False

    def column(self, field: str) -> str:
        super().column(field)  # raises Unsupported for nested fields
        return self.quote_ident(META_PREFIX + field)

    def column_for(self, field: str, value: Any) -> str:
        col = self.column(field)
        return f"CAST({col} AS DOUBLE)" if self._cast else col

    def _compare(self, e: Compare) -> str:
        if e.field not in self.fields:
            self.column(e.field)
            return "TRUE" if matches(e, {}) else "FALSE"
        values = e.value if e.op in (Op.IN, Op.NIN) else (e.value,)
        self._cast = self.fields[e.field] is FieldType.INT and any(
            isinstance(v, float) for v in values
        )
        try:
            return super()._compare(e)
        finally:
            self._cast = False


def _coerce_value(v: Any, ftype: FieldType, where: str) -> Any:
    if v is None or isinstance(v, bool):
        return v
    if ftype is FieldType.TIMESTAMP and type(v) is dt.date:
        # a date means its midnight (UTC), as in strataml.filters.matches; as a TIMESTAMP
        # literal, not a DATE one, which DataFusion casts to nanoseconds (years 1677-2262 only)
        return dt.datetime(v.year, v.month, v.day, tzinfo=dt.UTC)
    if ftype is FieldType.INT:
        if isinstance(v, float) and v.is_integer() and abs(v) < 2**63:
            return int(v)
        if isinstance(v, int) and not -(2**63) <= v < 2**63:
            return float(v)
    if ftype is FieldType.FLOAT and isinstance(v, int) and abs(v) >= 2**63:
        return float(v)
    return v


def _on_dates(expr: Compare) -> Compare:
    """A comparison of a ``DATE`` field with datetimes, as one with dates. A date means its
    midnight (as in :func:`strataml.filters.matches`), so a datetime at midnight is that date,
    and one later in the day sits between two dates: ``d < t`` is ``d <= t.date()``,
    ``d > t`` is ``d > t.date()``, and no date equals it. DataFusion would instead cast the
    column to nanosecond timestamps, which overflow outside the years 1677-2262."""

    def day(v: Any) -> tuple[dt.date, bool] | None:
        if not isinstance(v, dt.datetime):
            return None
        if v.tzinfo is not None:
            v = v.astimezone(dt.UTC)
        return v.date(), v.time() == dt.time(0)

    if expr.op in (Op.IN, Op.NIN):
        values: list[Any] = []
        for v in expr.value:
            d = day(v)
            if d is None:
                values.append(v)
            elif d[1]:
                values.append(d[0])  # a datetime later in the day equals no date: left out
        return Compare(expr.field, expr.op, tuple(values))
    d = day(expr.value)
    if d is None:
        return expr
    date, midnight = d
    if midnight:
        return Compare(expr.field, expr.op, date)
    if expr.op is Op.EQ:
        return Compare(expr.field, Op.IN, ())
    if expr.op is Op.NE:
        return Compare(expr.field, Op.NIN, ())
    op = {Op.LT: Op.LTE, Op.LTE: Op.LTE, Op.GT: Op.GT, Op.GTE: Op.GT}[expr.op]
    return Compare(expr.field, op, date)


def _coerce(expr: Expr, fields: Mapping[str, FieldType]) -> Expr:
    """Adapt values to the columns: integral floats on int columns become ints (ISO strings on
    timestamp/date columns: :func:`strataml.filters.coerce_temporal`)."""
    if isinstance(expr, And):
        return And(tuple(_coerce(i, fields) for i in expr.items))
    if isinstance(expr, Or):
        return Or(tuple(_coerce(i, fields) for i in expr.items))
    if isinstance(expr, Not):
        return Not(_coerce(expr.item, fields))
    ftype = fields.get(expr.field)
    if ftype is None or expr.op is Op.EXISTS:
        return expr
    if ftype is FieldType.DATE:
        return _on_dates(expr)
    where = f"filter on {expr.field!r}"
    if expr.op in (Op.IN, Op.NIN):
        return Compare(
            expr.field, expr.op, tuple(_coerce_value(v, ftype, where) for v in expr.value)
        )
    return Compare(expr.field, expr.op, _coerce_value(expr.value, ftype, where))


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _snake(index_type: str) -> str:
    """Lance's index type names (``IvfFlat``, ``IVF_HNSW_SQ``) as ``ivf_flat``, ``ivf_hnsw_sq``."""
    if "_" in index_type or index_type.isupper():
        return index_type.lower()
    return re.sub(r"(?<!^)(?=[A-Z])", "_", index_type).lower()


# ------------------------------------------------------------------------------- collections
@dataclass
class _Collection:
    name: str
    table: Any  # lancedb.table.LanceTable
    dim: int
    metric: Metric
    multi_tenant: bool
    metadata: dict[str, Any]
    fields: dict[str, FieldType]
    info_raw: bytes  # the collection info in the schema metadata (changes if recreated)
    schema: pa.Schema
    schema_at: float
    vector_index: bool
    quantized: bool  # the ANN index stores compressed vectors: re-rank with exact distances
    trained_rows: int
    lock: threading.RLock = field(default_factory=threading.RLock)  # writes
    #: index builds and compactions (one at a time; never held while a write waits on it)
    maint: threading.Lock = field(default_factory=threading.Lock)
    writes: int = 0  # since the last optimize
    rows: int = 0  # rows written since the last optimize
    grown: int = 0  # rows written since the ANN index was (re)trained
    optimized_rows: int = 0  # the collection's size at the last optimize
    partitions: int | None = None  # IVF partitions, when this store built the index
    building: Future[None] | None = None  # the background index build, if one was started
    build_retry_at: float = 0.0  # time.monotonic() before which a failed build is not retried
    build_error: str | None = None  # why the last background build failed

    @property
    def key(self) -> list[str]:
        return ["tenant", "id"] if self.multi_tenant else ["id"]


def _fields_of(schema: pa.Schema) -> dict[str, FieldType]:
    out: dict[str, FieldType] = {}
    for f in schema:
        if not f.name.startswith(META_PREFIX):
            continue
        fname = f.name[len(META_PREFIX) :]
        raw = (f.metadata or {}).get(_TYPE_KEY)
        if pa.types.is_floating(f.type):  # a widened int column carries no type tag
            out[fname] = FieldType.FLOAT
        elif raw is not None:
            out[fname] = FieldType(raw.decode())
        else:
            by_arrow = [t for t, a in _ARROW.items() if a == f.type and t is not FieldType.LIST]
            out[fname] = by_arrow[0] if by_arrow else FieldType.ANY
    return out


def _info_of(schema: pa.Schema, name: str) -> tuple[bytes, dict[str, Any]]:
    raw = (schema.metadata or {}).get(_SCHEMA_KEY)
    if raw is None:
        raise SchemaError(f"table {name!r} is not a strataml collection (no collection info)")
    info: dict[str, Any] = orjson.loads(raw)
    return raw, info


class _Recreated(Conflict):
    """The collection was dropped and created again (by another store or process)."""


# ------------------------------------------------------------------------------------ aliases
class _AliasFile:
    """``alias -> collection`` in a JSON file next to the tables (see the module docstring).

    :meth:`get` costs one ``stat``: the parsed file is kept while its identity (inode, size,
    mtime) is unchanged, and re-read on every call while its mtime is within
    ``_ALIAS_SETTLE_S`` of when it was read (file timestamps are coarse: two writes in one tick
    would otherwise look alike). :meth:`locked` serialises writers across threads and processes.
    """

    def __init__(self, root: Path) -> None:
        self.path = root / _ALIAS_FILE
        self.lock_path = root / _ALIAS_LOCK
        self._aliases: dict[str, str] = {}
        self._sig: tuple[int, int, int] | None = None
        self._mu = threading.RLock()

    def get(self) -> dict[str, str]:
        """The current aliases (a snapshot: do not mutate it)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._aliases, self._sig = {}, None
            return self._aliases
        sig = (st.st_ino, st.st_size, st.st_mtime_ns)
        if sig != self._sig:
            self._read(sig)
        return self._aliases

    def _read(self, sig: tuple[int, int, int]) -> None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            self._aliases, self._sig = {}, None
            return
        try:
            doc = orjson.loads(raw)
            aliases = doc["aliases"]
            if not isinstance(aliases, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in aliases.items()
            ):
                raise TypeError("aliases must map names to names")
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise SchemaError(f"the alias file {self.path} is damaged: {exc}") from exc
        settled = time.time_ns() - sig[2] > _ALIAS_SETTLE_S * 1e9
        self._aliases, self._sig = dict(aliases), (sig if settled else None)

    @contextmanager
    def locked(self) -> Iterator[dict[str, str]]:
        """Hold the exclusive alias lock; yields the aliases read under it."""
        with self._mu:
            try:
                fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise Unavailable(f"cannot open the alias lock {self.lock_path}: {exc}") from exc
            try:
                _lock_file(fd)
                self._sig = None  # read afresh under the lock
                with _engine("reading the aliases"):
                    current = dict(self.get())
                yield current
            finally:
                os.close(fd)  # releases the lock

    def write(self, aliases: Mapping[str, str]) -> None:
        """Replace the file atomically (call under :meth:`locked`)."""
        data = orjson.dumps(
            {"format": _FORMAT, "aliases": dict(sorted(aliases.items()))},
            option=orjson.OPT_INDENT_2,
        )
        tmp = self.path.with_name(f".{_ALIAS_FILE}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)
        _fsync_dir(self.path.parent)
        self._sig = None


def _lock_file(fd: int) -> None:
    """Block until this process holds an exclusive lock on ``fd``."""
    if sys.platform == "win32":
        import msvcrt

        while True:
            try:
                msvcrt.locking(fd, msvcrt.LK_LOCK, 1)
                return
            except OSError:  # LK_LOCK gives up after ~10 s: keep waiting
                continue
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX)


def _fsync_dir(path: Path) -> None:
    if sys.platform == "win32":  # directories cannot be opened for fsync there
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ------------------------------------------------------------------------------------- store
class LanceDBVectorStore:
    """A :class:`~strataml.protocols.VectorStore` over LanceDB tables in ``path``.

    ``index_threshold``: build the ANN index (IVF_FLAT) once a collection has this many rows
    (exhaustive, exact search below it). ``nprobes``: IVF partitions probed per query (more are
    probed when a filter leaves fewer than ``k`` candidates). ``refine_factor``: re-rank
    ``refine_factor * k`` candidates with exact distances when the index is quantized (IVF_PQ,
    IVF_SQ, HNSW_SQ ... built by other tools); IVF_FLAT needs no re-ranking.

    Errors: see :class:`~strataml.protocols.VectorStore`; LanceDB's own errors are translated
    (:func:`translate_lance_error`) and chained. A closed store raises :class:`Unavailable`.
    """

    #: Calls take milliseconds: async wrappers should run them in a worker thread.
    blocking_io = True

    def __init__(
        self,
        path: str | Path,
        *,
        index_threshold: int = 50_000,
        nprobes: int = 20,
        refine_factor: int | None = 5,
    ) -> None:
        if isinstance(index_threshold, bool) or not isinstance(index_threshold, int):
            raise ConfigError(f"index_threshold must be an integer, got {index_threshold!r}")
        if index_threshold < 256:
            raise ConfigError("index_threshold must be at least 256 (an index needs training rows)")
        if isinstance(nprobes, bool) or not isinstance(nprobes, int) or nprobes < 1:
            raise ConfigError(f"nprobes must be a positive integer, got {nprobes!r}")
        if refine_factor is not None and (
            isinstance(refine_factor, bool)
            or not isinstance(refine_factor, int)
            or refine_factor < 1
        ):
            raise ConfigError(
                f"refine_factor must be a positive integer or None, got {refine_factor!r}"
            )
        import lancedb

        self.path = Path(path).expanduser()
        self.index_threshold = index_threshold
        self.nprobes = nprobes
        self.refine_factor = refine_factor
        with _engine(f"opening the vector store at {self.path}"):
            self.path.mkdir(parents=True, exist_ok=True)
            self._db: Any = lancedb.connect(
                str(self.path), read_consistency_interval=dt.timedelta(seconds=_SCHEMA_TTL_S)
            )
        self._collections: dict[str, _Collection] = {}
        self._aliases = _AliasFile(self.path)
        self._lock = threading.RLock()
        self._pool: ThreadPoolExecutor | None = None
        self._builder: ThreadPoolExecutor | None = None
        self._builder_lock = threading.Lock()  # (never held while waiting for another lock)
        self._closed = False

    # -------------------------------------------------------------------------- housekeeping
    @property
    def capabilities(self) -> Capabilities:
        return LANCEDB_CAPS

    def close(self) -> None:
        """Release table handles; wait for an index build in progress (builds not started yet
        are cancelled: the next upsert or ``optimize`` starts them again). Safe to call twice;
        the store is unusable afterwards."""
        with self._lock, self._builder_lock:
            self._closed = True
            self._collections.clear()
            pool, self._pool = self._pool, None
            builder, self._builder = self._builder, None
        if pool is not None:
            pool.shutdown(wait=True)
        if builder is not None:
            builder.shutdown(wait=True, cancel_futures=True)

    def __repr__(self) -> str:
        return f"LanceDBVectorStore({str(self.path)!r})"

    def _check_open(self) -> None:
        if self._closed:
            raise Unavailable("this vector store is closed; open a new one")

    def _coll(self, name: str) -> _Collection:
        """The collection ``name`` names, directly or through an alias."""
        self._check_open()
        check_name("collection", name)
        with _engine("reading the aliases"):
            target = self._aliases.get().get(name)
        if target is None:
            return self._direct(name)
        try:
            return self._direct(target)
        except NotFound as exc:
            raise NotFound(
                f"alias {name!r} points at collection {target!r}, which does not exist"
            ) from exc

    def _direct(self, name: str) -> _Collection:
        """The collection's cached handle, re-validated at most once a second (a collection
        dropped or recreated elsewhere is noticed then)."""
        c = self._collections.get(name)
        if c is not None and time.monotonic() - c.schema_at <= _SCHEMA_TTL_S:
            return c
        with self._lock:
            c = self._collections.get(name)
            if c is not None:
                try:
                    self._refresh(c, force=True)
                    return c
                except _Recreated:
                    pass
            c = self._open(name)
            self._collections[name] = c
            return c

    def _open(self, name: str) -> _Collection:
        try:
            table = self._db.open_table(name)
        except Exception as exc:
            err = translate_lance_error(exc, f"opening collection {name!r}")
            if isinstance(err, NotFound) or "not found" in str(exc).lower():
                raise NotFound(f"collection {name!r} does not exist; create it first") from exc
            raise err from exc
        with _engine(f"opening collection {name!r}"):
            self._repair(table)
            schema = table.schema
            indices = table.list_indices()
            index = [i for i in indices if i.columns == ["vector"]]
            count = int(table.count_rows())
            rows = count if index else 0
            # rows the indexes do not cover yet (written by an earlier process): the
            # compaction policy of _maintain picks up where that process left off, rather than
            # compacting on this process's first write
            unindexed = max(
                (int(getattr(i, "num_unindexed_rows", 0) or 0) for i in indices), default=0
            )
        raw, info = _info_of(schema, name)
        return _Collection(
            name=name,
            table=table,
            dim=int(info["dim"]),
            metric=info["metric"],
            multi_tenant=bool(info["multi_tenant"]),
            metadata=dict(info.get("metadata") or {}),
            fields=_fields_of(schema),
            info_raw=raw,
            schema=schema,
            schema_at=time.monotonic(),
            vector_index=bool(index),
            quantized=bool(index) and index[0].index_type != "IvfFlat",
            trained_rows=rows,
            rows=unindexed,
            optimized_rows=max(0, count - unindexed),
        )

    @staticmethod
    def _repair(table: Any) -> None:
        """Finish a widening (int -> float) interrupted between its steps."""
        names = set(table.schema.names)
        for tmp in [n for n in names if n.startswith("__widen_")]:
            target = META_PREFIX + tmp[len("__widen_") :]
            if target in names:
                table.drop_columns([tmp])
            else:
                table.alter_columns({"path": tmp, "name": target})

    def _refresh(self, c: _Collection, *, force: bool = False) -> None:
        """Re-read the schema (metadata fields) when it is older than a second or ``force``.

        A collection dropped meanwhile raises :class:`NotFound`, one dropped and created again
        raises :class:`_Recreated` (a :class:`Conflict`); both evict the cached handle.
        """
        if not force and time.monotonic() - c.schema_at <= _SCHEMA_TTL_S:
            return
        try:
            schema = c.table.schema
        except Exception as exc:
            err = translate_lance_error(exc, f"reading the schema of {c.name!r}")
            if isinstance(err, NotFound):
                self._evict(c)
                raise NotFound(f"collection {c.name!r} does not exist (it was dropped)") from exc
            raise err from exc
        if (schema.metadata or {}).get(_SCHEMA_KEY) != c.info_raw:
            self._evict(c)
            raise _Recreated(f"collection {c.name!r} was dropped and created again; retry")
        c.schema, c.fields, c.schema_at = schema, _fields_of(schema), time.monotonic()

    def _evict(self, c: _Collection) -> None:
        with self._lock:
            if self._collections.get(c.name) is c:
                del self._collections[c.name]

    # --------------------------------------------------------------------------- collections
    def create_collection(
        self,
        name: str,
        dim: int,
        metric: Metric = "cosine",
        *,
        multi_tenant: bool = False,
        metadata: Mapping[str, Any] | None = None,
        exist_ok: bool = False,
    ) -> CollectionInfo:
        """Create a collection of ``dim``-dimensional vectors compared with ``metric``.

        An existing collection raises :class:`Conflict`, unless ``exist_ok`` and its dimension,
        metric and tenancy match (then it is returned unchanged). ``metadata`` is free-form JSON
        kept with the collection. Raises :class:`InvalidInput` (bad name, dimension, metric or
        metadata), :class:`LimitExceeded` (a dimension over Arrow's limit) and
        :class:`Unsupported` (a metric this backend lacks).
        """
        self._check_open()
        check_name("collection", name)
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise InvalidInput(f"dim must be a positive integer, got {dim!r}")
        if dim > _MAX_DIM:
            raise LimitExceeded(f"dim {dim} is over LanceDB's limit of {_MAX_DIM}")
        if metric not in _METRICS:
            raise InvalidInput(f"unknown metric {metric!r}; use 'cosine', 'l2' or 'dot'")
        if metric not in self.capabilities.metrics:
            raise Unsupported(f"LanceDB vector store cannot use metric {metric!r}")
        if not isinstance(multi_tenant, bool):
            raise InvalidInput(f"multi_tenant must be a bool, got {multi_tenant!r}")
        if metadata is not None and not isinstance(metadata, Mapping):
            raise InvalidInput(
                f"collection metadata must be a mapping, got {type(metadata).__name__}"
            )
        meta = dict(metadata or {})
        blob = dumps_record(meta, "collection metadata")
        with self._aliases.locked() as aliases, self._lock:
            if name in aliases:
                raise Conflict(
                    f"{name!r} is an alias (of collection {aliases[name]!r}); aliases and "
                    "collections share one namespace"
                )
            try:
                existing = self._direct(name)
            except NotFound:
                existing = None
            if existing is None:
                created = self._create(name, dim, metric, multi_tenant, blob)
                try:
                    existing = self._direct(name)
                except NotFound as exc:  # dropped concurrently
                    raise Conflict(f"collection {name!r} was dropped while being created") from exc
                if created:
                    return self._info(existing, count=0)
            if not exist_ok:
                raise Conflict(
                    f"collection {name!r} already exists (pass exist_ok=True to reuse it)"
                )
            mismatch = [
                f"{what} {have!r} (asked for {want!r})"
                for what, have, want in (
                    ("dim", existing.dim, dim),
                    ("metric", existing.metric, metric),
                    ("multi_tenant", existing.multi_tenant, multi_tenant),
                )
                if have != want
            ]
            if mismatch:
                raise Conflict(f"collection {name!r} exists with {', '.join(mismatch)}")
            return self.describe(name)

    def _create(self, name: str, dim: int, metric: str, multi_tenant: bool, meta: bytes) -> bool:
        """Create the table and its scalar/FTS indexes; ``False`` if it appeared meanwhile."""
        from lancedb.index import FTS, BTree

        info = {
            "format": _FORMAT,
            "dim": dim,
            "metric": metric,
            "multi_tenant": multi_tenant,
            "metadata": orjson.loads(meta),
        }
        schema = pa.schema(
            [
                pa.field("id", pa.string()),
                pa.field("tenant", pa.string()),
                pa.field("vector", pa.list_(pa.float32(), dim)),
                pa.field("text", pa.string()),
            ],
            metadata={_SCHEMA_KEY: orjson.dumps(info)},
        )
        try:
            table = self._db.create_table(name, schema=schema, mode="create")
        except Exception as exc:
            err = translate_lance_error(exc, f"creating collection {name!r}")
            if isinstance(err, Conflict):
                return False  # created concurrently: the caller re-reads and compares
            raise err from exc
        with _engine(f"indexing collection {name!r}"):
            table.create_index("text", config=FTS())
            table.create_index("id", config=BTree())
            if multi_tenant:
                table.create_index("tenant", config=BTree())
        return True

    def drop_collection(self, name: str) -> None:
        """Delete a collection and its data (no error if it does not exist).

        Raises :class:`Conflict` when an alias points at it (repoint or drop the alias first)
        or when ``name`` is an alias (use :meth:`drop_alias`). Waits for an index build of the
        collection in progress.
        """
        self._check_open()
        check_name("collection", name)
        with self._aliases.locked() as aliases:
            if name in aliases:
                raise Conflict(f"{name!r} is an alias, not a collection: drop it with drop_alias")
            pointing = sorted(a for a, t in aliases.items() if t == name)
            if pointing:
                raise Conflict(
                    f"collection {name!r} is the target of alias(es) {', '.join(pointing)}: "
                    "repoint or drop them first"
                )
            with self._lock:
                c = self._collections.pop(name, None)
            # an index build writes into the table's directory: let it finish first
            with c.maint if c is not None else nullcontext(), _engine(f"dropping {name!r}"):
                self._db.drop_table(name, ignore_missing=True)

    def collections(self) -> list[str]:
        """The names of every collection (not the aliases), sorted."""
        self._check_open()
        return sorted(self._table_names())

    def _table_names(self) -> list[str]:
        names: list[str] = []
        token: str | None = None
        with _engine("listing collections"):
            while True:
                page = self._db.list_tables(page_token=token)
                names.extend(page.tables)
                token = page.page_token
                if not token:
                    break
        return names

    # ------------------------------------------------------------------------------- aliases
    def set_alias(self, alias: str, collection: str) -> None:
        """Point ``alias`` at ``collection``: create the alias or repoint it atomically (one
        ``os.replace`` of the alias file; readers see the old target or the new one).

        Raises :class:`InvalidInput` (bad names), :class:`Conflict` (``alias`` is a
        collection's name) and :class:`NotFound` (``collection`` does not exist or is an alias).
        """
        self._check_open()
        check_name("alias", alias)
        check_name("collection", collection)
        with self._aliases.locked() as aliases:
            tables = set(self._table_names())
            if alias in tables:
                raise Conflict(
                    f"{alias!r} is a collection's name; aliases and collections share one namespace"
                )
            if collection in aliases:
                raise NotFound(
                    f"{collection!r} is an alias, not a collection: point {alias!r} at "
                    f"collection {aliases[collection]!r} instead"
                )
            if collection not in tables:
                raise NotFound(f"collection {collection!r} does not exist; create it first")
            if aliases.get(alias) == collection:
                return
            aliases[alias] = collection
            with _engine(f"writing alias {alias!r}"):
                self._aliases.write(aliases)

    def drop_alias(self, alias: str) -> None:
        """Remove ``alias`` (no error if it does not exist); its collection is untouched."""
        self._check_open()
        check_name("alias", alias)
        with self._aliases.locked() as aliases:
            if aliases.pop(alias, None) is not None:
                with _engine(f"dropping alias {alias!r}"):
                    self._aliases.write(aliases)

    def aliases(self) -> dict[str, str]:
        """Every alias and the collection it points at, sorted by alias."""
        self._check_open()
        with _engine("reading the aliases"):
            return dict(sorted(self._aliases.get().items()))

    def describe(self, name: str) -> CollectionInfo:
        """Dimension, metric, tenancy, row count (all tenants), metadata fields with their types
        and the collection's metadata; for an alias, its target's (with the target's ``name``).
        :class:`NotFound` for an unknown collection."""
        c = self._coll(name)
        try:
            self._refresh(c, force=True)
        except _Recreated:
            c = self._coll(name)
        with _engine(f"counting {name!r}"):
            count = int(c.table.count_rows())
        return self._info(c, count)

    @staticmethod
    def _info(c: _Collection, count: int) -> CollectionInfo:
        return CollectionInfo(
            name=c.name,
            dim=c.dim,
            metric=c.metric,
            count=count,
            multi_tenant=c.multi_tenant,
            fields=dict(sorted(c.fields.items())),
            metadata=c.metadata,
        )

    # -------------------------------------------------------------------------------- writes
    def upsert(self, name: str, records: Records) -> int:
        """Insert or replace records by id (per tenant); return how many were written.

        The batch is validated completely first (see :mod:`strataml.vectors.batch`); on any
        error nothing is written. Duplicate ids in one batch: the last record wins.
        """
        c = self._coll(name)
        with c.lock:
            self._refresh(c, force=True)
            batch = prepare_batch(
                records,
                dim=c.dim,
                multi_tenant=c.multi_tenant,
                known_fields=c.fields,
                max_rows=self.capabilities.max_batch_rows,
            )
            if not batch:
                return 0
            with _engine(f"upserting into {name!r}"):
                if batch.new_fields or batch.widened:
                    self._evolve(c, batch)
                (
                    c.table.merge_insert(c.key)
                    .when_matched_update_all()
                    .when_not_matched_insert_all()
                    .execute(self._arrow(c, batch))
                )
                self._maintain(c, len(batch))
            return len(batch)

    def _evolve(self, c: _Collection, batch: VectorBatch) -> None:
        if batch.new_fields:
            c.table.add_columns(
                pa.schema(
                    [
                        pa.field(META_PREFIX + n, _ARROW[t], metadata={_TYPE_KEY: t.value.encode()})
                        for n, t in sorted(batch.new_fields.items())
                    ]
                )
            )
        for n in sorted(batch.widened):
            col, tmp = META_PREFIX + n, f"__widen_{n}"
            c.table.add_columns({tmp: f"CAST(`{col}` AS DOUBLE)"})
            c.table.drop_columns([col])
            c.table.alter_columns({"path": tmp, "name": col})
        self._refresh(c, force=True)

    def _arrow(self, c: _Collection, batch: VectorBatch) -> pa.Table:
        n = len(batch)
        cols: dict[str, pa.Array] = {
            "id": pa.array(batch.ids, pa.string()),
            "tenant": pa.array(batch.tenants, pa.string()),
            "vector": pa.FixedSizeListArray.from_arrays(
                pa.array(batch.vectors.reshape(-1), pa.float32()), c.dim
            ),
            "text": pa.array(batch.texts, pa.string()),
        }
        for f in c.schema:
            if not f.name.startswith(META_PREFIX):
                continue
            fname = f.name[len(META_PREFIX) :]
            ftype = c.fields.get(fname)
            if fname not in batch.field_types:
                cols[f.name] = pa.nulls(n, f.type)
                continue
            values = [md.get(fname) for md in batch.metadata]
            if ftype is FieldType.LIST:
                values = [None if v is None else orjson.dumps(v).decode() for v in values]
            try:
                cols[f.name] = pa.array(values, f.type)
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
                raise InvalidInput(f"metadata field {fname!r}: {exc}") from exc
        return pa.Table.from_pydict(cols, schema=c.schema)

    def _maintain(self, c: _Collection, rows: int) -> None:
        """After a write (under ``c.lock``): start the ANN index build in the background when it
        is due; fold new rows into the indexes and compact every so many writes, unless an index
        build or an ``optimize`` holds the collection (they do the same work)."""
        c.writes += 1
        c.rows += rows
        c.grown += rows
        if rows and (not c.vector_index or c.grown >= c.trained_rows * (_RETRAIN_GROWTH - 1)):
            count = int(c.table.count_rows())
            if self._index_due(c, count):
                self._start_build(c)
                return
        unindexed_limit = min(_OPTIMIZE_ROWS, max(_OPTIMIZE_MIN_ROWS, c.optimized_rows))
        if (c.writes >= _OPTIMIZE_WRITES or c.rows >= unindexed_limit) and c.maint.acquire(
            blocking=False
        ):
            try:
                c.table.optimize(cleanup_older_than=_KEEP_VERSIONS)
                c.writes = c.rows = 0
                c.optimized_rows = int(c.table.count_rows())
            finally:
                c.maint.release()

    def _index_due(self, c: _Collection, count: int) -> bool:
        """Whether the ANN index should be built (or retrained) at ``count`` rows."""
        if count < self.index_threshold:
            return False
        return not c.vector_index or count >= c.trained_rows * _RETRAIN_GROWTH

    def _start_build(self, c: _Collection) -> None:
        """Queue a background index build of ``c`` unless one is queued or running (or the last
        one failed less than ``_BUILD_RETRY_S`` ago)."""
        if c.building is not None and not c.building.done():
            return
        if time.monotonic() < c.build_retry_at:
            return
        with self._builder_lock:
            if self._closed:
                return
            if self._builder is None:
                self._builder = ThreadPoolExecutor(1, thread_name_prefix="strataml-lance-index")
            c.building = self._builder.submit(self._background_build, c)

    def _background_build(self, c: _Collection) -> None:
        """The background job: build the index if it is still due (an ``optimize`` may have
        built it meanwhile). Failures are logged and kept for :meth:`stats`."""
        with c.maint:
            try:
                count = int(c.table.count_rows())
                if self._index_due(c, count):
                    self._build_index(c, count)
                c.build_error = None
            except Exception as exc:  # noqa: BLE001 - a background thread has no caller
                c.build_error = str(translate_lance_error(exc, f"indexing {c.name!r}"))
                c.build_retry_at = time.monotonic() + _BUILD_RETRY_S
                _log.warning("strataml: %s (retried later, or run optimize)", c.build_error)

    def _build_index(self, c: _Collection, rows: int) -> None:
        """IVF_FLAT with about sqrt(rows) partitions: exact distances within the probed
        partitions (so nothing to re-rank) and the fastest build and queries of LanceDB's index
        types at this scale (bench/bench_vectors.py). Called holding ``c.maint``; writes go on
        meanwhile (rows written during the build are searched exhaustively, then folded in)."""
        from lancedb.index import IvfFlat

        partitions = max(1, math.isqrt(rows))
        config = IvfFlat(distance_type=c.metric, num_partitions=partitions)
        c.table.create_index("vector", config=config, replace=True)
        c.table.optimize(cleanup_older_than=_KEEP_VERSIONS)
        with c.lock:
            c.vector_index, c.quantized, c.trained_rows = True, False, rows
            c.partitions = partitions
            c.writes = c.rows = c.grown = 0
            c.optimized_rows = rows

    def delete(self, name: str, ids: Sequence[str], *, tenant: str | None = None) -> None:
        """Delete records by id within ``tenant`` (ids that do not exist are ignored)."""
        c = self._coll(name)
        tenant = check_tenant(c.multi_tenant, tenant, name)
        keys = normalize_ids(ids)
        if not keys:
            return
        with c.lock, _engine(f"deleting from {name!r}"):
            for start in range(0, len(keys), _ID_CHUNK):
                c.table.delete(self._id_where(tenant, keys[start : start + _ID_CHUNK]))
            self._maintain(c, 0)

    # --------------------------------------------------------------------------------- reads
    @staticmethod
    def _id_where(tenant: str | None, ids: Sequence[str]) -> str:
        where = f"`id` IN ({', '.join(_literal(i) for i in ids)})"
        return where if tenant is None else f"`tenant` = {_literal(tenant)} AND {where}"

    def _columns(self, c: _Collection, include_vectors: bool) -> list[str]:
        cols = ["id", "tenant", "text"]
        if include_vectors:
            cols.append("vector")
        cols.extend(f.name for f in c.schema if f.name.startswith(META_PREFIX))
        return cols

    def get(
        self,
        name: str,
        ids: Sequence[str],
        *,
        tenant: str | None = None,
        include_vectors: bool = True,
    ) -> list[VectorRecord]:
        """The records that exist among ``ids`` (within ``tenant``), in the order of ``ids``;
        an id asked for twice is returned once."""
        c = self._coll(name)
        tenant = check_tenant(c.multi_tenant, tenant, name)
        keys = normalize_ids(ids)
        if not keys:
            return []
        found: dict[str, VectorRecord] = {}
        cols = self._columns(c, include_vectors)
        with _engine(f"reading from {name!r}"):
            for start in range(0, len(keys), _ID_CHUNK):
                chunk = keys[start : start + _ID_CHUNK]
                tbl = (
                    c.table.search()
                    .where(self._id_where(tenant, chunk))
                    .select(cols)
                    .limit(len(chunk))
                    .to_arrow()
                )
                for row in self._rows(c, tbl):
                    found[row["id"]] = VectorRecord(**row)
        return [found[k] for k in keys if k in found]

    def count(
        self, name: str, *, filter: Mapping[str, Any] | None = None, tenant: str | None = None
    ) -> int:
        """How many records (within ``tenant``) match ``filter``."""
        c = self._coll(name)
        tenant = check_tenant(c.multi_tenant, tenant, name)
        where = self._where(c, filter, tenant)
        with _engine(f"counting {name!r}"):
            return int(c.table.count_rows(where))

    def scan(
        self,
        name: str,
        *,
        tenant: str | None = None,
        include_vectors: bool = False,
        batch_size: int = 1000,
    ) -> Iterator[list[VectorRecord]]:
        """Every record of the collection (of ``tenant`` when multi-tenant), once, in batches of
        at most ``batch_size``, in storage order.

        Streams one table version (the latest when the scan starts: later writes are not
        seen) with the tenant predicate pushed down and only the needed columns read; memory
        is bounded by Lance's scan read-ahead (its I/O buffer, ``LANCE_DEFAULT_IO_BUFFER_SIZE``
        and ``LANCE_DEFAULT_FRAGMENT_READAHEAD``), not by the table's size. Records are built
        column-wise from the Arrow batches, without a second validation. Raises
        :class:`NotFound`, :class:`InvalidInput` (bad ``batch_size``, missing or unexpected
        tenant) at the call, before iterating.
        """
        batch_size = min(check_batch_size(batch_size), _MAX_ROWS)
        c = self._coll(name)
        tenant = check_tenant(c.multi_tenant, tenant, name)
        where = self._where(c, None, tenant)
        cols = self._columns(c, include_vectors)
        with _engine(f"scanning {name!r}"):
            q = c.table.search().select(cols)
            if where is not None:
                q = q.where(where)
            reader = q.to_batches(batch_size)
        return self._scan_batches(c, reader, batch_size)

    def scan_metadata(
        self,
        name: str,
        fields: Sequence[str],
        *,
        tenant: str | None = None,
        batch_size: int = 10_000,
    ) -> Iterator[pa.RecordBatch]:
        """Every record's id and the metadata ``fields``, column-wise (see
        :meth:`~strataml.protocols.VectorStore.scan_metadata`).

        Reads only the ``id`` column and the fields' ``m_`` columns of one table version (as
        :meth:`scan`) and hands Lance's Arrow batches over as they are (sliced to
        ``batch_size``): no per-row work in Python. Raises :class:`NotFound`,
        :class:`InvalidInput` (bad ``fields`` or ``batch_size``, a list field, missing or
        unexpected tenant) at the call, before iterating.
        """
        names = check_fields(fields)
        batch_size = min(check_batch_size(batch_size), _MAX_ROWS)
        c = self._coll(name)
        tenant = check_tenant(c.multi_tenant, tenant, name)
        schema = metadata_schema(names, c.fields)
        where = self._where(c, None, tenant)
        cols = ["id", *(META_PREFIX + n for n in names if n in c.fields)]
        with _engine(f"scanning {name!r}"):
            q = c.table.search().select(cols)
            if where is not None:
                q = q.where(where)
            reader = q.to_batches(batch_size)
        return self._metadata_batches(c, reader, schema, batch_size)

    def _metadata_batches(
        self, c: _Collection, reader: pa.RecordBatchReader, schema: pa.Schema, batch_size: int
    ) -> Iterator[pa.RecordBatch]:
        struct = schema.field("metadata").type
        children = [struct.field(i) for i in range(struct.num_fields)]
        with _engine(f"scanning {c.name!r}"):
            for batch in reader:
                for start in range(0, batch.num_rows, batch_size):
                    part = batch.slice(start, batch_size)
                    n = part.num_rows
                    if n == 0:
                        continue
                    present = set(part.schema.names)
                    arrays = [
                        part.column(META_PREFIX + f.name)
                        if META_PREFIX + f.name in present
                        else pa.nulls(n, f.type)
                        for f in children
                    ]
                    meta = (
                        pa.StructArray.from_arrays(arrays, names=[f.name for f in children])
                        if children
                        else pa.array([{}] * n, pa.struct([]))
                    )
                    # by names, not the schema: a field widened to float by another process
                    # since this store read the schema comes back as float64
                    yield pa.RecordBatch.from_arrays(
                        [part.column("id"), meta], names=["id", "metadata"]
                    )

    def _scan_batches(
        self, c: _Collection, reader: pa.RecordBatchReader, batch_size: int
    ) -> Iterator[list[VectorRecord]]:
        with _engine(f"scanning {c.name!r}"):
            for batch in reader:
                for start in range(0, batch.num_rows, batch_size):
                    part = pa.Table.from_batches([batch.slice(start, batch_size)])
                    yield self._records(c, part)

    def _records(self, c: _Collection, tbl: pa.Table) -> list[VectorRecord]:
        """Stored rows as records (validated when written: not validated again)."""
        names = tbl.column_names
        texts = tbl.column("text").to_pylist() if "text" in names else None
        tenants = tbl.column("tenant").to_pylist() if c.multi_tenant else None
        vectors = self._vectors(c, tbl) if "vector" in names else None
        return stored_records(
            tbl.column("id").to_pylist(), texts, self._metadata(c, tbl), tenants, vectors
        )

    @staticmethod
    def _vectors(c: _Collection, tbl: pa.Table) -> list[list[float]]:
        flat = tbl.column("vector").combine_chunks().flatten().to_numpy(zero_copy_only=False)
        vectors: list[list[float]] = flat.reshape(tbl.num_rows, c.dim).tolist()
        return vectors

    @staticmethod
    def _metadata(c: _Collection, tbl: pa.Table) -> list[dict[str, Any]]:
        """Each row's metadata (the ``m_`` columns of ``tbl``; nulls are absent fields)."""
        metas: list[dict[str, Any]] = [{} for _ in range(tbl.num_rows)]
        for col in tbl.column_names:
            if not col.startswith(META_PREFIX):
                continue
            fname = col[len(META_PREFIX) :]
            ftype = c.fields.get(fname) or _fields_of(pa.schema([tbl.schema.field(col)]))[fname]
            column = tbl.column(col)
            values = column.to_pylist()
            if ftype is FieldType.LIST:
                values = [None if v is None else orjson.loads(v) for v in values]
            elif ftype is FieldType.TIMESTAMP:
                values = [None if v is None else v.astimezone(dt.UTC) for v in values]
            if column.null_count == 0:
                for m, v in zip(metas, values, strict=True):
                    m[fname] = v
            else:
                for m, v in zip(metas, values, strict=True):
                    if v is not None:
                        m[fname] = v
        return metas

    # --------------------------------------------------------------------------------- health
    def stats(self, name: str) -> CollectionStats:
        """Count, deleted rows and the index of a collection (or of an alias's target).

        ``deleted``: rows deleted or overwritten that the table's data files still hold (Lance
        deletion files), until compaction rewrites them. ``index_type``: ``"ivf_flat"`` (or
        another Lance vector index found on the table) or ``"flat"`` (exhaustive search, below
        ``index_threshold``); ``indexed``: rows the index covers (the rest are searched
        exhaustively). ``details``: table version, versions kept, fragments, bytes, rows not yet
        in the vector and full-text indexes, whether a background build is running.
        """
        c = self._coll(name)
        with _engine(f"reading the stats of {c.name!r}"):
            return self._stats(c)

    def _stats(self, c: _Collection) -> CollectionStats:
        table = c.table
        count = int(table.count_rows())
        versions = table.list_versions()
        latest = max(versions, key=lambda v: int(v["version"])) if versions else {}
        summary = latest.get("metadata") or {}
        raw_deleted = summary.get("total_deletion_file_rows")
        deleted = None if raw_deleted is None else int(raw_deleted)
        tstats = table.stats()
        details: dict[str, Any] = {
            "version": latest.get("version"),
            "versions": len(versions),
            "fragments": tstats["fragment_stats"]["num_fragments"],
            "small_fragments": tstats["fragment_stats"]["num_small_fragments"],
            "bytes": tstats["total_bytes"],
            "nprobes": self.nprobes,
            "index_building": c.building is not None and not c.building.done(),
        }
        if c.build_error is not None:
            details["index_error"] = c.build_error
        params: dict[str, Any] = {"metric": c.metric}
        index_type, indexed = "flat", 0
        for idx in table.list_indices():
            istats = table.index_stats(idx.name)
            if istats is None:
                continue
            if idx.columns == ["vector"]:
                index_type = _snake(str(idx.index_type))
                indexed = int(istats.num_indexed_rows)
                params = {"metric": str(istats.distance_type or c.metric)}
                if c.partitions is not None and index_type.startswith("ivf"):
                    params["num_partitions"] = c.partitions
                details["unindexed"] = int(istats.num_unindexed_rows)
            elif idx.columns == ["text"]:
                details["fts_unindexed"] = int(istats.num_unindexed_rows)
        return CollectionStats.of(
            c.name,
            count,
            deleted,
            index_type=index_type,
            index_params=params,
            indexed=indexed,
            details=details,
        )

    def optimize(self, name: str) -> CollectionStats:
        """Compact deleted rows, fold new rows into the indexes, build or retrain the ANN index
        when it is due (``index_threshold``, 4x growth), remove versions older than an hour;
        return the stats afterwards.

        Waits for a background index build of the collection in progress. Searches, reads and
        writes go on meanwhile (each step commits a new table version); what they return does
        not change. A fragment under 1M rows that keeps deleted rows after Lance's compaction
        (Lance only rewrites one with more than 10 % deleted) has one row rewritten in place,
        with its own values, so that the next compaction rewrites it.
        """
        c = self._coll(name)
        with c.maint, _engine(f"optimizing {c.name!r}"):
            count = int(c.table.count_rows())
            if self._index_due(c, count):
                self._build_index(c, count)  # includes a table.optimize
            else:
                c.table.optimize(cleanup_older_than=_KEEP_VERSIONS)
            c.build_error, c.build_retry_at = None, 0.0
            stats = self._compact(c)
            with c.lock:
                c.writes = c.rows = 0
                c.optimized_rows = stats.count
        return stats

    def _compact(self, c: _Collection) -> CollectionStats:
        """Repeat Lance's optimize while it makes progress on deleted rows: it merges a fragment
        only once the indexes cover it (so a fragment written since the last optimize takes a
        second round), and a lone fragment is rewritten only past 10 % deleted (then one row is
        rewritten in place to give it a neighbour)."""
        stats = self._stats(c)
        touched = False
        for _ in range(4):
            fragments = stats.details["fragments"]
            if not stats.deleted:
                break
            if fragments == 1:
                if touched or stats.count >= _FRAGMENT_ROWS:
                    break
                touched = self._touch_one(c)
                if not touched:
                    break
            previous = (stats.deleted, fragments)
            c.table.optimize(cleanup_older_than=_KEEP_VERSIONS)
            stats = self._stats(c)
            if (stats.deleted, stats.details["fragments"]) == previous and fragments > 1:
                break  # large fragments under Lance's threshold: nothing more to do
        return stats

    @staticmethod
    def _touch_one(c: _Collection) -> bool:
        """Rewrite one live row with its own values (``SET id = id``): the lone fragment gains a
        neighbour, so Lance's compaction rewrites it and drops its deleted rows. A concurrent
        write to the same rows makes the update fail; then the fragment is left as it is."""
        first = c.table.search().select(["id", "tenant"]).limit(1).to_arrow()
        if not first.num_rows:
            return False
        rid, tenant = first.column("id")[0].as_py(), first.column("tenant")[0].as_py()
        where = LanceDBVectorStore._id_where(tenant, [rid])
        if tenant is None:
            where += " AND `tenant` IS NULL"
        try:
            c.table.update(where=where, values_sql={"id": "`id`"})
        except Exception as exc:  # noqa: BLE001 - best effort: a conflict leaves the tombstones
            _log.debug("strataml: could not rewrite a row of %r: %s", c.name, exc)
            return False
        return True

    def _where(
        self, c: _Collection, spec: Mapping[str, Any] | None, tenant: str | None
    ) -> str | None:
        parts: list[str] = []
        if tenant is not None:
            parts.append(f"`tenant` = {_literal(tenant)}")
        expr = parse_filter(spec)
        if expr is not None:
            self._refresh(c, force=not fields_used(expr) <= set(c.fields))
            check_types(expr, c.fields)
            coerced = _coerce(coerce_temporal(expr, c.fields), c.fields)  # type: ignore[arg-type]
            sql, _ = _LanceFilterCompiler(c.fields).compile(coerced)
            parts.append(sql)
        return " AND ".join(parts) if parts else None

    def search(
        self,
        name: str,
        vector: VectorLike | None = None,
        *,
        k: int = 10,
        text: str | None = None,
        mode: SearchMode | None = None,
        filter: Mapping[str, Any] | None = None,
        tenant: str | None = None,
        alpha: float = 0.5,
        include_vectors: bool = False,
    ) -> list[Hit]:
        """Dense, keyword or hybrid search (see :class:`~strataml.protocols.VectorStore`).

        The mode defaults to what was passed (vector -> dense, text -> keyword, both -> hybrid);
        an explicit mode uses only its own inputs. The filter and tenant are applied before
        ranking. Hybrid fuses both legs with :data:`strataml.vectors.fusion.DEFAULT_FUSION`.
        """
        c = self._coll(name)
        tenant = check_tenant(c.multi_tenant, tenant, name)
        resolved = resolve_mode(vector, text, mode, self.capabilities)
        k = check_k(k)
        alpha = check_alpha(alpha)
        qv = query_vector(vector, c.dim) if resolved != "keyword" else None
        where = self._where(c, filter, tenant)
        with _engine(f"searching {name!r}"):
            if resolved == "dense":
                assert qv is not None
                return self._dense(c, qv, k, where, include_vectors)
            assert text is not None
            if resolved == "keyword":
                return self._keyword(c, text, k, where, include_vectors)
            assert qv is not None
            pool = candidate_pool(k)
            # the legs run concurrently, as LanceDB's own hybrid query does
            pending = self._executor().submit(self._keyword, c, text, pool, where, include_vectors)
            dense = self._dense(c, qv, pool, where, include_vectors)
            keyword = pending.result()
            return fuse_hits(dense, keyword, alpha, k, method=DEFAULT_FUSION)

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            with self._lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(4, thread_name_prefix="strataml-lancedb")
        return self._pool

    def _dense(
        self,
        c: _Collection,
        qv: npt.NDArray[np.float32],
        k: int,
        where: str | None,
        include_vectors: bool,
    ) -> list[Hit]:
        q = (
            c.table.search(qv, vector_column_name="vector", query_type="vector")
            .distance_type(c.metric)
            .select([*self._columns(c, include_vectors), "_distance"])
            .limit(min(k, _MAX_ROWS))
        )
        if where is not None:
            q = q.where(where, prefilter=True)
        if c.vector_index:
            q = q.minimum_nprobes(self.nprobes).maximum_nprobes(0)
            if self.refine_factor and c.quantized:
                q = q.refine_factor(self.refine_factor)
        tbl = q.to_arrow()
        raw = tbl.column("_distance").to_pylist()
        hits: list[Hit] = []
        for row, d in zip(self._rows(c, tbl), raw, strict=True):
            distance = self._distance(c.metric, float(d))
            hits.append(
                Hit(
                    id=row["id"],
                    score=score_from_distance(c.metric, distance),
                    distance=distance,
                    metric=c.metric,
                    keyword_score=None,
                    text=row["text"],
                    metadata=row["metadata"],
                    tenant=row["tenant"],
                    vector=row.get("vector"),
                )
            )
        hits.sort(key=lambda h: -h.score)
        if c.metric == "cosine" and len(hits) < k:
            hits.extend(self._without_cosine(c, k - len(hits), hits, where, include_vectors))
        return hits

    def _without_cosine(
        self,
        c: _Collection,
        n: int,
        found: Sequence[Hit],
        where: str | None,
        include_vectors: bool,
    ) -> list[Hit]:
        """Up to ``n`` matching rows a cosine search left out: a zero vector (stored, or the
        query's) has no cosine distance, and LanceDB drops rows whose distance is NaN. They
        rank last, with the largest cosine distance (2.0, score 0), as on the other backends.
        Only runs when a search returned fewer than ``k`` hits."""
        parts = [where] if where is not None else []
        if found:
            parts.append(f"`id` NOT IN ({', '.join(_literal(h.id) for h in found)})")
        q = c.table.search().select(self._columns(c, include_vectors)).limit(min(n, _MAX_ROWS))
        if parts:
            q = q.where(" AND ".join(parts))
        rows = sorted(self._rows(c, q.to_arrow()), key=lambda r: r["id"])
        return [
            Hit(
                id=row["id"],
                score=score_from_distance("cosine", 2.0),
                distance=2.0,
                metric="cosine",
                keyword_score=None,
                text=row["text"],
                metadata=row["metadata"],
                tenant=row["tenant"],
                vector=row.get("vector"),
            )
            for row in rows
        ]

    @staticmethod
    def _distance(metric: str, lance: float) -> float:
        if metric == "l2":
            return math.sqrt(max(lance, 0.0))
        if metric == "cosine":
            return min(2.0, max(0.0, lance))
        return lance - 1.0  # LanceDB's dot distance is 1 - <q, v>

    def _keyword(
        self, c: _Collection, text: str, k: int, where: str | None, include_vectors: bool
    ) -> list[Hit]:
        from lancedb.query import MatchQuery

        match: Any = MatchQuery  # a pydantic model: its stub wants every keyword
        q = (
            c.table.search(match(text, "text"), query_type="fts")
            .select([*self._columns(c, include_vectors), "_score"])
            .limit(min(k, _MAX_ROWS))
        )
        if where is not None:
            q = q.where(where, prefilter=True)
        tbl = q.to_arrow()
        raw = tbl.column("_score").to_pylist()
        hits = [
            Hit(
                id=row["id"],
                score=score_from_bm25(float(s)),
                distance=None,
                metric=None,
                keyword_score=float(s),
                text=row["text"],
                metadata=row["metadata"],
                tenant=row["tenant"],
                vector=row.get("vector"),
            )
            for row, s in zip(self._rows(c, tbl), raw, strict=True)
        ]
        hits.sort(key=lambda h: -h.score)
        return hits

    def _rows(self, c: _Collection, tbl: pa.Table) -> list[dict[str, Any]]:
        """Result rows as ``{id, tenant, text, metadata[, vector]}`` dicts."""
        ids = tbl.column("id").to_pylist()
        tenants = tbl.column("tenant").to_pylist()
        texts = tbl.column("text").to_pylist()
        metas = self._metadata(c, tbl)
        if "vector" not in tbl.column_names:
            return [
                {"id": i, "tenant": tn, "text": t, "metadata": m}
                for i, tn, t, m in zip(ids, tenants, texts, metas, strict=True)
            ]
        vectors = self._vectors(c, tbl)
        return [
            {"id": i, "tenant": tn, "text": t, "metadata": m, "vector": v}
            for i, tn, t, m, v in zip(ids, tenants, texts, metas, vectors, strict=True)
        ]
