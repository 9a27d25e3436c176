"""A trained network ready to predict: from a run directory (its retrained weights and the normalisation it was
trained with) or from an exported file (TorchScript .pt or .onnx, whose card travels inside it).

Every backend has one input contract, so a run directory and its exported file predict the same numbers:
float32 (N, C, H, W) pixels divided by their dtype's maximum (uint8: 255), as the training tiles were; the
per-channel normalisation and the softmax are inside the model (`Deployed`).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from nas_core.rundir import RunDir, read_json

# The name of the card inside an exported file (TorchScript extra file, ONNX metadata key) and beside it.
CARD_KEY = "nasforge_card"
CARD_SUFFIX = ".card.json"


class InferenceError(ValueError):
    """A model or an input that cannot be used; the message names the file and the fix."""


class Deployed(nn.Module):
    """The network as it is used: normalise, run, softmax. Scriptable and exportable as one graph."""

    def __init__(self, network: nn.Module, mean: list[float] | None, std: list[float] | None):
        super().__init__()
        self.network = network
        c = len(mean) if mean is not None else 1
        self.register_buffer("mean", torch.tensor(mean if mean is not None else [0.0] * c).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std if std is not None else [1.0] * c).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.network((x - self.mean) / self.std)
        if isinstance(out, (tuple, list)):  # an auxiliary head: only the main logits are predictions
            out = out[0]
        return out.softmax(1)


class Predictor:
    """Probabilities for batches of tiles, whatever the model file is.

    classes: class names by index (0 the background); tile_size: the side the network was trained on;
    normalisation: {"mean", "std"} applied after dividing by the dtype maximum; card: what is known about the model
    (genotype, metrics, data...); run_dir: the run directory it came from, or None for an exported file.
    """

    def __init__(self, forward: Callable[[np.ndarray], np.ndarray], card: dict[str, Any], device: str = "cpu",
                 module: nn.Module | None = None, run_dir: Path | None = None, source: Path | None = None):
        self._forward = forward
        self.card = card
        self.classes: list[str] = list(card["classes"])
        self.tile_size: int = int(card["tile_size"])
        self.in_channels: int = int(card["in_channels"])
        self.normalisation: dict[str, Any] = dict(card["normalisation"])
        self.iou_thresholds: list[float] = list(card.get("iou_thresholds") or [0.25, 0.5, 0.75])
        self.device = device
        self.module = module
        self.run_dir = run_dir
        self.source = source

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def predict_tiles(self, tiles: np.ndarray) -> np.ndarray:
        """float32 (N, K, H, W) class probabilities of uint8/uint16 (N, H, W, C) tiles (an (H, W, C) tile: N=1)."""
        x = np.asarray(tiles)
        if x.ndim == 3:
            x = x[None]
        if x.ndim != 4 or x.shape[-1] != self.in_channels:
            raise InferenceError(f"predict_tiles: expected tiles of shape (N, H, W, {self.in_channels}), got {x.shape}")
        return self._forward(to_input(x))


def to_input(tiles: np.ndarray) -> np.ndarray:
    """float32 (N, C, H, W) in [0, 1] from (N, H, W, C) integer pixels, as PreparedTiles scales a tile."""
    scale = float(np.iinfo(tiles.dtype).max) if np.issubdtype(tiles.dtype, np.integer) else 1.0
    return np.ascontiguousarray(tiles.transpose(0, 3, 1, 2), dtype=np.float32) / scale


def load_model(path: str | Path, device: str = "cpu") -> Predictor:
    """A Predictor from a run directory (checkpoints/retrain.pt, genotype.json, config.yaml) or an exported file
    (.pt TorchScript, .onnx)."""
    path = Path(path).expanduser().resolve()
    if path.is_dir():
        return _from_run_dir(path, device)
    if not path.exists():
        raise InferenceError(f"MODEL {path}: no such run directory or file; give a run directory with a retrained "
                             "network or a file written by `nasforge export`")
    if path.suffix == ".onnx":
        return _from_onnx(path, device)
    if path.suffix == ".pt":
        return _from_torchscript(path, device)
    raise InferenceError(f"MODEL {path}: not a run directory, .pt (TorchScript) or .onnx file")


# ------------------------------------------------------------------------------------------ run directory


def load_deployed(run_dir: str | Path) -> tuple[Deployed, dict[str, Any]]:
    """The retrained network of a run directory wrapped with its training normalisation, in eval mode, and its
    card. The retrain checkpoint carries what prediction needs (`deployment_facts`); a run retrained before it
    did is read with its config.yaml and training data instead."""
    from nas_core.models.hand_designed import NetworkConfig, build_network as build_hand_designed
    from nas_core.space.config import SpaceConfig
    from nas_core.space.genotypes import load_genotype
    from nas_core.space.network import build_network

    rd = RunDir(run_dir)
    if not rd.retrained.exists():
        raise InferenceError(f"MODEL {rd.root}: no retrained network ({rd.retrained} is missing); run the retrain "
                             "stage first (`nasforge search EXPERIMENT --run-dir RUN --resume`)")
    state = torch.load(rd.retrained, map_location="cpu", weights_only=True)
    # A hand-designed baseline's checkpoint names its network; a searched one is rebuilt from genotype.json.
    hand = state.get("network")
    if hand is None and not rd.genotype.exists():
        raise InferenceError(f"MODEL {rd.root}: no genotype.json; this is not a finished run directory")
    facts = state.get("deployment") or deployment_facts(_run_config(rd))
    space = SpaceConfig.model_validate(facts["space"])
    if hand is not None:
        genotype, net = None, NetworkConfig.model_validate(hand)
        network = build_hand_designed(net, space.in_channels, space.num_classes)
    else:
        genotype, net = load_genotype(rd.genotype), None
        network = build_network(genotype, space, load_init=False)  # a partial search's init_from is in state["model"]
    network.load_state_dict(state["model"])
    model = Deployed(network, facts["normalisation"]["mean"], facts["normalisation"]["std"]).eval()
    card = {
        "format": "nasforge-model/1",
        "run": rd.root.name,
        "experiment": facts["experiment"],
        "genotype": None if genotype is None else genotype.to_dict(),
        **({} if net is None else {"network": {**net.model_dump(mode="json"), "label": net.label}}),
        "space": facts["space"],
        "classes": facts["classes"],
        "tile_size": facts["tile_size"],
        "in_channels": space.in_channels,
        "normalisation": facts["normalisation"],
        "input": "float32 N x C x H x W, pixels divided by their dtype maximum (uint8: 255); "
                 "output: float32 N x K x H x W class probabilities",
        "iou_thresholds": facts["iou_thresholds"],
        "metrics": read_json(rd.metrics),
        "data": facts["data"],
    }
    return model, card


def _run_config(rd: RunDir):
    from nas_core.config import ConfigError, parse_experiment
    from nas_core.rundir import read_config

    if not rd.config.exists():
        raise InferenceError(f"MODEL {rd.root}: its retrain checkpoint predates the facts prediction needs and "
                             f"there is no {rd.config.name} to rebuild them from; retrain it (`nasforge search "
                             "EXPERIMENT --run-dir RUN --stage retrain`)")
    try:
        data, _ = read_config(rd.config)
        return parse_experiment(data, where=str(rd.config))
    except (ConfigError, ValueError) as exc:
        raise InferenceError(f"MODEL {rd.root}: {exc}") from None


def deployment_facts(cfg) -> dict[str, Any]:
    """What a network trained on the experiment must carry to predict on its own: the space it is built in, its
    training normalisation (the training splits' own), tile size, class names, IoU thresholds and where the data
    came from (with its licence when one is found). The retrain stage stores it beside the weights."""
    from nas_core.data.datasets import build_datasets

    view = build_datasets(cfg.data, cfg.seed)["train_w"]
    base = view.base
    facts = {"experiment": cfg.name, "space": cfg.space.model_dump(mode="json"),
             "iou_thresholds": list(cfg.retrain.iou_thresholds),
             "normalisation": {"mean": None if view.mean is None else view.mean.flatten().tolist(),
                               "std": None if view.std is None else view.std.flatten().tolist()}}
    manifest = getattr(base, "manifest", None)
    if manifest is None:  # the built-in generator
        return {**facts, "tile_size": int(cfg.data.tile_size), "classes": ["background", "helicopter"],
                "data": {"source": "synthetic helicopters (nasforge generator)", "licence": "generated, no licence"}}
    names: dict[int, list[str]] = {}
    for name, idx in manifest["classes"].items():
        names.setdefault(int(idx), []).append(name)
    classes = [" / ".join(names.get(i, [f"class {i}"])) for i in range(int(manifest["num_classes"]))]
    return {**facts, "tile_size": int(manifest["spec"]["tile_size"]), "classes": classes,
            "data": {"path": str(base.root), "source": manifest.get("source", {}).get("images"),
                     "licence": dataset_licence(manifest)}}


def dataset_licence(manifest: dict) -> str | None:
    """The attribution a prepared dataset's source carries: the manifest's own `licence`, else the first lines of
    a LICENSE or README file beside the source scenes (a data set ships its terms there)."""
    if manifest.get("licence"):
        return str(manifest["licence"])
    images = (manifest.get("source") or {}).get("images")
    if not images:
        return None
    for folder in (Path(images), Path(images).parent):
        for name in ("LICENSE.txt", "LICENSE", "LICENCE", "LICENSE.md"):
            f = folder / name
            if f.is_file():
                lines = [ln.strip() for ln in f.read_text(errors="replace").splitlines() if ln.strip()]
                return " ".join(lines[:2])[:400] or None
    return None


def _from_run_dir(path: Path, device: str) -> Predictor:
    model, card = load_deployed(path)
    dev = torch.device(device)
    model.to(dev)

    @torch.no_grad()
    def forward(x: np.ndarray) -> np.ndarray:
        return model(torch.from_numpy(x).to(dev)).float().cpu().numpy()

    return Predictor(forward, card, device, module=model, run_dir=path, source=path)


# ------------------------------------------------------------------------------------------ exported files


def _card_beside(path: Path) -> dict | None:
    return read_json(path.with_name(path.stem + CARD_SUFFIX))


def _from_torchscript(path: Path, device: str) -> Predictor:
    extra = {CARD_KEY: ""}
    try:
        module = torch.jit.load(str(path), map_location=device, _extra_files=extra)
    except Exception as exc:  # torch raises RuntimeError subclasses for a file that is not TorchScript
        raise InferenceError(f"MODEL {path}: not a TorchScript file written by `nasforge export` ({exc})") from None
    card = json.loads(extra[CARD_KEY]) if extra[CARD_KEY] else _card_beside(path)
    if not card:
        raise InferenceError(f"MODEL {path}: no model card inside it or beside it ({path.stem}{CARD_SUFFIX}); "
                             "export it again with `nasforge export`")
    module.eval()
    dev = torch.device(device)

    @torch.no_grad()
    def forward(x: np.ndarray) -> np.ndarray:
        return module(torch.from_numpy(x).to(dev)).float().cpu().numpy()

    return Predictor(forward, card, device, source=path)


def _from_onnx(path: Path, device: str) -> Predictor:
    import onnxruntime as ort

    providers = ["CPUExecutionProvider"]
    if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    try:
        session = ort.InferenceSession(str(path), providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types for an invalid model
        raise InferenceError(f"MODEL {path}: not an ONNX model onnxruntime can load ({exc})") from None
    meta = session.get_modelmeta().custom_metadata_map
    card = json.loads(meta[CARD_KEY]) if CARD_KEY in meta else _card_beside(path)
    if not card:
        raise InferenceError(f"MODEL {path}: no model card inside it or beside it; export it again with `nasforge export`")
    name = session.get_inputs()[0].name

    def forward(x: np.ndarray) -> np.ndarray:
        return session.run(None, {name: x})[0].astype(np.float32, copy=False)

    return Predictor(forward, card, device, source=path)
