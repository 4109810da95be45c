"""The rules every feature store shares: resolving a view's output columns when it is
registered (:func:`resolve_view`), and resolving feature references (``view:feature``,
``view@2:feature``, ``view:*``) for point-in-time joins (:func:`plan_features`)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from strataml._time import to_utc_naive
from strataml.errors import InvalidInput, NotFound, SchemaError
from strataml.models import FeatureRef, FeatureView

__all__ = [
    "FeaturePlan",
    "ViewKey",
    "check_view_ref",
    "compute_window",
    "label_spine",
    "plan_features",
    "resolve_view",
]

_FEATURE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

#: A view's identity in a plan: ``(name, version)``.
ViewKey = tuple[str, int]


@dataclass
class FeaturePlan:
    """The views a join needs and, in request order, ``(view key, feature, output column)``."""

    views: dict[ViewKey, FeatureView] = field(default_factory=dict)
    outputs: list[tuple[ViewKey, str, str]] = field(default_factory=list)


def check_view_ref(name: object, version: object) -> None:
    """``get_view``'s arguments: a string name and ``None`` or an int version >= 1."""
    if not isinstance(name, str):
        raise InvalidInput(f"view names are strings, not {type(name).__name__}")
    if version is not None and (
        isinstance(version, bool) or not isinstance(version, int) or version < 1
    ):
        raise InvalidInput(f"view versions are integers >= 1, not {version!r}")


def plan_features(
    refs: Sequence[str],
    get_view: Callable[[str, int | None], FeatureView],
    *,
    full_names: bool,
) -> FeaturePlan:
    """Resolve ``refs`` against registered views (``get_view(name, version)``).

    ``view:f`` takes the latest version, ``view@2:f`` a fixed one, ``view:*`` every feature;
    a feature requested twice appears once. Output columns are the feature names, or
    ``view__feature`` with ``full_names``. Errors: :class:`InvalidInput` (a reference that is
    not a string or does not parse; two views producing one output column),
    :class:`NotFound` (unknown view, version or feature).
    """
    resolved: dict[tuple[str, int | None], FeatureView] = {}
    plan = FeaturePlan()
    seen: set[tuple[ViewKey, str]] = set()
    for raw in refs:
        if not isinstance(raw, str):
            raise InvalidInput(f"feature references are strings, not {type(raw).__name__}")
        ref = FeatureRef.parse(raw)
        if (ref.view, ref.version) not in resolved:
            resolved[(ref.view, ref.version)] = get_view(ref.view, ref.version)
        view = resolved[(ref.view, ref.version)]
        key = (view.name, view.version)
        plan.views.setdefault(key, view)
        known = view.features or ()
        if ref.feature == "*":
            wanted: Sequence[str] = known
        elif ref.feature in known:
            wanted = (ref.feature,)
        else:
            raise NotFound(f"feature view {view.ref} has no feature {ref.feature!r} ({known})")
        for feature in wanted:
            if (key, feature) in seen:
                continue
            seen.add((key, feature))
            plan.outputs.append(
                (key, feature, f"{view.name}__{feature}" if full_names else feature)
            )
    taken: dict[str, ViewKey] = {}
    for key, _, out in plan.outputs:
        if out in taken and taken[out] != key:
            hint = "" if full_names else "; pass full_names=True"
            raise InvalidInput(
                f"two requested views both produce a column {out!r}{hint} (or request the "
                "versions of one view in separate calls)"
            )
        taken[out] = key
    return plan


def resolve_view(view: FeatureView, columns: Sequence[str], *, temporal: bool) -> FeatureView:
    """Check a view against the columns its SQL returns (in order) and fill in ``features``.

    ``temporal`` says whether the engine reports the timestamp column as a timestamp or date.
    The query must return the entity and timestamp columns and unique names; ``features``
    defaults to every other column; feature names must be identifiers. Errors:
    :class:`SchemaError` naming the view and what to fix.
    """
    names = list(columns)
    if len(set(names)) != len(names):
        raise SchemaError(f"feature view {view.ref}: the query returns duplicate column names")
    missing = [c for c in (*view.entities, view.timestamp) if c not in names]
    if missing:
        raise SchemaError(
            f"feature view {view.ref}: the query lacks column(s) {missing}; it returns {names}"
        )
    if not temporal:
        raise SchemaError(
            f"feature view {view.ref}: timestamp column {view.timestamp!r} is not a "
            "timestamp or date"
        )
    if view.features is None:
        reserved = {*view.entities, view.timestamp}
        features = tuple(c for c in names if c not in reserved)
        if not features:
            raise SchemaError(f"feature view {view.ref}: the query returns no feature columns")
    else:
        features = view.features
        absent = [f for f in features if f not in names]
        if absent:
            raise SchemaError(
                f"feature view {view.ref}: features {absent} are not in the query's columns {names}"
            )
    bad = [f for f in features if not _FEATURE_NAME.match(f)]
    if bad:
        raise SchemaError(
            f"feature view {view.ref}: feature columns {bad} are not identifiers; "
            "alias them in the SQL (AS name)"
        )
    return view if view.features == features else view.model_copy(update={"features": features})


def label_spine(
    store: Any,
    refs: Sequence[str],
    *,
    timestamp: str,
    start: Any,
    end: Any,
) -> Any:
    """Label rows for a point-in-time join without an entity frame: the entity keys and event
    times of every row of the *first* referenced view with event time in ``[start, end)``
    (``store.compute``), the timestamp column renamed to ``timestamp``. Training sets built
    this way hold one row per feature row of that view, with the other views joined as of it.
    """
    import pyarrow as pa

    if start is None or end is None:
        raise InvalidInput(
            "without labels, pass a time range: historical(None, refs, start=..., end=...)"
        )
    if not refs or not isinstance(refs[0], str):
        raise InvalidInput("features must be a non-empty list of references like 'view:f'")
    first = FeatureRef.parse(refs[0])
    view = store.get_view(first.view, first.version)
    reader = store.compute(view, start=start, end=end)
    keep = [*view.entities, view.timestamp]
    table: pa.Table = reader.read_all().select(keep)
    names = [*view.entities, timestamp]
    if len(set(names)) != len(names):
        raise InvalidInput(f"timestamp column {timestamp!r} clashes with an entity column")
    return table.rename_columns(names)


def prepare_labels(
    store: Any,
    labels: Any,
    features: Any,
    *,
    timestamp: Any,
    start: Any,
    end: Any,
) -> Any:
    """``historical``'s arguments, checked the same way by every feature store: a non-empty
    list of references, a timestamp column name, labels (Arrow, pandas, polars -- or ``None``
    with ``start``/``end``, see :func:`label_spine`) with unique column names and a timestamp
    or date column ``timestamp``. Returns the labels as a ``pa.Table``; raises
    :class:`InvalidInput` naming what is wrong."""
    import pyarrow as pa

    from strataml.arrowutil import as_table

    if isinstance(features, str) or not isinstance(features, Sequence) or not features:
        raise InvalidInput("features must be a non-empty list of references like 'view:f'")
    if not isinstance(timestamp, str):
        raise InvalidInput("timestamp must be a column name")
    if labels is None:
        labels = label_spine(store, features, timestamp=timestamp, start=start, end=end)
    elif start is not None or end is not None:
        raise InvalidInput("start/end build labels from a time range: pass labels=None")
    table: pa.Table = as_table(labels, "labels")
    names = table.column_names
    if len(set(names)) != len(names):
        raise InvalidInput(f"labels have duplicate column names: {names}")
    if timestamp not in names:
        raise InvalidInput(f"labels have no timestamp column {timestamp!r} (columns: {names})")
    ts_type = table.schema.field(timestamp).type
    if not (pa.types.is_timestamp(ts_type) or pa.types.is_date(ts_type)):
        raise InvalidInput(f"labels column {timestamp!r} is {ts_type}, not a timestamp or date")
    return table


def compute_window(
    start: Any, end: Any, batch_size: Any
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The checked arguments of a feature store's ``compute``: ``[start, end)`` as naive UTC
    (naive datetimes are UTC already; a date means its midnight UTC) and a positive integer
    ``batch_size``. :class:`InvalidInput` otherwise, or when ``start`` is after ``end``."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInput(f"batch_size must be a positive integer, not {batch_size!r}")
    bounds: list[dt.datetime | None] = []
    for label, value in (("start", start), ("end", end)):
        if value is None or isinstance(value, dt.datetime):
            bounds.append(None if value is None else to_utc_naive(value, label))
        elif isinstance(value, dt.date):
            bounds.append(dt.datetime(value.year, value.month, value.day))
        else:
            raise InvalidInput(f"{label} must be a datetime, not {type(value).__name__}")
    lo, hi = bounds
    if lo is not None and hi is not None and lo > hi:
        raise InvalidInput(f"start ({lo}) is after end ({hi})")
    return lo, hi
