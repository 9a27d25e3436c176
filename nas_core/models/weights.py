"""Load a user's own checkpoint into a baseline network: all of it or nothing, and never code from the file.

No pretrained weights ship with nasforge (none can be downloaded here); a user brings a `torch.save` file of a
state_dict, or of a dict holding it under "model" or "state_dict" (as training scripts write them).
"""
from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

_WRAPPER_KEYS = ("model", "state_dict")
_SHOWN = 5  # keys listed per kind of difference; the count says how many more


def _state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path}: no such file")
    try:
        # weights_only: a checkpoint is data; a file that needs arbitrary unpickling is refused, not executed.
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as e:
        raise ValueError(f"checkpoint {path}: not a tensor checkpoint torch.load(weights_only=True) can read "
                         f"({str(e).splitlines()[0] if str(e) else type(e).__name__}); save it with "
                         f"torch.save(model.state_dict(), path)") from None
    if isinstance(state, Mapping):
        for key in _WRAPPER_KEYS:
            if isinstance(state.get(key), Mapping):
                state = state[key]
                break
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"checkpoint {path}: expected a state_dict (names -> tensors) or a dict with it under "
                         f"{' or '.join(repr(k) for k in _WRAPPER_KEYS)}, got {type(state).__name__}")
    state = dict(state)
    # DataParallel / DistributedDataParallel save every name under "module."; the network is the same.
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def _listed(items: list[str]) -> str:
    more = f", and {len(items) - _SHOWN} more" if len(items) > _SHOWN else ""
    return ", ".join(items[:_SHOWN]) + more


def load_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """Load the checkpoint at `path` into `model` and return it. Every name and shape must match; otherwise a
    ValueError names the file and the first missing, unexpected and mismatched keys, and the model is untouched."""
    path = Path(path)
    state = _state_dict(path)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [f"{k} {tuple(state[k].shape)} in the file, {tuple(own[k].shape)} in the model"
                  for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or mismatched:
        parts = [f"{label} ({len(keys)}): {_listed(keys)}" for label, keys in
                 (("missing", missing), ("unexpected", unexpected), ("shape mismatch", mismatched)) if keys]
        raise ValueError(f"checkpoint {path} does not fit {type(model).__name__}; nothing was loaded.\n  "
                         + "\n  ".join(parts) + "\nBuild the model with the arguments the checkpoint was trained with.")
    # Checked above, so load_state_dict cannot fail half-way through the copy.
    model.load_state_dict(state, strict=True)
    return model
