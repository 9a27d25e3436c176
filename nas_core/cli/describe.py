"""`nasforge describe GENOTYPE`: parameter count and the cells as text, for our JSON genotypes and DARTS's
published `Genotype(...)` text."""
from __future__ import annotations

from pathlib import Path

import typer

_INPUT_NAMES = {0: "c_{k-2}", 1: "c_{k-1}"}


def describe_cell(name: str, cell) -> str:
    lines = [f"{name} cell:"]
    for m, node in enumerate(cell.nodes):
        terms = " + ".join(f"{op}({_INPUT_NAMES.get(src, src)})" for op, src in node)
        lines.append(f"  node {m + 2} = {terms}")
    lines.append(f"  output = concat({', '.join(map(str, cell.concat))})")
    return "\n".join(lines)


def _adapt(genotype, macro: str):
    """A DARTS genotype (normal, reduce) in the U-Net: its reduction cell serves as down and as up cell
    (the cells with resampling edges); a U-Net genotype in the classifier: its down cell serves as reduce."""
    from nas_core.space import Genotype

    cells = dict(genotype.cells)
    notes = []
    if macro == "unet" and "reduce" in cells:
        red = cells.pop("reduce")
        for t in ("down", "up"):
            if t not in cells:
                cells[t] = red
                notes.append(f"{t} cell := reduce cell")
    if macro == "darts-classifier":
        if "reduce" not in cells and "down" in cells:
            cells["reduce"] = cells["down"]
            notes.append("reduce cell := down cell")
        cells = {t: c for t, c in cells.items() if t in ("normal", "reduce")}
    return Genotype(cells), notes


def register(app: typer.Typer) -> None:
    @app.command()
    def describe(
        genotype: Path = typer.Argument(..., help="Genotype file: our JSON form or a DARTS Genotype(...) text."),
        macro: str = typer.Option("darts-classifier", help="Macro-architecture: darts-classifier or unet."),
        channels: int = typer.Option(36, help="Initial channels C."),
        layers: int = typer.Option(20, help="Cells in the classification stack."),
        classes: int = typer.Option(10, help="Output classes."),
        depth: int = typer.Option(2, help="U-Net depth."),
        auxiliary: bool = typer.Option(False, "--auxiliary", help="Build the auxiliary head too (classifier)."),
    ) -> None:
        """Print the parameter count (without and with the auxiliary head) and the cells as text."""
        from nas_core.space import SpaceConfig, SpaceError, build_network, count_parameters, load_genotype

        if macro not in ("darts-classifier", "unet"):
            raise typer.BadParameter(f"{macro!r}: use darts-classifier or unet", param_hint="--macro")
        try:
            g = load_genotype(genotype)
            g, notes = _adapt(g, macro)
            space = SpaceConfig(macro=macro, channels=channels, layers=layers, num_classes=classes, depth=depth,
                                cells={t: {"nodes": len(c.nodes)} for t, c in g.cells.items()})
            net = build_network(g, space, auxiliary=auxiliary)
        except (ValueError, SpaceError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        extra = f", {layers} layers" if macro == "darts-classifier" else f", depth {depth}"
        typer.echo(f"genotype {g.hash()}  macro {macro}  C={channels}{extra}, {classes} classes")
        for note in notes:
            typer.echo(f"note: {note}")
        typer.echo(f"parameters: {count_parameters(net):,} (without auxiliary head)")
        if net.auxiliary:
            typer.echo(f"parameters: {count_parameters(net, include_auxiliary=True):,} (with auxiliary head)")
        for t, c in g.cells.items():
            typer.echo(describe_cell(t, c))
