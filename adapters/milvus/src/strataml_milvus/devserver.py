"""Start Milvus Lite (the C++ engine of the ``milvus-lite`` package) as a local server.

``start(data_dir)`` runs the package's ``milvus`` binary on ``127.0.0.1`` and a free port with
its database file in ``data_dir`` and its log beside it, waits until it answers gRPC, and
returns a :class:`~strataml.dev.servers.ServerHandle` whose ``url`` is ``http://127.0.0.1:PORT``;
:func:`strataml.dev.servers.stop` stops it by PID. The tests, ``strataml dev up`` and stores
configured with a database-file ``uri`` use it.

The binary is located without importing ``milvus_lite`` (whose ``__init__`` needs
``pkg_resources``, gone from setuptools >= 81). Milvus Lite serves one process's clients on one
database file at a time.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import socket
import subprocess
import time
from pathlib import Path

from strataml.dev.servers import ServerHandle, free_port, stop
from strataml.errors import ConfigError, Unavailable

__all__ = ["DB_FILE", "lite_binary", "start", "stop"]

DB_FILE = "milvus.db"
_DB_NAME = re.compile(r"^[A-Za-z0-9.\-_]{1,36}$")


def lite_binary() -> Path:
    """The ``milvus`` executable shipped in the ``milvus-lite`` wheel."""
    spec = importlib.util.find_spec("milvus_lite")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "a local Milvus (Milvus Lite) needs the milvus-lite package: "
            "pip install 'strataml-milvus[lite]'"
        )
    binary = Path(next(iter(spec.submodule_search_locations))) / "lib" / "milvus"
    if not binary.exists():
        raise ConfigError(f"the milvus-lite package has no server binary at {binary}")
    return binary


def _answers(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def start(
    data_dir: str | Path,
    *,
    port: int | None = None,
    db_file: str = DB_FILE,
    timeout_s: float = 30.0,
) -> ServerHandle:
    """Start Milvus Lite on ``127.0.0.1:port`` (a free port by default) over
    ``data_dir/db_file``. Raises :class:`Unavailable` if it does not come up."""
    if not _DB_NAME.match(db_file):
        raise ConfigError(
            f"Milvus Lite database file names use letters, digits, '.', '-', '_' and are at most "
            f"36 characters, got {db_file!r}"
        )
    binary = lite_binary()
    workdir = Path(data_dir).expanduser().resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log = workdir / f"{db_file}.log"
    lib = str(binary.parent)
    env = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "DYLD_LIBRARY_PATH")}
    prior = os.environ.get("LD_LIBRARY_PATH")
    env["LD_LIBRARY_PATH"] = lib if not prior else f"{lib}:{prior}"
    env["DYLD_LIBRARY_PATH"] = env["LD_LIBRARY_PATH"]
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [str(binary), str(workdir / db_file), f"127.0.0.1:{port}", "ERROR"],
            cwd=str(workdir),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    handle = ServerHandle(
        kind="milvus-lite",
        url=f"http://127.0.0.1:{port}",
        port=port,
        pid=proc.pid,
        data_dir=str(workdir),
        log=str(log),
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        code = proc.poll()
        if code is not None:
            raise Unavailable(
                f"Milvus Lite exited with status {code} on start (is {db_file} in use by another "
                f"process?); log: {log}\n{_tail(log)}"
            )
        if _answers("127.0.0.1", port):
            return handle
        time.sleep(0.05)
    stop(handle)
    raise Unavailable(f"Milvus Lite did not listen on 127.0.0.1:{port} in {timeout_s:.0f} s")


def _tail(log: Path, lines: int = 20) -> str:
    if not log.exists():
        return ""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
