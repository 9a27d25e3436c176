"""The stages of one run, search -> decode -> retrain -> evaluate, each leaving a file in the run directory
(nas_core.rundir.STAGE_OUTPUT) that tells a resumed run it is done and gives the next stage its input."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch

from nas_core.config import ExperimentConfig
from nas_core.events import EventKind, StatusState
from nas_core.rundir import STAGES, RunDir, write_atomic, write_json
from nas_core.search.checkpoint import load_checkpoint
from nas_core.search.reporting import EventSink, param_free_share

# A network that marks fewer foreground pixels than this share of the true ones predicts (almost) only background.
BACKGROUND_ONLY_SHARE = 0.1

__all__ = ["STAGES", "StageError", "stage_done", "last_event_seq", "plan", "run_stages"]


class StageError(RuntimeError):
    """A stage cannot run: its input is missing or the run directory belongs to another run."""


def stage_done(run_dir: Path, stage: str, cfg: ExperimentConfig) -> bool:
    out = RunDir(run_dir).stage_output(stage)
    if stage == "search":
        if not out.exists():
            return False
        state = load_checkpoint(out)
        return state["epoch"] >= cfg.search.epochs or state.get("stopped_early") is not None
    return out.exists()


def last_event_seq(run_dir: Path) -> int | None:
    """The seq the search checkpoint recorded, so a resumed run knows which events are already history."""
    ckpt = RunDir(run_dir).checkpoint
    return load_checkpoint(ckpt).get("event_seq") if ckpt.exists() else None


def run_search_stage(cfg: ExperimentConfig, run_dir: Path, events: EventSink, resume: bool,
                     on_step: Callable[[dict], None] | None = None, device=None, engine=None) -> None:
    from nas_core.search.loop import BilevelSearch

    search = BilevelSearch(cfg, events, RunDir(run_dir).checkpoint, on_step=on_step, device=device, engine=engine)
    if resume and search.resume():
        events.emit(EventKind.log, {"stage": "search", "message": f"resumed at epoch {search.epoch} (step {search.step})"})
    search.run()


def run_decode_stage(cfg: ExperimentConfig, run_dir: Path, events: EventSink) -> dict:
    """Rebuild the supernet from the final checkpoint and write its decoded genotype to genotype.json."""
    from nas_core.search.loop import build_search_supernet

    ckpt = RunDir(run_dir).checkpoint
    if not ckpt.exists():
        raise StageError(f"{ckpt}: no search checkpoint to decode; run the search stage first")
    state = load_checkpoint(ckpt)
    torch.manual_seed(cfg.seed)
    supernet = build_search_supernet(cfg)
    supernet.load_state_dict(state["model"])
    with torch.no_grad():
        for p, a in zip(supernet.arch_parameters(), state["arch"]):
            p.copy_(a)
    genotype = supernet.genotype().to_dict()
    write_json(RunDir(run_dir).genotype, genotype)
    share = param_free_share(genotype)
    events.emit(EventKind.genotype, {"stage": "decode", "epoch": state["epoch"] - 1, "genotype": genotype,
                             "param_free_share": share})
    cells = "; ".join(f"{cell}: " + ", ".join(f"{op}<-{src}" for node in c["nodes"] for op, src in node)
                      for cell, c in genotype["cells"].items())
    free = ", ".join(f"{cell} {v:.0%}" for cell, v in share.items())
    _log(events, "decode", f"decode: the genotype after epoch {state['epoch']} ({cells}); parameter-free ops: {free}")
    return genotype


def _log(events: EventSink, stage: str, message: str, **fields) -> None:
    events.emit(EventKind.log, {"stage": stage, "message": message, **fields})


def _foreground(iou) -> float | None:
    """Mean IoU over the foreground classes (all but class 0), or None where none is defined."""
    fg = [x for x in (iou or [])[1:] if x is not None]
    return sum(fg) / len(fg) if fg else None


def _scores(result: dict) -> str:
    fg = _foreground(result.get("iou"))
    line = f"mIoU {result['miou']:.3f}" if result.get("miou") is not None else "mIoU n/a"
    line += f", foreground IoU {fg:.3f}" if fg is not None else ", foreground IoU n/a"
    cm = result.get("confusion")
    if cm is not None:
        cm = np.asarray(cm)  # rows: true class, columns: predicted
        true_fg, pred_fg = cm[1:].sum(), cm[:, 1:].sum()
        if true_fg and pred_fg < BACKGROUND_ONLY_SHARE * true_fg:
            line += f" (it predicts almost only background: {pred_fg} foreground pixels for {true_fg} true ones)"
    return line


def _genotype(run_dir: Path):
    from nas_core.space.genotypes import load_genotype

    path = RunDir(run_dir).genotype
    if not path.exists():
        raise StageError(f"{path}: no decoded genotype; run the decode stage first (or give a retrain run its genotype)")
    return load_genotype(path)


def _datasets(cfg: ExperimentConfig):
    from nas_core.data.datasets import build_datasets

    return build_datasets(cfg.data, cfg.seed)


def _model(cfg: ExperimentConfig, run_dir: Path, network=None, load_init: bool = True):
    """The network the retrain and evaluate stages train and score, and how its events label it: a hand-designed
    baseline's `run.network` (nas_core.models), else the decoded genotype's (its cells in the space's macro). The
    one place the two kinds of run part; everything after it is the same code."""
    if network is not None:
        from nas_core.models.hand_designed import build_network as build_hand_designed

        return build_hand_designed(network, cfg.space.in_channels, cfg.space.num_classes), network.label
    from nas_core.space.network import build_network

    return build_network(_genotype(run_dir), cfg.space, load_init=load_init), "searched"


def run_retrain_stage(cfg: ExperimentConfig, run_dir: Path, events: EventSink, device=None, network=None) -> dict:
    """Train the decoded network (or a baseline's hand-designed `network`) from scratch on both training halves;
    keep its weights for the evaluation."""
    from nas_core.inference.predictor import deployment_facts
    from nas_core.train.retrain import train_and_evaluate

    torch.manual_seed(cfg.seed)
    model, label = _model(cfg, run_dir, network)
    if network is not None:
        what, start = f"the hand-designed {label}", "from scratch"
    else:
        what = "the decoded network"
        start = "from scratch" if not cfg.space.init_from else \
            f"(cells from scratch, the other blocks from space.init_from{', frozen' if cfg.space.freeze else ''})"
    _log(events, "retrain", f"retrain: {what} ({sum(p.numel() for p in model.parameters())} "
         f"parameters) {start} for {cfg.retrain.epochs} epochs, lr {cfg.retrain.lr}")
    result = train_and_evaluate(model, _datasets(cfg), cfg.retrain.epochs, cfg.retrain.lr, events=events,
                                batch_size=cfg.data.batch_size, seed=cfg.seed, device=device, eval_split="val",
                                iou_thresholds=cfg.retrain.iou_thresholds, workers=cfg.data.workers, label=label,
                                compute=cfg.compute)
    # What prediction needs beside the weights (space, normalisation, classes...): the run directory then
    # predicts on its own, whatever becomes of the experiment file and its data (nas_core.inference). A
    # hand-designed network's description rides along: it has no genotype.json to be rebuilt from.
    state = {"model": model.state_dict(), "val_miou": result["miou"], "steps": result["steps"],
             "deployment": deployment_facts(cfg)}
    if network is not None:
        state["network"] = network.model_dump(mode="json")
    write_atomic(RunDir(run_dir).retrained, lambda fh: torch.save(state, fh))
    _log(events, "retrain", f"retrain done: {result['steps']} steps in {result['train_seconds']:.1f} s; validation "
         f"{_scores(result)}")
    return result


def run_evaluate_stage(cfg: ExperimentConfig, run_dir: Path, events: EventSink, device=None, network=None) -> dict:
    """Score the retrained network (the decoded one, or a baseline's hand-designed `network`) on the test split;
    metrics.json and an `evaluation` event hold the result."""
    from nas_core.data.loader import make_loader
    from nas_core.inference.samples import write_samples
    from nas_core.metrics.scores import curves, pr_empty_reason
    from nas_core.train.loop import evaluate

    path = RunDir(run_dir).retrained
    if not path.exists():
        raise StageError(f"{path}: no retrained weights; run the retrain stage first")
    state = torch.load(path, map_location="cpu", weights_only=True)
    wanted = None if network is None else network.model_dump(mode="json")
    if state.get("network") != wanted:
        raise StageError(f"{path}: retrained as {_trained_as(state.get('network'))}, but this run is "
                         f"{_trained_as(wanted)}; retrain it first "
                         "(--stage retrain) or use the run directory it belongs to")
    model, label = _model(cfg, run_dir, network, load_init=False)  # the retrained weights hold it all
    model.load_state_dict(state["model"])
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model.to(device)
    test = _datasets(cfg)["test"]
    result = evaluate(model, make_loader(test, cfg.data.batch_size, shuffle=False, seed=cfg.seed), cfg.space.num_classes,
                      device, cfg.retrain.iou_thresholds)
    metrics = _jsonable({"split": "test", "tiles": len(test), "miou": result["miou"], "iou": result["iou"],
                         "mdice": result["mdice"], "dice": result["dice"], "accuracy": result["accuracy"],
                         "ap": {str(k): v for k, v in result["ap"].items()},
                         "params": sum(p.numel() for p in model.parameters()),
                         # Why the PR panel is empty, when it is (the UI shows this instead of blank axes).
                         "pr_empty_reason": pr_empty_reason(result["objects"])})
    write_json(RunDir(run_dir).metrics, metrics)
    # Pictures before the event: a reader that sees the evaluation finds its samples already there.
    write_samples(model, test, RunDir(run_dir).samples, device=device)
    events.emit(EventKind.evaluation, {"stage": "evaluate", "label": label, **metrics,
                                       "curves": _jsonable(curves(result["objects"]))})
    ap = metrics["ap"].get("0.5")
    _log(events, "evaluate", f"test ({metrics['tiles']} tiles): {_scores({**metrics, 'confusion': result['confusion']})}"
         + (f", AP@0.5 {ap:.3f}" if ap is not None else ""))
    return metrics


def _trained_as(network: dict | None) -> str:
    if network is None:
        return "a searched genotype's network"
    from nas_core.models.hand_designed import NetworkConfig

    return f"the hand-designed {NetworkConfig.model_validate(network).label}"


def _jsonable(x):
    import math

    import numpy as np

    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in (x.tolist() if isinstance(x, np.ndarray) else x)]
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


def plan(cfg: ExperimentConfig, only: str | None = None) -> list[str]:
    """The stages to run: one when asked, else all (retrain and evaluate only if retraining is enabled)."""
    if only is not None:
        if only not in STAGES:
            raise StageError(f"--stage {only!r}: use one of {', '.join(STAGES)}")
        return [only]
    return list(STAGES if cfg.retrain.enabled else STAGES[:2])


def run_stages(cfg: ExperimentConfig, run_dir: Path, events: EventSink, *, resume: bool, only: str | None = None,
               on_step: Callable[[dict], None] | None = None, on_stage: Callable[[str], None] | None = None,
               device=None, engine=None, network=None) -> None:
    """Run the planned stages in order; with `resume`, stages whose output exists are skipped. `network`: a
    hand-designed baseline's `run.network`, which retrain and evaluate train and score instead of genotype.json.

    With a data-parallel `engine`, every rank runs the search stage together; decode, retrain and evaluate are
    rank 0's alone (the other ranks return once the search is done).
    """
    skipped: list[str] = []
    for stage in plan(cfg, only):
        if engine is not None and not engine.is_main and stage != "search":
            continue
        if resume and only is None and stage_done(run_dir, stage, cfg):
            skipped.append(stage)
            continue
        _log_skipped(events, skipped)
        skipped = []
        if on_stage is not None:
            on_stage(stage)
        events.emit(EventKind.status, {"state": StatusState.running, "stage": stage})
        if stage == "search":
            run_search_stage(cfg, run_dir, events, resume, on_step, device, engine)
        elif stage == "decode":
            run_decode_stage(cfg, run_dir, events)
        elif stage == "retrain":
            run_retrain_stage(cfg, run_dir, events, device, network)
        else:
            run_evaluate_stage(cfg, run_dir, events, device, network)
    _log_skipped(events, skipped)


def _log_skipped(events: EventSink, skipped: list[str]) -> None:
    """One line for the stages a resumed run found done, so its log says why it did not redo them."""
    if skipped:
        _log(events, skipped[-1], f"resumed: {', '.join(skipped)} already done (their outputs exist), skipped")
