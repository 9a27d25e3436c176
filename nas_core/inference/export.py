"""A retrained network as one self-contained file (TorchScript or ONNX) plus its card, checked against PyTorch."""
from __future__ import annotations

from pathlib import Path
from typing import Literal


def export_model(run_dir: str | Path, fmt: Literal["torchscript", "onnx"], out_dir: str | Path) -> dict:
    """Write <out_dir>/model.pt (TorchScript) or model.onnx and model.card.json (genotype, classes,
    normalisation, tile size, metrics, data licence); returns {"model": Path, "card": Path, "parity": float}, the
    largest absolute difference of its probabilities from the PyTorch network's on a random batch."""
    raise NotImplementedError
