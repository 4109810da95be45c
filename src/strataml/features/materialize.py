"""Offline -> online: push each entity's latest feature row into the online store.

How it works, and why it is safe to kill at any moment:

* The feature store reduces the view to each entity's newest row in the window
  (``compute(..., latest=True)``), ordered by entity key, and streams it in Arrow batches: memory
  is bounded by ``batch_size``, not by the history or the number of entities.
* Every row written online carries the view's fingerprint in the reserved column
  :data:`FINGERPRINT_COLUMN`, which the skew guard (:mod:`strataml.features.serving`) checks.
* After each batch is written online, a checkpoint (the run's window and the last entity key
  written) is committed to the *offline* store in the same transaction as a row of the
  materialization log table :data:`LOG_TABLE`. A run that dies is resumed by the next call: same
  window, skipping up to the checkpointed key. Online writes replace whole rows by key, so the
  batch in flight when the process died is simply written again: no duplicates, no gaps.
* ``incremental=True`` starts where the last *finished* run ended (its window end, the
  watermark) and covers ``[watermark, end or now)``. Rows that arrive later with an event time
  before the watermark are not picked up by incremental runs (run a full one).

The online view is ``<view>__v<version>`` (:func:`online_view_name`), so versions of a view
are served side by side.
"""

from __future__ import annotations

import base64
import datetime as dt
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Literal

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict

from strataml._time import to_utc_naive
from strataml.errors import InvalidInput, SchemaError
from strataml.models import FeatureView
from strataml.protocols import FeatureStore, OnlineStore

__all__ = [
    "FINGERPRINT_COLUMN",
    "LOG_TABLE",
    "MaterializeReport",
    "MaterializeState",
    "materialize",
    "materialize_state",
    "materialized_types",
    "online_view_name",
    "short_fingerprint",
]

#: Reserved online column holding the (short) fingerprint of the definition a row came from.
FINGERPRINT_COLUMN = "_strataml_fp"
#: Offline table logging every committed materialization step (and carrying the checkpoints).
LOG_TABLE = "strataml_materializations"


def short_fingerprint(view: FeatureView) -> str:
    """The first 16 hex digits of the view's fingerprint: what online rows carry."""
    return view.fingerprint[:16]


def online_view_name(view: FeatureView) -> str:
    """The online view a feature view version is materialized into: ``<name>__v<version>``."""
    return f"{view.name}__v{view.version}"


class MaterializeState(BaseModel):
    """A materialization checkpoint (kept in the offline store)."""

    model_config = ConfigDict(frozen=True)

    run: str
    fingerprint: str
    start: dt.datetime | None
    end: dt.datetime
    last_key: list[Any] | None = None
    written: int = 0
    done: bool = False
    #: the Arrow types of the feature columns written (an IPC schema message, base64): serving
    #: gives transforms the training side's types even where no row has a value
    feature_schema: str | None = None


class MaterializeReport(BaseModel):
    """What a :func:`materialize` call did."""

    model_config = ConfigDict(frozen=True)

    view: str
    version: int
    online_view: str
    fingerprint: str
    mode: Literal["full", "incremental"]
    start: dt.datetime | None
    end: dt.datetime
    resumed: bool
    rows_read: int
    entities_written: int
    seconds: float


def _checkpoint_key(online_view: str) -> str:
    return f"materialize:{online_view}"


def _repeated(value: str, n: int) -> pa.Array:
    """A string column of ``n`` copies of ``value``, built from buffers: ``pa.array`` of
    Python objects imports pandas when it is installed (a third of a second, on first use)."""
    blob = value.encode("utf-8")
    offsets = np.arange(n + 1, dtype=np.int32) * len(blob)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets.tobytes()), pa.py_buffer(blob * n))


def materialize_state(features: FeatureStore, view: FeatureView) -> MaterializeState | None:
    """The last checkpoint of ``view``'s materialization, or ``None`` if it never ran."""
    raw = features.checkpoint(_checkpoint_key(online_view_name(view)))
    return None if raw is None else MaterializeState.model_validate_json(raw)


def materialized_types(features: FeatureStore, view: FeatureView) -> dict[str, pa.DataType]:
    """The Arrow type of each feature of ``view`` as its last materialization wrote it (empty
    if it never ran, or ran before strataml recorded types). :class:`FeatureServer` passes
    these to request-time transforms, so a feature no row has a value for (an entity without
    a live row) is a typed null -- ``NaN`` in a float column -- as in training, not ``None``."""
    state = materialize_state(features, view)
    if state is None or state.feature_schema is None:
        return {}
    schema = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(state.feature_schema)))
    return {f.name: f.type for f in schema}


def _schema_text(schema: pa.Schema) -> str:
    """``schema`` as text for the checkpoint (JSON): its IPC message, base64."""
    return base64.b64encode(schema.remove_metadata().serialize().to_pybytes()).decode("ascii")


def _utc(value: dt.datetime | None, label: str) -> dt.datetime | None:
    if value is None:
        return None
    if not isinstance(value, dt.datetime):
        raise InvalidInput(f"{label} must be a datetime, not {type(value).__name__}")
    return to_utc_naive(value, label).replace(tzinfo=dt.UTC)


def _commit(features: FeatureStore, online_view: str, state: MaterializeState, rows: int) -> None:
    """Log one step and store the checkpoint, in one offline transaction."""
    log = pa.table(
        {
            "online_view": pa.array([online_view]),
            "run": pa.array([state.run]),
            "fingerprint": pa.array([state.fingerprint]),
            "window_start": pa.array([state.start], pa.timestamp("us", tz="UTC")),
            "window_end": pa.array([state.end], pa.timestamp("us", tz="UTC")),
            "rows": pa.array([rows], pa.int64()),
            "written": pa.array([state.written], pa.int64()),
            "done": pa.array([state.done]),
            "at": pa.array([dt.datetime.now(dt.UTC)], pa.timestamp("us", tz="UTC")),
        }
    )
    features.load(
        LOG_TABLE,
        log,
        checkpoint=(_checkpoint_key(online_view), state.model_dump_json()),
    )


def _after(
    batches: Iterator[pa.RecordBatch], entities: list[str], last_key: list[Any]
) -> Iterator[pa.RecordBatch]:
    """Skip the rows up to and including the entity ``last_key`` (resume). The stream is
    ordered by entity key, so everything before it was written by the interrupted run. If the
    key is not found (its rows were deleted), nothing is skipped: rewriting is idempotent."""
    held: list[pa.RecordBatch] = []
    target = tuple(last_key)
    for batch in batches:
        held.append(batch)
        keys = zip(*(batch.column(e).to_pylist() for e in entities), strict=True)
        for i, key in enumerate(keys):
            if key == target:
                yield batch.slice(i + 1)
                yield from batches
                return
    yield from held


def materialize(
    features: FeatureStore,
    online: OnlineStore,
    view: str | FeatureView,
    *,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    incremental: bool = False,
    batch_size: int = 10_000,
    progress: Callable[[int], None] | None = None,
    stats: bool = True,
) -> MaterializeReport:
    """Write the latest row of every entity of ``view`` with event time in the window to the
    online view :func:`online_view_name`, with the view's TTL counted from each row's event
    time, resuming an interrupted run if there is one.

    The window is ``[start, end)``; ``end`` defaults to now. With ``incremental=True`` the
    window starts at the end of the last finished run (``start`` must then be omitted; with no
    finished run, everything before ``end`` is materialized). ``view`` is a name (latest
    registered version) or a :class:`FeatureView` (that version's registered definition).
    ``progress`` is called with the number of rows written after each batch. With ``stats``
    (the default), per-feature statistics of the rows this call wrote -- the distribution now
    being served -- are computed in the same pass and stored in the offline store
    (:class:`strataml.features.stats.StatsRepository`), for drift monitoring.

    Errors: :class:`~strataml.errors.NotFound` (unknown view), :class:`InvalidInput` (bad
    arguments), and the stores' own errors; whatever was committed before an error stays
    committed and the next call resumes after it.
    """
    t0 = time.perf_counter()
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInput(f"batch_size must be a positive integer, not {batch_size!r}")
    if incremental and start is not None:
        raise InvalidInput("incremental runs start at the last watermark: do not pass start")
    if progress is not None and not callable(progress):
        raise InvalidInput(f"progress must be a callable taking a row count, not {progress!r}")
    fv = features.get_view(
        view.name if isinstance(view, FeatureView) else view,
        view.version if isinstance(view, FeatureView) else None,
    )
    if isinstance(view, FeatureView):
        mine = (
            view if view.features is not None else view.model_copy(update={"features": fv.features})
        )
        if mine.fingerprint != fv.fingerprint:
            raise SchemaError(
                f"feature view {view.ref} differs from the registered definition; register the "
                "change as a new version before materializing it"
            )
    fingerprint = short_fingerprint(fv)
    target = online_view_name(fv)
    lo, hi = _utc(start, "start"), _utc(end, "end") or dt.datetime.now(dt.UTC)
    if lo is not None and lo > hi:
        raise InvalidInput(f"start ({lo}) is after end ({hi})")

    previous = materialize_state(features, fv)
    resumed = previous is not None and not previous.done and previous.fingerprint == fingerprint
    if previous is not None and resumed:
        state = previous
    else:
        if incremental and previous is not None and previous.fingerprint == fingerprint:
            lo = previous.end if previous.done else previous.start
        state = MaterializeState(run=uuid.uuid4().hex, fingerprint=fingerprint, start=lo, end=hi)
    entities = list(fv.entities)
    columns = [*entities, fv.timestamp, *(fv.features or ())]
    reader = features.compute(
        fv,
        start=state.start,
        end=state.end,
        batch_size=batch_size,
        latest=True,
    )
    feature_schema = pa.schema([reader.schema.field(f) for f in fv.features or ()])
    state = state.model_copy(update={"feature_schema": _schema_text(feature_schema)})
    batches: Iterator[pa.RecordBatch] = iter(reader)
    if resumed and state.last_key is not None:
        batches = _after(batches, entities, state.last_key)
    rows_read = 0

    def write(part: pa.Table) -> None:
        online.write(
            target,
            part.append_column(FINGERPRINT_COLUMN, _repeated(fingerprint, part.num_rows)),
            entities=entities,
            ttl=fv.ttl,
            event_time=fv.timestamp,
        )

    def checkpoint(part: pa.Table) -> None:
        nonlocal state
        last = part.slice(part.num_rows - 1).select(entities).to_pylist()[0]
        state = state.model_copy(
            update={
                "last_key": [last[e] for e in entities],
                "written": state.written + part.num_rows,
            }
        )
        _commit(features, target, state, part.num_rows)
        if progress is not None:
            progress(part.num_rows)

    def written() -> Iterator[pa.RecordBatch]:
        """Write each batch online, checkpoint it, and pass it on (for the statistics).

        A store doing network I/O (``blocking_io``) writes batch k on a worker thread while
        this one reads batch k+1 and computes statistics, so the backend is rarely idle. A
        batch is checkpointed only once its write returned, in order.
        """
        nonlocal rows_read
        overlap = getattr(online, "blocking_io", True) is not False
        with ThreadPoolExecutor(1, thread_name_prefix="strataml-materialize") as pool:
            pending: tuple[Future[None], pa.Table] | None = None
            for batch in batches:
                if batch.num_rows == 0:
                    continue
                part = pa.Table.from_batches([batch]).select(columns)
                rows_read += part.num_rows
                if pending is not None:
                    pending[0].result()
                    checkpoint(pending[1])
                    pending = None
                if overlap:
                    pending = (pool.submit(write, part), part)
                else:
                    write(part)
                    checkpoint(part)
                yield from part.to_batches()
            if pending is not None:
                pending[0].result()
                checkpoint(pending[1])

    try:
        if stats:
            from strataml.features.stats import StatsRepository, compute_stats

            # a reader with the written columns' schema: a window without rows (an incremental
            # run with nothing new) gives empty statistics, not "no record batches"
            written_schema = reader.schema.empty_table().select(columns).schema
            summary = compute_stats(
                pa.RecordBatchReader.from_batches(written_schema, written()),
                list(fv.features or ()),
                view=fv.name,
                version=fv.version,
                window_start=state.start,
                window_end=state.end,
            )
        else:
            for _ in written():
                pass
    finally:
        reader.close()
    if stats and summary.row_count:
        StatsRepository(features).save(summary)
    state = state.model_copy(update={"done": True})
    _commit(features, target, state, 0)
    return MaterializeReport(
        view=fv.name,
        version=fv.version,
        online_view=target,
        fingerprint=fingerprint,
        mode="incremental" if incremental else "full",
        start=state.start,
        end=state.end,
        resumed=resumed,
        rows_read=rows_read,
        entities_written=state.written,
        seconds=time.perf_counter() - t0,
    )
