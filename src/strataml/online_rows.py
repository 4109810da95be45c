"""Validating what callers pass to online stores: rows, entity columns, TTL, features.

Shared by every online adapter (LMDB, Redis, ...). Everything here runs before a store touches
its backend, so bad input raises a typed strataml error and changes nothing. Arrow input is
converted column-wise (much faster than row-wise for wide feature rows).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import msgpack
import pyarrow as pa
import pyarrow.compute as pc

from strataml._time import MAX_MICROS, MIN_MICROS, event_micros, to_utc_naive
from strataml.arrowutil import as_table
from strataml.errors import InvalidInput

__all__ = [
    "Batch",
    "entity_columns",
    "entity_list",
    "features_arg",
    "normalize_rows",
    "py_values",
    "time_micros",
    "to_batch",
    "ttl_micros",
]

#: Values that need no check (a datetime does: its UTC instant must be one a datetime holds).
_PLAIN = frozenset({type(None), bool, int, float, str, bytes})


def entity_columns(entities: Any) -> tuple[str, ...]:
    """``entities=`` of a write: a non-empty sequence of distinct, non-empty column names."""
    if isinstance(entities, str) or not isinstance(entities, Sequence):
        raise InvalidInput(f"entities= is a list of column names, got {entities!r}")
    cols = tuple(entities)
    if not cols:
        raise InvalidInput("entities= must name at least one entity column")
    for c in cols:
        if not isinstance(c, str) or not c:
            raise InvalidInput(f"entity column names are non-empty strings, got {c!r}")
    if len(set(cols)) != len(cols):
        raise InvalidInput(f"entities= names a column twice: {list(cols)}")
    return cols


def ttl_micros(ttl: Any) -> int | None:
    """A positive ``timedelta`` in microseconds (``None`` stays ``None``)."""
    if ttl is None:
        return None
    if not isinstance(ttl, dt.timedelta):
        raise InvalidInput(f"ttl must be a datetime.timedelta, got {type(ttl).__name__}")
    if ttl <= dt.timedelta(0):
        raise InvalidInput(f"ttl must be positive, got {ttl}")
    return (ttl.days * 86_400 + ttl.seconds) * 1_000_000 + ttl.microseconds


def features_arg(features: Any) -> Sequence[str]:
    """``features=`` of a read: a sequence of feature names (not a bare string)."""
    plain = type(features) is list or type(features) is tuple
    if not plain and (isinstance(features, str) or not isinstance(features, Sequence)):
        raise InvalidInput(f"features= is a list of feature names or None, got {features!r}")
    try:
        "".join(features)  # checks that every name is a str, at C speed
    except TypeError:
        bad = next(f for f in features if not isinstance(f, str))
        raise InvalidInput(f"feature names are strings, got {bad!r}") from None
    names: Sequence[str] = features
    return names


def entity_list(entities: Any) -> Sequence[Any]:
    """The ``entities`` argument of ``get_many`` / ``delete``: a sequence of mappings."""
    if isinstance(entities, Mapping | str | bytes) or not isinstance(entities, Iterable):
        raise InvalidInput(f"entities is a list of entity mappings, got {type(entities).__name__}")
    return entities if isinstance(entities, Sequence) else list(entities)


def _check_nested(value: Any, where: str) -> None:
    """Reject maps with non-string keys anywhere in a value (they could not be read back
    identically on every backend), and aware datetimes whose UTC instant is beyond the years
    1-9999 (stored, they could not be read back at all)."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            to_utc_naive(value, where)
    elif isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                raise InvalidInput(f"{where}: nested map keys must be strings, got {k!r}")
            if type(v) not in _PLAIN:
                _check_nested(v, f"{where}.{k}")
    elif isinstance(value, list | tuple | set | frozenset) and not _PLAIN.issuperset(
        map(type, value)
    ):
        for i, v in enumerate(value):
            _check_nested(v, f"{where}[{i}]")


class Batch:
    """Rows split into entity key columns, feature dicts and event times (µs since epoch).

    For Arrow input, ``table`` and ``feature_names`` keep the columns too (``features`` is
    then lazy), so a store can encode the features column-wise instead of row by row.
    """

    __slots__ = ("event_us", "feature_names", "features", "key_columns", "n", "table")

    def __init__(
        self,
        n: int,
        key_columns: list[list[Any]],
        features: Iterable[dict[str, Any]],
        event_us: list[int] | None,
        table: pa.Table | None = None,
        feature_names: Sequence[str] = (),
    ) -> None:
        self.n = n
        self.key_columns = key_columns
        self.features = features
        self.event_us = event_us
        self.table = table
        self.feature_names = feature_names


def _event_micros(values: Iterable[Any], where: str) -> list[int]:
    out: list[int] = []
    for i, value in enumerate(values):
        if value is None:
            raise InvalidInput(f"{where}: row {i}: the event time is null")
        try:
            out.append(event_micros(value, f"{where}: row {i}: event time"))
        except OverflowError as exc:
            raise InvalidInput(f"{where}: row {i}: event time {value!r} is out of range") from exc
    return out


def time_micros(
    col: pa.ChunkedArray | pa.Array, where: str = "column"
) -> pa.ChunkedArray | pa.Array:
    """A timestamp or date column as int64 microseconds since the epoch (UTC; naive columns
    are UTC). :class:`InvalidInput` (prefixed with ``where``) for a time beyond the years
    1-9999, which no ``datetime`` could hold when read back."""
    t = col.type
    tz = t.tz if pa.types.is_timestamp(t) else None
    try:
        # nanoseconds lose their last digits (safe=False); coarser units only widen, and an
        # overflow of int64 microseconds must raise rather than wrap
        safe = not (pa.types.is_timestamp(t) and t.unit == "ns")
        micros = col.cast(pa.timestamp("us", tz=tz), safe=safe).cast(pa.int64())
    except pa.ArrowInvalid as exc:
        raise InvalidInput(f"{where}: a time is beyond the years 1-9999: {exc}") from exc
    bounds = pc.min_max(micros)
    lo, hi = bounds["min"].as_py(), bounds["max"].as_py()
    if lo is not None and (lo < MIN_MICROS or hi > MAX_MICROS):
        bad = lo if lo < MIN_MICROS else hi
        raise InvalidInput(
            f"{where}: {bad} microseconds since the epoch is beyond the years 1-9999 (UTC)"
        )
    return micros


def py_values(col: pa.ChunkedArray, where: str = "column") -> list[Any]:
    """A column's values, ready for :mod:`strataml.codec`. Timestamps (naive ones are UTC) and
    dates become ``msgpack.Timestamp`` instants built from the int64 microseconds: they encode
    exactly like the UTC datetimes they stand for, about 10x faster than converting each value
    to a ``datetime`` first (what ``to_pylist`` does, slower still for tz-aware columns).

    :class:`InvalidInput` (prefixed with ``where``) for values Python cannot hold: a time
    beyond the years 1-9999, or (nested in lists or structs) anything ``to_pylist`` refuses.
    """
    t = col.type
    if not (pa.types.is_timestamp(t) or pa.types.is_date(t)):
        try:
            return col.to_pylist()  # type: ignore[no-any-return]
        except (OverflowError, ValueError, pa.ArrowException) as exc:
            raise InvalidInput(f"{where}: a value cannot be read back in Python: {exc}") from exc
    micros = time_micros(col, where).to_pylist()
    stamp = msgpack.Timestamp
    return [None if m is None else stamp(m // 1_000_000, (m % 1_000_000) * 1000) for m in micros]


def _arrow_batch(
    table: pa.Table, order: tuple[str, ...], event_time: str | None, where: str
) -> Batch:
    names = table.column_names
    if len(set(names)) != len(names):
        raise InvalidInput(f"{where}: duplicate column names {names}")
    missing = [c for c in order if c not in names]
    if missing:
        raise InvalidInput(f"{where}: entity columns {missing} are not in the data ({names})")
    if event_time is not None and event_time not in names:
        raise InvalidInput(f"{where}: event_time column {event_time!r} is not in the data")
    ent = set(order)
    feature_names = [c for c in names if c not in ent]
    key_columns = [table.column(c).to_pylist() for c in order]
    n = table.num_rows
    features: Iterable[dict[str, Any]] = (
        _feature_dicts(table, feature_names, where) if feature_names else ({} for _ in range(n))
    )
    event_us: list[int] | None = None
    if event_time is not None:
        col = table.column(event_time)
        if pa.types.is_timestamp(col.type):
            if col.null_count:
                raise InvalidInput(f"{where}: the event_time column {event_time!r} has nulls")
            # stored ints are UTC instants (tz-aware) or UTC wall times (naive): micros either way
            micros = col.cast(pa.timestamp("us", tz=col.type.tz), safe=False).cast(pa.int64())
            event_us = micros.to_pylist()
        else:
            event_us = _event_micros(col.to_pylist(), where)
    return Batch(n, key_columns, features, event_us, table, feature_names)


def _feature_dicts(table: pa.Table, names: list[str], where: str) -> Iterator[dict[str, Any]]:
    """Each row's features as a dict; the columns are converted on the first ``next``."""
    cols = [py_values(table.column(c), f"{where}: feature {c!r}") for c in names]
    for vals in zip(*cols, strict=True):
        yield dict(zip(names, vals, strict=True))


def _row_batch(
    rows: Iterable[Any], order: tuple[str, ...], event_time: str | None, where: str
) -> Batch:
    ent = frozenset(order)
    key_columns: list[list[Any]] = [[] for _ in order]
    features: list[dict[str, Any]] = []
    events: list[Any] = []
    i = -1
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise InvalidInput(f"{where}: row {i} is a {type(row).__name__}, not a mapping")
        for col, values in zip(order, key_columns, strict=True):
            try:
                values.append(row[col])
            except KeyError:
                raise InvalidInput(f"{where}: row {i} lacks entity column {col!r}") from None
        feats: dict[str, Any] = {}
        for k, v in row.items():
            if k in ent:
                continue
            if not isinstance(k, str):
                raise InvalidInput(f"{where}: row {i}: feature names are strings, got {k!r}")
            if type(v) not in _PLAIN:
                _check_nested(v, f"{where}: row {i}: feature {k!r}")
            feats[k] = v
        features.append(feats)
        if event_time is not None:
            try:
                events.append(row[event_time])
            except KeyError:
                raise InvalidInput(
                    f"{where}: row {i} lacks the event_time column {event_time!r}"
                ) from None
    event_us = _event_micros(events, where) if event_time is not None else None
    return Batch(i + 1, key_columns, features, event_us)


def normalize_rows(rows: Any, where: str) -> pa.Table | list[Any]:
    """What a write was given, read once: an Arrow table (from a ``pa.Table`` /
    ``pa.RecordBatch`` / reader or a pandas/polars DataFrame) or a list of row mappings -- so a
    store that must retry can encode the same rows again."""
    if isinstance(rows, pa.Table | pa.RecordBatch | pa.RecordBatchReader) or type(
        rows
    ).__module__.split(".")[0] in {"pandas", "polars"}:
        return as_table(rows, where)
    if isinstance(rows, Mapping | str | bytes) or not isinstance(rows, Iterable):
        raise InvalidInput(
            f"{where}: rows are a pyarrow Table/RecordBatch or an iterable of row mappings, "
            f"got {type(rows).__name__}"
        )
    return rows if isinstance(rows, list) else list(rows)


def to_batch(rows: Any, order: tuple[str, ...], event_time: str | None, where: str) -> Batch:
    """Rows (anything :func:`normalize_rows` takes) as a :class:`Batch` keyed in ``order``."""
    data = rows if isinstance(rows, pa.Table | list) else normalize_rows(rows, where)
    if isinstance(data, pa.Table):
        return _arrow_batch(data, order, event_time, where)
    return _row_batch(data, order, event_time, where)
