"""`nasforge predict | evaluate | export`: use what a search found (nas_core.inference) on new scenes, on other
data, and outside nasforge."""
from __future__ import annotations

from pathlib import Path

import typer

_MODEL_HELP = "A run directory (its retrained network) or a file written by `nasforge export` (.pt or .onnx)."
_DEVICE_HELP = "cpu, cuda or cuda:N (default: cuda if available)."


def _device(device: str | None) -> str:
    if device:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _scenes(paths: list[Path]) -> list[Path]:
    """The scene files named, a folder standing for the scenes in it."""
    from nas_core.inference.scene import SCENE_SUFFIXES

    out = []
    for p in paths:
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.suffix.lower() in SCENE_SUFFIXES)
            if not found:
                raise FileNotFoundError(f"SCENES {p.resolve()}: a folder with no {', '.join(SCENE_SUFFIXES)} files")
            out += found
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"SCENES {p.resolve()}: no such file or folder")
    return out


def predict_cmd(
    model: Path = typer.Argument(..., help=_MODEL_HELP),
    scenes: list[Path] = typer.Argument(..., help="Scenes (PNG, JPEG, TIFF, GeoTIFF; any size), or folders of them."),
    out: Path = typer.Option(..., "--out", help="Folder for the masks, probabilities and polygons."),
    overlap: int = typer.Option(None, "--overlap", min=0, help="Pixels shared by neighbouring windows (default: a quarter tile)."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Windows per forward pass."),
    device: str = typer.Option(None, "--device", help=_DEVICE_HELP),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Predict whole scenes: sliding windows blended back into a class mask (GeoTIFF with the scene's CRS and
    transform), per-class probabilities, and the objects as GeoJSON polygons with scores."""
    import json

    from nas_core.inference import InferenceError, load_model, predict_scene

    try:
        files = _scenes(scenes)
        predictor = load_model(model, _device(device))
        for scene in files:
            written = predict_scene(predictor, scene, out, overlap=overlap, batch_size=batch_size, progress=not quiet)
            n = len(json.loads(written["polygons"].read_text())["features"])
            typer.echo(f"{scene}: {n} object(s); " + ", ".join(f"{k} {v}" for k, v in written.items()))
    except (InferenceError, FileNotFoundError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2)


def evaluate_cmd(
    model: Path = typer.Argument(..., help=_MODEL_HELP),
    dataset: Path = typer.Argument(..., help="A prepared dataset directory (made by `nasforge data prepare`)."),
    batch_size: int = typer.Option(8, "--batch-size", min=1),
    device: str = typer.Option(None, "--device", help=_DEVICE_HELP),
) -> None:
    """Score a network on another prepared dataset with the normalisation it was trained with; a run directory
    keeps the result in RUN/evaluations/<dataset>.json and its event log (metrics.json stays its own test)."""
    from nas_core.inference import InferenceError, evaluate_dataset, load_model
    from nas_core.rundir import RunDirBusy

    try:
        predictor = load_model(model, _device(device))
        m = evaluate_dataset(predictor, dataset, batch_size=batch_size)
    except InferenceError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2)
    except RunDirBusy as exc:
        typer.echo(f"error: {exc}; evaluate it once the search has ended", err=True)
        raise typer.Exit(2)

    def f(x):
        return "n/a" if x is None else f"{x:.4f}"

    typer.echo(f"{m['dataset']}: {m['tiles']} tiles; mIoU {f(m['miou'])}, mean Dice {f(m['mdice'])}, "
               f"accuracy {f(m['accuracy'])}")
    for c, name in enumerate(m["classes"]):
        typer.echo(f"  {name}: IoU {f(m['iou'][c])}, Dice {f(m['dice'][c])}")
    typer.echo("  AP " + ", ".join(f"@{t} {f(v)}" for t, v in m["ap"].items())
               + (f" ({m['pr_empty_reason']})" if m["pr_empty_reason"] else ""))
    if m.get("file"):
        typer.echo(f"written to {m['file']}")


def export_cmd(
    model: Path = typer.Argument(..., help="A run directory with a retrained network."),
    fmt: str = typer.Option(..., "--format", help="torchscript or onnx."),
    out: Path = typer.Option(None, "--out", help="Folder for the file and its card (default: RUN/exports/FORMAT)."),
) -> None:
    """Export the retrained network as one self-contained file (normalisation and softmax inside) and a JSON card,
    checked against PyTorch on a random batch."""
    from nas_core.inference import InferenceError, export_model
    from nas_core.rundir import RunDir

    try:
        r = export_model(model, fmt, out or RunDir(model).exports / fmt)
    except InferenceError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2)
    typer.echo(f"{r['model']} and {r['card']}")
    typer.echo(f"parity with PyTorch on a random batch: max |difference| of probabilities {r['parity']:.3g}")


def register(app: typer.Typer) -> None:
    app.command("predict")(predict_cmd)
    app.command("evaluate")(evaluate_cmd)
    app.command("export")(export_cmd)
