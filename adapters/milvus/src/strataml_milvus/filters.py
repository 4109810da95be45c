"""The strataml filter language compiled to Milvus boolean expressions over the ``meta`` JSON.

Negation normal form
--------------------
Milvus Lite's expression engine runs neither ``not`` nor ``exists``; a server runs both. So the
compiler pushes every negation down to the comparisons (De Morgan) and writes each comparison
in a positive and a negative form that both engines run, two-valued as
:mod:`strataml.filters` asks:

====================  ===================================  ===================================
comparison            matches                              negation
====================  ===================================  ===================================
present ``f``         ``has["f"] == 1``                    ``has["f"] != 1``
``f == v``            ``meta["f"] == v``                   ``meta["f"] != v``
``f > v`` (etc.)      ``meta["f"] > v``                    ``has["f"] != 1 or meta["f"] <= v``
``f in L``            ``meta["f"] in L``                   ``meta["f"] not in L``
====================  ===================================  ===================================

A missing JSON key never satisfies ``==``, ``in`` or a range, and always satisfies ``!=`` and
``not in`` (Milvus's JSON comparison semantics), which is exactly the strataml rule for absent
fields. ``None`` in ``$in``/``$nin`` adds the presence test; a number list mixing ints and
floats becomes an ``or`` of ``==`` (Milvus rejects mixed ``in`` lists). Fields the collection
has never stored are absent from every record and fold to constants; a filter that folds to
*false* is reported as such, so the store answers without a query.

Values
------
Type mismatches against the tracked field types raise :class:`~strataml.errors.FilterError`
(:func:`strataml.filters.check_types`); ISO strings compared with timestamp/date fields are
read as datetimes (:func:`strataml.filters.coerce_temporal`); datetimes and dates compare as
epoch microseconds (:mod:`strataml_milvus.codec`). Integral floats are written as integers
(exact against stored ints).

With ``bind=True`` every value is a templated-expression parameter (``{p0}``, Milvus >= 2.5):
nothing the caller passes is formatted into the expression. With ``bind=False`` (Milvus Lite,
which has no templates) values are rendered as literals: strings by
:func:`string_literal`, which escapes ``\\`` and ``"`` and refuses the two characters a Milvus
string literal cannot hold (line feed and carriage return: :class:`~strataml.errors.Unsupported`).
Field names are identifiers (validated by the parser) quoted the same way.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from strataml.errors import FilterError, Unsupported
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
    value_kind,
)
from strataml_milvus.codec import to_micros

__all__ = [
    "SUPPORTED_OPS",
    "Compiled",
    "MilvusFilterCompiler",
    "compile_filter",
    "conjoin",
    "string_literal",
]

SUPPORTED_OPS: Final = ALL_OPS
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_RANGE: Final = {Op.GT: ">", Op.GTE: ">=", Op.LT: "<", Op.LTE: "<="}
_NEGATED_RANGE: Final = {Op.GT: "<=", Op.GTE: "<", Op.LT: ">=", Op.LTE: ">"}
Part = str | bool


def string_literal(value: str) -> str:
    """``value`` as a double-quoted Milvus string literal (backslash and quote escaped).

    Raises :class:`Unsupported` for a line feed or carriage return, which Milvus string
    literals cannot contain (Milvus Lite does not decode ``\\n`` escapes; bind values instead).
    """
    if "\n" in value or "\r" in value:
        raise Unsupported(
            "a Milvus expression literal cannot hold a line feed or carriage return; filter "
            "values with them need filter_values = 'bind' (Milvus >= 2.5, not Milvus Lite)"
        )
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _number_literal(value: int | float) -> str:
    if isinstance(value, float):
        if not math.isfinite(value):
            raise FilterError(f"{value!r} is not a finite number")
        if value.is_integer() and _INT64_MIN < value < _INT64_MAX:
            return str(int(value))
        return repr(value)
    if _INT64_MIN < value <= _INT64_MAX:
        return str(value)
    try:
        as_float = float(value)
    except OverflowError:
        as_float = math.inf
    if not math.isfinite(as_float):
        raise FilterError(f"{value} is out of the range Milvus can compare numbers in")
    return repr(as_float)  # -2**63 and beyond: exact or nearest double


def _value(value: Any) -> Any:
    """A filter value as Milvus compares it (datetimes and dates as epoch microseconds)."""
    if isinstance(value, dt.date):
        return to_micros(value)
    return value


@dataclass(frozen=True)
class Compiled:
    """A compiled filter: ``expr`` (``None`` = everything matches), its template ``params``,
    and ``never`` (the filter matches nothing: no query is needed)."""

    expr: str | None
    params: dict[str, Any] = field(default_factory=dict)
    never: bool = False


class MilvusFilterCompiler:
    """Compile a parsed, type-checked filter AST (see the module docstring)."""

    backend = "Milvus"

    def __init__(self, fields: Mapping[str, FieldType], *, bind: bool) -> None:
        self.fields = fields
        self.bind = bind
        self.params: dict[str, Any] = {}

    # -- values
    def literal(self, value: Any) -> str:
        """A value as it appears in the expression: a ``{pN}`` placeholder when binding."""
        value = _value(value)
        if self.bind:
            name = f"p{len(self.params)}"
            self.params[name] = value
            return "{" + name + "}"
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return _number_literal(value)
        if isinstance(value, str):
            return string_literal(value)
        raise FilterError(f"cannot compare with {value!r} ({type(value).__name__})")

    def literal_list(self, values: Sequence[Any]) -> str:
        if self.bind:
            name = f"p{len(self.params)}"
            self.params[name] = [_value(v) for v in values]
            return "{" + name + "}"
        return "[" + ", ".join(self.literal(v) for v in values) + "]"

    # -- fragments
    @staticmethod
    def _meta(name: str) -> str:
        return f'meta["{name}"]'

    @staticmethod
    def present(name: str, negate: bool = False) -> str:
        return f'has["{name}"] {"!=" if negate else "=="} 1'

    # -- compiling
    def compile(self, expr: Expr | None) -> Compiled:
        self.params = {}
        require_ops(expr, SUPPORTED_OPS, self.backend)
        if expr is None:
            return Compiled(None)
        out = self._node(expr, negate=False)
        if out is True:
            return Compiled(None)
        if out is False:
            return Compiled(None, never=True)
        return Compiled(out, dict(self.params))

    def _node(self, e: Expr, negate: bool) -> Part:
        if isinstance(e, Not):
            return self._node(e.item, not negate)
        if isinstance(e, And | Or):
            conjunctive = isinstance(e, And) != negate  # De Morgan
            return _combine([self._node(i, negate) for i in e.items], conjunctive)
        return self._compare(e, negate)

    def _compare(self, e: Compare, negate: bool) -> Part:
        if "." in e.field:
            raise Unsupported(f"Milvus metadata is flat: cannot filter on nested field {e.field!r}")
        ftype = self.fields.get(e.field)
        if ftype is None:  # never stored: absent from every record
            return matches(e, {}) != negate
        op, x = e.op, e.value
        if op is Op.EXISTS:
            return self.present(e.field, negate=x == negate)
        if op in (Op.EQ, Op.NE) and x is None:
            return self.present(e.field, negate=(op is Op.EQ) != negate)
        if ftype in (FieldType.LIST, FieldType.OBJECT, FieldType.ANY):
            raise FilterError(f"field {e.field!r} holds a {ftype}; only scalar fields filter")
        if op in (Op.EQ, Op.NE):
            sym = "==" if (op is Op.EQ) != negate else "!="
            return f"{self._meta(e.field)} {sym} {self.literal(x)}"
        if op in (Op.IN, Op.NIN):
            return self._membership(e.field, x, negate=(op is Op.NIN) != negate)
        if not negate:
            return f"{self._meta(e.field)} {_RANGE[op]} {self.literal(x)}"
        return (
            f"({self.present(e.field, negate=True)} or "
            f"{self._meta(e.field)} {_NEGATED_RANGE[op]} {self.literal(x)})"
        )

    def _membership(self, name: str, values: Sequence[Any], negate: bool) -> Part:
        present = list(dict.fromkeys(v for v in values if v is not None))
        with_null = any(v is None for v in values)
        parts: list[Part] = []
        if present:
            col = self._meta(name)
            numbers = [v for v in present if value_kind(v) == "number"]
            mixed = len(numbers) == len(present) and len({_is_int(v) for v in numbers}) > 1
            if mixed:  # Milvus cannot run an `in` list mixing ints and floats
                sym = "!=" if negate else "=="
                items: list[Part] = [f"{col} {sym} {self.literal(v)}" for v in present]
                parts.append(_combine(items, conjunctive=negate))
            else:
                parts.append(f"{col} {'not in' if negate else 'in'} {self.literal_list(present)}")
        if with_null:
            # in: ... or absent; not in: ... and present
            parts.append(self.present(name, negate=not negate))
        if not parts:
            return negate  # `in []` matches nothing, `not in []` everything
        return _combine(parts, conjunctive=negate)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def _combine(parts: list[Part], conjunctive: bool) -> Part:
    """AND (``conjunctive``) or OR of compiled parts, folding constants."""
    absorbing, neutral = (False, True) if conjunctive else (True, False)
    kept: list[str] = []
    for p in parts:
        if p is absorbing:
            return absorbing
        if p is neutral:
            continue
        assert isinstance(p, str)
        kept.append(p)
    if not kept:
        return neutral
    if len(kept) == 1:
        return kept[0]
    joiner = " and " if conjunctive else " or "
    return "(" + joiner.join(kept) + ")"


def conjoin(*parts: str | None) -> str:
    """AND of expression fragments (``None`` parts skipped; ``""`` if there are none)."""
    kept = [p for p in parts if p]
    if not kept:
        return ""
    if len(kept) == 1:
        return kept[0]
    return " and ".join(f"({p})" for p in kept)


def compile_filter(
    spec: Mapping[str, Any] | Expr | None, fields: Mapping[str, FieldType], *, bind: bool
) -> Compiled:
    """Parse, type-check and compile a filter.

    Raises :class:`FilterError` (malformed, or a type mismatch with a tracked field) and
    :class:`Unsupported` (nested fields; in literal mode, strings with line breaks).
    """
    expr = parse_filter(spec)
    if expr is None:
        return Compiled(None)
    check_types(expr, fields)
    expr = coerce_temporal(expr, fields)
    return MilvusFilterCompiler(fields, bind=bind).compile(expr)
