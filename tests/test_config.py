"""Profiles, environment overrides, the adapter registry and the Stack."""

from __future__ import annotations

from pathlib import Path

import pytest

import strataml
from strataml.capabilities import Capabilities
from strataml.config import builtin_profiles, load_profile, redact
from strataml.errors import AdapterNotInstalled, CapabilityError, ConfigError
from strataml.registry import available, get_adapter


def test_builtin_profiles_are_listed():
    names = builtin_profiles()
    assert {"local", "lean", "growth", "growth-aws", "enterprise"} <= set(names)
    assert all(names.values())


def test_local_profile_resolves_data_dir(tmp_path: Path):
    profile = load_profile("local", data_dir=tmp_path)
    assert profile.data_dir == tmp_path
    assert profile.roles["online"]["path"] == f"{tmp_path}/online.lmdb"
    assert profile.adapter_type("vectors") == "lancedb"


def test_default_profile_comes_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("STRATAML_PROFILE", "local")
    monkeypatch.setenv("STRATAML_DATA_DIR", str(tmp_path))
    profile = load_profile()
    assert profile.name == "local"
    assert profile.data_dir == tmp_path


def test_env_overrides_per_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("STRATAML_ONLINE__MAP_SIZE_MB", "64")
    monkeypatch.setenv("STRATAML_ONLINE__PATH", str(tmp_path / "elsewhere"))
    profile = load_profile("local", data_dir=tmp_path)
    assert profile.roles["online"]["map_size_mb"] == "64"
    with strataml.open("local", data_dir=tmp_path) as stack:
        _, config = stack._plan["online"]
        assert config.map_size_mb == 64  # type: ignore[attr-defined]
        assert str(config.path) == str(tmp_path / "elsewhere")  # type: ignore[attr-defined]


def test_env_interpolation_in_profile_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    path = tmp_path / "mine.toml"
    path.write_text(
        'description = "mine"\n[online]\ntype = "lmdb"\npath = "${MY_ONLINE_DIR:-/nowhere}/x"\n'
        '[ingest]\ntype = "sqlite"\npath = "${MY_INGEST}"\n'
    )
    monkeypatch.setenv("MY_INGEST", str(tmp_path / "i.sqlite"))
    profile = load_profile(str(path))
    assert profile.roles["online"]["path"] == "/nowhere/x"
    assert profile.roles["ingest"]["path"] == str(tmp_path / "i.sqlite")
    monkeypatch.delenv("MY_INGEST")
    with pytest.raises(ConfigError, match="MY_INGEST is not set"):
        load_profile(str(path))


def test_unknown_profile_names_the_builtins():
    with pytest.raises(ConfigError, match=r"unknown profile 'nope'.*local"):
        strataml.open("nope")


def test_missing_or_invalid_profile_files(tmp_path: Path):
    with pytest.raises(ConfigError, match="does not exist"):
        strataml.open(str(tmp_path / "missing.toml"))
    bad = tmp_path / "bad.toml"
    bad.write_text("[online\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        strataml.open(str(bad))
    odd = tmp_path / "odd.toml"
    odd.write_text("[onlin]\ntype='lmdb'\n")
    with pytest.raises(ConfigError, match="unknown top-level keys"):
        strataml.open(str(odd))
    notype = tmp_path / "notype.toml"
    notype.write_text("[online]\npath='x'\n")
    with pytest.raises(ConfigError, match="no `type`"):
        strataml.open(str(notype))


def test_uninstalled_backend_names_the_package(tmp_path: Path):
    path = tmp_path / "p.toml"
    path.write_text("[vectors]\ntype = 'pinecone'\napi_key = 'k'\n")
    with pytest.raises(AdapterNotInstalled) as info:
        strataml.open(str(path))
    assert "pip install strataml-pinecone" in str(info.value)
    assert "[vectors]" in str(info.value)
    assert info.value.package == "strataml-pinecone"
    assert isinstance(info.value, ConfigError)


def test_unknown_backend_type(tmp_path: Path):
    path = tmp_path / "p.toml"
    path.write_text("[online]\ntype = 'frobnicator'\n")
    with pytest.raises(ConfigError, match=r"unknown backend type 'frobnicator'.*lmdb"):
        strataml.open(str(path))


def test_backend_that_cannot_serve_a_role(tmp_path: Path):
    path = tmp_path / "p.toml"
    path.write_text(f"[online]\ntype = 'sqlite'\npath = '{tmp_path}/x'\n")
    with pytest.raises(ConfigError, match=r"cannot serve \[online\].*ingest"):
        strataml.open(str(path))


def test_invalid_adapter_settings_never_echo_values(tmp_path: Path):
    path = tmp_path / "p.toml"
    path.write_text(
        f"[online]\ntype = 'lmdb'\npath = '{tmp_path}/x'\nmap_size_mb = -1\npassword = 'hunter2'\n"
    )
    with pytest.raises(ConfigError) as info:
        strataml.open(str(path))
    assert "map_size_mb" in str(info.value)
    assert "hunter2" not in str(info.value)


def test_required_capabilities_are_checked_at_open(tmp_path: Path):
    path = tmp_path / "p.toml"
    path.write_text(f"[vectors]\ntype = 'lancedb'\npath = '{tmp_path}/v'\nrequire = ['ttl']\n")
    with pytest.raises(CapabilityError, match="lacks required capabilities: ttl"):
        strataml.open(str(path))
    path.write_text(f"[vectors]\ntype = 'lancedb'\npath = '{tmp_path}/v'\nrequire = ['warp']\n")
    with pytest.raises(CapabilityError, match="unknown capability 'warp'"):
        strataml.open(str(path))


def test_capability_supports():
    caps = Capabilities(ttl=True, metrics=frozenset({"cosine"}))
    assert caps.supports("ttl")
    assert not caps.supports("aliases")
    assert caps.supports("$in")
    assert caps.supports("metric:cosine")
    assert not caps.supports("metric:l2")


def test_registry_lists_local_backends():
    assert {"sqlite", "duckdb", "lmdb", "lancedb"} <= set(available())
    assert get_adapter("lmdb").capabilities["online"].ttl


def test_stack_is_lazy_and_closable(tmp_path: Path):
    stack = strataml.open("local", data_dir=tmp_path)
    assert stack.backends() == {
        "ingest": "sqlite",
        "features": "duckdb",
        "online": "lmdb",
        "vectors": "lancedb",
        "training": "duckdb",
    }
    assert not any(tmp_path.iterdir())  # nothing connected yet
    assert stack.capabilities("online").ttl
    with stack:
        assert "local" in repr(stack)
    stack.close()  # idempotent
    with pytest.raises(ConfigError, match="closed"):
        _ = stack.online


def test_stack_without_a_role(tmp_path: Path):
    path = tmp_path / "p.toml"
    path.write_text(f"[online]\ntype = 'lmdb'\npath = '{tmp_path}/o'\n")
    with strataml.open(str(path)) as stack, pytest.raises(ConfigError, match="no \\[vectors\\]"):
        _ = stack.vectors


def test_redact_masks_secrets():
    from pydantic import SecretStr

    assert redact("postgresql://u:pw@h:5432/db") == "postgresql://u:****@h:5432/db"
    assert redact({"password": "x", "url": "redis://:s3cr3t@h/0"}) == {
        "password": "**********",
        "url": "redis://:****@h/0",
    }
    assert redact(SecretStr("x")) == "**********"
