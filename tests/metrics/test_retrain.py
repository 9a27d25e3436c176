"""The plain U-Net baseline and the retrain-and-evaluate stage, on tiny synthetic tiles, writing real events."""
import json

import numpy as np
import pytest
import torch
from torch import nn

from nas_core.data import DataConfig, build_datasets
from nas_core.events import EventLog, read_events
from nas_core.models.plain_unet import PlainUNet
from nas_core.train.loop import evaluate, segmentation_loss
from nas_core.train.retrain import train_and_evaluate
from nas_core.data.loader import make_loader


@pytest.mark.parametrize("depth", [1, 3])
def test_plain_unet_keeps_any_input_size(depth):
    net = PlainUNet(in_channels=1, num_classes=3, channels=4, depth=depth)
    assert net(torch.randn(2, 1, 37, 50)).shape == (2, 3, 37, 50)


def test_plain_unet_learns_a_fixed_batch():
    torch.manual_seed(0)
    ds = build_datasets(DataConfig(num_tiles=24, tile_size=32, augment=False), seed=0)["train_w"]
    x = torch.stack([ds[i][0] for i in range(4)])
    y = torch.stack([ds[i][1] for i in range(4)])
    net = PlainUNet(3, 2, channels=4, depth=2)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    with torch.no_grad():
        first = float(segmentation_loss(net(x), y))
    for _ in range(40):
        opt.zero_grad()
        loss = segmentation_loss(net(x), y)
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.7 * first


class _Oracle(nn.Module):
    """Returns the ground truth as logits: evaluation of a perfect predictor must be perfect."""

    def __init__(self, masks):
        super().__init__()
        self.masks = masks
        self.i = 0
        self.w = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        m = self.masks[self.i:self.i + x.shape[0]]
        self.i += x.shape[0]
        return torch.stack([(m == 0).float(), (m == 1).float()], 1) * 20 + self.w


def test_evaluate_scores_a_perfect_prediction_as_perfect():
    test = build_datasets(DataConfig(num_tiles=30, tile_size=32), seed=0)["test"]
    masks = torch.stack([test[i][1] for i in range(len(test))])
    r = evaluate(_Oracle(masks), make_loader(test, 4, shuffle=False, seed=0), 2, "cpu")
    assert r["miou"] == pytest.approx(1.0)
    assert all(v == pytest.approx(1.0) for v in r["ap"].values())
    assert r["confusion"].sum() == masks.numel()


def test_train_and_evaluate_writes_metric_and_evaluation_events(tmp_path):
    ds = build_datasets(DataConfig(num_tiles=24, tile_size=32), seed=0)
    torch.manual_seed(0)
    with EventLog(tmp_path / "events.jsonl", fsync=False) as ev:
        r = train_and_evaluate(PlainUNet(3, 2, channels=4, depth=2), ds, epochs=3, lr=0.05, events=ev,
                               batch_size=4, device="cpu", max_steps=5, label="plain-unet")
    assert r["steps"] == 5 and r["stopped_by"] == "max_steps"
    assert 0 <= r["miou"] <= 1 and set(r["ap"]) == {0.25, 0.5, 0.75}
    events = [e for _, e in read_events(tmp_path / "events.jsonl")]
    kinds = [e["kind"] for e in events]
    assert kinds.count("evaluation") == 1 and kinds.count("metric") == len(r["history"]) >= 1
    ev = events[-1]["payload"]
    assert ev["label"] == "plain-unet" and ev["split"] == "test" and ev["steps"] == 5
    assert set(ev["ap"]) == {"0.25", "0.5", "0.75"}
    assert np.array(ev["pixel"]["confusion"]).sum() == len(ds["test"]) * 32 * 32
    curve = ev["curves"]["1"]["0.5"]
    assert len(curve["precision"]) == len(curve["recall"]) <= 101
    assert curve["num_gt"] > 0
    rec = [v for v in curve["recall"] if v is not None]
    assert rec == sorted(rec)
    json.dumps(events)  # NaN never reaches the log: it would not be valid JSON


def test_budget_by_time(tmp_path):
    ds = build_datasets(DataConfig(num_tiles=24, tile_size=32), seed=0)
    r = train_and_evaluate(PlainUNet(3, 2, channels=4, depth=1), ds, epochs=50, lr=0.05, batch_size=4,
                           device="cpu", time_budget_s=0.5)
    assert r["stopped_by"] == "time_budget" and len(r["history"]) < 50


def test_empty_test_split_is_a_clear_error():
    ds = build_datasets(DataConfig(num_tiles=24, tile_size=32), seed=0)
    ds["test"] = torch.utils.data.Subset(ds["test"], [])
    with pytest.raises(ValueError, match="'test' split is empty"):
        train_and_evaluate(PlainUNet(3, 2, 4, 1), ds, epochs=1, lr=0.1, device="cpu")
