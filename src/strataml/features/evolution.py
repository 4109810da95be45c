"""Schema evolution of a feature view version: additive changes only.

Re-registering ``name@version`` with different logic is refused (register a new version), with
one exception: a change that only *adds* output columns. The new SQL must be the old query with
extra select-list items -- same sources, joins, filters, grouping and every existing column
computed by the same expression -- and keep the same entities, timestamp and TTL. Removing or
renaming a column, or changing how one is computed, needs a new version; old versions stay
registered and readable.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from strataml.errors import InvalidInput, SchemaError
from strataml.models import CANONICAL_DIALECT, FeatureView

__all__ = ["additive_change", "definition_for_compute", "evolve", "refused", "same_logic"]


def _norm(node: exp.Expression) -> str:
    return node.sql(dialect=CANONICAL_DIALECT, normalize=True, comments=False)


def _output_name(node: exp.Expression) -> str:
    return node.alias_or_name


def additive_change(old: FeatureView, new: FeatureView) -> list[str] | None:
    """The added output columns if ``new`` only adds columns to ``old``, else ``None``.

    Both must be plain ``SELECT`` statements (possibly with CTEs); the comparison is on the
    normalised sqlglot AST, so formatting and comments do not matter.
    """
    if (
        old.entities != new.entities
        or old.timestamp != new.timestamp
        or old.ttl != new.ttl
        or old.version != new.version
    ):
        return None
    try:
        a = sqlglot.parse_one(old.sql, read=CANONICAL_DIALECT)
        b = sqlglot.parse_one(new.sql, read=CANONICAL_DIALECT)
    except ParseError:
        return None
    if not isinstance(a, exp.Select) or not isinstance(b, exp.Select):
        return None
    old_items = {_norm(e) for e in a.expressions}
    if any(isinstance(e, exp.Star) for e in b.expressions):
        return None
    added = [e for e in b.expressions if _norm(e) not in old_items]
    if len(a.expressions) + len(added) != len(b.expressions):
        return None  # something was removed or changed
    stripped = b.copy()
    stripped.set("expressions", [e.copy() for e in a.expressions])
    if _norm(stripped) != _norm(a):
        return None  # sources, joins, filters or grouping changed
    names = [_output_name(e) for e in added]
    if any(not n for n in names):
        return None
    if (
        old.features is not None
        and new.features is not None
        and not set(old.features) <= set(new.features)
    ):
        return None
    return names


def evolve(
    view: FeatureView, stored: FeatureView, bind: Callable[[FeatureView], FeatureView]
) -> FeatureView | None:
    """``view`` resolved by ``bind`` when it is an additive change of the registered
    ``stored`` (same version), else ``None``. Every stored feature must still be produced."""
    if additive_change(stored, view) is None:
        return None
    resolved = bind(view)
    if not set(stored.features or ()) <= set(resolved.features or ()):
        return None
    return resolved


def refused(view: FeatureView, latest_version: int) -> SchemaError:
    """The error for a non-additive change of a registered version."""
    return SchemaError(
        f"feature view {view.ref} is already registered with different logic; only adding "
        f"columns is allowed within a version: register it as version {latest_version + 1}"
    )


def same_logic(view: FeatureView, stored: FeatureView, fingerprint: str) -> bool:
    """Whether ``view`` has the registered logic (``stored`` and its ``fingerprint``); omitted
    features mean the stored ones."""
    if view.features is None:
        view = view.model_copy(update={"features": stored.features})
    return view.fingerprint == fingerprint


def definition_for_compute(
    view: str | FeatureView,
    get_view: Callable[[str], FeatureView],
    lookup: Callable[[str, int], tuple[FeatureView, str] | None],
) -> FeatureView:
    """What a feature store's ``compute`` runs for ``view``: a name means its latest
    registered version (``get_view``); a definition must match its registered one
    (``lookup(name, version)`` gives it and its fingerprint), or be an older definition of a
    version evolved since (computed as given: its subset of the columns), or is unregistered
    (computed as given). :class:`SchemaError` when it differs otherwise."""
    if isinstance(view, str):
        return get_view(view)
    if not isinstance(view, FeatureView):
        raise InvalidInput(f"expected a view name or FeatureView, not {type(view).__name__}")
    stored = lookup(view.name, view.version)
    if stored is None:
        return view
    existing, fingerprint = stored
    if additive_change(view, existing) is not None:
        return view  # an older definition of an evolved version
    if not same_logic(view, existing, fingerprint):
        raise SchemaError(
            f"feature view {view.ref} differs from the registered definition; "
            "register the change as a new version"
        )
    return existing
