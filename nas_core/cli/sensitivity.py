"""`nasforge sensitivity`: which block of a trained hand-designed network to search first (nas_core.sensitivity)."""
from __future__ import annotations

from pathlib import Path

import typer


def sensitivity_cmd(
    checkpoint: Path = typer.Argument(None, help="With --config: the trained network's weights (a torch.save of "
                                      "its state_dict); default: the experiment's space.init_from."),
    config: Path = typer.Option(None, "--config", help="The experiment of the partial search you plan (space.macro "
                                "plain-unet or resnext-unet): its space builds the network, its data gives the tiles. "
                                "Without it, --run-dir names a finished hand-designed baseline run to measure."),
    run_dir: Path = typer.Option(None, "--run-dir", help="Write RUN/sensitivity.json and a `sensitivity` event to the "
                                 "run's event log. Alone (no --config): the run is also what is measured, a finished "
                                 "baseline run with run.network in its config.yaml and checkpoints/retrain.pt."),
    out: Path = typer.Option(None, "--out", help="Without --run-dir: the JSON file to write "
                             "(default sensitivity.json)."),
    steps: int = typer.Option(20, "--steps", min=0, help="Fine-tune steps of every variant (the reference too)."),
    candidates: int = typer.Option(3, "--candidates", min=1, help="Random replacement cells tried per block."),
    lr: float = typer.Option(0.05, "--lr", min=0.0, help="SGD learning rate of the fine-tunes."),
    nodes: int = typer.Option(2, "--nodes", min=1, help="Intermediate nodes of a replacement cell (fewer when they "
                              "do not divide the block's channels)."),
    seed: int = typer.Option(None, "--seed", help="Seed of the fine-tunes and cells (default: the experiment's)."),
    device: str = typer.Option(None, "--device", help="cpu, cuda or cuda:N (default: cuda if available)."),
) -> None:
    """Rank the named blocks of a trained PlainUNet or ResNeXtUNet by the room they leave: per block the IoU drop
    when it is ablated, the gain of a few random cells in its place, its gradient importance (docs/search.md,
    "Where to search first"). Two forms: `--run-dir RUN` (a finished hand-designed baseline run) or
    `[CHECKPOINT] --config EXPERIMENT [--run-dir RUN | --out FILE]`."""
    from nas_core.rundir import RunDirBusy
    from nas_core.sensitivity import SensitivityError
    from nas_core.sensitivity.report import sensitivity_report

    if run_dir is not None and out is not None:
        typer.echo("error: --out and --run-dir both name the output; a run directory keeps RUN/sensitivity.json",
                   err=True)
        raise typer.Exit(2)
    try:
        result, path = sensitivity_report(config, checkpoint, run_dir=run_dir, out=out, steps=steps,
                                          candidates=candidates, lr=lr, nodes=nodes, seed=seed, device=device,
                                          progress=typer.echo)
    except (SensitivityError, RunDirBusy) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2)
    typer.echo("rank  block         score   gain     drop     importance")
    for b in result["blocks"]:
        typer.echo(f"{b['rank']:>4}  {b['name']:<12}  {b['score']:.3f}  {b['gain']:+.4f}  {b['drop']:+.4f}  "
                   f"{b['taylor_share']:.3f}")
    typer.echo(f"search first: {result['first']} (space.search_blocks: [{result['first']}]); written to {path}")


def register(app: typer.Typer) -> None:
    app.command("sensitivity")(sensitivity_cmd)
