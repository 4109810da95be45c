"""The command line and the demo (all five stages on the embedded local profile)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from strataml.cli import main
from strataml.demo import QUERIES, run_demo


def test_profiles_and_backends():
    runner = CliRunner()
    out = runner.invoke(main, ["profiles"])
    assert out.exit_code == 0, out.output
    for name in ("local", "lean", "growth", "growth-aws", "enterprise"):
        assert name in out.output
    out = runner.invoke(main, ["backends"])
    assert out.exit_code == 0, out.output
    for name in ("sqlite", "duckdb", "lmdb", "lancedb"):
        assert name in out.output


def test_info_masks_secrets(monkeypatch, tmp_path: Path):
    profile = tmp_path / "p.toml"
    profile.write_text(
        "[online]\ntype = 'lmdb'\npath = '/x'\n[ingest]\ntype = 'sqlite'\n"
        "path = 'postgresql://me:hunter2@db/x'\n"
    )
    out = CliRunner().invoke(main, ["info", str(profile), "--json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert doc["roles"]["online"]["capabilities"]["ttl"] is True
    assert "hunter2" not in out.output


def test_errors_exit_2_with_a_message():
    out = CliRunner().invoke(main, ["info", "no-such-profile"])
    assert out.exit_code == 2
    assert "unknown profile" in out.output


def test_demo_runs_all_five_stages(tmp_path: Path):
    result = run_demo("local", data_dir=tmp_path, quick=True)
    f = result.figures
    assert f["ingest_records_per_s"] > 0
    assert f["pit_rows"] == 10_000
    assert f["auc"] > 0.6  # the features carry real signal about the label
    assert f["get_p50_ms"] > 0
    assert f["chunks"] > 500
    assert f["hit3_hybrid"] >= len(QUERIES) // 2
    # data persisted in the directory it was given
    assert (tmp_path / "ingest.sqlite").exists()
    assert (tmp_path / "offline.duckdb").exists()


def test_contract_command_runs_the_suite_on_a_profile(tmp_path: Path):
    """`strataml contract local`: the packaged contract suite against a configured stack."""
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "strataml.cli", "contract", "local", "-p", "no:cacheprovider"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert " passed" in proc.stdout
    assert "failed" not in proc.stdout.splitlines()[-1]


def _drift_data(tmp_path: Path, shift: float) -> None:
    import datetime as dt

    import numpy as np
    import pyarrow as pa

    import strataml
    from strataml import FeatureView

    rng = np.random.default_rng(0)
    base = dt.datetime(2026, 1, 1)
    n = 4000
    values = np.concatenate([rng.normal(0, 1, n), rng.normal(shift, 1, n)])
    with strataml.open("local", data_dir=tmp_path) as stack:
        stack.features.load(
            "amounts",
            pa.table(
                {
                    "id": pa.array(np.arange(2 * n) % 500, pa.int64()),
                    "ts": pa.array(
                        [base + dt.timedelta(minutes=i) for i in range(2 * n)], pa.timestamp("us")
                    ),
                    "amount": pa.array(values),
                }
            ),
        )
        stack.features.register(
            FeatureView(name="spend", sql="SELECT id, ts, amount FROM amounts", entities=("id",))
        )


@pytest.mark.parametrize(("shift", "code"), [(0.0, 0), (1.5, 1)])
def test_drift_command_exits_non_zero_on_drift(tmp_path: Path, shift: float, code: int) -> None:
    _drift_data(tmp_path, shift)
    out = CliRunner().invoke(
        main,
        [
            "drift",
            "spend",
            "--baseline",
            "2026-01-01T00:00:00:2026-01-03T18:40:00",
            "--current",
            "2026-01-03T18:40:00:2026-01-07T00:00:00",
            "--json",
        ],
        env={"STRATAML_DATA_DIR": str(tmp_path)},
    )
    assert out.exit_code == code, out.output
    assert '"amount"' in out.output


def test_drift_thresholds_come_from_the_profile(tmp_path: Path) -> None:
    import strataml
    from strataml.errors import ConfigError

    path = tmp_path / "p.toml"
    path.write_text(
        f"[features]\ntype = 'duckdb'\npath = '{tmp_path}/f.duckdb'\n"
        "[drift]\npsi_alert = 0.5\npsi_warn = 0.2\n"
    )
    with strataml.open(str(path)) as stack:
        assert stack.profile.drift["psi_alert"] == 0.5
    path.write_text("[drift]\npsi_alert = 'high'\n")
    with pytest.raises(ConfigError, match="drift"):
        strataml.open(str(path))


def test_refresh_refuses_an_lsa_dim_below_2(tmp_path: Path) -> None:
    """--lsa-dim -5 was silently replaced by 2."""
    docs = tmp_path / "docs.jsonl"
    docs.write_text('{"id": "a", "text": "alpha beta"}\n')
    for bad in ("-5", "0", "1"):
        out = CliRunner().invoke(
            main, ["refresh", str(docs), "kb", "--data-dir", str(tmp_path / "d"), "--lsa-dim", bad]
        )
        assert out.exit_code == 2, out.output
        assert "--lsa-dim" in out.output
    assert not (tmp_path / "d").exists()  # nothing fitted, nothing written
