"""Serving gives transforms the training side's types, also where no row has a value."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

import strataml
from strataml.errors import InvalidInput
from strataml.features import (
    MaterializeState,
    apply_to_rows,
    materialized_types,
    transform,
)
from strataml.models import FeatureView

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@transform(inputs=["clicks", "basket"], outputs=["per_click"])
def per_click(cols: Any) -> dict[str, Any]:
    return {"per_click": cols["basket"] / np.maximum(cols["clicks"], 1.0)}


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Any]:
    with strataml.open("local", data_dir=tmp_path) as s:
        s.features.load(
            "events",
            pa.table(
                {
                    "user_id": pa.array([1, 1, 2], pa.int64()),
                    "ts": pa.array([NOW] * 3, pa.timestamp("us", tz="UTC")),
                    "clicks": pa.array([2.0, 4.0, 8.0]),
                }
            ),
        )
        s.features.register(
            FeatureView(
                name="activity",
                sql="SELECT user_id, ts, clicks FROM events",
                entities=("user_id",),
            )
        )
        yield s


def test_the_stack_server_gives_a_cold_start_entity_nan_as_training_does(stack: Any) -> None:
    view = stack.feature_view("activity")
    assert materialized_types(stack.features, view) == {}  # never materialized
    stack.materialize("activity")
    assert materialized_types(stack.features, view) == {"clicks": pa.float64()}
    server = stack.feature_server(["activity"], transforms=[per_click])
    assert server.get({"user_id": 2}, request={"basket": 16.0})["per_click"] == 2.0
    cold = server.get({"user_id": 99}, request={"basket": 16.0})
    assert cold["clicks"] is None  # the feature itself: no live row
    assert math.isnan(cold["per_click"])  # the transform saw NaN, as in training
    many = server.get_many([{"user_id": 98}, {"user_id": 99}], requests=[{"basket": 1.0}] * 2)
    assert all(math.isnan(m["per_click"]) for m in many)


def test_without_types_an_all_null_input_is_none() -> None:
    seen: list[Any] = []

    @transform(inputs=["x"], outputs=["y"])
    def spy(cols: Any) -> dict[str, Any]:
        seen.append(cols["x"].tolist())
        return {"y": cols["x"]}

    apply_to_rows([{"x": None}], [spy])
    apply_to_rows([{"x": None}], [spy], {"x": pa.float64()})
    assert seen[0] == [None]
    assert math.isnan(seen[1][0])


def test_a_value_that_does_not_fit_its_type_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match=r"'clicks'.*double"):
        apply_to_rows([{"clicks": "many", "basket": 1.0}], [per_click], {"clicks": pa.float64()})


def test_a_checkpoint_from_before_types_were_recorded_still_reads() -> None:
    old = '{"run": "r", "fingerprint": "f", "start": null, "end": "2026-01-01T00:00:00Z"}'
    assert MaterializeState.model_validate_json(old).feature_schema is None
