"""Developer and CI sessions.

``nox`` (no arguments) runs the ``ci`` session: lint, type-check and the whole test suite in one
environment. The other sessions run one part each, or the benchmarks and the demo.
"""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.sessions = ["ci", "bigquery"]
nox.options.reuse_existing_virtualenvs = True


ADAPTERS = [
    "adapters/postgres",
    "adapters/redis",
    "adapters/dynamodb",
    "adapters/snowflake",
    "adapters/qdrant",
    "adapters/milvus",
    "adapters/mongodb",
    "adapters/weaviate",
]
#: extras an adapter needs in CI (Milvus Lite: the embedded engine the tests start; mongomock
#: for the MongoDB translation tests -- its contract suite needs STRATAML_TEST_MONGODB_URL)
EXTRAS = {"adapters/milvus": "[lite]", "adapters/mongodb": "[test]"}
#: BigQuery's emulator needs duckdb==1.5.5 (strataml: duckdb>=2): its own session and venvs
BIGQUERY = "adapters/bigquery"
LINT_PATHS = ["src", "tests", "bench", "noxfile.py", *ADAPTERS, BIGQUERY]
TEST_PATHS = ["tests", *(f"{a}/tests" for a in ADAPTERS)]


def _install(session: nox.Session, *extras: str) -> None:
    spec = f".[{','.join(extras)}]" if extras else "."
    args = ["-e", spec]
    for adapter in ADAPTERS:
        args += ["-e", adapter + EXTRAS.get(adapter, "")]
    session.install(*args)


def _fakesnow(session: nox.Session) -> None:
    """The Snowflake emulator (fakesnow) pins its own duckdb and sqlglot: it gets a venv of its
    own, found by the tests through STRATAML_FAKESNOW_PYTHON."""
    venv = Path(session.virtualenv.location).parent / "fakesnow"
    python = venv / "bin" / "python"
    if not python.exists():
        session.run("python", "-m", "venv", str(venv))
    session.run(
        str(python),
        "-m",
        "pip",
        "install",
        "-q",
        "fakesnow[server]>=0.12,<0.13",
        "snowflake-connector-python<5",  # fakesnow 0.12 imports modules that 5.x removed
        external=True,
    )
    session.env["STRATAML_FAKESNOW_PYTHON"] = str(python)


def _lint(session: nox.Session) -> None:
    session.run("ruff", "check", *LINT_PATHS)
    session.run("ruff", "format", "--check", *LINT_PATHS)


def _typecheck(session: nox.Session) -> None:
    session.run("mypy", "src/strataml", *(f"{a}/src" for a in ADAPTERS))


def _tests(session: nox.Session) -> None:
    session.run("pytest", *(session.posargs or TEST_PATHS))


@nox.session
def ci(session: nox.Session) -> None:
    """Everything CI checks: ruff, mypy --strict, then every test: core, the contract suite on
    the local backends, and the adapters against real PostgreSQL + pgvector and Redis servers
    that the tests start themselves."""
    _install(session, "test", "lint")
    _lint(session)
    _typecheck(session)
    _fakesnow(session)
    _tests(session)


@nox.session
def bigquery(session: nox.Session) -> None:
    """The BigQuery adapter against bqemulator. The emulator pins duckdb==1.5.5, which strataml
    (duckdb>=2) cannot share a venv with, so it runs from its own virtualenv, built once next
    to this session's and handed to the tests as STRATAML_BQEMULATOR."""
    session.install("-e", ".[test,lint]", "-e", f"{BIGQUERY}[storage]")
    venv = Path(session.virtualenv.location).parent / "bqemulator"
    out = session.run(
        "python",
        "-c",
        "import sys; from strataml_bigquery.devserver import ensure_emulator_venv; "
        "print(ensure_emulator_venv(sys.argv[1]))",
        str(venv),
        silent=True,
    )
    session.env["STRATAML_BQEMULATOR"] = str(out).strip().splitlines()[-1]
    session.run("mypy", f"{BIGQUERY}/src")
    session.run("pytest", f"{BIGQUERY}/tests", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check + ruff format --check."""
    session.install("ruff>=0.6")
    _lint(session)


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on src/."""
    _install(session, "lint")
    _typecheck(session)


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite (pass pytest arguments after --)."""
    _install(session, "test")
    _fakesnow(session)
    _tests(session)


@nox.session
def demo(session: nox.Session) -> None:
    """strataml demo on the local profile."""
    _install(session)
    session.run("strataml", "demo", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Run every benchmark in bench/ (pass --quick after -- for a short run)."""
    _install(session, "test")
    for script in sorted(Path("bench").glob("bench_*.py")):
        session.run("python", str(script), *session.posargs)
