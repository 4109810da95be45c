"""The strataml filter language compiled to Qdrant ``Filter`` conditions.

Every metadata field lives at ``metadata.<field>`` in the payload and is never stored as null
or as an empty array (nulls are dropped, lists are stored as JSON text), so *absent* -- missing
or null, the filter language's single notion -- is exactly Qdrant's ``is_empty``, and every
condition below is two-valued: ``must_not`` is an exact negation.

==========================  ==============================================================
strataml                    Qdrant
==========================  ==============================================================
``$and`` / ``$or``          ``Filter(must=[...])`` / ``Filter(should=[...])``
``$not``                    ``Filter(must_not=[...])``
``{f: None}`` / ``$exists`` ``IsEmptyCondition`` (negated for present)
``$eq`` string, bool, int   ``MatchValue``
``$eq`` float field         ``Range(gte=v, lte=v)`` (Qdrant matches floats only by range)
``$eq`` timestamp, date     ``DatetimeRange(gte=v, lte=v)`` (instants, dates = midnight UTC)
``$in`` string / int        ``MatchAny``; other kinds: ``should`` of the ``$eq`` conditions;
                            ``None`` in the list adds ``is_empty``
``$ne`` / ``$nin``          ``must_not`` of ``$eq`` / ``$in``
``$gt $gte $lt $lte``       ``Range`` on numbers, ``DatetimeRange`` on timestamps and dates;
                            on strings see below
==========================  ==============================================================

**String ranges.** Qdrant has no lexicographic range condition. A range on a string field is
resolved against the field's distinct stored values (read once per query with a ``scroll`` of
that one payload key, tenant-filtered): the values that satisfy it, compared by code point as
Python does, become a ``MatchAny``. Exact, pre-filtering, but it costs a pass over the
records holding the field; more than ``MAX_RANGE_VALUES`` distinct matching values raise
:class:`~strataml.errors.Unsupported`.

Constant parts are folded before anything is sent: a comparison with a field no record has is
``matches(e, {})``; an int field compared with a non-integral float never matches. A filter
that folds to *false* skips the request (no match), to *true* drops the condition.

Fields must be flat identifiers: dotted (nested) names raise
:class:`~strataml.errors.Unsupported`. Type mismatches raise :class:`~strataml.errors.
FilterError` (:func:`strataml.filters.check_types`) before compiling.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, Final, TypeAlias

from strataml.errors import Unsupported
from strataml.filters import (
    ALL_OPS,
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
    require_ops,
    walk,
)
from strataml_qdrant.payload import TENANT_KEY, meta_key

__all__ = [
    "MAX_RANGE_VALUES",
    "SUPPORTED_OPS",
    "Compiled",
    "compile_expr",
    "prepare_filter",
    "string_range_fields",
    "with_tenant",
]

SUPPORTED_OPS: Final = ALL_OPS
MAX_RANGE_VALUES: Final = 65_536
_INT64: Final = (-(2**63), 2**63 - 1)
_RANGE_OPS: Final = frozenset({Op.GT, Op.GTE, Op.LT, Op.LTE})
_RANGE_ARG: Final = {Op.GT: "gt", Op.GTE: "gte", Op.LT: "lt", Op.LTE: "lte"}

#: A compiled filter: a Qdrant condition, or a constant (``True`` all, ``False`` none).
Compiled: TypeAlias = Any


def prepare_filter(spec: Mapping[str, Any] | None, fields: Mapping[str, FieldType]) -> Expr | None:
    """Parse, check operators and types, and read ISO strings on temporal fields.

    Raises :class:`~strataml.errors.FilterError` (malformed, type mismatch) and
    :class:`~strataml.errors.Unsupported` (nested fields).
    """
    expr = parse_filter(spec)
    if expr is None:
        return None
    require_ops(expr, SUPPORTED_OPS, "Qdrant")
    for node in walk(expr):
        if isinstance(node, Compare) and "." in node.field:
            raise Unsupported(f"Qdrant store cannot filter on nested field {node.field!r}")
    check_types(expr, fields)
    return coerce_temporal(expr, fields)


def string_range_fields(expr: Expr | None, fields: Mapping[str, FieldType]) -> set[str]:
    """String fields the filter compares with ``$gt``/``$gte``/``$lt``/``$lte``."""
    return {
        n.field
        for n in walk(expr)
        if isinstance(n, Compare) and n.op in _RANGE_OPS and fields.get(n.field) is FieldType.STRING
    }


# ------------------------------------------------------------------------------- building
def _m() -> Any:
    from qdrant_client.http import models

    return models


def _absent(field: str) -> Any:
    m = _m()
    return m.IsEmptyCondition(is_empty=m.PayloadField(key=meta_key(field)))


def _not(c: Compiled) -> Compiled:
    if isinstance(c, bool):
        return not c
    return _m().Filter(must_not=[c])


def _all(items: Sequence[Compiled]) -> Compiled:
    if any(c is False for c in items):
        return False
    rest = [c for c in items if c is not True]
    if not rest:
        return True
    return rest[0] if len(rest) == 1 else _m().Filter(must=rest)


def _any(items: Sequence[Compiled]) -> Compiled:
    if any(c is True for c in items):
        return True
    rest = [c for c in items if c is not False]
    if not rest:
        return False
    return rest[0] if len(rest) == 1 else _m().Filter(should=rest)


def _instant(value: dt.date) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)


def _as_int(value: Any) -> int | None:
    """An int field's stored value equal to ``value``, if one can be."""
    if isinstance(value, float):
        if not value.is_integer():
            return None
        value = int(value)
    return value if _INT64[0] <= value <= _INT64[1] else None


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except OverflowError:
        return None


def _match(field: str, value: Any) -> Any:
    m = _m()
    return m.FieldCondition(key=meta_key(field), match=m.MatchValue(value=value))


def _range(field: str, ftype: FieldType, **bounds: Any) -> Any:
    m = _m()
    if ftype in (FieldType.TIMESTAMP, FieldType.DATE):
        rng = m.DatetimeRange(**{k: _instant(v) for k, v in bounds.items()})
    else:
        rng = m.Range(**bounds)
    return m.FieldCondition(key=meta_key(field), range=rng)


def _eq(field: str, ftype: FieldType, value: Any) -> Compiled:
    if ftype in (FieldType.STRING, FieldType.BOOL):
        return _match(field, value)
    if ftype is FieldType.INT:
        exact = _as_int(value)
        return False if exact is None else _match(field, exact)
    if ftype is FieldType.FLOAT:
        f = _float(value)
        return False if f is None else _range(field, ftype, gte=f, lte=f)
    return _range(field, ftype, gte=value, lte=value)


def _in(field: str, ftype: FieldType, values: Sequence[Any]) -> Compiled:
    present = [v for v in values if v is not None]
    parts: list[Compiled] = []
    if present:
        if ftype is FieldType.STRING:
            parts.append(_match_any(field, list(dict.fromkeys(present))))
        elif ftype is FieldType.INT:
            ints = [i for i in (_as_int(v) for v in present) if i is not None]
            if ints:
                parts.append(_match_any(field, list(dict.fromkeys(ints))))
        else:
            parts.extend(_eq(field, ftype, v) for v in present)
    if len(present) != len(values):
        parts.append(_absent(field))
    return _any(parts)


def _match_any(field: str, values: list[Any]) -> Any:
    m = _m()
    if len(values) == 1:
        return _match(field, values[0])
    return m.FieldCondition(key=meta_key(field), match=m.MatchAny(any=values))


def _numeric_range(field: str, op: Op, value: Any) -> Compiled:
    f = _float(value)
    if f is None:  # an int beyond the float range: every stored number is on one side
        above = value > 0
        holds = (op in (Op.LT, Op.LTE)) == above
        return _not(_absent(field)) if holds else False
    return _range(field, FieldType.FLOAT, **{_RANGE_ARG[op]: f})


_PY_CMP: Final = {
    Op.GT: lambda a, b: a > b,
    Op.GTE: lambda a, b: a >= b,
    Op.LT: lambda a, b: a < b,
    Op.LTE: lambda a, b: a <= b,
}


def _string_range(
    field: str, op: Op, value: str, known: Mapping[str, Sequence[str]] | None
) -> Compiled:
    if known is None or field not in known:
        raise Unsupported(f"Qdrant: the values of string field {field!r} were not resolved")
    hits = sorted(v for v in known[field] if _PY_CMP[op](v, value))
    if len(hits) > MAX_RANGE_VALUES:
        raise Unsupported(
            f"Qdrant has no string ranges; {field!r} {op} {value!r} matches {len(hits):,} "
            f"distinct values, more than the {MAX_RANGE_VALUES:,} this store resolves: "
            "filter on a number or timestamp field instead"
        )
    return _match_any(field, hits) if hits else False


def _compare(
    e: Compare, fields: Mapping[str, FieldType], strings: Mapping[str, Sequence[str]] | None
) -> Compiled:
    ftype = fields.get(e.field)
    if ftype is None:  # never stored: absent from every record
        return matches(e, {})
    op, x = e.op, e.value
    if op is Op.EXISTS:
        return _not(_absent(e.field)) if x else _absent(e.field)
    if op in (Op.EQ, Op.NE) and x is None:
        return _absent(e.field) if op is Op.EQ else _not(_absent(e.field))
    if op is Op.EQ:
        return _eq(e.field, ftype, x)
    if op is Op.NE:
        return _not(_eq(e.field, ftype, x))
    if op is Op.IN:
        return _in(e.field, ftype, x)
    if op is Op.NIN:
        return _not(_in(e.field, ftype, x))
    if ftype is FieldType.STRING:
        return _string_range(e.field, op, x, strings)
    if ftype in (FieldType.INT, FieldType.FLOAT):
        return _numeric_range(e.field, op, x)
    return _range(e.field, ftype, **{_RANGE_ARG[op]: x})


def compile_expr(
    expr: Expr | None,
    fields: Mapping[str, FieldType],
    strings: Mapping[str, Sequence[str]] | None = None,
) -> Compiled:
    """Compile a prepared filter (:func:`prepare_filter`) to a condition or a constant.

    ``strings`` holds the distinct stored values of the fields :func:`string_range_fields`
    names (needed to resolve string ranges).
    """
    if expr is None:
        return True
    if isinstance(expr, And):
        return _all([compile_expr(i, fields, strings) for i in expr.items])
    if isinstance(expr, Or):
        return _any([compile_expr(i, fields, strings) for i in expr.items])
    if isinstance(expr, Not):
        return _not(compile_expr(expr.item, fields, strings))
    return _compare(expr, fields, strings)


def with_tenant(compiled: Compiled, tenant: str | None) -> Compiled:
    """AND the tenant predicate (``tenant`` keyword, ``is_tenant`` index) into a filter; the
    result is a ``Filter``, ``True`` (no condition) or ``False`` (matches nothing)."""
    parts: list[Compiled] = []
    if tenant is not None:
        m = _m()
        parts.append(m.FieldCondition(key=TENANT_KEY, match=m.MatchValue(value=tenant)))
    parts.append(compiled)
    out = _all(parts)
    if isinstance(out, bool):
        return out
    m = _m()
    return out if isinstance(out, m.Filter) else m.Filter(must=[out])
