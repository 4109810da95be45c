"""Stack profiles: which backend serves each stage, and how to reach it.

A profile is a TOML file with one table per role (``ingest``, ``features``, ``online``,
``vectors``, ``training``). Each table has a ``type`` naming the adapter, that adapter's own
settings (validated by its pydantic model) and optionally ``require``, the capabilities the
application needs (checked when the profile loads)::

    description = "Embedded, no server"
    data_dir = "./.strataml"

    [online]
    type = "lmdb"
    path = "{data_dir}/online.lmdb"
    require = ["ttl"]

Built-in profiles: ``local`` (default), ``lean``, ``growth``, ``growth-aws``, ``enterprise``.
Strings may use ``{data_dir}`` and ``${ENV_VAR}`` / ``${ENV_VAR:-default}``.

Environment overrides (pydantic-settings, prefix ``STRATAML_``, nested with ``__``):
``STRATAML_PROFILE``, ``STRATAML_DATA_DIR``, and any adapter setting, e.g.
``STRATAML_ONLINE__URL=redis://127.0.0.1:6380/0`` or ``STRATAML_VECTORS__TYPE=lancedb``.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from strataml.errors import ConfigError

__all__ = [
    "ROLES",
    "AdapterConfig",
    "Settings",
    "StackProfile",
    "builtin_profiles",
    "load_profile",
]

ROLES: tuple[str, ...] = ("ingest", "features", "online", "vectors", "training")


class AdapterConfig(BaseModel):
    """Base of every adapter's settings. Subclasses add their fields (secrets as ``SecretStr``)
    and narrow ``type`` to a ``Literal``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    require: list[str] = Field(default_factory=list)


class Settings(BaseSettings):
    """Environment overrides, read from ``STRATAML_*`` variables."""

    model_config = SettingsConfigDict(
        env_prefix="STRATAML_", env_nested_delimiter="__", extra="ignore"
    )

    profile: str = "local"
    data_dir: Path | None = None
    drift: dict[str, Any] = Field(default_factory=dict)
    ingest: dict[str, Any] = Field(default_factory=dict)
    features: dict[str, Any] = Field(default_factory=dict)
    online: dict[str, Any] = Field(default_factory=dict)
    vectors: dict[str, Any] = Field(default_factory=dict)
    training: dict[str, Any] = Field(default_factory=dict)


class StackProfile(BaseModel):
    """A resolved profile: a raw settings table per role (validated later by each adapter)."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str = ""
    data_dir: Path
    source: str
    roles: dict[str, dict[str, Any]]
    #: the ``[drift]`` table (validated as :class:`strataml.features.drift.DriftConfig`)
    drift: dict[str, Any] = Field(default_factory=dict)

    def adapter_type(self, role: str) -> str | None:
        section = self.roles.get(role)
        return None if section is None else str(section.get("type"))


def builtin_profiles() -> dict[str, str]:
    """Name -> description of the profiles shipped with strataml."""
    out: dict[str, str] = {}
    for entry in resources.files("strataml.profiles").iterdir():
        if entry.name.endswith(".toml"):
            data = tomllib.loads(entry.read_text())
            out[entry.name[:-5]] = str(data.get("description", ""))
    return dict(sorted(out.items()))


_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _interpolate(value: Any, data_dir: Path, where: str) -> Any:
    if isinstance(value, str):

        def env(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            raise ConfigError(f"{where}: environment variable {name} is not set")

        return _ENV_RE.sub(env, value).replace("{data_dir}", str(data_dir))
    if isinstance(value, list):
        return [_interpolate(v, data_dir, where) for v in value]
    if isinstance(value, dict):
        return {k: _interpolate(v, data_dir, f"{where}.{k}") for k, v in value.items()}
    return value


def _read_profile(name_or_path: str) -> tuple[str, dict[str, Any], str]:
    path = Path(name_or_path)
    if name_or_path.endswith(".toml") or path.exists():
        if not path.is_file():
            raise ConfigError(f"profile file {name_or_path!r} does not exist")
        try:
            return path.stem, tomllib.loads(path.read_text()), str(path.resolve())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"profile file {name_or_path!r} is not valid TOML: {exc}") from exc
    entry = resources.files("strataml.profiles").joinpath(f"{name_or_path}.toml")
    if not entry.is_file():
        known = ", ".join(builtin_profiles())
        raise ConfigError(
            f"unknown profile {name_or_path!r}; built-in profiles: {known} "
            "(or pass the path of a .toml file)"
        )
    return name_or_path, tomllib.loads(entry.read_text()), f"builtin:{name_or_path}"


def load_profile(
    name_or_path: str | None = None,
    *,
    data_dir: str | Path | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    settings: Settings | None = None,
) -> StackProfile:
    """Resolve a profile: file or built-in, then environment, then explicit ``overrides``."""
    try:
        settings = settings or Settings()
    except ValidationError as exc:
        raise ConfigError(f"invalid STRATAML_* environment variables: {exc}") from exc
    name, raw, source = _read_profile(name_or_path or settings.profile)
    unknown = set(raw) - {"description", "data_dir", "drift", *ROLES}
    if unknown:
        raise ConfigError(
            f"profile {name!r}: unknown top-level keys {sorted(unknown)}; "
            f"expected description, data_dir, drift and the roles {', '.join(ROLES)}"
        )
    drift = raw.get("drift", {})
    if not isinstance(drift, dict):
        raise ConfigError(f"profile {name!r}: [drift] must be a table")
    drift = {**drift, **settings.drift}
    if drift:
        from strataml.features.drift import DriftConfig

        try:
            DriftConfig.model_validate(drift)
        except ValidationError as exc:
            raise ConfigError(f"profile {name!r}: invalid [drift] table: {exc}") from exc
    base_dir = Path(data_dir or settings.data_dir or raw.get("data_dir", "./.strataml"))
    base_dir = base_dir.expanduser()
    roles: dict[str, dict[str, Any]] = {}
    for role in ROLES:
        section = raw.get(role)
        env_over = getattr(settings, role)
        explicit = dict((overrides or {}).get(role, {}))
        if section is None and not env_over and not explicit:
            continue
        if section is not None and not isinstance(section, dict):
            raise ConfigError(f"profile {name!r}: [{role}] must be a table")
        merged = {**(section or {}), **env_over, **explicit}
        if "type" not in merged:
            raise ConfigError(f"profile {name!r}: [{role}] has no `type` (the backend to use)")
        roles[role] = _interpolate(merged, base_dir, f"{name}.{role}")
    return StackProfile(
        name=name,
        description=str(raw.get("description", "")),
        data_dir=base_dir,
        source=source,
        roles=roles,
        drift=drift,
    )


def redact(value: Any) -> Any:
    """A copy of a settings value safe to print: secrets and URL passwords masked."""
    if isinstance(value, SecretStr):
        return "**********"
    if isinstance(value, str):
        return re.sub(r"(://[^:/@]*:)[^@/]+@", r"\1****@", value)
    if isinstance(value, dict):
        return {
            k: "**********" if re.search(r"pass|secret|token|key$", k, re.I) else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value
