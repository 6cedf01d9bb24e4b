"""Dataset distillation: matching moves the synthetic set toward the real class means; bad k; NaN; the grid."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.errors import ConfigError
from harness.techniques.dataset_distillation import (
    DatasetDistillationConfig,
    distribution_matching,
    per_class_indices,
    write_grid_png,
)
from model_zoo import get_model
from model_zoo.datasets import digits_splits


def test_per_class_indices_take_k_of_each_class_and_refuse_more_than_a_class_holds():
    targets = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    idx = per_class_indices(targets, 2, seed=0)
    assert sorted(np.bincount(targets[idx]).tolist()) == [2, 2, 2]
    with pytest.raises(ConfigError, match="`images_per_class` 3 is more than class 1 holds in the training split"):
        per_class_indices(targets, 3, seed=0)


def test_matching_changes_the_images_and_keeps_labels():
    train = digits_splits().train
    build = get_model("digits_cnn").build
    start, labels0 = distribution_matching(build, train, k=1, iterations=1, lr=1e-9, seed=0)
    moved, labels = distribution_matching(build, train, k=1, iterations=5, lr=1.0, seed=0)
    assert moved.shape == (10, 1, 8, 8) and (labels == labels0).all() and sorted(labels.tolist()) == list(range(10))
    assert not torch.allclose(moved, start)


def test_a_diverging_learning_rate_is_refused_naming_it():
    train = digits_splits().train
    with pytest.raises(ConfigError, match="the synthetic set holds NaN or Inf"):
        distribution_matching(get_model("digits_cnn").build, train, k=1, iterations=3, lr=1e30, seed=0)


def test_the_grid_is_a_png_with_a_row_per_class_and_dark_ink(tmp_path):
    from PIL import Image

    path = tmp_path / "grid.png"
    images = torch.rand(6, 1, 8, 8)
    write_grid_png(images, np.array([0, 1, 2, 0, 1, 2]), path, scale=4)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    grid = np.asarray(Image.open(path))
    assert grid.shape == (3 * 9 * 4, 2 * 9 * 4)  # 3 classes × 2 images, 8 px + a 1-px gap, each pixel 4 × 4
    second_of_class_1 = images[4, 0, 0, 0]  # row 1, column 1: the class-1 images are 1 and 4
    assert grid[9 * 4, 9 * 4] == int(255 * (1 - second_of_class_1))


@pytest.mark.parametrize(("field", "value", "message"), [
    ("images_per_class", 0, "`images_per_class` must be a whole number >= 1"),
    ("iterations", 0, "`iterations` must be a whole number >= 1"),
    ("lr", 0.0, r"`lr` must be in \(0, 100\]"),
])
def test_bad_values_name_the_field(field, value, message):
    with pytest.raises(ConfigError, match=message):
        DatasetDistillationConfig(name="dd", **{field: value})


def test_only_image_models_are_condensed():
    from model_zoo.traits import traits_of

    spec = get_model("cancer_mlp")
    assert DatasetDistillationConfig(name="dd").not_applicable(spec, traits_of(spec)) == "needs image inputs"
