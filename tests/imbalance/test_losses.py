"""Losses and class weights: exact identities with the reference formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.utils.class_weight import compute_class_weight

from mekit.errors import ConfigError, DataError
from mekit.imbalance import LOSSES, build_loss, class_priors, class_weights

Y_TRAIN = np.repeat([0, 1, 2, 3], [40, 15, 8, 3])


def batch(seed: int = 0, n: int = 16, k: int = 4):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, k, generator=g) * 2, torch.randint(0, k, (n,), generator=g)


def test_balanced_weights_match_sklearn():
    for y in (Y_TRAIN, np.array(["happy", "sad", "sad", "surprise", "sad", "happy", "sad"])):
        classes = np.unique(y)
        np.testing.assert_allclose(class_weights(y, "balanced"),
                                   compute_class_weight("balanced", classes=classes, y=y))


def test_class_weights_other_modes():
    np.testing.assert_array_equal(class_weights(Y_TRAIN, None), np.ones(4))
    np.testing.assert_array_equal(class_weights(Y_TRAIN, {3: 5.0}), [1.0, 1.0, 1.0, 5.0])
    with pytest.raises(ConfigError, match="unknown classes"):
        class_weights(Y_TRAIN, {9: 2.0})
    with pytest.raises(ConfigError, match="'inverse'"):
        class_weights(Y_TRAIN, "inverse")
    with pytest.raises(DataError, match="outside the class list"):
        class_weights(Y_TRAIN, "balanced", classes=[0, 1, 2])


def test_a_class_missing_from_training_gets_weight_zero_and_a_finite_prior():
    y = np.repeat([0, 1], [6, 2])  # class 2 only occurs in the held-out subject
    w = class_weights(y, "balanced", classes=[0, 1, 2])
    np.testing.assert_allclose(w, [8 / (3 * 6), 8 / (3 * 2), 0.0])
    p = class_priors(y, classes=[0, 1, 2])
    np.testing.assert_allclose(p, [6 / 9, 2 / 9, 1 / 9])


def test_weights_depend_only_on_the_training_labels_given():
    # adding held-out labels must change nothing unless the caller passes them
    w_train = class_weights(Y_TRAIN, "balanced")
    held_out = np.repeat([3], 50)
    assert not np.allclose(class_weights(np.concatenate([Y_TRAIN, held_out]), "balanced"), w_train)
    np.testing.assert_array_equal(class_weights(Y_TRAIN, "balanced"), w_train)


def test_cross_entropy_with_balanced_weights_and_smoothing():
    loss = build_loss("cross_entropy", Y_TRAIN, weight="balanced", label_smoothing=0.1)
    logits, target = batch()
    w = torch.tensor(compute_class_weight("balanced", classes=np.arange(4), y=Y_TRAIN), dtype=torch.float32)
    torch.testing.assert_close(loss(logits, target), F.cross_entropy(logits, target, weight=w, label_smoothing=0.1))


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_focal_with_gamma_zero_is_weighted_cross_entropy(smoothing):
    logits, target = batch(1)
    focal = build_loss("focal", Y_TRAIN, gamma=0.0, alpha="balanced", label_smoothing=smoothing)
    ce = build_loss("cross_entropy", Y_TRAIN, weight="balanced", label_smoothing=smoothing)
    torch.testing.assert_close(focal(logits, target), ce(logits, target))


def test_focal_matches_the_formula_and_down_weights_easy_examples():
    logits = torch.tensor([[4.0, 0.0, 0.0], [0.2, 0.0, 0.0]])
    target = torch.tensor([0, 0])
    focal = build_loss("focal", gamma=2.0, alpha=[0.5, 1.0, 1.0], num_classes=3)
    focal.reduction = "none"
    p = logits.softmax(dim=1)[:, 0]
    expected = -0.5 * (1 - p) ** 2 * torch.log(p)
    torch.testing.assert_close(focal(logits, target), expected)
    ce = F.cross_entropy(logits, target, reduction="none")
    ratio = focal(logits, target) / ce
    assert ratio[0] < 0.01 < ratio[1]  # the confident (easy) example is suppressed far more


def test_logit_adjustment_shifts_logits_by_tau_log_prior():
    tau = 1.5
    loss = build_loss("logit_adjusted", Y_TRAIN, tau=tau)
    prior = np.bincount(Y_TRAIN) / len(Y_TRAIN)
    np.testing.assert_allclose(loss.adjustment.numpy(), tau * np.log(prior), rtol=1e-6)
    logits, target = batch(2)
    shifted = logits + torch.tensor(tau * np.log(prior), dtype=torch.float32)
    torch.testing.assert_close(loss(logits, target), F.cross_entropy(shifted, target))
    torch.testing.assert_close(loss.adjust_logits(shifted), logits)
    # rare classes are pushed down in training, so the model must raise their raw logits
    assert loss.adjustment[3] < loss.adjustment[0]
    assert math.isclose(float(build_loss("logit_adjusted", Y_TRAIN, tau=0.0)(logits, target)),
                        float(F.cross_entropy(logits, target)), rel_tol=1e-6)


@pytest.mark.parametrize("name", LOSSES.names())
def test_every_loss_trains(name):
    logits, target = batch(3)
    logits.requires_grad_(True)
    loss = build_loss(name, Y_TRAIN, num_classes=4)
    value = loss(logits, target)
    value.backward()
    assert value.dim() == 0 and torch.isfinite(value) and value > 0
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def test_loss_configuration_errors():
    with pytest.raises(ConfigError, match="training labels"):
        build_loss("logit_adjusted")
    with pytest.raises(ConfigError, match="'balanced'.*training labels"):
        build_loss("cross_entropy", weight="balanced")
    with pytest.raises(ConfigError, match="focal.*gama"):
        build_loss("focal", Y_TRAIN, gama=2)
    with pytest.raises(DataError, match="integer class indices"):
        build_loss("logit_adjusted", np.array(["a", "b"]))
    with pytest.raises(ConfigError, match="gamma must be >= 0"):
        build_loss("focal", Y_TRAIN, gamma=-1.0)
