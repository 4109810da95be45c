"""Resolving feature references (``view:feature``, ``view@2:feature``, ``view:*``) for
point-in-time joins -- the same rules on every feature store."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from strataml.errors import InvalidInput, NotFound
from strataml.models import FeatureRef, FeatureView

__all__ = ["FeaturePlan", "ViewKey", "plan_features"]

#: A view's identity in a plan: ``(name, version)``.
ViewKey = tuple[str, int]


@dataclass
class FeaturePlan:
    """The views a join needs and, in request order, ``(view key, feature, output column)``."""

    views: dict[ViewKey, FeatureView] = field(default_factory=dict)
    outputs: list[tuple[ViewKey, str, str]] = field(default_factory=list)


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
