"""`nasforge plan EXPERIMENT.yaml`: what the experiment's search will cost, measured on a few steps before it is
submitted (nas_core.search.cost)."""
from __future__ import annotations

import json
from pathlib import Path

import typer


def plan_cmd(
    experiment: Path = typer.Argument(..., help="Experiment YAML (the schema of nas_core.config)."),
    device: str = typer.Option(None, "--device", help="cpu, cuda or cuda:N (default: cuda if available)."),
    steps: int = typer.Option(5, "--steps", min=1, max=200, help="Search steps to time (after one warm-up)."),
    threads: int = typer.Option(None, "--threads", min=1, help="torch threads, as the search will use."),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON."),
) -> None:
    """Supernet parameters, activation memory per image, measured step time, and the search's extrapolated wall
    time, memory and largest batch that fits, for a continuous method (DARTS and its variants; a discrete
    search is planned by its trials)."""
    from nas_core.config import CONTINUOUS_METHODS, ConfigError, load_experiment
    from nas_core.data.readers import DataError

    try:
        cfg = load_experiment(experiment)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2)
    if cfg.search.method not in CONTINUOUS_METHODS:
        typer.echo(f"error: {experiment}: search.method {cfg.search.method!r}: `nasforge plan` models the continuous "
                   f"methods ({', '.join(CONTINUOUS_METHODS)}); a discrete search costs trials x "
                   "search.trial_epochs of retraining", err=True)
        raise typer.Exit(2)
    import torch

    from nas_core.search.cost import format_plan, plan_search

    if threads:
        torch.set_num_threads(threads)
    try:
        p = plan_search(cfg, device=device, steps=steps)
    except (DataError, ValueError, RuntimeError) as exc:
        typer.echo(f"error: {experiment}: {exc}", err=True)
        raise typer.Exit(2)
    typer.echo(json.dumps(p.to_dict(), indent=2) if as_json else format_plan(p))


def register(app: typer.Typer) -> None:
    app.command("plan")(plan_cmd)
