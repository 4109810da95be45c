"""The command line and the demo (all five stages on the embedded local profile)."""

from __future__ import annotations

import json
from pathlib import Path

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
