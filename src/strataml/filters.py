"""The neutral filter language: a Mongo-style dict, parsed once into an AST every adapter compiles.

Grammar
-------
A filter is a mapping. Each key is either a *field name* or a logical operator::

    {"lang": "en"}                                   # implicit $eq
    {"year": {"$gte": 2020, "$lt": 2025}}            # several operators on one field: AND
    {"$or": [{"lang": "en"}, {"lang": "de"}]}
    {"$not": {"year": {"$gt": 2020}}}
    {"year": {"$not": {"$gt": 2020}}}                # field-level $not
    {"tag": {"$in": ["a", "b"]}, "score": {"$exists": True}}

Comparison operators: ``$eq $ne $gt $gte $lt $lte $in $nin $exists``.
Logical operators: ``$and $or`` (non-empty lists of filters) and ``$not`` (one filter).
Several keys in one mapping are AND-ed. An empty mapping (or ``None``) matches everything.

Field names are identifiers (``[A-Za-z_][A-Za-z0-9_]*``), optionally dotted for nested fields
(``user.country``); adapters that cannot address nested fields raise
:class:`~strataml.errors.Unsupported`.

Values are scalars: ``str``, ``int``, ``float`` (finite), ``bool``, ``None``, ``datetime`` or
``date``.
Range operators (``$gt`` ...) take numbers, strings, datetimes or dates (never ``bool``/``None``);
``$in``/``$nin`` take a list of scalars of one kind; ``$exists`` takes a bool.

Null and missing fields
-----------------------
A field that is missing and a field whose value is null are the same thing: *absent*.
Every filter is two-valued: a record either matches ``f`` or matches ``{"$not": f}``, never neither.

=======================  =====================================================
``{f: None}``            f is absent
``{f: {"$ne": None}}``   f is present
``{f: v}``               f is present and equal to v
``{f: {"$ne": v}}``      f is absent, or present and different from v
``$gt $gte $lt $lte``    f is present and the comparison holds (absent never matches)
``{f: {"$in": L}}``      f is present and in L; also absent when ``None`` is in L
``{f: {"$nin": L}}``     the complement of ``$in``: absent matches unless ``None`` is in L
``{f: {"$exists": b}}``  f is present (b true) / absent (b false)
=======================  =====================================================

Type mismatches
---------------
Where a store knows its fields' types (a typed column, a tracked metadata schema) a comparison of a
field with a value of another kind (``{"year": {"$gt": "2020"}}`` on an integer field) raises
:class:`~strataml.errors.FilterError` -- see :func:`check_types`. ``int`` and ``float`` are
compatible; ``bool`` is not a number.

Failing closed
--------------
Adapters call :func:`require_ops` with the operators they can run: anything else raises
:class:`~strataml.errors.Unsupported`; an operator outside the language raises
:class:`~strataml.errors.FilterError`. Nothing is ever dropped silently.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from strataml._time import to_utc_naive
from strataml.errors import FilterError, InvalidInput, Unsupported

__all__ = [
    "ALL_OPS",
    "And",
    "Compare",
    "Expr",
    "FieldType",
    "Not",
    "Op",
    "Or",
    "SQLFilterCompiler",
    "check_types",
    "coerce_temporal",
    "fields_used",
    "matches",
    "ops_used",
    "parse_filter",
    "require_ops",
    "value_kind",
]

Scalar: TypeAlias = str | int | float | bool | dt.datetime | dt.date | None

_FIELD_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


class Op(enum.StrEnum):
    """Every operator of the language (comparison and logical)."""

    EQ = "$eq"
    NE = "$ne"
    GT = "$gt"
    GTE = "$gte"
    LT = "$lt"
    LTE = "$lte"
    IN = "$in"
    NIN = "$nin"
    EXISTS = "$exists"
    AND = "$and"
    OR = "$or"
    NOT = "$not"


ALL_OPS: frozenset[Op] = frozenset(Op)
_COMPARE_OPS = frozenset({Op.EQ, Op.NE, Op.GT, Op.GTE, Op.LT, Op.LTE, Op.IN, Op.NIN, Op.EXISTS})
_RANGE_OPS = frozenset({Op.GT, Op.GTE, Op.LT, Op.LTE})
_KNOWN_ELSEWHERE = ("$regex", "$contains", "$like", "$text", "$all", "$size", "$elemMatch", "$nor")


class FieldType(enum.StrEnum):
    """The kinds of value a field can hold, as far as filters are concerned."""

    STRING = "string"
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    TIMESTAMP = "timestamp"
    DATE = "date"
    LIST = "list"
    OBJECT = "object"
    ANY = "any"  # unknown / mixed: no type checking


@dataclass(frozen=True, slots=True)
class Compare:
    """``field <op> value``. ``value`` is a scalar, a tuple of scalars (``$in``/``$nin``) or a bool
    (``$exists``)."""

    field: str
    op: Op
    value: Any


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Expr


Expr: TypeAlias = Compare | And | Or | Not


# ----------------------------------------------------------------------------------------- parsing
def parse_filter(spec: Mapping[str, Any] | Expr | None) -> Expr | None:
    """Parse a filter mapping into an AST; ``None``/``{}`` give ``None`` (match everything).

    Raises :class:`FilterError` with the path of the offending part for any malformed input.
    """
    if spec is None:
        return None
    if isinstance(spec, Compare | And | Or | Not):
        return spec
    if not isinstance(spec, Mapping):
        raise FilterError(f"a filter must be a mapping, got {type(spec).__name__}")
    if not spec:
        return None
    return _parse_doc(spec, "filter")


def _parse_doc(doc: Any, path: str) -> Expr:
    if not isinstance(doc, Mapping) or not doc:
        raise FilterError(f"{path}: expected a non-empty mapping, got {doc!r}")
    parts: list[Expr] = []
    for key, value in doc.items():
        if not isinstance(key, str):
            raise FilterError(f"{path}: keys must be strings, got {key!r}")
        here = f"{path}.{key}"
        if key.startswith("$"):
            if key in (Op.AND, Op.OR):
                if not isinstance(value, list | tuple) or not value:
                    raise FilterError(f"{here}: expected a non-empty list of filters")
                items = tuple(_parse_doc(v, f"{here}[{i}]") for i, v in enumerate(value))
                parts.append(And(items) if key == Op.AND else Or(items))
            elif key == Op.NOT:
                parts.append(Not(_parse_doc(value, here)))
            else:
                raise _unknown_operator(key, here)
        else:
            if not _FIELD_RE.match(key):
                raise FilterError(
                    f"{here}: invalid field name {key!r}; use letters, digits and '_' "
                    "(dots for nested fields)"
                )
            parts.append(_parse_field(key, value, here))
    return parts[0] if len(parts) == 1 else And(tuple(parts))


def _unknown_operator(key: str, here: str) -> FilterError:
    hint = " (not part of the strataml filter language)" if key in _KNOWN_ELSEWHERE else ""
    ops = " ".join(o.value for o in Op)
    return FilterError(f"{here}: unknown operator {key!r}{hint}; the language has: {ops}")


def _parse_field(field: str, value: Any, path: str) -> Expr:
    if isinstance(value, Mapping):
        if not value:
            raise FilterError(f"{path}: empty operator mapping")
        if not all(isinstance(k, str) and k.startswith("$") for k in value):
            raise FilterError(
                f"{path}: nested documents are not comparable; use operators such as "
                "{'$eq': ...} or a dotted field name"
            )
        parts: list[Expr] = []
        for op_key, operand in value.items():
            here = f"{path}.{op_key}"
            if op_key == Op.NOT:
                parts.append(Not(_parse_field(field, operand, here)))
                continue
            try:
                op = Op(op_key)
            except ValueError:
                raise _unknown_operator(op_key, here) from None
            if op not in _COMPARE_OPS:
                raise FilterError(
                    f"{here}: {op_key} is a logical operator; use it at the top level"
                )
            parts.append(Compare(field, op, _check_operand(op, operand, here)))
        return parts[0] if len(parts) == 1 else And(tuple(parts))
    return Compare(field, Op.EQ, _check_operand(Op.EQ, value, path))


def _check_scalar(v: Any, path: str) -> Scalar:
    if v is None or isinstance(v, str | bool | int | dt.date):
        return v  # type: ignore[no-any-return]
    if isinstance(v, float):
        if not math.isfinite(v):
            raise FilterError(f"{path}: {v!r} is not a finite number")
        return v
    # numpy scalars and the like
    item = getattr(v, "item", None)
    if callable(item) and type(v).__module__ == "numpy":
        return _check_scalar(item(), path)
    raise FilterError(f"{path}: {v!r} ({type(v).__name__}) is not a filterable scalar")


def _check_operand(op: Op, operand: Any, path: str) -> Any:
    if op is Op.EXISTS:
        if not isinstance(operand, bool):
            raise FilterError(f"{path}: $exists takes true or false, got {operand!r}")
        return operand
    if op in (Op.IN, Op.NIN):
        if not isinstance(operand, list | tuple | set | frozenset):
            raise FilterError(f"{path}: {op} takes a list, got {operand!r}")
        values = tuple(_check_scalar(v, path) for v in operand)
        kinds = {value_kind(v) for v in values if v is not None}
        if len(kinds) > 1:
            raise FilterError(f"{path}: {op} mixes kinds of value {sorted(kinds)}")
        return values
    value = _check_scalar(operand, path)
    if op in _RANGE_OPS and (value is None or isinstance(value, bool)):
        raise FilterError(f"{path}: {op} needs a number, string, date or datetime, got {value!r}")
    return value


def value_kind(v: Any) -> str:
    """The comparison family of a scalar: number, string, bool, timestamp, date."""
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, dt.datetime):
        return "timestamp"
    if isinstance(v, dt.date):
        return "date"
    return type(v).__name__


# ----------------------------------------------------------------------------------------- walking
def walk(expr: Expr | None) -> Iterator[Expr]:
    """Every node of the tree, depth first."""
    if expr is None:
        return
    yield expr
    if isinstance(expr, And | Or):
        for item in expr.items:
            yield from walk(item)
    elif isinstance(expr, Not):
        yield from walk(expr.item)


def ops_used(expr: Expr | None) -> set[Op]:
    """The operators a tree uses (implicit AND of several keys counts as ``$and``)."""
    out: set[Op] = set()
    for node in walk(expr):
        if isinstance(node, Compare):
            out.add(node.op)
        elif isinstance(node, And):
            out.add(Op.AND)
        elif isinstance(node, Or):
            out.add(Op.OR)
        else:
            out.add(Op.NOT)
    return out


def fields_used(expr: Expr | None) -> set[str]:
    return {n.field for n in walk(expr) if isinstance(n, Compare)}


def require_ops(expr: Expr | None, supported: frozenset[Op] | set[Op], backend: str) -> None:
    """Raise :class:`Unsupported` if ``expr`` uses an operator ``backend`` cannot run."""
    missing = ops_used(expr) - set(supported)
    if missing:
        names = ", ".join(sorted(m.value for m in missing))
        raise Unsupported(f"{backend} cannot run filter operator(s) {names}")


_COMPATIBLE: dict[FieldType, frozenset[str]] = {
    FieldType.STRING: frozenset({"string"}),
    FieldType.INT: frozenset({"number"}),
    FieldType.FLOAT: frozenset({"number"}),
    FieldType.BOOL: frozenset({"bool"}),
    FieldType.TIMESTAMP: frozenset({"timestamp", "date", "string"}),
    FieldType.DATE: frozenset({"date", "timestamp", "string"}),
}


def check_types(
    expr: Expr | None, schema: Mapping[str, FieldType], *, strict: bool = False
) -> None:
    """Raise :class:`FilterError` where a field is compared with a value of another kind.

    Fields missing from ``schema`` are absent from every record (so ``{f: v}`` matches nothing);
    with ``strict=True`` they raise instead. ``LIST``/``OBJECT`` fields cannot be compared.
    """
    for node in walk(expr):
        if not isinstance(node, Compare):
            continue
        ftype = schema.get(node.field)
        if ftype is None:
            if strict:
                raise FilterError(f"unknown field {node.field!r}; known: {sorted(schema)}")
            continue
        if ftype is FieldType.ANY or node.op is Op.EXISTS:
            continue
        if ftype in (FieldType.LIST, FieldType.OBJECT):
            raise FilterError(f"field {node.field!r} holds a {ftype}; only scalar fields filter")
        values = node.value if node.op in (Op.IN, Op.NIN) else (node.value,)
        for v in values:
            if v is None:
                continue
            kind = value_kind(v)
            if kind not in _COMPATIBLE.get(ftype, frozenset()):
                raise FilterError(
                    f"field {node.field!r} is {ftype}, but the filter compares it with "
                    f"{v!r} ({kind}) using {node.op}"
                )


def _temporal(field: str, ftype: FieldType, value: Any) -> Any:
    out = value
    if isinstance(value, str):
        try:
            if ftype is FieldType.DATE and len(value) == 10:
                return dt.date.fromisoformat(value)
            out = dt.datetime.fromisoformat(value)
        except ValueError:
            raise FilterError(
                f"field {field!r} holds {ftype} values, but {value!r} is not an ISO-8601 value"
            ) from None
    if isinstance(out, dt.datetime):
        try:  # compared in UTC: 9999-12-31T23:00-05:00 is past the last datetime
            to_utc_naive(out, f"field {field!r}")
        except InvalidInput as exc:
            raise FilterError(str(exc)) from exc
    return out


def coerce_temporal(expr: Expr | None, schema: Mapping[str, FieldType]) -> Expr | None:
    """Read ISO-8601 strings compared with ``TIMESTAMP``/``DATE`` fields as datetimes/dates,
    as typed engines do (and as :func:`matches` does); :class:`FilterError` for a string that
    is not ISO-8601. Call it after :func:`check_types`, before compiling."""
    if expr is None:
        return None
    if isinstance(expr, And):
        return And(tuple(coerce_temporal(e, schema) for e in expr.items))  # type: ignore[misc]
    if isinstance(expr, Or):
        return Or(tuple(coerce_temporal(e, schema) for e in expr.items))  # type: ignore[misc]
    if isinstance(expr, Not):
        return Not(coerce_temporal(expr.item, schema))  # type: ignore[arg-type]
    ftype = schema.get(expr.field)
    if ftype not in (FieldType.TIMESTAMP, FieldType.DATE) or expr.op is Op.EXISTS:
        return expr
    if expr.op in (Op.IN, Op.NIN):
        return Compare(
            expr.field, expr.op, tuple(_temporal(expr.field, ftype, v) for v in expr.value)
        )
    return Compare(expr.field, expr.op, _temporal(expr.field, ftype, expr.value))


# -------------------------------------------------------------------------- reference evaluation
def _get(record: Mapping[str, Any], field: str) -> Any:
    cur: Any = record
    for part in field.split("."):
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(part)
    if isinstance(cur, float) and math.isnan(cur):
        return None
    return cur


def _norm(v: Any) -> Any:
    # compare dates with datetimes by promoting; numbers stay numbers
    if isinstance(v, dt.date) and not isinstance(v, dt.datetime):
        return dt.datetime(v.year, v.month, v.day)
    if isinstance(v, dt.datetime) and v.tzinfo is not None:
        return v.astimezone(dt.UTC).replace(tzinfo=None)
    return v


def _as_instant(v: Any) -> Any:
    """ISO-8601 strings compared with dates or datetimes are read as instants (as engines do)."""
    if isinstance(v, str):
        try:
            return dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            return None
    return v


def _cmp(a: Any, b: Any, fn: Callable[[Any, Any], bool]) -> bool:
    kinds = {value_kind(a), value_kind(b)}
    if (
        len(kinds) > 1
        and kinds & {"timestamp", "date"}
        and kinds <= {"timestamp", "date", "string"}
    ):
        a, b = _as_instant(a), _as_instant(b)
        if a is None or b is None:
            return False
    elif len(kinds) > 1 and not kinds <= {"timestamp", "date"}:
        return False
    try:
        return fn(_norm(a), _norm(b))
    except TypeError:
        return False


def matches(expr: Expr | None, record: Mapping[str, Any]) -> bool:
    """The reference semantics, in Python: does ``record`` match ``expr``?

    Adapters are property-tested against this function.
    """
    if expr is None:
        return True
    if isinstance(expr, And):
        return all(matches(e, record) for e in expr.items)
    if isinstance(expr, Or):
        return any(matches(e, record) for e in expr.items)
    if isinstance(expr, Not):
        return not matches(expr.item, record)
    v = _get(record, expr.field)
    op, x = expr.op, expr.value
    if op is Op.EXISTS:
        return (v is not None) is x
    if op is Op.EQ:
        return v is None if x is None else v is not None and _cmp(v, x, lambda a, b: a == b)
    if op is Op.NE:
        return v is not None if x is None else v is None or not _cmp(v, x, lambda a, b: a == b)
    if op is Op.IN:
        if v is None:
            return None in x
        return any(c is not None and _cmp(v, c, lambda a, b: a == b) for c in x)
    if op is Op.NIN:
        return not matches(Compare(expr.field, Op.IN, x), record)
    if v is None:
        return False
    fns: dict[Op, Callable[[Any, Any], bool]] = {
        Op.GT: lambda a, b: a > b,
        Op.GTE: lambda a, b: a >= b,
        Op.LT: lambda a, b: a < b,
        Op.LTE: lambda a, b: a <= b,
    }
    return _cmp(v, x, fns[op])


# ---------------------------------------------------------------------------------- SQL compiling
class SQLFilterCompiler:
    """Compile the AST to a two-valued SQL boolean expression.

    Subclasses set the parameter style and how a field becomes a column expression. With
    ``paramstyle="qmark"``/``"format"``/``"numeric"`` values are bound (returned in ``params``);
    with ``paramstyle="inline"`` (engines without bind parameters, e.g. LanceDB's ``where``) values
    are rendered as escaped literals by :meth:`literal`. Identifiers are always quoted.
    """

    paramstyle: str = "qmark"
    quote_char: str = '"'
    nested_fields: bool = False
    backend: str = "SQL"
    supported_ops: frozenset[Op] = ALL_OPS

    def __init__(self) -> None:
        self.params: list[Any] = []

    # -- hooks
    def quote_ident(self, name: str) -> str:
        q = self.quote_char
        return q + name.replace(q, q + q) + q

    def column(self, field: str) -> str:
        if "." in field and not self.nested_fields:
            raise Unsupported(f"{self.backend} cannot filter on nested field {field!r}")
        return ".".join(self.quote_ident(p) for p in field.split("."))

    def column_for(self, field: str, value: Any) -> str:
        """The column expression to compare with ``value`` (JSON stores cast by value kind)."""
        return self.column(field)

    def bind(self, value: Any) -> str:
        if self.paramstyle == "inline":
            return self.literal(value)
        self.params.append(value)
        if self.paramstyle == "qmark":
            return "?"
        if self.paramstyle == "format":
            return "%s"
        if self.paramstyle == "numeric":
            return f"${len(self.params)}"
        raise ValueError(f"unknown paramstyle {self.paramstyle}")

    def literal(self, value: Any) -> str:
        if isinstance(value, bool):
            return "TRUE" if value else "FALSE"
        if isinstance(value, int):
            return str(int(value))
        if isinstance(value, float):
            if not math.isfinite(value):
                raise FilterError(f"{value!r} is not a finite number")
            return repr(float(value))
        if isinstance(value, str):
            return "'" + value.replace("'", "''") + "'"
        if isinstance(value, dt.datetime):
            v = _norm(value)
            return f"TIMESTAMP '{v.isoformat(sep=' ')}'"
        if isinstance(value, dt.date):
            return f"DATE '{value.isoformat()}'"
        raise FilterError(f"cannot render {value!r} as a literal")

    # -- compiling
    def compile(self, expr: Expr | None) -> tuple[str, list[Any]]:
        """Return ``(sql, params)``; ``("TRUE", [])`` for an empty filter."""
        self.params = []
        require_ops(expr, self.supported_ops, self.backend)
        if expr is None:
            return "TRUE", []
        return self._expr(expr), self.params

    def _expr(self, e: Expr) -> str:
        if isinstance(e, And):
            return "(" + " AND ".join(self._expr(i) for i in e.items) + ")"
        if isinstance(e, Or):
            return "(" + " OR ".join(self._expr(i) for i in e.items) + ")"
        if isinstance(e, Not):
            return f"(NOT {self._expr(e.item)})"
        return self._compare(e)

    def _compare(self, e: Compare) -> str:
        op, x = e.op, e.value
        if op is Op.EXISTS:
            return f"({self.column(e.field)} IS {'NOT ' if x else ''}NULL)"
        if op in (Op.EQ, Op.NE) and x is None:
            return f"({self.column(e.field)} IS {'NOT ' if op is Op.NE else ''}NULL)"
        if op is Op.EQ:
            c = self.column_for(e.field, x)
            return f"({c} = {self.bind(x)} AND {c} IS NOT NULL)"
        if op is Op.NE:
            c = self.column_for(e.field, x)
            return f"({c} IS NULL OR {c} <> {self.bind(x)})"
        if op in (Op.IN, Op.NIN):
            inner = self._in(e.field, x)
            return inner if op is Op.IN else f"(NOT {inner})"
        sym = {Op.GT: ">", Op.GTE: ">=", Op.LT: "<", Op.LTE: "<="}[op]
        c = self.column_for(e.field, x)
        return f"({c} {sym} {self.bind(x)} AND {c} IS NOT NULL)"

    def _in(self, field: str, values: Sequence[Any]) -> str:
        present = [v for v in values if v is not None]
        with_null = len(present) != len(values)
        parts: list[str] = []
        if present:
            c = self.column_for(field, present[0])
            binds = ", ".join(self.bind(v) for v in present)
            parts.append(f"({c} IN ({binds}) AND {c} IS NOT NULL)")
        if with_null:
            parts.append(f"({self.column(field)} IS NULL)")
        if not parts:
            return "(1 = 0)"
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"
