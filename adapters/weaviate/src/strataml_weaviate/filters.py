"""The strataml filter language compiled to Weaviate ``Filter`` expressions.

Each metadata field is a typed property (see :mod:`strataml_weaviate.schema`): strings are
``text`` with ``field`` tokenization (the whole value is one token), numbers ``number``,
booleans ``boolean``, timestamps and dates ``date`` (dates as midnight UTC). Collections are
created with ``indexNullState``, so ``is_none`` finds missing and null values alike -- the
*absent* of :mod:`strataml.filters`.

Translation (``absent`` = ``is_none(True)``, ``present`` = ``is_none(False)``):

=======================  =================================================================
strataml                 Weaviate
=======================  =================================================================
``{f: None}``            ``absent``
``{f: {"$ne": None}}``   ``present``
``{f: v}``               ``equal(v)`` (never matches a null)
``{f: {"$ne": v}}``      ``absent | not_equal(v)``
``$gt $gte $lt $lte``    ``greater_than`` ... (never match a null)
``{f: {"$in": L}}``      ``contains_any(L)`` on the scalar, ``| absent`` when ``None`` in L
``{f: {"$nin": L}}``     ``present & not_equal(v1) & ...``, ``| absent`` unless ``None`` in L
``{f: {"$exists": b}}``  ``present`` / ``absent``
``$and $or``             ``Filter.all_of`` / ``Filter.any_of``
``$not``                 pushed down to the leaves (De Morgan, then each leaf's complement:
                         ``not (f > v)`` is ``absent | f <= v``), so no ``Not`` operator is
                         sent: it works on servers before 1.33, which lack it
=======================  =================================================================

``not_equal`` is always combined with an explicit null test, so the result does not depend on
whether a server's ``NotEqual`` matches nulls. Numbers are sent as floats (``number``
properties are float64: integers beyond 2**53 compare approximately), dates and datetimes as
aware UTC datetimes.

Fields the collection never stored are absent from every record: their comparisons fold to
constants (:data:`TRUE` / :data:`FALSE`), and a filter that is :data:`FALSE` as a whole is not
sent at all (nothing matches). List fields are stored as their JSON text: only ``$exists``
applies to them. Dotted (nested) fields raise :class:`Unsupported`; a comparison
with a value of the wrong kind raises :class:`FilterError` (:func:`strataml.filters.check_types`),
ISO strings compared with temporal fields are read as datetimes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, Final, TypeAlias

from weaviate.classes.query import Filter
from weaviate.collections.classes.filters import _Filters

from strataml.errors import FilterError, Unsupported
from strataml.filters import (
    And,
    Compare,
    Expr,
    FieldType,
    Not,
    Op,
    Or,
    check_types,
    coerce_temporal,
    matches,
    parse_filter,
)
from strataml_weaviate.names import property_name

__all__ = ["FALSE", "TRUE", "Compiled", "compile_filter", "translate"]

#: Constant results of a translation (a filter over fields no record has).
TRUE: Final = True
FALSE: Final = False
Compiled: TypeAlias = _Filters | bool

_TYPED: Final = frozenset(
    {
        FieldType.STRING,
        FieldType.INT,
        FieldType.FLOAT,
        FieldType.BOOL,
        FieldType.TIMESTAMP,
        FieldType.DATE,
    }
)
_COMPLEMENT: Final = {Op.GT: Op.LTE, Op.GTE: Op.LT, Op.LT: Op.GTE, Op.LTE: Op.GT}


def _value(ftype: FieldType, value: Any) -> Any:
    """A filter value in the form the field's property holds."""
    if ftype in (FieldType.INT, FieldType.FLOAT):
        return float(value)
    if ftype in (FieldType.TIMESTAMP, FieldType.DATE):
        if isinstance(value, dt.datetime):
            aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
            return aware.astimezone(dt.UTC)
        if isinstance(value, dt.date):
            return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    return value


def _all(parts: Sequence[Compiled]) -> Compiled:
    if any(p is FALSE for p in parts):
        return FALSE
    kept = [p for p in parts if not isinstance(p, bool)]
    if not kept:
        return TRUE
    return kept[0] if len(kept) == 1 else Filter.all_of(kept)


def _any(parts: Sequence[Compiled]) -> Compiled:
    if any(p is TRUE for p in parts):
        return TRUE
    kept = [p for p in parts if not isinstance(p, bool)]
    if not kept:
        return FALSE
    return kept[0] if len(kept) == 1 else Filter.any_of(kept)


class _Leaf:
    """One field's conditions, each available with its complement."""

    def __init__(self, field: str, ftype: FieldType) -> None:
        self.ftype = ftype
        self.prop = Filter.by_property(property_name(field))

    def absent(self) -> Compiled:
        return self.prop.is_none(True)

    def present(self) -> Compiled:
        return self.prop.is_none(False)

    def equal(self, v: Any) -> Compiled:
        return self.prop.equal(_value(self.ftype, v))

    def differs(self, v: Any) -> Compiled:
        """Absent, or present and different from ``v``."""
        return _any([self.absent(), self.prop.not_equal(_value(self.ftype, v))])

    def compare(self, op: Op, v: Any) -> Compiled:
        x = _value(self.ftype, v)
        if op is Op.GT:
            return self.prop.greater_than(x)
        if op is Op.GTE:
            return self.prop.greater_or_equal(x)
        if op is Op.LT:
            return self.prop.less_than(x)
        return self.prop.less_or_equal(x)

    def member(self, values: Sequence[Any]) -> Compiled:
        present = [_value(self.ftype, v) for v in values if v is not None]
        parts: list[Compiled] = []
        if present:
            parts.append(self.prop.contains_any(present))
        if any(v is None for v in values):
            parts.append(self.absent())
        return _any(parts)

    def not_member(self, values: Sequence[Any]) -> Compiled:
        present = [v for v in values if v is not None]
        inside = _all(
            [self.present(), *(self.prop.not_equal(_value(self.ftype, v)) for v in present)]
        )
        if any(v is None for v in values):
            return inside
        return _any([self.absent(), inside])


def _leaf(e: Compare, fields: Mapping[str, FieldType], negate: bool) -> Compiled:
    if "." in e.field:
        raise Unsupported(f"weaviate cannot filter on nested field {e.field!r}")
    ftype = fields.get(e.field)
    if ftype is None:  # never stored: absent from every record
        return matches(e, {}) is not negate
    leaf = _Leaf(e.field, ftype)
    op, x = e.op, e.value
    if op is Op.EXISTS:  # every field, lists included, has a property with a null state
        return leaf.present() if x is not negate else leaf.absent()
    if ftype not in _TYPED:
        raise FilterError(f"field {e.field!r} holds a {ftype}; only scalar fields filter")
    if op in (Op.EQ, Op.NE) and x is None:
        want_present = (op is Op.NE) is not negate
        return leaf.present() if want_present else leaf.absent()
    if op in (Op.EQ, Op.NE):
        positive = (op is Op.EQ) is not negate
        return leaf.equal(x) if positive else leaf.differs(x)
    if op in (Op.IN, Op.NIN):
        positive = (op is Op.IN) is not negate
        return leaf.member(x) if positive else leaf.not_member(x)
    if not negate:
        return leaf.compare(op, x)
    return _any([leaf.absent(), leaf.compare(_COMPLEMENT[op], x)])


def translate(expr: Expr, fields: Mapping[str, FieldType], negate: bool = False) -> Compiled:
    """Translate a parsed, type-checked filter (``negate``: its complement), folding
    constants; see the module docstring."""
    if isinstance(expr, Not):
        return translate(expr.item, fields, not negate)
    if isinstance(expr, And | Or):
        parts = [translate(item, fields, negate) for item in expr.items]
        conjunction = isinstance(expr, And) is not negate
        return _all(parts) if conjunction else _any(parts)
    return _leaf(expr, fields, negate)


def compile_filter(
    spec: Mapping[str, Any] | Expr | None, fields: Mapping[str, FieldType]
) -> Compiled:
    """Parse, type-check and translate a filter: a Weaviate filter, :data:`TRUE` (no filter)
    or :data:`FALSE` (matches nothing).

    Raises :class:`FilterError` (malformed, or a type mismatch with a field) and
    :class:`Unsupported` (nested fields).
    """
    expr = parse_filter(spec)
    if expr is None:
        return TRUE
    check_types(expr, fields)
    expr = coerce_temporal(expr, fields)
    assert expr is not None
    return translate(expr, fields)
