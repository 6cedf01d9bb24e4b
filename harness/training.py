"""The one training loop the harness owns, with hooks where training-time techniques change it.

Techniques do not write loops: early stopping decides at each epoch's end, clipping acts after ``backward()``,
augmentation transforms a batch, distillation replaces the loss, pruning keeps its masks. The loop only orders
torch's own pieces (optimizers, ``clip_grad_norm_``...) and records what happened in :class:`TrainingStats`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from harness.errors import ConfigError, HookError, ModelError, one_line
from model_zoo.spec import Inputs, Split, Splits, TrainRecipe

logger = logging.getLogger(__name__)

EVAL_BATCH = 256
# Training pins the intra-op thread count so that weights do not depend on the caller's setting; one thread is
# also the fastest for the zoo's small models, and close for the resnet.
TRAIN_THREADS = 1
GRAD_TRACE_POINTS = 400  # gradient-norm traces are kept at this many points at most (bucket maxima)

QualityFn = Callable[[nn.Module, Split], float]


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


def cross_entropy(module: nn.Module, split: Split) -> float:
    """Mean cross-entropy of a classifier on a labelled split."""
    if split.targets is None:
        raise ValueError("cross_entropy needs a split with targets")
    logits = predict(module, split)
    return float(nn.functional.cross_entropy(logits, torch.as_tensor(split.targets, dtype=torch.int64)))


class Hook:
    """A change to how a model is trained. Every method is optional; the defaults change nothing.

    Order within one step: ``indices`` → ``batch`` → forward → ``loss`` → backward → ``after_backward`` →
    optimizer step.
    """

    name: str = "hook"

    def setup(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[nn.Module, torch.optim.Optimizer]:
        return model, optimizer

    def indices(self, idx: torch.Tensor) -> None:
        """Which rows of the training split the coming batch holds (to look up figures computed once a split)."""
        return None

    def batch(self, inputs: Inputs, targets: torch.Tensor | None) -> tuple[Inputs, torch.Tensor | None]:
        return inputs, targets

    def loss(
        self, outputs: torch.Tensor, targets: torch.Tensor | None, inputs: Inputs, loss: torch.Tensor | None
    ) -> torch.Tensor | None:
        """The loss to optimize, given the loss so far (None where the split has no targets)."""
        return loss

    def after_backward(self, model: nn.Module) -> None:
        return None

    def end_epoch(self, epoch: int, stats: TrainingStats, model: nn.Module) -> bool:
        """Called after each epoch's validation (``epoch`` counts from 0); True stops training."""
        return False

    def finish(self, model: nn.Module) -> nn.Module:
        return model

    def figures(self) -> dict[str, float]:
        """What the hook did in this run (steps clipped, batches augmented...), read after ``finish``: the proof
        that a technique acted, recorded in :attr:`TrainingStats.figures`."""
        return {}


@dataclasses.dataclass
class TrainingStats:
    """What one training run did: the figures every trained model records, JSON-able with :meth:`to_dict`."""

    label: str = ""
    wall_s: float = 0.0
    epochs_run: int = 0
    max_epochs: int = 0
    steps: int = 0
    samples_seen: int = 0
    best_epoch: int = -1  # 0-based epoch of the best validation quality (lowest loss without a quality figure)
    stop_reason: str = "max_epochs"  # "max_epochs", "hook:<name>" or "diverged"
    diverged: bool = False  # the training loss became non-finite
    first_loss: float = math.nan  # mean training loss of the first epoch
    train_loss: list[float] = dataclasses.field(default_factory=list)  # per epoch
    val_loss: list[float] = dataclasses.field(default_factory=list)
    val_quality: list[float] = dataclasses.field(default_factory=list)
    grad_norm: list[float] = dataclasses.field(default_factory=list)  # total norm before hooks, per step (bucketed)
    figures: dict[str, float] = dataclasses.field(default_factory=dict)  # what the hooks did (Hook.figures)

    def to_dict(self) -> dict[str, Any]:
        return {k: (_json_float(v) if isinstance(v, float) else [_json_float(x) for x in v] if isinstance(v, list)
                    else {n: _json_float(x) for n, x in v.items()} if isinstance(v, dict) else v)
                for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingStats:
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        for key in ("wall_s", "first_loss"):
            if values.get(key) is None:
                values[key] = math.nan
        for key in ("train_loss", "val_loss", "val_quality", "grad_norm"):
            values[key] = [math.nan if x is None else float(x) for x in values.get(key, [])]
        values["figures"] = {k: math.nan if x is None else float(x) for k, x in (values.get("figures") or {}).items()}
        return cls(**values)


def _json_float(value: float) -> float | None:
    """NaN and Inf have no JSON form: stored as null."""
    return float(value) if math.isfinite(value) else None


def bucket_max(values: Sequence[float], points: int = GRAD_TRACE_POINTS) -> list[float]:
    """``values`` shortened to at most ``points`` by taking each bucket's maximum: spikes survive the shortening."""
    if len(values) <= points:
        return list(values)
    edges = np.linspace(0, len(values), points + 1).astype(int)
    return [float(max(values[a:b])) for a, b in itertools.pairwise(edges) if b > a]


def _optimizer(model: nn.Module, recipe: TrainRecipe) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    raise ConfigError(f"`optimizer` must be one of adamw, sgd; got {recipe.optimizer!r}")


def _call(hook: Hook, method: str, label: str, *args: Any) -> Any:
    try:
        return getattr(hook, method)(*args)
    except Exception as exc:
        where = f"{label}: " if label else ""
        raise HookError(f"{where}hook {hook.name!r} raised in {method}: {one_line(exc)}") from exc


def _total_norm(model: nn.Module) -> float:
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    if not grads:
        return 0.0
    return float(torch.nn.utils.get_total_norm(grads))


def fit(
    model: nn.Module | Callable[[], nn.Module],
    recipe: TrainRecipe,
    splits: Splits,
    hooks: Sequence[Hook] = (),
    *,
    quality: QualityFn | None = None,
    label: str = "",
) -> tuple[nn.Module, TrainingStats]:
    """Train ``model`` (or a model freshly built by ``model()`` under ``recipe.seed``) on ``splits.train``.

    Deterministic for the same inputs on the same machine: seeded build and shuffling, pinned threads. The loss
    is cross-entropy on the split's targets unless a hook's ``loss`` provides it. After each epoch the model is
    scored on ``splits.val`` (validation loss, and ``quality`` — accuracy by default for labelled data). A
    non-finite training loss stops the run as diverged. Returns the model in eval mode and its statistics.
    A hook that raises becomes a :class:`HookError`, a model that cannot run on its data a :class:`ModelError`,
    both naming ``label``.
    """
    train_split = splits.train
    n = len(train_split)
    if n == 0:
        raise ConfigError(f"{label or 'fit'}: the training split is empty; expected at least one training item")
    targets_all = (torch.as_tensor(train_split.targets, dtype=torch.int64)
                   if train_split.targets is not None else None)
    stats = TrainingStats(label=label, max_epochs=recipe.epochs)
    grad_trace: list[float] = []
    started = time.perf_counter()
    with reproducible(recipe.seed):
        if not isinstance(model, nn.Module):
            try:
                model = model()
            except Exception as exc:
                raise ModelError(f"{label or 'model'}: build failed: {one_line(exc)}") from exc
        optimizer = _optimizer(model, recipe)
        for hook in hooks:
            model, optimizer = _call(hook, "setup", label, model, optimizer)
        generator = torch.Generator().manual_seed(recipe.seed)
        loss_fn = nn.CrossEntropyLoss()
        for epoch in range(recipe.epochs):
            model.train()
            order = torch.randperm(n, generator=generator)
            total, seen = 0.0, 0
            for start in range(0, n, recipe.batch_size):
                idx = order[start : start + recipe.batch_size]
                inputs = tuple(t[idx] for t in train_split.inputs)
                targets = targets_all[idx] if targets_all is not None else None
                for hook in hooks:
                    _call(hook, "indices", label, idx)
                    inputs, targets = _call(hook, "batch", label, inputs, targets)
                optimizer.zero_grad(set_to_none=True)
                try:
                    outputs = model(*inputs)
                except Exception as exc:
                    raise ModelError(f"{label or 'model'}: training failed: {one_line(exc)}") from exc
                loss = loss_fn(outputs, targets) if targets is not None and targets.dtype == torch.int64 else None
                for hook in hooks:
                    loss = _call(hook, "loss", label, outputs, targets, inputs, loss)
                if loss is None:
                    raise ConfigError(f"{label or 'fit'}: the split has no class targets and no hook gave a loss")
                value = float(loss.detach())
                if not math.isfinite(value):
                    stats.diverged, stats.stop_reason = True, "diverged"
                    break
                loss.backward()
                grad_trace.append(_total_norm(model))
                for hook in hooks:
                    _call(hook, "after_backward", label, model)
                optimizer.step()
                stats.steps += 1
                total += value * len(idx)
                seen += len(idx)
            stats.samples_seen += seen
            stats.epochs_run = epoch + 1
            stats.train_loss.append(total / seen if seen else math.nan)
            if epoch == 0:
                stats.first_loss = stats.train_loss[0]
            if stats.diverged:
                break
            model.eval()
            _validate(model, splits.val, quality, stats)
            stop = False
            for hook in hooks:
                stop = bool(_call(hook, "end_epoch", label, epoch, stats, model)) or stop
                if stop and stats.stop_reason == "max_epochs":
                    stats.stop_reason = f"hook:{hook.name}"
            if stop:
                break
        model.eval()
        for hook in hooks:
            model = _call(hook, "finish", label, model)
        for hook in hooks:
            stats.figures.update({k: float(v) for k, v in _call(hook, "figures", label).items()})
    if stats.best_epoch < 0:  # a hook that monitors its own figure (early stopping) may have set it
        stats.best_epoch = _best_epoch(stats)
    stats.grad_norm = bucket_max(grad_trace)
    stats.wall_s = time.perf_counter() - started
    logger.info("trained %s: %d/%d epochs in %.1f s (%s)", label or "model", stats.epochs_run, recipe.epochs,
                stats.wall_s, stats.stop_reason)
    return model.eval(), stats


def _validate(model: nn.Module, val: Split, quality: QualityFn | None, stats: TrainingStats) -> None:
    """Validation loss and quality after an epoch. For labelled data both come from one pass over the split
    (accuracy is the default quality): for a few images trained for hundreds of one-step epochs, validation is
    most of the run, and a second pass doubled it."""
    if len(val) == 0:
        stats.val_loss.append(math.nan)
        stats.val_quality.append(math.nan)
        return
    if val.targets is None:
        stats.val_loss.append(math.nan)
        stats.val_quality.append(float(quality(model, val)) if quality is not None else math.nan)
        return
    logits = predict(model, val)
    targets = torch.as_tensor(val.targets, dtype=torch.int64)
    stats.val_loss.append(float(nn.functional.cross_entropy(logits, targets)))
    stats.val_quality.append(float(quality(model, val)) if quality is not None
                             else float((logits.argmax(dim=1) == targets).double().mean()))


def _best_epoch(stats: TrainingStats) -> int:
    if any(math.isfinite(q) for q in stats.val_quality):
        return int(np.nanargmax(np.array(stats.val_quality, dtype=float)))
    if any(math.isfinite(v) for v in stats.val_loss):
        return int(np.nanargmin(np.array(stats.val_loss, dtype=float)))
    return -1
