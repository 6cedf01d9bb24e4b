"""Training zoo models with the harness's loop, and loading reference models through the on-disk cache.

A reference is trained once per key (everything that changes its weights) and reused across runs; a cache
entry that does not load cleanly into a freshly built model is rebuilt, never trusted.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import sys
import time
from collections.abc import MutableMapping
from pathlib import Path

import torch
from torch import nn

from harness import training as harness_training
from harness.cache import Cache, make_key, source_hash
from harness.errors import CacheError, ConfigError, ModelError, one_line
from harness.training import TrainingStats, accuracy, fit, predict, reproducible
from model_zoo.datasets import splits_fingerprint
from model_zoo.reference import Reference
from model_zoo.spec import ModelSpec, Splits, TrainRecipe

logger = logging.getLogger(__name__)

WEIGHTS_NAMESPACE = "weights"

REFERENCES_MEMO = "references"  # the name of the run's memo store of loaded references (harness.context.Memos)

ReferenceMemo = MutableMapping[tuple[str, str, str], Reference]


def train(spec: ModelSpec, *, recipe: TrainRecipe | None = None, splits: Splits | None = None) -> nn.Module:
    """Train ``spec``'s model from scratch with its recipe (or ``recipe``) on its data (or ``splits``).

    The harness's one training loop (:func:`harness.training.fit`) with no hooks: the same inputs give the same
    weights on the same machine. Returns the model in eval mode.
    """
    return train_with_stats(spec, recipe=recipe, splits=splits)[0]


def train_with_stats(
    spec: ModelSpec, *, recipe: TrainRecipe | None = None, splits: Splits | None = None
) -> tuple[nn.Module, TrainingStats]:
    """:func:`train`, with the figures of the training run."""
    recipe = recipe if recipe is not None else spec.recipe
    if recipe is None:
        raise ConfigError(f"model {spec.name!r} has no training recipe (it is pretrained); load it instead")
    splits = splits if splits is not None else spec.data()
    if splits.train.targets is None:
        raise ConfigError(f"model {spec.name!r}: training needs a train split with targets")
    return fit(spec.build, recipe, splits, label=f"model {spec.name!r}")


def _pretrained_identity(spec: ModelSpec) -> str:
    """What identifies a pretrained model's weights: its build callable's ``fingerprint()`` when it has one."""
    fingerprint = getattr(spec.build, "fingerprint", None)
    return str(fingerprint()) if callable(fingerprint) else "no-fingerprint"


def reference_key(spec: ModelSpec, splits: Splits | None = None) -> str:
    """Cache key of a reference: the spec's name and version, its model source, its recipe (or the pretrained
    weights' identity), the training code, the torch version and the content of its data."""
    splits = splits if splits is not None else spec.data()
    if spec.recipe is None:
        weights: object = {"pretrained": _pretrained_identity(spec)}
    else:
        weights = {
            "recipe": spec.recipe.to_dict(),
            "training": [source_hash(sys.modules[__name__]), source_hash(harness_training)],
        }
    return make_key(
        spec.name, spec.version, source_hash(spec.build), weights, torch.__version__, splits_fingerprint(splits)
    )


def _load_weights(spec: ModelSpec, path: Path) -> tuple[nn.Module, TrainingStats | None]:
    """A freshly built model with the weights at ``path`` and its training figures; any mismatch or non-finite
    value is a CacheError."""
    saved = torch.load(path, map_location="cpu", weights_only=True)
    state = saved.get("state_dict") if isinstance(saved, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CacheError(f"{path} does not hold a state_dict of tensors")
    stats = saved.get("training")
    if stats is not None and not isinstance(stats, dict):
        raise CacheError(f"{path}: `training` must be a dict of training figures")
    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CacheError(f"{path}: {name} holds non-finite values")
    with reproducible(0):
        model = spec.build()
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CacheError(f"{path} does not fit {spec.name}: {str(exc).splitlines()[0]}") from exc
    return model.eval(), (TrainingStats.from_dict(stats) if stats is not None else None)


def _trained_module(spec: ModelSpec, key: str, cache: Cache) -> tuple[nn.Module, TrainingStats | None]:
    path = cache.path(WEIGHTS_NAMESPACE, key, ".pt")
    loaded: list[tuple[nn.Module, TrainingStats | None]] = []

    def create(tmp: Path) -> None:
        logger.info("no usable cached weights for %s at %s; training", spec.name, path)
        module, stats = train_with_stats(spec)
        torch.save({"state_dict": module.state_dict(), "training": stats.to_dict()}, tmp)

    def validate(candidate: Path) -> None:
        loaded[:] = [_load_weights(spec, candidate)]

    cache.get_or_create(path, create, validate)
    return loaded[-1]


def load_reference(spec: ModelSpec, cache: Cache, *, memo: ReferenceMemo | None = None) -> Reference:
    """The fp32 reference model of ``spec`` in eval mode, with its key and data.

    Trained models come from the weights cache (trained and stored on a miss); pretrained ones are built
    directly. Loaded once per ``memo`` (the run's store, ``ctx.memos.store(REFERENCES_MEMO)``; without one, every
    call loads again); each call returns its own copy of the module, so a technique that changes the module in
    place cannot corrupt the reference other cases see.
    """
    try:
        splits = spec.data()
    except Exception as exc:
        raise ModelError(f"model {spec.name!r}: data failed: {one_line(exc)}") from exc
    key = reference_key(spec, splits)
    memo_key = (spec.name, str(Path(cache.root).resolve()), key)
    ref = memo.get(memo_key) if memo is not None else None
    if ref is None:
        started = time.perf_counter()
        stats: TrainingStats | None = None
        if spec.recipe is None:
            with reproducible(0):
                try:
                    module = spec.build()
                except Exception as exc:
                    raise ModelError(f"model {spec.name!r}: build failed: {one_line(exc)}") from exc
        else:
            module, stats = _trained_module(spec, key, cache)
        module = module.float().eval()
        ref = Reference(spec=spec, module=module, key=key, splits=splits, training=stats)
        if memo is not None:
            memo[memo_key] = ref
        logger.info("reference %s (key %s) ready in %.1f s", spec.name, key, time.perf_counter() - started)
    return dataclasses.replace(ref, module=copy.deepcopy(ref.module))


__all__ = ["REFERENCES_MEMO", "accuracy", "load_reference", "predict", "reference_key", "reproducible", "train",
           "train_with_stats"]
