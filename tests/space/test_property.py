"""Random genotypes of the default spaces all build and train a step on a 32x32 batch, in both macros;
mutation changes exactly one op or one input."""
import random

import pytest
import torch

from nas_core.space import Genotype, SpaceConfig, build_network, mutate_genotype, sample_genotype

N_PER_MACRO = 40  # every op appears many times over 40 genotypes; 100 cost a minute more of CI

SPACES = {
    # Tiny channels keep hundreds of networks within seconds; the op and topology choices are the default ones.
    "unet": SpaceConfig(channels=4, depth=2),
    "darts-classifier": SpaceConfig(macro="darts-classifier", channels=4, layers=5, num_classes=3),
}


@pytest.mark.parametrize("macro", sorted(SPACES))
def test_random_genotypes_build_and_train(macro):
    space = SPACES[macro]
    rng = random.Random(1234)
    seen = set()
    x = torch.randn(2, 3, 32, 32)  # the smallest size both macros' two reductions keep above 1 px
    for _ in range(N_PER_MACRO):
        g = sample_genotype(space, rng)
        seen.add(g.hash())
        assert Genotype.from_dict(g.to_dict()) == g
        net = build_network(g, space)
        out = net(x)
        if macro == "unet":
            assert out.shape == (2, 2, 32, 32)
            loss = torch.nn.functional.cross_entropy(out, torch.zeros(2, 32, 32, dtype=torch.long))
        else:
            assert out.shape == (2, 3)
            loss = torch.nn.functional.cross_entropy(out, torch.zeros(2, dtype=torch.long))
        loss.backward()
        grads = [p.grad for p in net.parameters()]
        assert all(gr is not None and torch.isfinite(gr).all() for gr in grads)
    assert len(seen) == N_PER_MACRO  # the space is huge: no repeats expected


def test_mutation_changes_exactly_one_choice():
    space = SPACES["unet"]
    rng = random.Random(7)
    for _ in range(200):
        g = sample_genotype(space, rng)
        m = mutate_genotype(g, space, rng)
        diffs = [(t, i, p, q) for t in g.cells for i, (a, b) in enumerate(zip(g.cells[t].nodes, m.cells[t].nodes))
                 for p, q in zip(a, b) if p != q]
        assert len(diffs) == 1
        t, i, (op0, src0), (op1, src1) = diffs[0]
        assert (op0 != op1) != (src0 != src1)  # an op or an input, not both
        assert op1 != "none" and src1 in range(i + 2)
        assert len({s for _, s in m.cells[t].nodes[i]}) == len(m.cells[t].nodes[i])  # inputs stay distinct
