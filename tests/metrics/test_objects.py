"""Object matching, PR curves and AP against hand-computed cases and scikit-learn."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from sklearn import metrics as skm

from nas_core.metrics import (
    ObjectAccumulator, average_precision, connected_components, match_objects, precision_recall_curve,
)


def _box(mask, y0, x0, y1, x1):
    mask[y0:y1, x0:x1] = True


def test_components_use_8_connectivity():
    m = np.zeros((5, 5), bool)
    m[0, 0] = m[1, 1] = True  # diagonal touch: one object
    m[4, 4] = True
    _, n = connected_components(m)
    assert n == 2


def test_match_hand_computed():
    gt = np.zeros((20, 20), bool)
    _box(gt, 0, 0, 4, 4)       # object A, 16 px
    _box(gt, 10, 10, 14, 14)   # object B, 16 px
    pred = np.zeros_like(gt)
    _box(pred, 0, 0, 4, 2)     # half of A: IoU 8/16 = 0.5
    _box(pred, 10, 10, 14, 14)  # exactly B
    _box(pred, 0, 16, 2, 20)    # false positive
    prob = np.zeros(gt.shape)
    prob[0:4, 0:2] = 0.9
    prob[10:14, 10:14] = 0.6
    prob[0:2, 16:20] = 0.7
    m = match_objects(pred, prob, gt, (0.25, 0.5, 0.75))
    assert m["num_gt"] == 2
    assert sorted(m["scores"].round(3).tolist()) == [0.6, 0.7, 0.9]
    by_score = {round(s, 3): i for i, s in enumerate(m["scores"])}
    a, b, fp = by_score[0.9], by_score[0.6], by_score[0.7]
    assert m["tp"][0.5][a] and m["tp"][0.5][b] and not m["tp"][0.5][fp]
    assert not m["tp"][0.75][a] and m["tp"][0.75][b]
    # PR at IoU 0.5, descending score: A (tp), fp, B (tp)
    p, r, th = precision_recall_curve(m["scores"], m["tp"][0.5], m["num_gt"])
    np.testing.assert_allclose(p, [1, 0.5, 2 / 3])
    np.testing.assert_allclose(r, [0.5, 0.5, 1.0])
    np.testing.assert_allclose(th, [0.9, 0.7, 0.6])
    # interpolated: 0.5*1 + 0.5*(2/3); plain step sum: 0.5*1 + 0 + 0.5*(2/3) too
    assert average_precision(p, r) == pytest.approx(0.5 + 1 / 3)


def test_one_to_one_matching():
    gt = np.zeros((10, 10), bool)
    _box(gt, 0, 0, 4, 4)
    pred = np.zeros_like(gt)
    _box(pred, 0, 0, 4, 2)
    _box(pred, 0, 3, 4, 4)  # second piece of the same object cannot match it again
    m = match_objects(pred, pred.astype(float), gt, (0.25,))
    assert m["tp"][0.25].sum() == 1


def test_no_ground_truth_and_no_predictions():
    empty = np.zeros((8, 8), bool)
    acc = ObjectAccumulator()
    acc.add(empty, empty.astype(float), empty)
    assert math.isnan(acc.result()[0.5]["ap"])
    gt = empty.copy()
    gt[2:4, 2:4] = True
    acc = ObjectAccumulator()
    acc.add(empty, empty.astype(float), gt)
    assert acc.result()[0.5]["ap"] == 0.0


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 40), st.integers(0, 2**31 - 1))
def test_pr_matches_sklearn_when_every_object_is_found(n, seed):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 10, n) / 10  # ties on purpose
    tp = rng.random(n) < 0.6
    if not tp.any():
        tp[0] = True
    p, r, th = precision_recall_curve(scores, tp, int(tp.sum()))
    sp, sr, sth = skm.precision_recall_curve(tp, scores)
    # scikit-learn: increasing threshold with a final (1, 0) point; it also stops at full recall.
    k = len(sth)
    np.testing.assert_allclose(p[::-1][-k:], sp[:-1][-k:])
    np.testing.assert_allclose(r[::-1][-k:], sr[:-1][-k:])
    assert average_precision(p, r, interpolate=False) == pytest.approx(skm.average_precision_score(tp, scores))
    assert average_precision(p, r, interpolate=True) >= average_precision(p, r, interpolate=False) - 1e-12


def test_missed_objects_cap_recall():
    p, r, _ = precision_recall_curve([0.9, 0.8], [True, True], num_gt=4)
    assert r[-1] == 0.5
    assert average_precision(p, r) == pytest.approx(0.5)
