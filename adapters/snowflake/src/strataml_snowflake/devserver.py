"""Run the Snowflake emulator (``fakesnow`` in server mode) on this machine.

``start(data_dir)`` launches ``python -m fakesnow -s --host 127.0.0.1 -p PORT`` as a subprocess
on a free port, waits until it accepts connections and returns a
:class:`~strataml.dev.servers.ServerHandle`; :func:`strataml.dev.servers.stop` stops it by PID.
The tests and ``strataml dev up`` use it. Connect with ``host="127.0.0.1", port=PORT,
protocol="http", account="fakesnow"`` (any user and password).

fakesnow pins its own ``duckdb`` and ``sqlglot`` versions, so it is best installed in an
environment of its own: the interpreter is ``python=`` if given, else
``$STRATAML_FAKESNOW_PYTHON``, else the current one (when it has ``fakesnow`` installed).
Its data is in memory (gone when it stops); its log and staged files are under
``<data_dir>/fakesnow/``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from strataml.dev.servers import ServerHandle, free_port
from strataml.errors import ConfigError, Unavailable

__all__ = ["ENV_PYTHON", "KIND", "fakesnow_python", "start"]

KIND = "snowflake"
#: The interpreter that has ``fakesnow[server]`` installed.
ENV_PYTHON = "STRATAML_FAKESNOW_PYTHON"


def fakesnow_python(python: str | None = None) -> str:
    """The interpreter to run fakesnow with; :class:`ConfigError` when there is none."""
    if python:
        return python
    if os.environ.get(ENV_PYTHON):
        return os.environ[ENV_PYTHON]
    if importlib.util.find_spec("fakesnow") is not None:
        return sys.executable
    raise ConfigError(
        "the Snowflake emulator needs fakesnow: pip install 'fakesnow[server]' "
        "'snowflake-connector-python<5' (ideally in its own virtualenv, then set "
        f"{ENV_PYTHON} to that environment's python)"
    )


def _answers(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


def start(
    data_dir: str | Path,
    *,
    port: int | None = None,
    python: str | None = None,
    timeout_s: float = 60.0,
) -> ServerHandle:
    """Start fakesnow on ``127.0.0.1:port`` (a free port by default) and wait until it answers.

    Errors: :class:`ConfigError` (fakesnow is not installed), :class:`Unavailable` (it exited
    or did not listen within ``timeout_s``; the message carries the end of its log).
    """
    exe = fakesnow_python(python)
    workdir = Path(data_dir).expanduser().resolve() / "fakesnow"
    tmp = workdir / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    log = workdir / "fakesnow.log"
    port = port or free_port()
    env = {**os.environ, "TMPDIR": str(tmp)}
    with log.open("ab") as out:
        try:
            proc = subprocess.Popen(
                [exe, "-m", "fakesnow", "-s", "--host", "127.0.0.1", "-p", str(port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=str(workdir),
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            raise ConfigError(f"cannot run the fakesnow interpreter {exe!r}: {exc}") from exc
    deadline = time.monotonic() + timeout_s
    while not _answers(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
            raise Unavailable(
                f"fakesnow did not start listening on 127.0.0.1:{port} "
                f"within {timeout_s:.0f} s:\n{tail}"
            )
        time.sleep(0.05)
    return ServerHandle(
        kind=KIND,
        url=f"http://127.0.0.1:{port}",
        port=port,
        pid=proc.pid,
        data_dir=str(workdir),
        log=str(log),
    )
