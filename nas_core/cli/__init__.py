"""The `nasforge` command line: one typer app, each concern adds its commands from its own module."""
from __future__ import annotations

import typer

app = typer.Typer(help="nasforge: neural architecture search for image segmentation.", no_args_is_help=True)


def _register() -> None:
    # Each module defines `register(app)`; a module that is not written yet is simply absent.
    import importlib

    for name in ("describe", "data", "search", "plan", "inference", "platform", "remote", "sensitivity"):
        try:
            module = importlib.import_module(f"nas_core.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"nas_core.cli.{name}":
                raise
            continue
        module.register(app)


@app.callback()
def _main() -> None:
    """nasforge: neural architecture search for image segmentation."""


@app.command()
def version() -> None:
    """Print the nasforge version."""
    from nas_core import __version__

    typer.echo(__version__)


_register()
