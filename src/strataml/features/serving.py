"""Serving features with a training-serving skew guard, and checking online against offline.

:class:`FeatureServer` reads the online rows of one or more feature views for an entity, runs
the request-time transforms (the same :class:`~strataml.features.transforms.Transform` objects
used to build the training set) and returns one flat mapping. With the skew guard on (the
default), every row read must carry the fingerprint of the *caller's* definition of its view --
the one the model was trained with -- in :data:`~strataml.features.materialize.FINGERPRINT_COLUMN`;
a row materialized from any other definition raises :class:`~strataml.errors.SkewError`, loudly,
instead of feeding the model features it was not trained on. The check costs one extra field in
the same online read.

:func:`compare_online` recomputes a sample of entities offline and reports, per feature, where
the online store disagrees.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from strataml._args import as_list
from strataml.errors import InvalidInput, SkewError
from strataml.features.materialize import (
    FINGERPRINT_COLUMN,
    materialize_state,
    online_view_name,
    short_fingerprint,
)
from strataml.features.transforms import Transform, apply_to_rows
from strataml.models import FeatureView
from strataml.protocols import FeatureStore, OnlineStore

__all__ = ["CompareReport", "FeatureServer", "compare_online"]


class _Served:
    __slots__ = ("entities", "features", "fingerprint", "online_view", "read", "view")

    def __init__(self, view: FeatureView, guard: bool) -> None:
        if view.features is None:
            raise InvalidInput(f"feature view {view.ref} has no resolved features; register it")
        self.view = view
        self.entities = list(view.entities)
        self.features = list(view.features)
        self.fingerprint = short_fingerprint(view)
        self.online_view = online_view_name(view)
        self.read = [*self.features, FINGERPRINT_COLUMN] if guard else list(self.features)


class FeatureServer:
    """Online features of ``views`` (plus ``transforms``) for one entity or many.

    ``views`` are the caller's definitions (the ones its model was trained with); they must be
    registered and materialized. Feature names must be unique across the views and transform
    outputs. ``feature_types`` (Arrow types by feature name, e.g. from
    :func:`~strataml.features.materialize.materialized_types`; :meth:`Stack.feature_server
    <strataml.stack.Stack.feature_server>` passes them) are the types transforms see their
    feature inputs in, as in training, even when no row has a value (a cold-start entity:
    ``NaN``, not ``None``, in a float feature). Errors at construction: :class:`InvalidInput`.
    At read time:
    :class:`~strataml.errors.SkewError` (a row materialized from another definition),
    :class:`InvalidInput` (an entity lacking a key column), the online store's errors
    (:class:`~strataml.errors.NotFound` if a view was never materialized).
    """

    def __init__(
        self,
        online: OnlineStore,
        views: Sequence[FeatureView],
        *,
        transforms: Sequence[Transform] = (),
        skew_guard: bool = True,
        feature_types: Mapping[str, pa.DataType] | None = None,
    ) -> None:
        views = as_list(views, "views", "FeatureView definitions", kind=FeatureView)
        if not views:
            raise InvalidInput("a FeatureServer needs at least one feature view")
        self._online = online
        self._guard = skew_guard
        self._served = [_Served(v, skew_guard) for v in views]
        self._transforms = as_list(transforms, "transforms", "Transform objects", kind=Transform)
        self._types = dict(feature_types or {})
        # entity key columns a transform reads (training rows have them as columns too)
        keys = {k for s in self._served for k in s.view.entities}
        self._key_inputs = sorted(keys & {i for t in self._transforms for i in t.inputs})
        names: list[str] = [f for s in self._served for f in s.features]
        names += [o for t in self._transforms for o in t.outputs]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise InvalidInput(f"feature names served twice: {dupes}; serve the views separately")
        self.feature_names = names

    def _check(self, served: _Served, row: dict[str, Any] | None) -> dict[str, Any] | None:
        if row is None or not self._guard:
            return row
        found = row.pop(FINGERPRINT_COLUMN, None)
        if found != served.fingerprint:
            raise SkewError(
                f"feature view {served.view.ref}: online rows were materialized from definition "
                f"{found or '(none: not written by materialize)'}, the caller's is "
                f"{served.fingerprint}; materialize this definition (or register it as a new "
                "version) before serving it"
            )
        return row

    def _key(self, served: _Served, entity: Mapping[str, Any]) -> dict[str, Any]:
        if not isinstance(entity, Mapping):
            raise InvalidInput(
                f"an entity is a mapping of {served.entities} to values, "
                f"got {type(entity).__name__}"
            )
        try:
            return {e: entity[e] for e in served.entities}
        except KeyError as exc:
            raise InvalidInput(
                f"entity {dict(entity)!r} lacks key column {exc.args[0]!r} of {served.view.ref}"
            ) from None

    def get(
        self, entity: Mapping[str, Any], request: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Every feature (``None`` where the entity has no live row) and transform output.
        ``request`` holds the transforms' request-time inputs; an entity key a transform reads
        is taken from ``entity`` (and then appears in the result). A transform input found in
        neither raises :class:`InvalidInput`."""
        out: dict[str, Any] = _request(request)
        for s in self._served:
            row = self._check(s, self._online.get(s.online_view, self._key(s, entity), s.read))
            for f in s.features:
                out[f] = None if row is None else row.get(f)
        if self._transforms:
            self._with_keys(out, entity)
            apply_to_rows([out], self._transforms, self._types)
        return out

    def get_many(
        self,
        entities: Sequence[Mapping[str, Any]],
        requests: Sequence[Mapping[str, Any]] | None = None,
    ) -> list[dict[str, Any]]:
        """:meth:`get` for many entities (one batched read per view), aligned with ``entities``."""
        entities = as_list(entities, "entities", "mappings")
        if requests is not None:
            requests = as_list(requests, "requests", "mappings")
            if len(requests) != len(entities):
                raise InvalidInput("requests must be aligned with entities")
        outs = [_request(r) for r in requests] if requests is not None else [{} for _ in entities]
        for s in self._served:
            rows = self._online.get_many(s.online_view, [self._key(s, e) for e in entities], s.read)
            for out, row in zip(outs, rows, strict=True):
                checked = self._check(s, row)
                for f in s.features:
                    out[f] = None if checked is None else checked.get(f)
        if self._transforms:
            for out, entity in zip(outs, entities, strict=True):
                self._with_keys(out, entity)
            apply_to_rows(outs, self._transforms, self._types)
        return outs

    def _with_keys(self, out: dict[str, Any], entity: Mapping[str, Any]) -> None:
        """Give the transforms the entity key values they read (unless the request has them)."""
        for k in self._key_inputs:
            if k in entity:
                out.setdefault(k, entity[k])


def _request(request: Any) -> dict[str, Any]:
    """A request's fields as a new dict (``None``: none)."""
    if request is None:
        return {}
    if not isinstance(request, Mapping):
        raise InvalidInput(
            f"a request is a mapping of request-time inputs, got {type(request).__name__}"
        )
    return dict(request)


class CompareReport(BaseModel):
    """Online vs offline for a sample of entities (see :func:`compare_online`)."""

    model_config = ConfigDict(frozen=True)

    view: str
    version: int
    sampled: int
    missing_online: int = 0
    expired: int = 0
    skewed: int = 0
    mismatches: dict[str, int] = Field(default_factory=dict)
    examples: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing_online or self.skewed or any(self.mismatches.values()))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float | int) and not isinstance(b, bool):
        if math.isnan(a):
            return isinstance(b, float) and math.isnan(b)
        return math.isclose(a, float(b), rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(b, float) and isinstance(a, int) and not isinstance(a, bool):
        return _same(b, a)
    if isinstance(a, dt.datetime) and isinstance(b, dt.datetime):
        return _utc(a) == _utc(b)
    return bool(a == b)


def _utc(v: dt.datetime) -> dt.datetime:
    return v.replace(tzinfo=dt.UTC) if v.tzinfo is None else v.astimezone(dt.UTC)


def compare_online(
    features: FeatureStore,
    online: OnlineStore,
    view: str | FeatureView,
    *,
    sample: int = 1000,
    seed: int = 0,
    max_examples: int = 20,
) -> CompareReport:
    """Recompute ``sample`` random entities of ``view`` offline (their latest row as of the last
    materialization's window end) and compare them with the online store, feature by feature.

    Reports entities missing online, rows past their TTL (expected to be gone), rows carrying
    another definition's fingerprint (skew) and, per feature, how many values differ (floats
    compared with a relative tolerance of 1e-9), with a few examples. Sampling is a reservoir
    over the streamed rows: memory is bounded by ``sample``.
    """
    if isinstance(sample, bool) or not isinstance(sample, int) or sample < 1:
        raise InvalidInput(f"sample must be a positive integer, not {sample!r}")
    fv = features.get_view(
        view.name if isinstance(view, FeatureView) else view,
        view.version if isinstance(view, FeatureView) else None,
    )
    state = materialize_state(features, fv)
    end = state.end if state is not None else None
    rng = random.Random(seed)
    reservoir: list[dict[str, Any]] = []
    seen = 0
    for batch in features.compute(fv, end=end, latest=True, batch_size=50_000):
        for row in batch.to_pylist():
            seen += 1
            if len(reservoir) < sample:
                reservoir.append(row)
            else:
                j = rng.randrange(seen)
                if j < sample:
                    reservoir[j] = row
    entities = list(fv.entities)
    feats = list(fv.features or ())
    got = (
        online.get_many(
            online_view_name(fv),
            [{e: r[e] for e in entities} for r in reservoir],
            [*feats, FINGERPRINT_COLUMN],
        )
        if reservoir
        else []
    )
    now = dt.datetime.now(dt.UTC)
    missing = expired = skewed = 0
    mismatches = dict.fromkeys(feats, 0)
    examples: list[dict[str, Any]] = []
    fp = short_fingerprint(fv)
    for offline_row, online_row in zip(reservoir, got, strict=True):
        key = {e: offline_row[e] for e in entities}
        if online_row is None:
            ts = offline_row[fv.timestamp]
            if fv.ttl is not None and isinstance(ts, dt.datetime) and _utc(ts) + fv.ttl <= now:
                expired += 1
            else:
                missing += 1
            continue
        if online_row.get(FINGERPRINT_COLUMN) != fp:
            skewed += 1
        for f in feats:
            if not _same(offline_row[f], online_row.get(f)):
                mismatches[f] += 1
                if len(examples) < max_examples:
                    examples.append(
                        {
                            "entity": key,
                            "feature": f,
                            "offline": offline_row[f],
                            "online": online_row.get(f),
                        }
                    )
    return CompareReport(
        view=fv.name,
        version=fv.version,
        sampled=len(reservoir),
        missing_online=missing,
        expired=expired,
        skewed=skewed,
        mismatches=mismatches,
        examples=examples,
    )
