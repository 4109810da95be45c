"""The lean profile end to end: `strataml dev up lean` starts PostgreSQL + pgvector and Redis,
and the demo runs on them unchanged (the same code as on `local`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("strataml_postgres", reason="the lean profile needs strataml-postgres")
pytest.importorskip("strataml_redis", reason="the lean profile needs strataml-redis")

from strataml.cli import main
from strataml.demo import run_demo
from strataml.dev import ENV_FOR, down, status, up


@pytest.fixture(scope="module")
def lean_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    base = tmp_path_factory.mktemp("lean")
    handles = up("lean", base)
    try:
        yield {"data_dir": str(base), **{ENV_FOR[k]: h.url for k, h in handles.items()}}
    finally:
        down(base)


def test_dev_up_is_idempotent_and_reports_status(lean_servers: dict[str, str]):
    base = Path(lean_servers["data_dir"])
    again = up("lean", base)
    assert {ENV_FOR[k]: h.url for k, h in again.items()} == {
        k: v for k, v in lean_servers.items() if k != "data_dir"
    }
    assert set(status(base)) == {"postgres", "redis"}
    out = CliRunner().invoke(main, ["dev", "status", "--data-dir", str(base)])
    assert out.exit_code == 0
    assert "postgres" in out.output


def test_demo_runs_unchanged_on_lean(
    lean_servers: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    for key, value in lean_servers.items():
        if key != "data_dir":
            monkeypatch.setenv(key, value)
    result = run_demo("lean", data_dir=tmp_path, quick=True)
    f = result.figures
    assert f["pit_rows"] == 10_000
    assert f["auc"] > 0.6
    assert f["hit3_hybrid"] >= 4
    assert f["get_p50_ms"] > 0


def test_dev_cli_up_and_down(tmp_path: Path):
    runner = CliRunner()
    out = runner.invoke(main, ["dev", "up", "lean", "--data-dir", str(tmp_path)])
    assert out.exit_code == 0, out.output
    assert "export STRATAML_PG_URL=postgresql://" in out.output
    assert "export STRATAML_REDIS_URL=redis://127.0.0.1:" in out.output
    out = runner.invoke(main, ["dev", "down", "--data-dir", str(tmp_path)])
    assert out.exit_code == 0
    assert "postgres" in out.output
    assert status(tmp_path) == {}


def test_dev_up_rejects_a_profile_without_servers(tmp_path: Path):
    out = CliRunner().invoke(main, ["dev", "up", "local", "--data-dir", str(tmp_path)])
    assert out.exit_code == 2
    assert "needs no server" in out.output


def test_contract_command_passes_on_lean(lean_servers: dict[str, str], tmp_path: Path):
    """`strataml contract lean`: every protocol's contract on PostgreSQL + pgvector and Redis."""
    import os
    import subprocess
    import sys

    env = {**os.environ, **{k: v for k, v in lean_servers.items() if k != "data_dir"}}
    proc = subprocess.run(
        [sys.executable, "-m", "strataml.cli", "contract", "lean", "-p", "no:cacheprovider"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert " passed" in proc.stdout
