"""A local DynamoDB emulator for tests and ``strataml dev up``: moto's server (PyPI
``moto[server]``) on ``127.0.0.1`` and a free port, started as a subprocess and stopped by PID.

It runs what ``moto_server -H 127.0.0.1 -p PORT`` runs, with one difference: requests are
served one at a time. ``moto_server`` serves them on concurrent threads without locking, so a
conditional write or a transaction there can interleave with another request -- DynamoDB's
atomic conditional writes, which the ingest store's commit protocol relies on, would not hold.
Serialized, every request is atomic, as on DynamoDB (``python -m strataml_dynamodb.devserver
-p PORT`` runs it in the foreground).

::

    from strataml.dev.servers import stop
    from strataml_dynamodb.devserver import start

    handle = start(tmp_dir)            # handle.url == "http://127.0.0.1:<port>"
    ...                                # DynamoDBConfig(endpoint_url=handle.url)
    stop(handle)

moto keeps everything in memory: a restart starts empty. Its log is ``<data_dir>/moto.log``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from strataml.dev.servers import ServerHandle, free_port, stop
from strataml.errors import ConfigError, Unavailable

__all__ = ["KIND", "serve", "start"]

#: ``ServerHandle.kind`` of the emulator (``strataml.dev.servers.stop`` stops it by PID).
KIND = "dynamodb"
_START_TIMEOUT_S = 30.0


def _check_moto() -> None:
    import importlib.util

    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None:
        raise ConfigError(
            "the local DynamoDB emulator needs moto's server: pip install 'moto[server]' "
            "(or 'strataml-dynamodb[dev]')"
        )


def serve(argv: list[str] | None = None) -> None:
    """Run moto's server in the foreground, one request at a time (see the module doc)."""
    parser = argparse.ArgumentParser(description="moto DynamoDB emulator, serialized requests")
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import run_simple

    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, app, threaded=False, request_handler=MotoRequestHandler)


def _answers(url: str) -> bool:
    """Whether an HTTP server answers at ``url`` (any HTTP status counts)."""
    try:
        with urllib.request.urlopen(url, timeout=1.0):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False


def start(data_dir: str | Path, *, port: int | None = None) -> ServerHandle:
    """Start moto's server on ``127.0.0.1:PORT`` (a free port unless ``port`` is given) and wait
    until it answers HTTP; its log goes to ``<data_dir>/moto.log``.

    Errors: :class:`~strataml.errors.ConfigError` if moto is not installed,
    :class:`~strataml.errors.Unavailable` if it does not answer within 30 s (the log's tail is
    in the message).
    """
    _check_moto()
    workdir = Path(data_dir).expanduser().resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "moto.log"
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "strataml_dynamodb.devserver",
                "-H",
                "127.0.0.1",
                "-p",
                str(port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=workdir,
        )
    handle = ServerHandle(
        kind=KIND, url=url, port=port, pid=proc.pid, data_dir=str(workdir), log=str(log)
    )
    deadline = time.monotonic() + _START_TIMEOUT_S
    while not _answers(f"{url}/moto-api/"):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(handle)
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
            raise Unavailable(f"the moto server did not answer on {url} within 30 s:\n{tail}")
        time.sleep(0.1)
    return handle


if __name__ == "__main__":
    serve()
