"""Run the BigQuery emulator (PyPI ``bqemulator``: REST + gRPC over DuckDB and sqlglot) here.

The emulator needs ``duckdb==1.5.5`` while strataml needs ``duckdb>=2``, so it never shares an
environment with strataml: it runs as a subprocess from **its own virtualenv**.

* ``STRATAML_BQEMULATOR`` -- the path of a ``bqemulator`` script in a virtualenv you built; used
  as is.
* Otherwise :func:`ensure_emulator_venv` builds one (once) under
  ``$STRATAML_BQEMULATOR_VENV`` or ``$XDG_CACHE_HOME/strataml/bqemulator-venv`` (default
  ``~/.cache/strataml/bqemulator-venv``): ``python -m venv`` + ``pip install`` of
  :data:`REQUIREMENTS` (needs PyPI). A stamp file records the pins, so a changed pin rebuilds it.

Either way the DuckDB ``spatial`` extension of the PyPI package ``duckdb-extension-spatial`` is
copied to ``$HOME/.duckdb/extensions/v1.5.5/<platform>/``, where DuckDB looks for it (the
emulator would otherwise try to download it). :func:`start` runs the emulator on 127.0.0.1 and
free ports, waits until its REST API answers and logs to ``<data_dir>/bqemulator/``;
:func:`strataml.dev.servers.stop` stops it. Tests and ``strataml dev up`` both use it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from strataml.dev.servers import ServerHandle, free_port, stop
from strataml.errors import Unavailable

__all__ = [
    "DEFAULT_PROJECT",
    "DUCKDB_VERSION",
    "EMULATOR_ENV",
    "REQUIREMENTS",
    "VENV_ENV",
    "default_venv_dir",
    "emulator_executable",
    "ensure_emulator_venv",
    "install_spatial_extension",
    "start",
]

#: The environment variable naming a ready ``bqemulator`` script (skips building a venv).
EMULATOR_ENV = "STRATAML_BQEMULATOR"
#: The environment variable overriding where the emulator's venv is built.
VENV_ENV = "STRATAML_BQEMULATOR_VENV"
#: The DuckDB the emulator is built against (its extensions are versioned with it).
DUCKDB_VERSION = "1.5.5"
#: What the emulator's venv holds (exact pins: the emulator is a test dependency).
REQUIREMENTS = (
    "bqemulator==1.4.0",
    f"duckdb=={DUCKDB_VERSION}",
    f"duckdb-extension-spatial=={DUCKDB_VERSION}",
    "numpy",
)
#: The project the emulator serves when a request names none.
DEFAULT_PROJECT = "strataml"

_STAMP = ".strataml-bqemulator.json"


def default_venv_dir() -> Path:
    """Where :func:`ensure_emulator_venv` builds the venv (see the module docstring)."""
    if os.environ.get(VENV_ENV):
        return Path(os.environ[VENV_ENV]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "strataml" / "bqemulator-venv"


def _bin(venv: Path, name: str) -> Path:
    return venv / ("Scripts" if os.name == "nt" else "bin") / name


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive file lock (concurrent test sessions build the venv once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _run(cmd: list[str], what: str, timeout: float) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise Unavailable(f"{what} failed: {exc}") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise Unavailable(f"{what} failed (exit {done.returncode}):\n{tail}")
    return done.stdout


def ensure_emulator_venv(
    venv: str | Path | None = None, *, python: str | None = None, timeout: float = 900
) -> Path:
    """Build the emulator's virtualenv if it is missing or stale; return its ``bqemulator``.

    ``python`` is the interpreter to build it with (default: this one). Needs PyPI. Errors:
    :class:`Unavailable` naming the failed step (e.g. no network to PyPI). Nox sessions and
    the test fixtures call this same function.
    """
    target = Path(venv).expanduser() if venv is not None else default_venv_dir()
    script = _bin(target, "bqemulator")
    stamp = target / _STAMP
    wanted = {"requirements": list(REQUIREMENTS)}
    with _locked(target.parent / f".{target.name}.lock"):
        if script.exists() and stamp.exists():
            try:
                if json.loads(stamp.read_text()) == wanted:
                    install_spatial_extension(_bin(target, "python"))
                    return script
            except ValueError:
                pass
        if target.exists():
            shutil.rmtree(target)
        try:
            _run(
                [python or sys.executable, "-m", "venv", str(target)],
                "creating the bqemulator virtualenv",
                timeout,
            )
            _run(
                [
                    str(_bin(target, "python")),
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    *REQUIREMENTS,
                ],
                f"pip install {' '.join(REQUIREMENTS)} (the BigQuery emulator needs PyPI)",
                timeout,
            )
            install_spatial_extension(_bin(target, "python"))
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise
        stamp.write_text(json.dumps(wanted))
    return script


def _platform() -> str:
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        machine, machine
    )
    system = {"darwin": "osx"}.get(
        sys.platform, "linux" if sys.platform.startswith("linux") else sys.platform
    )
    return f"{system}_{arch}"


def install_spatial_extension(python: str | Path) -> Path:
    """Copy the ``spatial`` extension shipped by ``duckdb-extension-spatial`` (installed in the
    emulator's venv, whose interpreter is ``python``) to where DuckDB looks for it; return
    the installed path. Idempotent."""
    out = _run(
        [
            str(python),
            "-c",
            "import duckdb_extension_spatial as m, os; print(os.path.dirname(m.__file__))",
        ],
        "locating the duckdb-extension-spatial package",
        120,
    )
    source = Path(out.strip()) / "extensions" / f"v{DUCKDB_VERSION}" / "spatial.duckdb_extension"
    if not source.is_file():
        raise Unavailable(f"duckdb-extension-spatial has no {source.name} at {source.parent}")
    dest_dir = Path.home() / ".duckdb" / "extensions" / f"v{DUCKDB_VERSION}" / _platform()
    dest = dest_dir / source.name
    if not dest.exists() or dest.stat().st_size != source.stat().st_size:
        dest_dir.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(".tmp")
        shutil.copyfile(source, tmp)
        tmp.replace(dest)
    return dest


def emulator_executable() -> Path:
    """``$STRATAML_BQEMULATOR`` (its spatial extension installed) or the built venv's script."""
    configured = os.environ.get(EMULATOR_ENV)
    if configured:
        script = Path(configured).expanduser()
        if not script.is_file():
            raise Unavailable(f"{EMULATOR_ENV}={configured} is not a file")
        install_spatial_extension(script.parent / "python")
        return script
    return ensure_emulator_venv()


def _wait_ready(url: str, project: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    probe = f"{url}/bigquery/v2/projects/{project}/datasets"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            with urllib.request.urlopen(probe, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:]) if log.exists() else ""
    raise Unavailable(f"the BigQuery emulator did not answer at {url} within 60 s\n{tail}")


def start(
    data_dir: str | Path,
    *,
    port: int | None = None,
    grpc_port: int | None = None,
    project: str = DEFAULT_PROJECT,
    persistent: bool = True,
    time_travel: bool = True,
) -> ServerHandle:
    """Start the emulator on 127.0.0.1 (REST on ``port``, gRPC -- the Storage Read/Write APIs --
    on ``grpc_port``; free ports by default) serving ``project``.

    ``persistent`` keeps its DuckDB database in ``<data_dir>/bqemulator`` (``strataml dev
    up``); tests run it in memory. ``time_travel=False`` keeps no table snapshots (the emulator
    otherwise copies a table after every change, which slows long test sessions). The
    handle's ``url`` is the REST endpoint (``api_endpoint``), ``extra_ports[0]`` the gRPC port
    (``storage_api_endpoint = "grpc://127.0.0.1:<port>"``). Errors: :class:`Unavailable`.
    """
    script = emulator_executable()
    workdir = Path(data_dir).expanduser().resolve() / "bqemulator"
    workdir.mkdir(parents=True, exist_ok=True)
    uploads = workdir / "uploads"
    uploads.mkdir(exist_ok=True)
    log = workdir / "bqemulator.log"
    port = port or free_port()
    grpc_port = grpc_port or free_port()
    while grpc_port == port:
        grpc_port = free_port()
    cmd = [
        str(script),
        "start",
        "--rest-host",
        "127.0.0.1",
        "--rest-port",
        str(port),
        "--grpc-host",
        "127.0.0.1",
        "--grpc-port",
        str(grpc_port),
        "--project",
        project,
        "--log-level",
        "warning",
    ]
    cmd += ["--persistent", "--data-dir", str(workdir / "data")] if persistent else ["--ephemeral"]
    env = {
        **os.environ,
        "BQEMU_ENABLE_FORMAT_EXTENSIONS": "false",  # Avro needs a download: off
        "BQEMU_UPLOAD_STAGING_DIR": str(uploads),
    }
    if not time_travel:  # snapshots expire at once; the GC drops them every minute
        env["BQEMU_TIME_TRAVEL_RETENTION_DAYS"] = "0"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            env=env,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    handle = ServerHandle(
        kind="bigquery",
        url=url,
        port=port,
        pid=proc.pid,
        data_dir=str(workdir),
        log=str(log),
        extra_ports=[grpc_port],
    )
    try:
        _wait_ready(url, project, proc, log)
    except BaseException:
        stop(handle)
        raise
    return handle
