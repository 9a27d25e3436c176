"""The strategies on the real cell space of nas_core.space, and one real trial that trains a tiny U-Net."""
from __future__ import annotations

import random
import subprocess
import sys
import textwrap

import pytest

from conftest import candidate_events
from nas_core.config import parse_experiment
from nas_core.discrete import CellSearchSpace, SearchJob, create_strategy, run_search
from nas_core.space.config import SpaceConfig


def test_decisions_round_trip_every_sampled_and_mutated_genotype():
    space = CellSearchSpace(SpaceConfig())
    sizes = space.decisions()
    # U-Net default: 3 cell types x 4 nodes x 2 inputs x (source, op), ops without `none`.
    assert len(sizes) == 3 * 4 * 2 * 2 and max(sizes) == len(SpaceConfig().cells["normal"].ops) - 1
    rng = random.Random(0)
    for _ in range(50):
        g = space.sample(rng)
        assert space.decode(space.encode(g)) == g
        child = space.mutate(g, rng)
        diff = sum(a != b for a, b in zip(space.encode(g), space.encode(child)))
        assert child != g and diff >= 1
    choices = [s - 1 for s in sizes]  # the last choice everywhere is still a valid genotype
    from nas_core.space import Genotype

    Genotype.from_dict(space.decode(choices))


def test_every_strategy_proposes_valid_genotypes_without_torch_in_the_dispatcher():
    script = textwrap.dedent("""
        import sys
        from nas_core.discrete import CellSearchSpace, create_strategy
        from nas_core.space.config import SpaceConfig
        from nas_core.space.genotypes import Genotype
        space = CellSearchSpace(SpaceConfig())
        for method in ("random", "evolution"):
            s = create_strategy(method, space, seed=1, **({"population": 3, "tournament": 2} if method == "evolution" else {}))
            for i in range(8):
                g = s.ask(); Genotype.from_dict(g); s.tell(g, i / 8)
        assert "torch" not in sys.modules
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rl = create_strategy("reinforce", CellSearchSpace(SpaceConfig()), seed=0)
    g = rl.ask()
    rl.tell(g, 0.3)
    assert set(g["cells"]) == {"normal", "down", "up"}


@pytest.mark.slow
def test_real_trial_trains_a_tiny_candidate_and_logs_its_iou(tmp_path):
    exp = parse_experiment({
        "name": "tiny", "search": {"method": "random", "trials": 1, "trial_epochs": 1},
        "space": {"channels": 4, "depth": 1},
        "data": {"num_tiles": 8, "tile_size": 32, "batch_size": 4, "val_fraction": 0.25, "test_fraction": 0.25},
    })
    job = SearchJob.from_experiment(exp, tmp_path / "run", budget={"epochs": 1, "max_steps": 2})
    summary = run_search(job, workers=1)
    (event,) = candidate_events(job.root)
    assert event["status"] == "ok", event["error"]
    assert 0 <= event["iou"] <= 1 and summary["best_iou"] == event["iou"]
    assert event["params_count"] > 0 and event["train_time_s"] > 0
    assert event["flops"] > event["params_count"]  # a forward pass on a tile costs more than one op per weight
    assert set(event["proxies"]) == {"synflow", "naswot", "grad_norm", "snip", "jacob_cov"}  # scored before training
