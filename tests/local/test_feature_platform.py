"""The feature-platform contract on the embedded pair: DuckDB (offline) + LMDB (online)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import strataml
from strataml.testing import FeaturePlatformTests


@pytest.fixture
def local_stack(tmp_path: Path) -> Iterator[Any]:
    with strataml.open("local", data_dir=tmp_path) as stack:
        yield stack


class TestLocalFeaturePlatform(FeaturePlatformTests):
    @pytest.fixture
    def feature_store(self, local_stack: Any) -> Any:
        return local_stack.features

    @pytest.fixture
    def online_store(self, local_stack: Any) -> Any:
        return local_stack.online


_CHILD = """
import sys, time
import strataml
from strataml.features import materialize

with strataml.open("local", data_dir=sys.argv[1]) as stack:
    def progress(n):
        print("wrote", n, flush=True)
        time.sleep(0.05)
    materialize(stack.features, stack.online, "clicks", batch_size=500, progress=progress)
print("finished", flush=True)
"""


def test_killed_materialization_resumes_without_gaps(tmp_path: Path) -> None:
    """SIGKILL a real `materialize` process mid-run, then `strataml materialize` resumes it."""
    import datetime as dt
    import os
    import signal
    import subprocess
    import sys

    import pyarrow as pa
    from click.testing import CliRunner

    from strataml.cli import main
    from strataml.features import materialize_state, online_view_name
    from strataml.models import FeatureView

    n_users = 20_000
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with strataml.open("local", data_dir=tmp_path) as stack:
        ids = [i % n_users for i in range(60_000)]
        stack.features.load(
            "clicks_src",
            pa.table(
                {
                    "user_id": pa.array(ids, pa.int64()),
                    "ts": pa.array(
                        [now - dt.timedelta(seconds=60_000 - i) for i in range(60_000)],
                        pa.timestamp("us"),
                    ),
                    "clicks": pa.array([float(i) for i in range(60_000)]),
                }
            ),
        )
        view = stack.features.register(
            FeatureView(
                name="clicks",
                sql="SELECT user_id, ts, clicks FROM clicks_src",
                entities=("user_id",),
            )
        )
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    lines = 0
    for line in child.stdout:
        lines += line.startswith("wrote")
        if lines == 5:
            os.kill(child.pid, signal.SIGKILL)
            break
    child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL

    with strataml.open("local", data_dir=tmp_path) as stack:
        state = materialize_state(stack.features, view)
        assert state is not None
        assert not state.done
        assert 2_500 <= state.written < n_users

    out = CliRunner().invoke(
        main, ["materialize", "clicks", "--json"], env={"STRATAML_DATA_DIR": str(tmp_path)}
    )
    assert out.exit_code == 0, out.output
    assert '"resumed":true' in out.output
    with strataml.open("local", data_dir=tmp_path) as stack:
        state = materialize_state(stack.features, view)
        assert state is not None
        assert state.done
        assert state.written == n_users
        got = stack.online.get_many(
            online_view_name(view), [{"user_id": u} for u in range(n_users)], ["clicks"]
        )
        # each user's newest click count is its last row: i = 40_000 + u
        assert [r["clicks"] if r else None for r in got] == [
            float(40_000 + u) for u in range(n_users)
        ]
