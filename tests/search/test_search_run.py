"""A short real search per method on synthetic helicopters: its events validate against the schema, alpha moves
as the method says (GAEA on the simplex, PC-DARTS with beta, warm-up holds alpha still)."""
from __future__ import annotations

import pytest
import torch

from nas_core.search.event_schema import validate_events
from nas_core.search.loop import BilevelSearch
from nas_core.search.reporting import EventSink
from tests.search.conftest import read_log


def _search(cfg, tmp_path):
    with EventSink(tmp_path / "events.jsonl", heartbeat_s=0) as events:
        search = BilevelSearch(cfg, events, tmp_path / "checkpoints" / "last.pt", device="cpu")
        init = [p.detach().clone() for p in search.model.arch_parameters()]
        result = search.run()
    return search, init, result, read_log(tmp_path / "events.jsonl")


def _alphas(log):
    return [(e["payload"]["epoch"], e["payload"]["step"], e["payload"]["cells"]) for e in log if e["kind"] == "alpha"]


@pytest.mark.parametrize("search_cfg", [
    {"method": "darts", "order": 1},
    {"method": "darts", "order": 2},
    {"method": "pcdarts"},
    {"method": "gaea"},
    {"method": "gaea", "single_level": True, "supernet": "darts"},
], ids=["darts1", "darts2", "pcdarts", "gaea-pc", "gaea-erm"])
def test_short_search_events_validate(tiny, tmp_path, search_cfg):
    cfg = tiny(**search_cfg)
    search, init, result, log = _search(cfg, tmp_path)
    assert validate_events(log) == len(log)
    assert result.epochs_run == 2 and (tmp_path / "checkpoints" / "last.pt").exists()
    alphas = _alphas(log)
    assert [a[0] for a in alphas] == [0, 1]
    assert {e["payload"]["epoch"] for e in log if e["kind"] == "metric"} == {0, 1}
    assert any(not torch.equal(a, p.detach()) for a, p in zip(init, search.model.arch_parameters())), "alpha never moved"
    cells = alphas[-1][2]
    assert set(cells) == {"normal", "down", "up"}
    for name, c in cells.items():
        w = torch.tensor(c["alpha"])
        assert w.shape == (len(c["edges"]), len(c["ops"])) == (5, 4)
        # Weights as used: softmax rows for DARTS/PC-DARTS, alpha itself for GAEA; rows sum to one either way.
        torch.testing.assert_close(w.sum(-1), torch.ones(5, dtype=w.dtype), atol=1e-5, rtol=0)
        assert (c["beta"] is not None) == (cfg.search.method in ("pcdarts", "gaea") and cfg.search.supernet != "darts")
        assert all(0 <= h <= torch.log(torch.tensor(4.0)) + 1e-6 for h in c["entropy"])
    decoded = [e for e in log if e["kind"] == "genotype"][-1]["payload"]["genotype"]
    assert decoded == result.genotype.to_dict()
    if cfg.search.method == "gaea":
        for p in search.model.alphas().values():
            assert (p > 0).all()
            torch.testing.assert_close(p.detach().sum(-1), torch.ones(p.shape[0]), atol=1e-6, rtol=0)


def test_pcdarts_warmup_holds_alpha_still(tiny, tmp_path):
    search, init, _, log = _search(tiny(method="pcdarts", warmup_epochs=1), tmp_path)
    metrics = [e["payload"] for e in log if e["kind"] == "metric"]
    assert [m["arch_updates"] for m in metrics] == [False, True]
    first = _alphas(log)[0][2]
    # After the warm-up epoch alpha (and beta) are exactly where they started.
    alphas0 = dict(zip(first, init))  # arch_parameters() lists the alphas first, in cell order
    for name, c in first.items():
        assert torch.tensor(c["alpha"], dtype=torch.float64).equal(torch.softmax(alphas0[name], -1).double())
    assert any(not torch.equal(a, p.detach()) for a, p in zip(init, search.model.arch_parameters()))


def test_pcdarts_with_k1_and_no_edge_weights_is_darts(tiny, tmp_path):
    _, _, _, darts = _search(tiny(method="darts", arch_lr=6e-4, events_every_steps=1), tmp_path / "darts")
    _, _, _, pc = _search(tiny(method="pcdarts", pc_k=1, edge_norm=False, events_every_steps=1), tmp_path / "pc")
    a, b = _alphas(darts), _alphas(pc)
    assert len(a) == len(b) > 2
    assert a == b  # the whole trajectory, value for value


def test_events_every_steps_adds_step_alphas(tiny, tmp_path):
    _, _, result, log = _search(tiny(method="darts", events_every_steps=1), tmp_path)
    steps = [a[1] for a in _alphas(log)]
    assert steps[:result.steps // 2] == list(range(1, result.steps // 2 + 1))
    assert validate_events(log) == len(log)
