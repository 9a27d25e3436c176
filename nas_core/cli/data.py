"""`nasforge data ...`: prepare a dataset from a spec, check a prepared one, write synthetic scenes to a folder."""
from __future__ import annotations

from pathlib import Path

import typer

data_app = typer.Typer(help="Prepare and inspect datasets.", no_args_is_help=True)


@data_app.command("prepare")
def prepare_cmd(
    spec: Path = typer.Argument(..., help="Preparation spec (YAML); examples in examples/data/."),
    force: bool = typer.Option(False, "--force", help="Replace an existing output prepared from something else."),
    output: Path = typer.Option(None, "--output", "-o", help="Write here instead of the spec's `output`."),
    workers: int = typer.Option(None, "--workers", help="Processes cutting scenes in parallel."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Tile scenes and labels into a prepared dataset with a manifest, atomically."""
    from nas_core.data.manifest import load_manifest
    from nas_core.data.prepare import prepare
    from nas_core.data.readers import DataError
    from nas_core.data.spec import load_spec

    try:
        s = load_spec(spec)
        update = {}
        if output is not None:
            update["output"] = str(output.resolve())
        if workers is not None:
            update["workers"] = workers
        if update:
            s = s.model_copy(update=update)
        out = prepare(s, force=force, progress=not quiet)
        c = load_manifest(out)["counts"]
    except DataError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2)
    typer.echo(f"{out}: {c['tiles']} tiles from {c['scenes']} scenes ({c['tiles_with_objects']} with objects)")


@data_app.command("verify")
def verify_cmd(path: Path = typer.Argument(..., help="A prepared dataset directory.")) -> None:
    """Check that a prepared dataset is complete and every file matches its manifest hash."""
    from nas_core.data.manifest import load_manifest
    from nas_core.data.readers import DataError

    from nas_core.data.tilestore import verify_store

    try:
        m = load_manifest(path, verify=True)
        store = verify_store(path, m["tiles"])
    except DataError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2)
    typer.echo(f"{path}: complete, {m['counts']['tiles']} tiles verified; class balance {m['class_balance']}"
               + ("; tile store verified" if store else "; no tile store (`nasforge data pack` writes one)"))


@data_app.command("pack")
def pack_cmd(
    path: Path = typer.Argument(..., help="A prepared dataset directory."),
    workers: int = typer.Option(1, "--workers", min=1, max=64, help="Processes decoding tiles in parallel."),
) -> None:
    """Write (or rewrite) the memory-mapped tile store of a prepared dataset, which the loader then reads."""
    from nas_core.data.manifest import load_manifest
    from nas_core.data.readers import DataError
    from nas_core.data.tilestore import build_store

    try:
        m = load_manifest(path)
        out = build_store(path, m["tiles"], workers)
    except (DataError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2)
    size = sum(f.stat().st_size for f in out.iterdir()) / 2**20
    typer.echo(f"{out}: {len(m['tiles'])} tiles, {size:.1f} MiB")


@data_app.command("synth")
def synth_cmd(
    output: Path = typer.Argument(..., help="Folder to create with images/ and masks/ (PNG)."),
    n: int = typer.Option(16, "--n", min=1, help="Number of scenes."),
    size: int = typer.Option(256, "--size", min=16, help="Scene side in pixels."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Write synthetic helicopter scenes as a folder of images and 0/255 masks (the `folder` source layout)."""
    import numpy as np
    from PIL import Image

    from nas_core.data.synthetic import HelicopterTiles

    ds = HelicopterTiles(n, size, seed)
    (output / "images").mkdir(parents=True, exist_ok=True)
    (output / "masks").mkdir(exist_ok=True)
    for i in range(n):
        img, mask = ds[i]
        name = f"heli_{seed}_{i:05d}.png"
        Image.fromarray((img.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(output / "images" / name)
        Image.fromarray((mask.numpy() * 255).astype(np.uint8)).save(output / "masks" / name)
    typer.echo(f"{output}: {n} scenes of {size}x{size}")


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
