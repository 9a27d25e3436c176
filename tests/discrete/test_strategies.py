"""The ask/tell strategies on a toy categorical space, called in-process (no orchestrator)."""
from __future__ import annotations

import random

import pytest
from scipy.stats import wilcoxon

from nas_core.discrete import CategoricalSpace, RegularizedEvolution, STRATEGIES, create_strategy
from nas_core.discrete.trial import synthetic_objective


def _search(method: str, space: CategoricalSpace, seed: int, budget: int, **kw) -> float:
    strategy = create_strategy(method, space, seed=seed, **kw)
    for _ in range(budget):
        g = strategy.ask()
        strategy.tell(g, synthetic_objective(g, {}, 0, {"salt": seed})["iou"])
    return strategy.best[0]


def test_evolution_beats_random_search_over_many_seeds():
    # Same budget, same landscapes (one per seed), default population 50 / tournament 10; paired test.
    space = CategoricalSpace([8] * 20)
    seeds = range(16)
    evo = [_search("evolution", space, s, 250) for s in seeds]
    rnd = [_search("random", space, s, 250) for s in seeds]
    assert wilcoxon(evo, rnd, alternative="greater").pvalue < 0.01
    assert sum(evo) / len(evo) > sum(rnd) / len(rnd)


def test_random_search_is_uniform_and_seeded():
    space = CategoricalSpace([4, 3])
    a, b = create_strategy("random", space, seed=3), create_strategy("random", space, seed=3)
    draws = [a.ask()["choices"] for _ in range(1200)]
    assert draws[:20] == [b.ask()["choices"] for _ in range(20)]
    counts = [sum(d[0] == v for d in draws) for v in range(4)]
    assert all(240 < c < 360 for c in counts), counts


def test_mutation_changes_exactly_one_decision():
    space = CategoricalSpace([5] * 10)
    rng = random.Random(0)
    for _ in range(200):
        g = space.sample(rng)
        child = space.mutate(g, rng)
        assert sum(x != y for x, y in zip(g["choices"], child["choices"])) == 1


def test_evolution_samples_randomly_until_the_population_is_asked_then_mutates_tournament_winners():
    space = CategoricalSpace([6] * 6)
    evo = RegularizedEvolution(space, seed=1, population=5, tournament=5)
    first = [evo.ask() for _ in range(5)]
    for i, g in enumerate(first):
        evo.tell(g, float(i))  # the last one is the best
    # Tournament = whole population: every child is one mutation away from the best member.
    best = first[-1]["choices"]
    for _ in range(20):
        child = evo.ask()["choices"]
        assert sum(x != y for x, y in zip(child, best)) == 1


def test_evolution_ages_out_the_oldest_not_the_worst():
    evo = RegularizedEvolution(CategoricalSpace([3] * 3), seed=0, population=3, tournament=2)
    told = [({"choices": [i, 0, 0]}, v) for i, v in enumerate([0.9, 0.1, 0.2])]
    for g, v in told:
        evo.tell(g, v)
    evo.tell({"choices": [0, 1, 0]}, 0.05)
    evo.tell({"choices": [0, 0, 1]}, None)  # a failed trial joins nobody
    assert [m[1] for m in evo.population] == [0.1, 0.2, 0.05]


def test_bad_settings_name_the_field():
    space = CategoricalSpace([2, 2])
    with pytest.raises(ValueError, match="tournament"):
        create_strategy("evolution", space, population=4, tournament=9)
    with pytest.raises(ValueError, match="search.method"):
        create_strategy("darts", space)
    with pytest.raises(ValueError, match="space.categorical"):
        CategoricalSpace([3, 1])
    assert set(STRATEGIES) == {"random", "evolution", "reinforce"}


def test_reinforce_policy_moves_towards_rewarded_choices():
    space = CategoricalSpace([3] * 4)
    rl = create_strategy("reinforce", space, seed=0, lr=0.05)
    before = [p[0] for p in rl.probabilities()]
    for _ in range(120):
        g = rl.ask()
        rl.tell(g, sum(c == 0 for c in g["choices"]) / 4)  # reward: how many decisions chose 0
    after = [p[0] for p in rl.probabilities()]
    assert all(0.25 < b < 0.42 for b in before), before  # starts near uniform (1/3)
    assert sum(after) / 4 > 0.6, after
    assert rl.baseline is not None and 0 < rl.baseline <= 1


def test_reinforce_accepts_results_in_any_order_and_skips_failures():
    space = CategoricalSpace([4] * 3)
    rl = create_strategy("reinforce", space, seed=2)
    asked = [rl.ask() for _ in range(6)]
    for g, v in zip(reversed(asked), [0.1, None, 0.5, 0.3, None, 0.7]):
        rl.tell(g, v)
    assert rl.n_told == 6 and rl.best[0] == 0.7
    assert all(len(g["choices"]) == 3 for g in asked)
