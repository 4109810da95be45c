"""Request-time transforms: one Python function, run the same way in training and serving.

A transform is a function over **columns**: it receives a mapping ``{name: numpy array}``
holding its inputs (online features and request fields) and returns a mapping
``{output: array-like}`` of the same length. Training calls it once over the whole training
frame; serving calls it over columns of length 1 (or ``n`` for ``get_many``). Because it is the
same function over the same column types, the two cannot drift apart.

    @transform(inputs=["clicks_7d", "purchases_7d"], outputs=["conversion"])
    def conversion(cols):
        return {"conversion": cols["purchases_7d"] / np.maximum(cols["clicks_7d"], 1)}

Each transform has a :attr:`Transform.fingerprint`: sha256 of its name, version, inputs,
outputs and its source code normalised through the AST (comments, blank lines and formatting
do not change it; any change of logic does).
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import json
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from strataml.errors import InvalidInput, TransformError

__all__ = ["Transform", "apply_to_rows", "apply_to_table", "transform"]

Columns = Mapping[str, Any]
TransformFn = Callable[[Columns], Mapping[str, Any]]


def _source_digest(fn: Callable[..., Any]) -> str:
    try:
        src = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError) as exc:
        raise InvalidInput(
            f"transform {getattr(fn, '__name__', fn)!r}: its source code is not available "
            "(define it in a module or file, not interactively)"
        ) from exc
    tree = ast.parse(src)
    for node in ast.walk(tree):  # decorators are not logic
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            node.decorator_list = []
            if (
                node.body
                and isinstance(node.body[0], ast.Expr)
                and isinstance(node.body[0].value, ast.Constant)
                and isinstance(node.body[0].value.value, str)
            ):
                node.body = node.body[1:] or [ast.Pass()]  # docstrings are not logic either
    return hashlib.sha256(ast.dump(tree, annotate_fields=False).encode()).hexdigest()


@dataclass(frozen=True)
class Transform:
    """A request-time transform (see the module docstring)."""

    name: str
    fn: TransformFn
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    version: int = 1
    description: str | None = None
    _digest: str = field(default="", repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise InvalidInput(f"transform name {self.name!r} is not an identifier")
        if not self.outputs:
            raise InvalidInput(f"transform {self.name!r} declares no outputs")
        if len(set(self.outputs)) != len(self.outputs):
            raise InvalidInput(f"transform {self.name!r} declares duplicate outputs")
        if isinstance(self.version, bool) or not isinstance(self.version, int) or self.version < 1:
            raise InvalidInput(f"transform {self.name!r}: version must be a positive integer")
        object.__setattr__(self, "_digest", _source_digest(self.fn))

    @property
    def fingerprint(self) -> str:
        payload = {
            "name": self.name,
            "version": self.version,
            "inputs": list(self.inputs),
            "outputs": list(self.outputs),
            "code": self._digest,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    def __call__(self, columns: Mapping[str, Any]) -> dict[str, np.ndarray[Any, Any]]:
        """Run on columns (``{name: sequence}``, all the same length); return the outputs as
        arrays of that length. Errors: :class:`InvalidInput` (missing inputs),
        :class:`TransformError` (the function raised or returned the wrong shape)."""
        missing = [i for i in self.inputs if i not in columns]
        if missing:
            raise InvalidInput(f"transform {self.name!r} needs inputs {missing}")
        cols = {i: _as_array(columns[i]) for i in self.inputs}
        n = len(next(iter(cols.values()))) if cols else None
        try:
            result = self.fn(cols)
        except Exception as exc:
            raise TransformError(
                f"transform {self.name!r} raised {type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(result, Mapping):
            raise TransformError(
                f"transform {self.name!r} returned {type(result).__name__}, not a mapping"
            )
        if set(result) != set(self.outputs):
            raise TransformError(
                f"transform {self.name!r} returned {sorted(result)}, declared {list(self.outputs)}"
            )
        out: dict[str, np.ndarray[Any, Any]] = {}
        for name in self.outputs:
            arr = np.asarray(result[name])
            if arr.ndim == 0 and n is not None:
                arr = np.full(n, arr)
            if arr.ndim != 1 or (n is not None and len(arr) != n):
                raise TransformError(
                    f"transform {self.name!r}: output {name!r} has shape {arr.shape}, "
                    f"expected ({n},)"
                )
            out[name] = arr
        return out


def _as_array(values: Any) -> np.ndarray[Any, Any]:
    if isinstance(values, pa.ChunkedArray | pa.Array):
        return np.asarray(values.to_numpy(zero_copy_only=False))
    return np.asarray(values)


def transform(
    *,
    inputs: Sequence[str],
    outputs: Sequence[str],
    name: str | None = None,
    version: int = 1,
    description: str | None = None,
) -> Callable[[TransformFn], Transform]:
    """Decorator making a :class:`Transform` of a function over columns."""

    def wrap(fn: TransformFn) -> Transform:
        return Transform(
            name=name or fn.__name__,
            fn=fn,
            inputs=tuple(inputs),
            outputs=tuple(outputs),
            version=version,
            description=description or (inspect.getdoc(fn) or None),
        )

    return wrap


def apply_to_table(table: pa.Table, transforms: Sequence[Transform]) -> pa.Table:
    """Training side: append every transform's outputs to ``table`` (in order; a transform may
    use an earlier one's outputs). Output names may not clash with existing columns
    (:class:`InvalidInput`); an output Arrow cannot hold (objects of no Arrow type, mixed
    kinds) is a :class:`TransformError`."""
    for t in transforms:
        clash = [o for o in t.outputs if o in table.column_names]
        if clash:
            raise InvalidInput(f"transform {t.name!r} outputs {clash} clash with columns")
        cols = {i: table.column(i) for i in t.inputs if i in table.column_names}
        for name, arr in t(cols).items():
            try:
                column = pa.array(arr)
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
                raise TransformError(
                    f"transform {t.name!r}: output {name!r} is not a column Arrow can hold "
                    f"(dtype {arr.dtype}): {exc}"
                ) from exc
            table = table.append_column(name, column)
    return table


def apply_to_rows(
    rows: Sequence[dict[str, Any]],
    transforms: Sequence[Transform],
    types: Mapping[str, pa.DataType] | None = None,
) -> list[dict[str, Any]]:
    """Serving side: the same transforms over rows (turned into columns, so the function sees
    exactly what it sees in training); outputs are added to each row in place.

    ``types`` gives the Arrow type of inputs whose training column type is known (the features:
    :func:`~strataml.features.materialize.materialized_types`); the others are inferred from
    the values. Without a type, an input that is null in every row (an entity with no live row)
    has no type to infer and reaches the function as ``None`` objects, where training has a
    typed null (``NaN`` in a float column).

    Raises :class:`InvalidInput` when a row lacks one of a transform's inputs (the key is absent;
    a ``None`` value is a null input), as :func:`apply_to_table` does for a missing column, or
    when a value does not fit its input's type."""
    if not rows or not transforms:
        return list(rows)
    for t in transforms:
        # an input no row source provided (a request field not passed) is the caller's error, as
        # a missing column is in training; a feature without a live row is present, as None
        missing = sorted({i for r in rows for i in t.inputs if i not in r})
        if missing:
            raise InvalidInput(
                f"transform {t.name!r} needs inputs {missing}: pass request fields in "
                "request= (get) or requests= (get_many)"
            )
        # through Arrow, exactly like the training side (nulls -> NaN for numbers, etc.)
        cols = {i: _column(t, i, [r[i] for r in rows], (types or {}).get(i)) for i in t.inputs}
        for name, arr in t(cols).items():
            values = arr.tolist()
            for row, value in zip(rows, values, strict=True):
                row[name] = value
    return list(rows)


def _column(t: Transform, name: str, values: list[Any], type_: pa.DataType | None) -> pa.Array:
    try:
        return pa.array(values, type=type_)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
        raise InvalidInput(
            f"transform {t.name!r}: input {name!r} does not fit type {type_}: {exc}"
        ) from exc
