"""A retrained network as one self-contained file (TorchScript or ONNX) plus its card, checked against PyTorch.

The file holds the whole `Deployed` graph (normalisation, network, softmax) and its card (TorchScript: an extra
file; ONNX: a metadata entry), so `load_model` needs nothing beside it; the card is also written next to it for
people and for tools that do not read either container.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from nas_core.inference.predictor import CARD_KEY, CARD_SUFFIX, InferenceError, load_deployed, load_model
from nas_core.rundir import atomic_path, write_json

FORMATS = {"torchscript": ".pt", "onnx": ".onnx"}
# ONNX opset: supported by the onnxruntime releases of the last years and by torch's TorchScript-based exporter.
OPSET = 17
PARITY_BATCH = 4


def export_model(run_dir: str | Path, fmt: Literal["torchscript", "onnx"], out_dir: str | Path) -> dict:
    """Write <out_dir>/model.pt (TorchScript) or model.onnx and model.card.json (genotype, classes,
    normalisation, tile size, metrics, data licence); returns {"model": Path, "card": Path, "parity": float}, the
    largest absolute difference of its probabilities from the PyTorch network's on a random batch."""
    if fmt not in FORMATS:
        raise InferenceError(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")
    model, card = load_deployed(run_dir)
    out_dir = Path(out_dir)
    path = out_dir / f"model{FORMATS[fmt]}"
    card = {**card, "exported": {"format": fmt, "file": path.name, "torch": torch.__version__}}
    example = torch.rand(PARITY_BATCH, card["in_channels"], card["tile_size"], card["tile_size"],
                         generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        if fmt == "torchscript":
            _torchscript(model, example, path, card)
        else:
            _onnx(model, example, path, card)
        reference = model(example).numpy()
    exported = load_model(path)
    got = exported._forward(example.numpy())
    parity = float(np.abs(got - reference).max())
    card["exported"]["parity_max_abs_diff"] = parity
    card_path = out_dir / f"{path.stem}{CARD_SUFFIX}"
    write_json(card_path, card)
    return {"model": path, "card": card_path, "parity": parity}


def _torchscript(model, example, path: Path, card: dict) -> None:
    # Tracing, not scripting: the discrete network walks its cells in Python (a dict of states, networkx order),
    # which tracing records as the fixed graph it is; its convolutions stay size-generic.
    with warnings.catch_warnings():
        # The macro's check that a size divides by its down-sampling is a constant of the traced tile: fine.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(model, example, check_trace=False)
    with atomic_path(path) as tmp:
        torch.jit.save(traced, str(tmp), _extra_files={CARD_KEY: json.dumps(card)})


def _onnx(model, example, path: Path, card: dict) -> None:
    import onnx

    with atomic_path(path) as tmp:
        # The TorchScript-based exporter (dynamo=False): it needs no onnxscript and handles the traced graph.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            torch.onnx.export(model, (example,), str(tmp), dynamo=False, opset_version=OPSET,
                              input_names=["image"], output_names=["probabilities"],
                              dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"},
                                            "probabilities": {0: "batch", 2: "height", 3: "width"}})
        proto = onnx.load(str(tmp))
        onnx.checker.check_model(proto)
        entry = proto.metadata_props.add()
        entry.key, entry.value = CARD_KEY, json.dumps(card)
        onnx.save(proto, str(tmp))
