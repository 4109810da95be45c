"""``strataml dev up|down``: run the servers a profile needs on this machine.

State (what runs where) is kept in ``<data_dir>/dev/servers.json`` so ``down`` can stop it,
and so ``up`` is idempotent (servers that still run are reused).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
from collections.abc import Callable
from pathlib import Path

from strataml.config import load_profile
from strataml.dev.servers import ServerHandle, stop
from strataml.errors import AdapterNotInstalled, ConfigError

__all__ = ["ENV_FOR", "down", "status", "up"]

#: backend type -> the dev server kind that serves it
SERVER_FOR = {
    "postgres": "postgres",
    "pgvector": "postgres",
    "redis": "redis",
    "redis-cluster": "redis-cluster",
    "dynamodb": "dynamodb",
    "snowflake": "snowflake",
    "bigquery": "bigquery",
}

#: server kind -> the environment variable the built-in profiles read its URL from
ENV_FOR = {
    "postgres": "STRATAML_PG_URL",
    "redis": "STRATAML_REDIS_URL",
    "redis-cluster": "STRATAML_REDIS_URL",
    "dynamodb": "STRATAML_DYNAMODB_ENDPOINT",
    "snowflake": "STRATAML_SNOWFLAKE_URL",
    "bigquery": "STRATAML_BQ_ENDPOINT",
}

#: server kind -> ``module:function(data_dir) -> ServerHandle``; emulators live in their
#: adapter distribution (imported only when needed)
STARTERS = {
    "postgres": "strataml.dev.servers:start_postgres",
    "redis": "strataml.dev.servers:start_redis",
    "redis-cluster": "strataml.dev.servers:start_redis_cluster",
    "dynamodb": "strataml_dynamodb.devserver:start",
    "snowflake": "strataml_snowflake.devserver:start",
    "bigquery": "strataml_bigquery.devserver:start",
}


#: kinds whose servers keep their files directly under ``<data_dir>/dev`` (as before)
_CORE = frozenset({"postgres", "redis", "redis-cluster"})


def _starter(kind: str) -> Callable[[Path], ServerHandle]:
    module, _, func = STARTERS[kind].partition(":")
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        package = module.split(".")[0].replace("_", "-")
        raise AdapterNotInstalled(kind, package, "dev up") from exc
    fn: Callable[[Path], ServerHandle] = getattr(mod, func)
    return fn


def _state_file(data_dir: Path) -> Path:
    return data_dir / "dev" / "servers.json"


def _alive(handle: ServerHandle) -> bool:
    try:
        os.kill(handle.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def status(data_dir: str | Path) -> dict[str, ServerHandle]:
    """The servers recorded for ``data_dir`` that are still running."""
    path = _state_file(Path(data_dir))
    if not path.exists():
        return {}
    raw = json.loads(path.read_text())
    handles = {k: ServerHandle.model_validate(v) for k, v in raw.items()}
    return {k: h for k, h in handles.items() if _alive(h)}


def up(profile: str, data_dir: str | Path) -> dict[str, ServerHandle]:
    """Start (or reuse) every server ``profile`` needs; return kind -> handle."""
    base = Path(data_dir).expanduser().resolve()
    resolved = load_profile(profile, data_dir=base)
    kinds = []
    for section in resolved.roles.values():
        kind = SERVER_FOR.get(str(section["type"]))
        if kind and kind not in kinds:
            kinds.append(kind)
    if not kinds:
        raise ConfigError(f"profile {profile!r} needs no server that `strataml dev` can start")
    running = status(base)
    servers = base / "dev"
    for kind in kinds:
        if kind in running:
            continue
        running[kind] = _starter(kind)(servers if kind in _CORE else servers / kind)
    path = _state_file(base)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({k: h.model_dump() for k, h in running.items()}, indent=2))
    return {k: running[k] for k in kinds}


def down(data_dir: str | Path) -> list[str]:
    """Stop every server recorded for ``data_dir``; return their kinds."""
    base = Path(data_dir).expanduser().resolve()
    path = _state_file(base)
    if not path.exists():
        return []
    stopped = []
    for kind, raw in json.loads(path.read_text()).items():
        handle = ServerHandle.model_validate(raw)
        with contextlib.suppress(Exception):
            stop(handle)
        stopped.append(kind)
    path.unlink()
    return stopped
