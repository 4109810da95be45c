"""Regression tests for bad input on the embedded ``local`` profile's non-vector stages
(ingest, features, online, training, the feature platform and the CLI): every failure is a
typed strataml error raised before anything is written, never a leaked driver or Python error,
and nothing accepted poisons later reads."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

import strataml
from strataml.errors import InvalidInput
from strataml.models import FeatureRef, FeatureView
from strataml.stack import Stack

#: Aware times whose UTC instant no ``datetime`` can hold (after 9999 / before year 1).
PAST_MAX = dt.datetime.max.replace(tzinfo=dt.timezone(dt.timedelta(hours=-5)))
BEFORE_MIN = dt.datetime.min.replace(tzinfo=dt.timezone(dt.timedelta(hours=5)))
OUT_OF_RANGE = [
    PAST_MAX,
    BEFORE_MIN,
    "9999-12-31T23:59:59-05:00",
    "0001-01-01T00:00:00+05:00",
]


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with strataml.open("local", data_dir=tmp_path) as s:
        yield s


@pytest.fixture
def view(stack: Stack) -> FeatureView:
    stack.features.load(
        "events",
        pa.table(
            {
                "id": [1, 2, 1],
                "ts": [dt.datetime(2024, 1, d) for d in (1, 2, 3)],
                "x": [1.0, 2.0, 3.0],
            }
        ),
    )
    return stack.features.register(
        FeatureView(name="fv", sql="SELECT id, ts, x FROM events", entities=("id",))
    )


# ---------------------------------------------------------------- event times out of range
@pytest.mark.parametrize("when", OUT_OF_RANGE)
def test_ingest_rejects_event_time_outside_utc_range(stack: Stack, when: object) -> None:
    """An event time beyond datetime's range in UTC was stored, and every later read of the
    stream raised OverflowError."""
    stack.ingest.write("s", {"n": 0})
    with pytest.raises(InvalidInput, match="out of range"):
        stack.ingest.write("s", {"t": when}, time_field="t")
    with pytest.raises(InvalidInput, match=r"records\[1\]"):
        stack.ingest.write_batch("s", [{"t": "2024-01-01"}, {"t": when}], time_field="t")
    page = stack.ingest.read("s")
    assert [r.data for r in page.records] == [{"n": 0}]


@pytest.mark.parametrize("when", [PAST_MAX, BEFORE_MIN])
def test_out_of_range_bounds_are_invalid_input(
    stack: Stack, view: FeatureView, when: object
) -> None:
    """Window bounds and filter values beyond datetime's range in UTC leaked OverflowError."""
    stack.ingest.write("s", {"n": 0})
    with pytest.raises(InvalidInput):
        stack.ingest.read("s", start=when)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        stack.ingest.count("s", end=when)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        stack.ingest.delete_before("s", when)  # type: ignore[arg-type]
    assert stack.ingest.count("s") == 1
    with pytest.raises(InvalidInput):
        stack.features.compute("fv", start=when)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        stack.materialize("fv", end=when)
    assert stack.online.views() == []
    stack.training.write("ds", pa.table({"t": [dt.datetime(2024, 1, 1)]}))
    with pytest.raises(InvalidInput):
        stack.training.count("ds", filter={"t": {"$lt": when}})


# ------------------------------------------------------------ online values out of range
@pytest.mark.parametrize(
    "rows",
    [
        [{"id": 1, "t": PAST_MAX}],
        [{"id": 1, "t": [BEFORE_MIN]}],
        [{"id": 1, "t": {"at": PAST_MAX}}],
        pa.table({"id": [1], "t": pa.array([300_000_000_000], pa.timestamp("s"))}),
        pa.table({"id": [1], "t": pa.array([-300_000_000_000], pa.timestamp("s", tz="UTC"))}),
        pa.table({"id": [1], "t": pa.array([3_000_000], pa.date32())}),
        pa.table({"id": [1], "t": pa.array([[300_000_000_000]], pa.list_(pa.timestamp("s")))}),
    ],
    ids=["aware", "in-list", "in-map", "arrow-ts", "arrow-ts-tz", "arrow-date", "arrow-list"],
)
def test_online_rejects_times_no_datetime_holds(stack: Stack, rows: object) -> None:
    """A feature time beyond the years 1-9999 in UTC was stored, and every later get of the
    entity raised OverflowError (or the write leaked it, for a list column)."""
    stack.online.write("v", [{"id": 1, "t": "kept"}], entities=["id"])
    with pytest.raises(InvalidInput, match=r"1-9999|out of range"):
        stack.online.write("v", rows, entities=["id"])
    assert stack.online.get("v", {"id": 1}) == {"t": "kept"}


# ------------------------------------------------------------------- FeatureServer arguments
@pytest.mark.parametrize("entity", [None, 1, [("id", 1)]])
def test_feature_server_get_rejects_non_mapping_entity(
    stack: Stack, view: FeatureView, entity: object
) -> None:
    """A non-mapping entity leaked TypeError (``'NoneType' object is not subscriptable``)."""
    stack.materialize("fv")
    server = stack.feature_server(["fv"])
    with pytest.raises(InvalidInput, match="entity is a mapping"):
        server.get(entity)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="entity is a mapping"):
        server.get_many([{"id": 1}, entity])  # type: ignore[list-item]


@pytest.mark.parametrize("entities", [None, {"id": 1}, "id"])
def test_feature_server_get_many_rejects_non_list(
    stack: Stack, view: FeatureView, entities: object
) -> None:
    """``None``, a single mapping or a string as ``entities`` leaked TypeError."""
    stack.materialize("fv")
    with pytest.raises(InvalidInput, match="entities is a list"):
        stack.feature_server(["fv"]).get_many(entities)  # type: ignore[arg-type]


def test_feature_server_get_many_reads_an_iterable_once(stack: Stack, view: FeatureView) -> None:
    """A generator of entities was consumed by the first view's read, then zip() raised
    ValueError; a generator of requests raised TypeError (no len())."""
    stack.materialize("fv")
    server = stack.feature_server(["fv"])
    got = server.get_many(({"id": i} for i in (1, 2)), requests=({"r": i} for i in (1, 2)))
    assert got == [{"r": 1, "x": 3.0}, {"r": 2, "x": 2.0}]


def test_feature_server_rejects_non_mapping_request(stack: Stack, view: FeatureView) -> None:
    """A request that is not a mapping leaked TypeError (or was read as key/value pairs)."""
    stack.materialize("fv")
    server = stack.feature_server(["fv"])
    with pytest.raises(InvalidInput, match="request is a mapping"):
        server.get({"id": 1}, request=5)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="request is a mapping"):
        server.get_many([{"id": 1}], requests=[[("a", 1)]])  # type: ignore[list-item]


@pytest.mark.parametrize("views", [None, "fv"])
def test_stack_feature_server_rejects_non_list_views(
    stack: Stack, view: FeatureView, views: object
) -> None:
    """``None`` leaked TypeError; a bare name was iterated letter by letter (NotFound 'f')."""
    with pytest.raises(InvalidInput, match="views is a list"):
        stack.feature_server(views)  # type: ignore[arg-type]


def test_feature_server_rejects_bad_transforms(stack: Stack, view: FeatureView) -> None:
    """A single Transform or a plain function leaked TypeError / AttributeError."""
    from strataml.features.transforms import transform

    @transform(inputs=["x"], outputs=["x2"])
    def double(cols: dict[str, object]) -> dict[str, object]:
        return {"x2": cols["x"] * 2}  # type: ignore[operator]

    stack.materialize("fv")
    with pytest.raises(InvalidInput, match="transforms is a list"):
        stack.feature_server(["fv"], transforms=double)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="transforms is a list"):
        stack.feature_server(["fv"], transforms=[lambda cols: cols])  # type: ignore[list-item]


# ------------------------------------------------------------------------------ transforms
def test_training_side_transform_output_arrow_cannot_hold(stack: Stack, view: FeatureView) -> None:
    """A transform returning objects Arrow has no type for leaked pyarrow's ArrowInvalid from
    Stack.historical (the serving side never converts, so only training failed)."""
    from strataml.errors import TransformError
    from strataml.features.transforms import transform

    @transform(inputs=["x"], outputs=["tag"])
    def tag(cols: dict[str, object]) -> dict[str, object]:
        return {"tag": [object() for _ in cols["x"]]}  # type: ignore[attr-defined]

    labels = pa.table({"id": [1], "ts": [dt.datetime(2024, 1, 5)]})
    with pytest.raises(TransformError, match="'tag'"):
        stack.historical(labels, ["fv:x"], transforms=[tag])


# ------------------------------------------------------------------------------------- CLI
@pytest.mark.parametrize(
    "window",
    ["-99999999999d..now", "-99999999999d:now", "-1000000w..now", "-9999999999999999999999s..now"],
)
def test_drift_cli_relative_time_too_far_back_exits_2(
    tmp_path: Path, view: FeatureView, window: str
) -> None:
    """A relative time before year 1 (or beyond a timedelta) crashed `strataml drift` with an
    OverflowError traceback (exit 1, which means "drift found") instead of exit 2."""
    from click.testing import CliRunner

    from strataml.cli import main

    out = CliRunner().invoke(
        main,
        ["drift", "fv", "--baseline", window, "--current", "2024-01-01..2024-01-04"],
        env={"STRATAML_DATA_DIR": str(tmp_path)},
    )
    assert out.exit_code == 2, out.output
    assert out.exception is None or isinstance(out.exception, SystemExit)
    assert "error:" in out.output


# ----------------------------------------------------------------------- online NumPy values
def test_online_numpy_arrays_round_trip_as_lists(stack: Stack) -> None:
    """A NumPy array feature (an embedding) was unwrapped with ``.item()``: one element came
    back as a bare scalar, several raised 'can only convert an array of size 1'."""
    import numpy as np

    rows = [{"id": 1, "one": np.array([1.5]), "emb": np.arange(3.0), "m": np.eye(2, dtype=int)}]
    stack.online.write("v", rows, entities=["id"])
    assert stack.online.get("v", {"id": 1}) == {
        "one": [1.5],
        "emb": [0.0, 1.0, 2.0],
        "m": [[1, 0], [0, 1]],
    }


def test_online_numpy_datetime64_round_trips_as_datetime(stack: Stack) -> None:
    """A nanosecond datetime64 came back as an int (nanoseconds since the epoch), a
    microsecond or day one was refused; timedelta64 and times beyond year 9999 stay refused."""
    import numpy as np

    utc = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    for unit in ("ns", "us", "D"):
        value = np.datetime64("2020-01-01", unit)
        stack.online.write("v", [{"id": 1, "t": value, "ts": np.array([value])}], entities=["id"])
        assert stack.online.get("v", {"id": 1}) == {"t": utc, "ts": [utc]}, unit
    for bad in (np.datetime64("10000-01-01"), np.timedelta64(5, "s")):
        with pytest.raises(InvalidInput):
            stack.online.write("v", [{"id": 1, "t": bad}], entities=["id"])
    assert stack.online.get("v", {"id": 1}) == {"t": utc, "ts": [utc]}


@pytest.mark.parametrize("params", [[object()], [{1, 2}], {"x": object()}])
def test_sql_parameters_duckdb_cannot_bind_are_invalid_input(stack: Stack, params: object) -> None:
    """A parameter of a Python type DuckDB has no SQL type for was a BackendError ('Not
    implemented'); the protocol documents bad parameters as InvalidInput."""
    query = "SELECT $x AS a" if isinstance(params, dict) else "SELECT ? AS a"
    with pytest.raises(InvalidInput, match="parameter"):
        stack.features.sql(query, params)


@pytest.mark.parametrize("ref", ["fv@", "fv@१", "fv@1.0", "fv@-1", "a b"])
def test_view_references_take_ascii_versions_only(
    stack: Stack, view: FeatureView, ref: str
) -> None:
    """'fv@' was read as the latest version and 'fv@१' (a Devanagari one) as version 1."""
    with pytest.raises(InvalidInput, match="bad view reference"):
        stack.feature_view(ref)
    with pytest.raises(InvalidInput, match="bad feature reference"):
        FeatureRef.parse(f"{ref}:x")


def test_materialize_refuses_a_progress_that_is_not_callable(
    stack: Stack, view: FeatureView
) -> None:
    """progress=5 raised TypeError only after the first batch was written and checkpointed."""
    with pytest.raises(InvalidInput, match="progress"):
        stack.materialize("fv", progress=5)
    assert stack.online.views() == []
