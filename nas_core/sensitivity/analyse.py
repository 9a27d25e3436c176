"""`sensitivity(model, ...)`: measure every named block of a trained network and rank where to search first.

Every number comes from the same fine-tune (nas_core.sensitivity.finetune) of a variant of the network from a
seed that depends only on the block's position and the variant, so a run on the CPU repeats bit for bit.
"""
from __future__ import annotations

import copy
import random
from typing import Callable

import torch
from torch import nn

from nas_core.sensitivity.ablation import ablated
from nas_core.sensitivity.finetune import SensitivityError, fine_tune, fixed_batches, validation_iou
from nas_core.sensitivity.importance import block_importance
from nas_core.sensitivity.rank import rank_blocks
from nas_core.sensitivity.replacement import ROLES, cell_space, replaced


def named_blocks(model: nn.Module) -> list:
    """The blocks a partial search may replace (every named block but the classifier), or a SensitivityError."""
    if not callable(getattr(model, "blocks", None)):
        raise SensitivityError(f"{type(model).__name__} has no named blocks (no blocks() method): sensitivity measures "
                               "a hand-designed network of nas_core.models (PlainUNet, ResNeXtUNet) or one that "
                               "derives from nas_core.models.blocks.NamedBlocks")
    specs = [s for s in model.blocks() if s.role in ROLES]
    if not specs:
        raise SensitivityError(f"{type(model).__name__}.blocks() lists no block of role {', '.join(ROLES)}")
    return specs


def sensitivity(model: nn.Module, train_loader, val_loader, num_classes: int, *, steps: int = 20,
                candidates: int = 3, lr: float = 0.05, seed: int = 0, nodes: int = 2, device=None,
                progress: Callable[[str], None] | None = None) -> dict:
    """Per named block: the IoU drop when it is ablated, the gain of `candidates` random cells in its place, its
    gradient importance; each variant fine-tuned `steps` SGD steps at `lr`. `model` is not changed.

    Returns {"reference_iou", "tuned_reference_iou", "steps", "candidates", "lr", "seed", "first", "order",
    "blocks": [per block, by rank: name, role, in_channels, out_channels, skip_channels, cell_nodes (the
    replacement cells' nodes, which divide out_channels), ablation, ablated_iou, drop, cell_ious, genotypes, gain,
    taylor, fisher, taylor_share, score, rank]}."""
    if candidates < 1:
        raise SensitivityError("candidates: at least one random replacement cell per block is needed")
    say = progress or (lambda _: None)
    device = torch.device(device or "cpu")
    specs = named_blocks(model)
    base = copy.deepcopy(model).to(device)
    batches = fixed_batches(train_loader, steps)
    reference_iou = validation_iou(base, val_loader, num_classes, device)
    # The reference gets the same fine-tune as every variant, so the fine-tune itself is not counted as gain.
    tuned = validation_iou(fine_tune(copy.deepcopy(base), batches, lr, seed, device), val_loader, num_classes, device)
    say(f"reference: validation IoU {reference_iou:.4f}, {tuned:.4f} after the {steps}-step fine-tune")
    importance = block_importance(base, specs, val_loader, device)
    records = []
    for b, spec in enumerate(specs):
        block_seed = seed + 1000 * (b + 1)
        net, how = ablated(base, spec, block_seed)
        ablated_iou = validation_iou(fine_tune(net, batches, lr, seed, device), val_loader, num_classes, device)
        rng = random.Random(block_seed)
        cfg = cell_space(spec, nodes)
        cell_ious, genotypes = [], []
        for k in range(candidates):
            net, genotype = replaced(base, spec, cfg, rng, block_seed + k + 1)
            net.to(device)
            cell_ious.append(validation_iou(fine_tune(net, batches, lr, seed, device), val_loader, num_classes, device))
            genotypes.append({"nodes": [[list(e) for e in node] for node in genotype.nodes],
                              "concat": list(genotype.concat)})
        rec = {"name": spec.name, "role": spec.role, "in_channels": spec.in_channels,
               "out_channels": spec.out_channels, "skip_channels": spec.skip_channels, "cell_nodes": cfg.nodes,
               "ablation": how, "ablated_iou": ablated_iou,
               "drop": tuned - ablated_iou, "cell_ious": cell_ious, "genotypes": genotypes,
               "gain": max(cell_ious) - tuned, **importance[spec.name]}
        records.append(rec)
        say(f"block {b + 1}/{len(specs)} {spec.name} ({spec.role}): ablated ({how}) IoU {ablated_iou:.4f} "
            f"(drop {rec['drop']:+.4f}), best of {candidates} random cells {max(cell_ious):.4f} "
            f"(gain {rec['gain']:+.4f}), importance share {rec['taylor_share']:.3f}")
    ranked = rank_blocks(records)
    return {"reference_iou": reference_iou, "tuned_reference_iou": tuned, "steps": steps, "candidates": candidates,
            "lr": lr, "seed": seed, "first": ranked[0]["name"], "order": [r["name"] for r in ranked], "blocks": ranked}
