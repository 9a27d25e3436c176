"""`nasforge remote submit | runs | follow | fetch`: drive a nasforge server from the command line (nas_core.client).

The server is --server or NASFORGE_SERVER; the token NASFORGE_TOKEN or a mode-0600 file (--token-file, default
~/.config/nasforge/token), never an argument.
"""
from __future__ import annotations

from pathlib import Path

import typer

remote_app = typer.Typer(help="Drive a nasforge server: submit an experiment, list runs, follow one, fetch artifacts.",
                         no_args_is_help=True)
_SERVER = typer.Option(None, "--server", help="The server's URL (default: $NASFORGE_SERVER).")
_TOKEN_FILE = typer.Option(None, "--token-file", help="A file holding the API token, mode 0600 "
                           "(default: $NASFORGE_TOKEN, else ~/.config/nasforge/token).")


def _client(server: str | None, token_file: Path | None):
    try:
        import httpx  # noqa: F401  (the one optional dependency of the client)
    except ModuleNotFoundError:
        typer.echo("error: `nasforge remote` needs httpx: pip install 'nasforge[remote]'", err=True)
        raise typer.Exit(2)
    from nas_core.client import Client, ClientError, read_token, server_url

    try:
        return Client(server_url(server), read_token(token_file))
    except ClientError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2)


def _calling(fn):
    """Run `fn()`, turning the client's errors into one line and exit code 1."""
    from nas_core.client import ClientError

    try:
        return fn()
    except ClientError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1)


@remote_app.command("submit")
def submit(experiment: Path = typer.Argument(..., help="Experiment YAML (the schema of nas_core.config)."),
           server: str = _SERVER, token_file: Path = _TOKEN_FILE,
           baselines: bool = typer.Option(True, help="Also launch the random baselines the config asks for."),
           follow_run: bool = typer.Option(False, "--follow", help="Then follow the run until it ends.")) -> None:
    """Create the experiment on the server and launch a run of it; prints the run's id."""
    from nas_core.config import ConfigError

    with _client(server, token_file) as client:
        try:
            launched = _calling(lambda: client.submit(experiment, baselines=baselines))
        except ConfigError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2)
        run = launched["run"]
        extra = f" (baselines {', '.join(str(b['id']) for b in launched['baselines'])})" if launched["baselines"] else ""
        typer.echo(f"run {run['id']} {run['status']}: experiment {run['experiment_id']}{extra}")
        if follow_run:
            raise typer.Exit(_follow(client, run["id"]))


@remote_app.command("runs")
def runs(server: str = _SERVER, token_file: Path = _TOKEN_FILE,
         limit: int = typer.Option(20, min=1, max=500, help="At most this many, newest first."),
         experiment: int = typer.Option(None, "--experiment", help="Only runs of this experiment id.")) -> None:
    """The server's runs: id, status, kind, method, experiment, and the headline IoU with what it measures."""
    with _client(server, token_file) as client:
        rows = _calling(lambda: client.runs(limit, experiment))
    typer.echo(f"{'run':>5}  {'status':<10} {'kind':<9} {'method':<10} {'exp':>5}  headline")
    for r in rows:
        head = r.get("headline") or {}
        value = "" if head.get("value") is None else f"{head['value']:.4f} {head.get('label', '')}"
        typer.echo(f"{r['id']:>5}  {r['status']:<10} {r['kind']:<9} {r['method']:<10} {r['experiment_id']:>5}  {value}")


@remote_app.command("follow")
def follow(run_id: int = typer.Argument(..., min=1), server: str = _SERVER, token_file: Path = _TOKEN_FILE) -> None:
    """Follow a run live (a progress bar per stage from its event stream) until it ends; exit code 0 if it
    succeeded, 1 otherwise."""
    with _client(server, token_file) as client:
        raise typer.Exit(_follow(client, run_id))


def _follow(client, run_id: int) -> int:
    from nas_core.cli.remote_progress import StageBars
    from nas_core.events import StatusState

    with StageBars() as bars:
        end = _calling(lambda: client.follow(run_id, bars.event))
    typer.echo(f"run {run_id} {end['status']} (last event {end['last_seq']})")
    # The platform's run status and the run's own final state share the word for a good end.
    return 0 if end["status"] == StatusState.succeeded else 1


@remote_app.command("fetch")
def fetch(run_id: int = typer.Argument(..., min=1),
          path: str = typer.Argument(..., help="A file of the run directory (e.g. genotype.json) or a folder "
                                               "(e.g. samples); '' fetches everything."),
          out: Path = typer.Option(Path("."), "--out", help="Written here, with their paths in the run directory."),
          server: str = _SERVER, token_file: Path = _TOKEN_FILE) -> None:
    """Download artifacts of a run."""
    with _client(server, token_file) as client:
        written = _calling(lambda: client.fetch(run_id, path, out))
    for p in written:
        typer.echo(str(p))


def register(app: typer.Typer) -> None:
    app.add_typer(remote_app, name="remote")
