"""A no-op version of each training technique fails its contract: the proof that it acted is measured from the run.

Each test trains a toy twice, in two fresh caches (a cached arm is keyed by the technique's source, which a
monkeypatch does not change): once as written, where the proof contract passes, and once with the technique's
action replaced by a no-op, where the same contract fails.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pytest
import torch

from harness.cache import Cache
from harness.gate import Status, check_contract
from harness.techniques import augmentation, dataset_distillation, distillation, early_stopping, gradient_clipping
from harness.techniques import tuning as tuning_module
from harness.techniques.base import Context, Reference, TechniqueConfig, apply
from harness.techniques.tuning import TuningConfig
from model_zoo.spec import ModelSpec, Split, Splits, Task, TrainRecipe
from tests.techniques.conftest import TinyCNN, trainable_reference
from tests.toy_models import MLP


def verdicts(config: TechniqueConfig, reference: Reference, cache_dir) -> dict[str, Status]:
    artifact = apply(reference, config, Context(Cache(cache_dir), 1))  # a fresh context: nothing memoized
    metrics = artifact.training["metrics"]
    return {v.check: v.status for v in check_contract("toy", metrics, config.expectations())}


def acted_then_noop(config: TechniqueConfig, reference: Reference, tmp_path, check: str,
                    mutate: Callable[[], None]) -> tuple[Status, Status]:
    """The status of ``check`` as written and after ``mutate()`` made the technique a no-op."""
    written = verdicts(config, reference, tmp_path / "written")[check]
    mutate()
    return written, verdicts(config, reference, tmp_path / "noop")[check]


def overfitting_reference() -> Reference:
    """A wide MLP on 40 noisy training rows: its validation loss climbs after a few epochs."""
    x = torch.randn(240, 4, generator=torch.Generator().manual_seed(1))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long().numpy()
    flip = np.random.default_rng(1).random(40) < 0.3
    train_y = np.where(flip, 1 - y[:40], y[:40])
    splits = Splits(Split((x[:40],), train_y), Split((x[40:140],), y[40:140]), Split((x[140:],), y[140:]))
    spec = ModelSpec(name="toy_overfit", task=Task.CLASSIFICATION, build=lambda: MLP(4, 128, 128, 2),
                     data=lambda: splits, example_inputs=lambda n: (x[:n],), quality=None,  # type: ignore[arg-type]
                     recipe=TrainRecipe(epochs=8, lr=1e-2, batch_size=8), input_names=("x",))
    return Reference(spec=spec, module=MLP(4, 128, 128, 2).eval(), key="toy-overfit-v1", splits=splits)


def image_reference() -> Reference:
    """8x8 images of three classes (a bright row, column or diagonal, plus noise), for dataset distillation."""
    g = torch.Generator().manual_seed(0)
    n = 150
    labels = np.arange(n) % 3
    x = 0.3 * torch.rand(n, 1, 8, 8, generator=g)
    for i, c in enumerate(labels):
        if c == 0:
            x[i, 0, 3, :] += 1
        elif c == 1:
            x[i, 0, :, 3] += 1
        else:
            x[i, 0, range(8), range(8)] += 1
    splits = Splits(Split((x[:90],), labels[:90]), Split((x[90:120],), labels[90:120]),
                    Split((x[120:],), labels[120:]))
    spec = ModelSpec(name="toy_images", task=Task.CLASSIFICATION, build=TinyCNN, data=lambda: splits,
                     example_inputs=lambda k: (x[:k],), quality=None,  # type: ignore[arg-type]
                     recipe=TrainRecipe(epochs=3, lr=1e-2, batch_size=16), input_names=("x",))
    return Reference(spec=spec, module=TinyCNN().eval(), key="toy-images-v1", splits=splits)


def test_early_stopping_that_never_stops_fails_epochs_saved(tmp_path, monkeypatch):
    config = early_stopping.EarlyStoppingConfig(name="es", max_epochs=40, patience=3, seeds=(0, 1))
    written, noop = acted_then_noop(
        config, overfitting_reference(), tmp_path, "epochs_saved",
        lambda: monkeypatch.setattr(early_stopping.EarlyStopping, "end_epoch", lambda self, *a: False))
    assert (written, noop) == (Status.PASS, Status.FAIL)


def test_clipping_that_clips_nothing_fails_clipping_acted(tmp_path, monkeypatch):
    config = gradient_clipping.GradientClippingConfig(name="auto", method="autoclip", threshold=10.0,
                                                      regime="converging", seeds=(0,))
    written, noop = acted_then_noop(
        config, trainable_reference(), tmp_path, "clipping_acted",
        lambda: monkeypatch.setattr(gradient_clipping.GradientClipping, "after_backward", lambda self, model: None))
    assert (written, noop) == (Status.PASS, Status.FAIL)


def test_augmentation_that_changes_no_batch_fails_augmentation_acted(tmp_path, monkeypatch):
    config = augmentation.AugmentationConfig(name="noise", augmentations=("noise",), data_fraction=0.5, epochs=3,
                                             seeds=(0,))
    written, noop = acted_then_noop(
        config, trainable_reference(), tmp_path, "augmentation_acted",
        lambda: monkeypatch.setattr(augmentation.Augment, "batch", lambda self, inputs, targets: (inputs, targets)))
    assert (written, noop) == (Status.PASS, Status.FAIL)


@pytest.mark.parametrize("check", ["teacher_in_loss", "closer_to_teacher"])
def test_distillation_whose_loss_ignores_the_teacher_fails_its_proof(tmp_path, monkeypatch, check):
    reference = trainable_reference()
    reference = dataclasses.replace(reference, spec=dataclasses.replace(reference.spec, student=lambda: MLP(4, 3, 2)))
    config = distillation.DistillationConfig(name="kd", seeds=(0,))
    written, noop = acted_then_noop(
        config, reference, tmp_path, check,
        lambda: monkeypatch.setattr(distillation.Distill, "loss", lambda self, outputs, targets, inputs, loss: loss))
    assert (written, noop) == (Status.PASS, Status.FAIL)


def test_dataset_distillation_that_moves_no_image_fails_images_moved(tmp_path, monkeypatch):
    def unmoved(build, train, k, iterations, lr, seed):
        start = dataset_distillation.per_class_indices(train.targets, k, seed)
        return train.inputs[0][torch.from_numpy(start)].clone(), train.targets[start].copy()

    config = dataset_distillation.DatasetDistillationConfig(name="dm", images_per_class=2, iterations=40,
                                                            seeds=(0,))
    written, noop = acted_then_noop(
        config, image_reference(), tmp_path, "images_moved",
        lambda: monkeypatch.setattr(dataset_distillation, "distribution_matching", unmoved))
    assert (written, noop) == (Status.PASS, Status.FAIL)


def test_tuning_whose_search_suggests_nothing_fails_search_moved(tmp_path, monkeypatch):
    config = TuningConfig(name="tpe", n_trials=3, seeds=(0,), pruner="none")
    written, noop = acted_then_noop(
        config, trainable_reference(), tmp_path, "search_moved",
        lambda: monkeypatch.setattr(tuning_module, "suggest", lambda trial, space: {}))
    assert (written, noop) == (Status.PASS, Status.FAIL)
