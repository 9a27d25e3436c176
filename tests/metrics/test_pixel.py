"""Pixel metrics against hand-computed cases and scikit-learn."""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from sklearn import metrics as skm

from nas_core.metrics import confusion_matrix, dice, pixel_accuracy, pixel_iou


def test_hand_computed_binary():
    target = np.array([[0, 0, 1, 1]])
    pred = np.array([[0, 1, 1, 0]])
    cm = confusion_matrix(pred, target, 2)
    assert cm.tolist() == [[1, 1], [1, 1]]
    # class 1: tp 1, fp 1, fn 1 -> IoU 1/3, Dice 2/4
    iou = pixel_iou(cm)
    assert iou["per_class"] == pytest.approx([1 / 3, 1 / 3])
    assert dice(cm)["per_class"] == pytest.approx([0.5, 0.5])
    assert pixel_accuracy(cm) == 0.5


def test_absent_class_is_nan_and_left_out_of_mean():
    target = torch.tensor([0, 0, 1])
    pred = torch.tensor([0, 0, 1])
    iou = pixel_iou(pred, target, num_classes=3)
    assert iou["per_class"][:2] == [1.0, 1.0] and math.isnan(iou["per_class"][2])
    assert iou["mean"] == 1.0


def test_ignore_index_and_bad_class():
    target = np.array([0, 1, 255])
    pred = np.array([0, 1, 1])
    assert confusion_matrix(pred, target, 2, ignore_index=255).sum() == 2
    with pytest.raises(ValueError, match="outside 0..1"):
        confusion_matrix(pred, target, 2)
    with pytest.raises(ValueError, match="must match"):
        confusion_matrix(pred[:2], target, 2)


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 5), st.integers(1, 60), st.integers(0, 2**31 - 1))
def test_matches_sklearn(k, n, seed):
    rng = np.random.default_rng(seed)
    target = rng.integers(0, k, n)
    pred = rng.integers(0, k, n)
    labels = list(range(k))
    cm = confusion_matrix(pred, target, k)
    assert (cm == skm.confusion_matrix(target, pred, labels=labels)).all()
    present = np.isin(labels, np.union1d(target, pred))
    ours = np.array(pixel_iou(cm)["per_class"])
    ref = skm.jaccard_score(target, pred, labels=labels, average=None, zero_division=0)
    np.testing.assert_allclose(ours[present], ref[present])
    ref_f1 = skm.f1_score(target, pred, labels=labels, average=None, zero_division=0)
    np.testing.assert_allclose(np.array(dice(cm)["per_class"])[present], ref_f1[present])
    assert pixel_accuracy(cm) == pytest.approx(skm.accuracy_score(target, pred))
