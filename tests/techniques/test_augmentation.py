"""Augmentation: the limited-data subset, what each augmentation does to a batch, and bad names."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.errors import ConfigError
from harness.techniques.augmentation import Augment, AugmentationConfig, limited_splits
from model_zoo import get_model
from model_zoo.datasets import digits_splits


def test_the_limited_split_is_stratified_and_leaves_val_and_test_alone():
    full = digits_splits()
    small = limited_splits(full, 0.1)
    n = len(small.train)
    assert abs(n - round(0.1 * len(full.train))) <= 1
    counts = np.bincount(small.train.targets, minlength=10)
    assert counts.min() >= 9 and counts.max() <= 13
    assert small.test is full.test and small.val is full.val
    assert limited_splits(full, 0.1).train.inputs[0].equal(small.train.inputs[0])  # the same subset every time


def test_affine_moves_images_and_keeps_shapes_and_targets():
    torch.manual_seed(0)
    x = digits_splits().train.inputs[0][:16]
    y = torch.arange(16)
    (moved,), targets = Augment(("shift", "rotate"), 0.125, 10.0, 0.1, 0.0, 0.0).batch((x,), y)
    assert moved.shape == x.shape and targets is y and not torch.allclose(moved, x)


def test_mixup_mixes_inputs_and_its_loss_is_the_mixed_loss():
    torch.manual_seed(0)
    np.random.seed(0)
    hook = Augment(("mixup",), 0.0, 0.0, 0.0, 0.0, 0.4)
    x, y = torch.randn(8, 4), torch.randint(0, 2, (8,))
    (mixed,), _ = hook.batch((x,), y)
    perm, lam = hook._mix
    assert torch.allclose(mixed, lam * x + (1 - lam) * x[perm])
    logits = torch.randn(8, 2)
    ce = torch.nn.functional.cross_entropy
    expected = lam * ce(logits, y) + (1 - lam) * ce(logits, y[perm])
    assert torch.allclose(hook.loss(logits, y, (mixed,), ce(logits, y)), expected)


def test_image_augmentations_do_not_apply_to_tabular_models():
    cfg = AugmentationConfig(name="affine")
    assert cfg.not_applicable(*_spec("cancer_mlp")) == "needs image inputs"
    assert cfg.not_applicable(*_spec("digits_cnn")) is None
    noise = AugmentationConfig(name="n", augmentations=("noise",))
    assert noise.not_applicable(*_spec("minilm")) == "needs a training recipe and class labels and tabular inputs"
    assert noise.not_applicable(*_spec("digits_cnn")) == "needs tabular inputs"
    tokens = AugmentationConfig(name="t", augmentations=("token_dropout",))
    assert tokens.not_applicable(*_spec("cancer_mlp")) == "needs token-id inputs"


def _spec(name):
    from model_zoo.traits import traits_of

    spec = get_model(name)
    return spec, traits_of(spec)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("augmentations", ("shift", "cutout"), "`augmentations` holds unknown 'cutout'"),
    ("augmentations", (), "`augmentations` must name at least one"),
    ("data_fraction", 0.0, r"`data_fraction` must be in \(0, 1\]"),
    ("data_fraction", 1.5, r"`data_fraction` must be in \(0, 1\]"),
    ("seeds", (), "`seeds` must hold at least one seed"),
])
def test_bad_values_name_the_field(field, value, message):
    with pytest.raises(ConfigError, match=message):
        AugmentationConfig(name="aug", **{field: value})
