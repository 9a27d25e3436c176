"""Partial search (issue 18): a ResNeXt U-Net whose marked blocks are searched cells. A real short search per
continuous method changes only the marked blocks (frozen: the others equal the checkpoint bit for bit, buffers
included), the decoded network builds and retrains through the real `nasforge search`, a discrete search and the
equal-compute random baseline run on it, and bad input names the field."""
from __future__ import annotations

import random
import shutil

import pytest
import torch
import yaml
from typer.testing import CliRunner

from nas_core.cli import app
from nas_core.config import parse_experiment
from nas_core.models import PlainUNet, ResNeXtUNet
from nas_core.search.loop import BilevelSearch
from nas_core.search.reporting import EventSink
from nas_core.space import SpaceError, build_network, build_supernet
from tests.search.conftest import TINY_OPS, read_log

BACKBONE = {"cardinality": 2, "bottleneck_width": 1}
MARKED = ["decoder.0", "bottleneck"]  # an up and a normal block: two cell types, two shapes


def partial_experiment(ckpt, freeze=True, **search) -> dict:
    return {
        "name": "partial", "seed": 0,
        "space": {"macro": "resnext-unet", "channels": 4, "depth": 1, "backbone": BACKBONE,
                  "search_blocks": MARKED, "init_from": str(ckpt) if ckpt else None, "freeze": freeze,
                  "cells": {t: {"ops": TINY_OPS, "nodes": 2} for t in ("normal", "up")}},
        "data": {"tile_size": 32, "num_tiles": 16, "batch_size": 4},
        "search": {"epochs": 1, "pc_k": 2, "warmup_epochs": 0, **search},
        "retrain": {"epochs": 1},
    }


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A 'trained' backbone: random weights and non-trivial BatchNorm statistics, as a user's file."""
    torch.manual_seed(123)
    net = ResNeXtUNet(3, 2, channels=4, depth=1, **BACKBONE)
    with torch.no_grad():
        net.train()(torch.randn(4, 3, 32, 32))  # moves running_mean/var and num_batches_tracked off their defaults
    path = tmp_path_factory.mktemp("ckpt") / "resnext.pt"
    torch.save({"model": net.state_dict()}, path)
    return path, {k: v.clone() for k, v in net.state_dict().items()}


def _search(cfg, tmp_path):
    with EventSink(tmp_path / "events.jsonl", heartbeat_s=0) as events:
        search = BilevelSearch(cfg, events, tmp_path / "last.pt", device="cpu")
        start = {k: v.detach().clone() for k, v in search.model.state_dict().items()}
        alpha0 = [p.detach().clone() for p in search.model.arch_parameters()]
        result = search.run()
    return search.model, start, alpha0, result


def _kept(model):
    return model.backbone.state_dict()  # the marked blocks are CellPlaces: no state of their own


@pytest.mark.parametrize("search_cfg", [{"method": "darts", "order": 1}, {"method": "darts", "order": 2},
                                        {"method": "pcdarts"}, {"method": "gaea"}, {"method": "dartsminus"}],
                         ids=["darts1", "darts2", "pcdarts", "gaea", "dartsminus"])
def test_frozen_partial_search_changes_only_the_marked_blocks(checkpoint, tmp_path, search_cfg):
    path, ckpt = checkpoint
    model, start, alpha0, result = _search(parse_experiment(partial_experiment(path, **search_cfg)), tmp_path)
    kept = _kept(model)
    assert kept and set(kept) < set(ckpt)
    assert not any(k.startswith(("decoder.0.", "bottleneck.")) for k in kept)
    for key, value in kept.items():
        assert torch.equal(value, ckpt[key]), f"frozen {key} changed"
    cells = {k: v for k, v in model.state_dict().items() if k.startswith("cells.") and v.is_floating_point()}
    assert any(not torch.equal(v, start[k]) for k, v in cells.items()), "the searched cells never trained"
    assert any(not torch.equal(a, p.detach()) for a, p in zip(alpha0, model.arch_parameters())), "alpha never moved"
    assert set(model.alphas()) == {"normal", "up"}
    assert set(result.genotype.cells) == {"normal", "up"}


def test_unfrozen_blocks_start_at_the_checkpoint_and_train(checkpoint, tmp_path):
    path, ckpt = checkpoint
    model, start, _, _ = _search(parse_experiment(partial_experiment(path, freeze=False, method="darts", order=1)),
                                 tmp_path)
    for key in _kept(model):
        assert torch.equal(start[f"backbone.{key}"], ckpt[key]), key
    moved = [k for k, v in _kept(model).items() if v.is_floating_point() and not torch.equal(v, ckpt[k])]
    assert any(k.startswith("encoder.") for k in moved) and any(k.startswith("head.") for k in moved), moved


def test_decoded_partial_network_builds_and_retrains_through_the_cli(checkpoint, tmp_path):
    original, ckpt = checkpoint
    path = tmp_path / "backbone.pt"
    shutil.copy(original, path)
    exp = tmp_path / "exp.yaml"
    exp.write_text(yaml.safe_dump(partial_experiment(path, method="darts", order=1)))
    run = tmp_path / "run"
    r = CliRunner().invoke(app, ["search", str(exp), "--run-dir", str(run), "--threads", "1"])
    assert r.exit_code == 0, r.output
    log = read_log(run / "events.jsonl")
    stages = [e["payload"]["stage"] for e in log if e["kind"] == "status" and e["payload"]["state"] == "running"]
    assert stages == ["search", "decode", "retrain", "evaluate"]
    cfg = parse_experiment(partial_experiment(path))
    from nas_core.space import load_genotype

    genotype = load_genotype(run / "genotype.json")
    net = build_network(genotype, cfg.space)
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 2, 32, 32)
    retrained = torch.load(run / "checkpoints" / "retrain.pt", weights_only=True)["model"]
    backbone = {k.removeprefix("backbone."): v for k, v in retrained.items() if k.startswith("backbone.")}
    assert backbone and all(torch.equal(v, ckpt[k]) for k, v in backbone.items()), "retraining moved a frozen block"
    fresh = build_network(genotype, cfg.space)  # the cells as built, before the retrain stage trained them
    cells = [k for k in retrained if k.startswith("cells.") and retrained[k].is_floating_point()]
    assert any(not torch.equal(retrained[k], fresh.state_dict()[k]) for k in cells), "the retrain stage never trained"
    # The run directory predicts on its own: the retrained weights hold the backbone, init_from may be gone.
    path.unlink()
    from nas_core.inference.predictor import load_deployed

    deployed, _ = load_deployed(run)
    assert deployed(torch.rand(1, 3, 32, 32)).shape[-2:] == (32, 32)


@pytest.mark.slow  # a trial runs in a child process of its own (torch imported again): most of its ~15 s
def test_random_search_runs_on_a_partial_space(checkpoint, tmp_path):
    from nas_core.discrete import SearchJob, run_search
    from nas_core.events import read_events

    path, _ = checkpoint
    exp = parse_experiment({**partial_experiment(path), "search": {"method": "random", "trials": 1, "trial_epochs": 1}})
    job = SearchJob.from_experiment(exp, tmp_path / "run", budget={"epochs": 1, "max_steps": 2},
                                    objective_params={"experiment": exp.model_dump(mode="json"), "proxies": []})
    run_search(job, workers=1)
    events = [e["payload"] for _, e in read_events(tmp_path / "run" / "events.jsonl") if e["kind"] == "candidate"]
    assert len(events) == 1 and all(e["status"] == "ok" for e in events), events
    assert all(set(e["genotype"]["cells"]) == {"normal", "up"} for e in events)


def test_evolution_and_reinforce_sample_and_mutate_partial_genotypes(checkpoint):
    from nas_core.discrete import CellSearchSpace, create_strategy
    from nas_core.space import Genotype

    cfg = parse_experiment(partial_experiment(checkpoint[0])).space
    space = CellSearchSpace(cfg)
    rng = random.Random(0)
    child = Genotype.from_dict(space.mutate(space.sample(rng), rng))
    child.check_fits(cfg)
    assert build_network(child, cfg)(torch.randn(1, 3, 32, 32)).shape == (1, 2, 32, 32)
    for method, kw in (("evolution", {"population": 2, "tournament": 2}), ("reinforce", {})):
        strategy = create_strategy(method, space, seed=0, **kw)
        for i in range(3):
            g = strategy.ask()
            assert set(g["cells"]) == {"normal", "up"}
            strategy.tell(g, i / 3)


def test_equal_compute_baseline_keeps_the_partial_space(checkpoint):
    from worker.baseline import Compute, budgeted_config

    search = partial_experiment(checkpoint[0], method="darts", order=1)
    # As backend/crud.py makes a baseline from a search: its config with method random, then the search's compute.
    base = budgeted_config({**search, "search": {**search["search"], "method": "random"}}, Compute(30.0, 1, 1))
    cfg = parse_experiment(base)
    assert cfg.space == parse_experiment(search).space and cfg.search.compute_budget_s == 30.0
    from nas_core.discrete import CellSearchSpace

    g = CellSearchSpace(cfg.space).sample(random.Random(1))
    assert set(g["cells"]) == {"normal", "up"}


# ---- bad input ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("change,match", [
    ({"search_blocks": ["decoder.7"]}, r"space\.search_blocks: resnext-unet \(depth 1\) has no block 'decoder\.7'; "
                                       r"its blocks: stem, encoder\.0, bottleneck, decoder\.0"),
    ({"search_blocks": ["head"]}, r"space\.search_blocks: 'head' is the classifier"),
    ({"search_blocks": []}, r"space\.search_blocks: a resnext-unet space searches at least one"),
    ({"backbone": {"groups": 2}}, r"space\.backbone\.groups: resnext-unet takes no argument 'groups'"),
    ({"init_from": None}, r"space\.freeze: .*set space\.init_from"),
    ({"macro": "unet"}, r"space\.search_blocks: only a partial search has it"),
])
def test_bad_partial_space_names_the_field(change, match):
    data = partial_experiment("/nowhere.pt")
    data["space"].update(change)
    with pytest.raises(ValueError, match=match):
        parse_experiment(data)


def test_init_from_outside_the_roots_or_of_another_architecture_is_refused(checkpoint, tmp_path, monkeypatch):
    path, _ = checkpoint
    cfg = parse_experiment(partial_experiment(path)).space
    monkeypatch.setenv("NASFORGE_DATA_ROOTS", str(tmp_path / "data"))
    monkeypatch.delenv("NASFORGE_RUNS_DIR", raising=False)
    with pytest.raises(SpaceError, match=r"space\.init_from: must lie inside an allowed data root"):
        build_supernet(cfg)
    monkeypatch.setenv("NASFORGE_DATA_ROOTS", str(path.parent))
    build_supernet(cfg)  # inside the roots: loads
    plain = tmp_path / "plain.pt"
    torch.save(PlainUNet(3, 2, channels=4, depth=1).state_dict(), plain)
    monkeypatch.delenv("NASFORGE_DATA_ROOTS")
    wrong = parse_experiment(partial_experiment(plain)).space
    with pytest.raises(SpaceError, match=r"space\.init_from: checkpoint .*plain\.pt does not fit ResNeXtUNet"):
        build_supernet(wrong)
    with pytest.raises(SpaceError, match=r"space\.init_from: checkpoint .*missing\.pt: no such file"):
        build_network(build_supernet(wrong.model_copy(update={"init_from": None, "freeze": False})).genotype(),
                      wrong.model_copy(update={"init_from": str(tmp_path / "missing.pt")}))


def test_the_api_confines_init_from_like_data_path(checkpoint, tmp_path):
    from backend.crud import with_confined_data
    from nas_core.data.roots import OutsideDataRoots

    path, _ = checkpoint
    cfg = parse_experiment(partial_experiment(path))
    with pytest.raises(OutsideDataRoots, match=r"^space\.init_from: must lie inside an allowed data root"):
        with_confined_data(cfg, [tmp_path / "data"])
    relative = cfg.model_copy(update={"space": cfg.space.model_copy(update={"init_from": path.name})})
    assert with_confined_data(relative, [path.parent]).space.init_from == str(path.resolve())
