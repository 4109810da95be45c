"""Bad input on the vector stage (LanceDB store, refresh and its CLI, the LSA embedder): every
mistake gets a typed strataml error, raised before anything is written, and nothing is dropped
silently."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from strataml.errors import InvalidInput, LimitExceeded
from strataml.vectors.refresh import load_documents, run_refresh_cli


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def _docs(n: int = 4) -> list[dict[str, Any]]:
    words = [
        *("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "theta"),
        *("kappa", "lambda", "sigma", "omega", "river", "mountain"),
    ]
    return [
        {"id": f"d{i}", "text": " ".join(words[(i + j) % len(words)] for j in range(8))}
        for i in range(n)
    ]


# ------------------------------------------------------------------------------ refresh CLI
def test_cli_bad_collection_name_writes_no_model_outside_the_data_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = _jsonl(tmp_path / "docs.jsonl", _docs())
    data = tmp_path / "a" / "b" / "data"
    code = run_refresh_cli(src, "../../escaped", data_dir=data, lsa_dim=2, as_json=True)
    assert code == 2
    assert "InvalidInput" in capsys.readouterr().out
    assert list(tmp_path.rglob("*.npz")) == []  # nothing fitted, nothing written


def test_cli_jsonl_that_is_not_utf8_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "docs.jsonl"
    src.write_bytes(b'{"id": "a", "text": "ok"}\n{"id": "b", "text": "caf\xe9 \xff"}\n')
    with pytest.raises(InvalidInput, match=r"docs\.jsonl:2: not UTF-8"):
        load_documents(src)
    code = run_refresh_cli(src, "kb", data_dir=tmp_path / "data", as_json=True)
    assert code == 2
    assert "InvalidInput" in capsys.readouterr().out


# ------------------------------------------------------------------------- create_collection
@pytest.mark.parametrize("metadata", [[1, 2], "ab", 42, [("a", 1)]])
def test_create_collection_metadata_that_is_not_a_mapping(lance: Any, metadata: Any) -> None:
    with pytest.raises(InvalidInput, match="metadata"):
        lance.create_collection("c", 3, metadata=metadata)
    assert lance.collections() == []


def test_create_collection_dimension_beyond_arrow_is_refused(lance: Any) -> None:
    with pytest.raises(LimitExceeded, match="dim"):
        lance.create_collection("c", 2**31, "l2")
    assert lance.collections() == []
