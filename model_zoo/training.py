"""Deterministic training of zoo models, and loading of reference models through the on-disk cache.

A reference is trained once per key (everything that changes its weights) and reused across runs; a cache
entry that does not load cleanly into a freshly built model is rebuilt, never trusted.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from harness.cache import Cache, make_key, source_hash
from harness.errors import CacheError, ConfigError
from harness.techniques.base import Reference
from model_zoo.datasets import splits_fingerprint
from model_zoo.spec import ModelSpec, Split, Splits, TrainRecipe

logger = logging.getLogger(__name__)

WEIGHTS_NAMESPACE = "weights"
EVAL_BATCH = 256
# Training pins the intra-op thread count so that weights do not depend on the caller's setting; one thread is
# also the fastest for the zoo's small models, and close for the resnet.
TRAIN_THREADS = 1

_MEMO: dict[tuple[str, str, str], Reference] = {}


@contextlib.contextmanager
def reproducible(seed: int, threads: int = TRAIN_THREADS) -> Iterator[None]:
    """Seed torch, numpy and ``random``, ask for deterministic kernels and pin the intra-op thread count.

    Float reductions split over a different number of threads round differently, so weights would depend on the
    caller's thread setting; everything is restored on exit, leaving the caller's state as it was.
    """
    prev_threads = torch.get_num_threads()
    np_state = np.random.get_state()
    py_state = random.getstate()
    det_enabled = torch.are_deterministic_algorithms_enabled()
    det_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        np.random.seed(seed)
        random.seed(seed)
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.set_num_threads(threads)
        try:
            yield
        finally:
            torch.set_num_threads(prev_threads)
            torch.use_deterministic_algorithms(det_enabled, warn_only=det_warn_only)
            np.random.set_state(np_state)
            random.setstate(py_state)


def predict(module: nn.Module, split: Split, batch_size: int = EVAL_BATCH) -> torch.Tensor:
    """The module's outputs on every item of ``split``, in order, computed in batches without gradients."""
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(split), batch_size):
            outputs.append(module(*split.batch(start, start + batch_size)))
    return torch.cat(outputs)


def accuracy(module: nn.Module, split: Split) -> float:
    """Top-1 accuracy of a classifier on a labelled split (the module's train/eval mode is left as it is)."""
    if split.targets is None:
        raise ValueError("accuracy needs a split with targets")
    pred = predict(module, split).argmax(dim=1).numpy()
    return float((pred == split.targets).mean())


def train(spec: ModelSpec, *, recipe: TrainRecipe | None = None, splits: Splits | None = None) -> nn.Module:
    """Train ``spec``'s model from scratch with its recipe (or ``recipe``) on its data (or ``splits``).

    AdamW, cross-entropy, a fixed number of epochs, shuffling from a seeded generator: the same inputs give the
    same weights on the same machine. Returns the model in eval mode.
    """
    recipe = recipe if recipe is not None else spec.recipe
    if recipe is None:
        raise ConfigError(f"model {spec.name!r} has no training recipe (it is pretrained); load it instead")
    splits = splits if splits is not None else spec.data()
    train_split = splits.train
    if train_split.targets is None:
        raise ConfigError(f"model {spec.name!r}: training needs a train split with targets")
    targets = torch.as_tensor(train_split.targets, dtype=torch.int64)
    n = len(train_split)
    started = time.perf_counter()
    with reproducible(recipe.seed):
        model = spec.build()
        generator = torch.Generator().manual_seed(recipe.seed)
        optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
        loss_fn = nn.CrossEntropyLoss()
        for epoch in range(recipe.epochs):
            model.train()
            order = torch.randperm(n, generator=generator)
            total = 0.0
            for start in range(0, n, recipe.batch_size):
                idx = order[start : start + recipe.batch_size]
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(model(*(t[idx] for t in train_split.inputs)), targets[idx])
                loss.backward()
                optimizer.step()
                total += loss.item() * len(idx)
            if logger.isEnabledFor(logging.DEBUG):
                model.eval()
                val_acc = accuracy(model, splits.val) if splits.val.targets is not None else float("nan")
                logger.debug(
                    "%s epoch %d/%d: loss %.4f, val accuracy %.4f",
                    spec.name,
                    epoch + 1,
                    recipe.epochs,
                    total / n,
                    val_acc,
                )
    model.eval()
    logger.info("trained %s in %.1f s", spec.name, time.perf_counter() - started)
    return model


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
        weights = {"recipe": spec.recipe.to_dict(), "training": source_hash(sys.modules[__name__])}
    return make_key(
        spec.name, spec.version, source_hash(spec.build), weights, torch.__version__, splits_fingerprint(splits)
    )


def _load_weights(spec: ModelSpec, path: Path) -> nn.Module:
    """A freshly built model with the weights at ``path``; any mismatch or non-finite value is a CacheError."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CacheError(f"{path} does not hold a state_dict of tensors")
    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CacheError(f"{path}: {name} holds non-finite values")
    with reproducible(0):
        model = spec.build()
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CacheError(f"{path} does not fit {spec.name}: {str(exc).splitlines()[0]}") from exc
    return model.eval()


def _trained_module(spec: ModelSpec, key: str, cache: Cache) -> nn.Module:
    path = cache.path(WEIGHTS_NAMESPACE, key, ".pt")
    loaded: list[nn.Module] = []

    def create(tmp: Path) -> None:
        logger.info("no usable cached weights for %s at %s; training", spec.name, path)
        torch.save(train(spec).state_dict(), tmp)

    def validate(candidate: Path) -> None:
        loaded[:] = [_load_weights(spec, candidate)]

    cache.get_or_create(path, create, validate)
    return loaded[-1]


def load_reference(spec: ModelSpec, cache: Cache) -> Reference:
    """The fp32 reference model of ``spec`` in eval mode, with its key and data.

    Trained models come from the weights cache (trained and stored on a miss); pretrained ones are built
    directly. Loaded once per process; each call returns its own copy of the module, so a technique that
    changes the module in place cannot corrupt the reference other cases see.
    """
    splits = spec.data()
    key = reference_key(spec, splits)
    memo_key = (spec.name, str(Path(cache.root).resolve()), key)
    ref = _MEMO.get(memo_key)
    if ref is None:
        started = time.perf_counter()
        if spec.recipe is None:
            with reproducible(0):
                module = spec.build()
        else:
            module = _trained_module(spec, key, cache)
        module = module.float().eval()
        ref = Reference(spec=spec, module=module, key=key, splits=splits)
        _MEMO[memo_key] = ref
        logger.info("reference %s (key %s) ready in %.1f s", spec.name, key, time.perf_counter() - started)
    return dataclasses.replace(ref, module=copy.deepcopy(ref.module))


def clear_memo() -> None:
    """Forget the references loaded in this process (the next load goes to the cache or trains again)."""
    _MEMO.clear()
