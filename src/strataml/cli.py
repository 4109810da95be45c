"""The ``strataml`` command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from strataml.errors import StrataError

console = Console()


def _fail(exc: StrataError) -> None:
    console.print(f"[bold red]error:[/] {exc}")
    sys.exit(2)


@click.group()
@click.version_option(package_name="strataml")
def main() -> None:
    """strataml: one data layer for ingest, features, online serving, vectors and training."""


@main.command()
@click.option(
    "--profile",
    "-p",
    default="local",
    show_default=True,
    help="profile name or path to a .toml profile",
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="where the embedded stores keep data (default: a temporary directory)",
)
@click.option("--quick", is_flag=True, help="smaller data, for a fast smoke run")
def demo(profile: str, data_dir: Path | None, quick: bool) -> None:
    """Run all five stages end to end (default: the embedded local profile)."""
    from strataml.demo import run_demo

    try:
        run_demo(profile, data_dir=data_dir, quick=quick, console=console)
    except StrataError as exc:
        _fail(exc)


@main.command()
def profiles() -> None:
    """List the built-in profiles."""
    from strataml.config import builtin_profiles

    table = Table("profile", "description")
    for name, description in builtin_profiles().items():
        table.add_row(name, description)
    console.print(table)


@main.command()
def backends() -> None:
    """List installed backends, the roles they serve and their capabilities."""
    from strataml.capabilities import FEATURE_NAMES
    from strataml.registry import available, get_adapter

    table = Table("backend", "role", "capabilities", "package")
    for name in available():
        try:
            adapter = get_adapter(name)
        except StrataError as exc:
            table.add_row(name, "-", f"[red]{exc}[/]", "-")
            continue
        for role, caps in adapter.capabilities.items():
            flags = ", ".join(sorted(f for f in FEATURE_NAMES if getattr(caps, f)))
            table.add_row(name, role, flags, adapter.package)
    console.print(table)


@main.command()
@click.argument("profile", required=False)
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def info(profile: str | None, as_json: bool) -> None:
    """Show a resolved profile (secrets masked) and each backend's capabilities."""
    from strataml.config import load_profile, redact
    from strataml.registry import get_adapter

    try:
        resolved = load_profile(profile)
        roles = {}
        for role, section in resolved.roles.items():
            entry = {"settings": redact(section)}
            try:
                caps = get_adapter(str(section["type"]), role).capabilities.get(role)
                entry["capabilities"] = caps.model_dump(mode="json") if caps else None
            except StrataError as exc:
                entry["error"] = str(exc)
            roles[role] = entry
    except StrataError as exc:
        _fail(exc)
        return
    doc = {
        "profile": resolved.name,
        "source": resolved.source,
        "data_dir": str(resolved.data_dir),
        "roles": roles,
    }
    if as_json:
        click.echo(json.dumps(doc, indent=2, default=str))
        return
    console.print(f"[bold]{resolved.name}[/] ({resolved.source}) data_dir={resolved.data_dir}")
    for role, entry in roles.items():
        console.print(f"  [cyan]{role}[/]: {entry['settings']}")
        if "error" in entry:
            console.print(f"    [red]{entry['error']}[/]")


@main.command()
@click.argument("stream")
@click.option("--profile", "-p", default=None, help="profile (default: $STRATAML_PROFILE or local)")
@click.option("--table", default=None, help="feature-store table (default: the stream name)")
def sync(stream: str, profile: str | None, table: str | None) -> None:
    """Load new records of an ingest stream into the feature store (exactly once)."""
    import strataml

    try:
        with strataml.open(profile) as stack:
            n = stack.sync(stream, table=table)
    except StrataError as exc:
        _fail(exc)
        return
    console.print(f"synced {n:,} records from {stream!r}")


@main.command()
@click.argument("views", nargs=-1, required=True)
@click.option("--profile", "-p", default=None, help="profile (default: $STRATAML_PROFILE or local)")
@click.option("--incremental", is_flag=True, help="from the last finished run's watermark to --end")
@click.option("--start", type=click.DateTime(), default=None, help="window start (UTC)")
@click.option("--end", type=click.DateTime(), default=None, help="window end (UTC; default now)")
@click.option("--batch-size", type=int, default=10_000, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print the reports as JSON lines")
def materialize(
    views: tuple[str, ...],
    profile: str | None,
    incremental: bool,
    start: object,
    end: object,
    batch_size: int,
    as_json: bool,
) -> None:
    """Materialize feature VIEWS (``name`` or ``name@2``) offline -> online, for schedulers.

    Resumes an interrupted run from its checkpoint; exits 2 on error.
    """
    import datetime as dt

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    import strataml

    def utc(v: object) -> dt.datetime | None:
        return v.replace(tzinfo=dt.UTC) if isinstance(v, dt.datetime) else None

    try:
        with strataml.open(profile) as stack:
            for ref in views:
                with Progress(
                    TextColumn("[bold]{task.description}"),
                    BarColumn(),
                    TextColumn("{task.completed:,} rows"),
                    TimeElapsedColumn(),
                    console=console,
                    disable=as_json,
                ) as bar:
                    task = bar.add_task(ref, total=None)
                    report = stack.materialize(
                        ref,
                        start=utc(start),
                        end=utc(end),
                        incremental=incremental,
                        batch_size=batch_size,
                        progress=lambda n, t=task: bar.advance(t, n),  # type: ignore[misc]
                    )
                if as_json:
                    click.echo(report.model_dump_json())
                else:
                    console.print(
                        f"{report.view}@{report.version} -> {report.online_view}: "
                        f"{report.entities_written:,} entities, {report.mode}"
                        f"{' (resumed)' if report.resumed else ''}, {report.seconds:.2f} s"
                    )
    except StrataError as exc:
        _fail(exc)


@main.command()
@click.argument("view")
@click.option(
    "--baseline",
    required=True,
    help="START:END or START..END (ISO, now, -7d; an empty side is open), or latest-stats",
)
@click.option("--current", required=True, help="START:END, like --baseline")
@click.option("--version", type=int, default=None, help="view version (default: latest)")
@click.option("--profile", "-p", default=None, help="profile (default: $STRATAML_PROFILE or local)")
@click.option("--fail-on", type=click.Choice(["alert", "warn"]), default="alert", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="machine-readable report")
@click.option("--save", is_flag=True, help="store the computed statistics in the offline store")
def drift(
    view: str,
    baseline: str,
    current: str,
    version: int | None,
    profile: str | None,
    fail_on: str,
    as_json: bool,
    save: bool,
) -> None:
    """Compare feature VIEW between two windows (PSI, KS, null rate per feature).

    Exits 0 without drift, 1 when a feature crosses the profile's [drift] thresholds (so a
    scheduler can trigger retraining), 2 on error.
    """
    from strataml.features.drift import run_drift_cli
    from strataml.stack import open_stack

    try:
        stack = open_stack(profile)
    except StrataError as exc:
        _fail(exc)
        return
    with stack:
        code = run_drift_cli(
            stack.features,
            view,
            baseline=baseline,
            current=current,
            version=version,
            config=stack.profile.drift,
            fail_on=fail_on,  # type: ignore[arg-type]
            as_json=as_json,
            save=save,
            echo=click.echo,
            echo_err=lambda m: click.echo(m, err=True),
        )
    sys.exit(code)


@main.command()
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.argument("collection")
@click.option("--profile", "-p", default=None, help="profile (default: $STRATAML_PROFILE or local)")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None)
@click.option("--embedder", type=click.Choice(["lsa", "minilm"]), default="lsa", show_default=True)
@click.option(
    "--lsa-model",
    type=click.Path(path_type=Path),
    default=None,
    help="fitted LSA model (default: <data_dir>/embedders/<collection>.lsa.npz)",
)
@click.option("--lsa-dim", type=click.IntRange(min=2), default=256, show_default=True)
@click.option("--chunk-size", type=int, default=1000, show_default=True)
@click.option("--chunk-overlap", type=int, default=100, show_default=True)
@click.option(
    "--chunk-unit", type=click.Choice(["chars", "tokens"]), default="chars", show_default=True
)
@click.option("--tenant", default=None)
@click.option("--dry-run", is_flag=True, help="report what would change; embed and write nothing")
@click.option("--json", "as_json", is_flag=True)
def refresh(
    source: Path,
    collection: str,
    profile: str | None,
    data_dir: Path | None,
    embedder: str,
    lsa_model: Path | None,
    lsa_dim: int,
    chunk_size: int,
    chunk_overlap: int,
    chunk_unit: str,
    tenant: str | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Refresh COLLECTION from SOURCE (JSONL or a directory of text files): embed only new and
    changed documents, delete removed ones; exits 2 on error."""
    from strataml.vectors.refresh import run_refresh_cli

    sys.exit(
        run_refresh_cli(
            source,
            collection,
            profile=profile,
            data_dir=data_dir,
            embedder=embedder,  # type: ignore[arg-type]
            lsa_model=lsa_model,
            lsa_dim=lsa_dim,
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
            chunk_unit=chunk_unit,  # type: ignore[arg-type]
            tenant=tenant,
            dry_run=dry_run,
            as_json=as_json,
            console=console,
        )
    )


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("profile", required=False, default="local")
@click.argument("pytest_args", nargs=-1, type=click.UNPROCESSED)
def contract(profile: str, pytest_args: tuple[str, ...]) -> None:
    """Run the contract suite against PROFILE's stores (extra args go to pytest).

    The suite creates and removes uniquely named streams, tables, views and collections; run it
    against a disposable environment.
    """
    try:
        import pytest
    except ImportError:
        console.print(
            "[red]the contract suite needs pytest and hypothesis:[/] "
            "pip install 'strataml[testing]'"
        )
        sys.exit(2)
    from strataml.testing import stack_suite

    args = [
        stack_suite.__file__,
        "--strataml-profile",
        profile,
        "-p",
        "no:cacheprovider",
        "-q",
        *pytest_args,
    ]
    sys.exit(pytest.main(args))


@main.group()
def dev() -> None:
    """Run the servers a profile needs on this machine (no Docker)."""


@dev.command("up")
@click.argument("profile", default="lean")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=Path(".strataml"),
    show_default=True,
    help="where server data and state live",
)
def dev_up(profile: str, data_dir: Path) -> None:
    """Start PROFILE's servers on 127.0.0.1 (free ports) and print the variables to export."""
    from strataml.dev import ENV_FOR, up

    try:
        handles = up(profile, data_dir)
    except StrataError as exc:
        _fail(exc)
        return
    for kind, handle in handles.items():
        console.print(
            f"[green]{kind}[/] pid {handle.pid} at {handle.url}  (log: {handle.log})",
            highlight=False,
        )
    console.print("\n# use them in this shell:")
    for kind, handle in handles.items():
        click.echo(f"export {ENV_FOR[kind]}={handle.url}")
    click.echo(f"# then: strataml demo --profile {profile}")


@dev.command("down")
@click.option(
    "--data-dir", type=click.Path(path_type=Path), default=Path(".strataml"), show_default=True
)
def dev_down(data_dir: Path) -> None:
    """Stop the servers started by `strataml dev up`."""
    from strataml.dev import down

    stopped = down(data_dir)
    console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")


@dev.command("status")
@click.option(
    "--data-dir", type=click.Path(path_type=Path), default=Path(".strataml"), show_default=True
)
def dev_status(data_dir: Path) -> None:
    """Show the servers `strataml dev up` started that are still running."""
    from strataml.dev import status

    for kind, handle in status(data_dir).items():
        console.print(f"{kind}: pid {handle.pid} {handle.url}", highlight=False)


if __name__ == "__main__":  # pragma: no cover
    main()
