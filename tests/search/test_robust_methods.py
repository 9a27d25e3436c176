"""beta-DARTS and DARTS-, the two remedies for DARTS's collapse, and the DARTS+ early stop: the beta-decay gradient
against finite differences, both schedules, the auxiliary skip's absence at weight 0, and each method through the
real `nasforge search` (tiny), with the engine's own log lines in the event log."""
from __future__ import annotations

import pytest
import torch
import yaml
from typer.testing import CliRunner

from nas_core.cli import app
from nas_core.config import METHODS, parse_experiment
from nas_core.search.architect import (
    BetaDartsArchitect, DartsArchitect, DartsMinusArchitect, aux_skip_weight, beta_decay_coefficient,
    beta_decay_loss, build_architect,
)
from nas_core.search.event_schema import validate_events
from nas_core.search.loop import build_search_supernet, search_loss
from nas_core.search.reporting import collapse_alarm, param_free_counts
from tests.search.conftest import read_log, tiny_experiment


def test_beta_decay_gradient_matches_finite_differences():
    g = torch.Generator().manual_seed(0)
    alphas = [torch.randn(5, 4, generator=g, dtype=torch.float64, requires_grad=True),
              torch.randn(3, 6, generator=g, dtype=torch.float64, requires_grad=True)]
    grads = torch.autograd.grad(beta_decay_loss(alphas), alphas)
    eps = 1e-6
    for a, grad in zip(alphas, grads):
        numeric = torch.zeros_like(a)
        for idx in torch.cartesian_prod(*(torch.arange(n) for n in a.shape)):
            i = tuple(idx.tolist())
            with torch.no_grad():
                a[i] += eps
                up = float(beta_decay_loss(alphas))
                a[i] -= 2 * eps
                down = float(beta_decay_loss(alphas))
                a[i] += eps
            numeric[i] = (up - down) / (2 * eps)
        torch.testing.assert_close(grad, numeric, atol=1e-8, rtol=1e-6)
        # The closed form the paper argues with: softmax(alpha) over the edges of the cell.
        torch.testing.assert_close(grad, torch.softmax(a.detach(), -1) / a.shape[0])


def test_beta_decay_coefficient_is_the_reference_ramp():
    # 0.5 per epoch over the reference's 50 epochs, the same ramp over a shorter search.
    assert [beta_decay_coefficient(e, 50, 25.0) for e in (0, 1, 49)] == [0.0, 0.5, 24.5]
    assert beta_decay_coefficient(0, 4, 25.0) == 0 and beta_decay_coefficient(3, 4, 25.0) == 18.75


def _tiny_cfg(**search):
    return parse_experiment(tiny_experiment(**search))


def _batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2, 3, 32, 32, generator=g), torch.randint(0, 2, (2, 32, 32), generator=g)


def test_beta_darts_adds_lambda_times_the_regulariser_to_the_darts_hypergradient():
    cfg = _tiny_cfg(method="betadarts")
    torch.manual_seed(0)
    model = build_search_supernet(cfg)
    arch = build_architect(cfg.search, model, search_loss)
    assert isinstance(arch, BetaDartsArchitect) and arch.lam == cfg.search.beta_decay == 25.0
    plain = DartsArchitect(model, search_loss)
    model.eval()  # BatchNorm in eval: both hypergradients see the same function
    train, val = _batch(0), _batch(1)
    arch.begin_epoch(0, 4)
    g0, _ = arch.hypergradient(train, val, 0.025, None)
    ref, _ = plain.hypergradient(train, val, 0.025, None)
    for a, b in zip(g0, ref):
        torch.testing.assert_close(a, b)
    arch.begin_epoch(2, 4)
    assert arch.schedule() == {"beta_decay": 12.5}
    g2, _ = arch.hypergradient(train, val, 0.025, None)
    for p, a, b in zip(model.arch_parameters(), g2, ref):
        torch.testing.assert_close(a - b, 12.5 * torch.softmax(p.detach(), -1) / p.shape[0], atol=1e-6, rtol=1e-5)


def test_darts_minus_weight_decays_from_one_to_zero_at_the_last_epoch():
    w = [aux_skip_weight(e, 5) for e in range(5)]
    assert w[0] == 1.0 and w[-1] == 0.0 and all(a > b for a, b in zip(w, w[1:]))
    assert aux_skip_weight(0, 1) == 0.0  # a one-epoch search is plain DARTS


def test_darts_minus_skip_is_outside_alpha_and_vanishes_at_weight_zero():
    cfg = _tiny_cfg(method="dartsminus")
    plain_cfg = _tiny_cfg(method="darts")
    minus = build_search_supernet(cfg)
    plain = build_search_supernet(plain_cfg)
    assert minus.aux_skip and not plain.aux_skip
    # The auxiliary modules (FactorizedReduce on down edges) are extra weights; everything else is DARTS's supernet.
    missing, unexpected = minus.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all(".aux." in k for k in missing)
    with torch.no_grad():
        for p, q in zip(minus.arch_parameters(), plain.arch_parameters()):
            p.copy_(q)
    minus.eval(), plain.eval()
    x, _ = _batch()
    arch = DartsMinusArchitect(minus, search_loss)
    assert arch.schedule() == {"aux_skip": 1.0}
    with torch.no_grad():
        assert not torch.allclose(minus(x), plain(x))
        arch.begin_epoch(3, 4)
        assert arch.schedule() == {"aux_skip": 0.0}
        torch.testing.assert_close(minus(x), plain(x))
    # alpha has no column for it, so the decoded genotype cannot contain it.
    assert [minus.op_names(t) for t in cfg.space.cells] == [plain.op_names(t) for t in cfg.space.cells]
    assert minus.genotype().to_dict() == plain.genotype().to_dict()
    with pytest.raises(ValueError, match="auxiliary skip"):
        DartsMinusArchitect(plain, search_loss)


def test_collapse_alarm_counts_parameter_free_ops_per_cell():
    g = {"cells": {"normal": {"nodes": [[["skip_connect", 0], ["sep_conv_3x3", 1]], [["max_pool_3x3", 0], ["skip_connect", 2]]],
                              "concat": [2, 3]},
                   "up": {"nodes": [[["sep_conv_3x3", 0], ["sep_conv_3x3", 1]]], "concat": [2]}}}
    assert param_free_counts(g) == {"normal": 3, "up": 0}
    assert collapse_alarm(g, 4) is None
    assert collapse_alarm(g, 3) == {"reason": "collapse", "cell": "normal", "param_free": 3, "threshold": 3}


def test_methods_are_defined_once():
    assert {"betadarts", "dartsminus"} <= set(METHODS)


def _run(tmp_path, name, **search):
    exp = tmp_path / f"{name}.yaml"
    exp.write_text(yaml.safe_dump(tiny_experiment(**search)))
    run = tmp_path / name
    r = CliRunner().invoke(app, ["search", str(exp), "--run-dir", str(run), "--threads", "1"])
    assert r.exit_code == 0, r.output
    log = read_log(run / "events.jsonl")
    validate_events(log)
    assert log[-1]["payload"]["state"] == "succeeded" and (run / "metrics.json").exists()
    return run, log


def _lines(log, stage=None):
    return [e["payload"] for e in log if e["kind"] == "log" and stage in (None, e["payload"].get("stage"))]


def test_darts_minus_end_to_end_decays_its_skip_and_logs_each_stage(tmp_path):
    run, log = _run(tmp_path, "minus", method="dartsminus", epochs=3)
    metrics = [e["payload"] for e in log if e["kind"] == "metric" and e["payload"]["stage"] == "search"]
    assert [m["aux_skip"] for m in metrics] == [1.0, 0.5, 0.0]
    # The engine's own lines for the Log tab: the search start, one summary per epoch, decode, retrain, test.
    lines = _lines(log)
    epochs = [p for p in lines if p.get("topic") == "epoch"]
    assert [p["epoch"] for p in epochs] == [0, 1, 2]
    assert all("val mIoU" in p["message"] and "alpha entropy" in p["message"] and "top op weight" in p["message"]
               for p in epochs)
    assert "search epoch 3/3" in epochs[-1]["message"]
    stages = [p["stage"] for p in lines]
    assert stages[0] == "search" and {"decode", "retrain", "evaluate"} <= set(stages)
    assert "skip_connect" in str(_lines(log, "decode")) or "conv" in str(_lines(log, "decode"))
    assert any("test (" in p["message"] and "foreground IoU" in p["message"] for p in _lines(log, "evaluate"))
    # Per epoch, not per step: a handful of lines in all.
    assert len(lines) <= 3 * 2 + 5


def test_beta_darts_with_the_collapse_stop_ends_early_then_decodes_and_retrains(tmp_path):
    # Threshold 1: the first epoch's decoded cells (near-uniform alpha, a pool or skip on some edge) trip it.
    run, log = _run(tmp_path, "beta", method="betadarts", epochs=3, collapse_stop=1)
    metrics = [e["payload"] for e in log if e["kind"] == "metric" and e["payload"]["stage"] == "search"]
    assert [m["epoch"] for m in metrics] == [0] and metrics[0]["beta_decay"] == 0.0
    stop = [p for p in _lines(log) if p.get("topic") == "early_stop"]
    assert len(stop) == 1 and stop[0]["level"] == "warning" and "collapse_stop" in stop[0]["message"]
    assert stop[0]["early_stop"]["param_free"] >= 1 and stop[0]["early_stop"]["epoch"] == 0
    progress = [e["payload"] for e in log if e["kind"] == "progress" and e["payload"]["stage"] == "search"]
    assert progress[-1]["fraction"] == 1.0
    running = [e["payload"]["stage"] for e in log if e["kind"] == "status" and e["payload"]["state"] == "running"]
    assert running == ["search", "decode", "retrain", "evaluate"]
    # A resumed run counts the stopped search as done: nothing is repeated.
    n = len(log)
    r = CliRunner().invoke(app, ["search", str(tmp_path / "beta.yaml"), "--run-dir", str(run), "--resume", "--threads", "1"])
    assert r.exit_code == 0, r.output
    after = read_log(run / "events.jsonl")[n:]
    assert [e["kind"] for e in after] == ["log", "status"]  # the log line says every stage was found done
    assert after[0]["payload"]["message"].startswith("resumed: search, decode, retrain, evaluate already done")
