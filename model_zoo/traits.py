"""Traits: what a model is, as techniques see it — its task, what it reads, whether it has labels, a recipe,
convolutions, a student, a search space. Techniques declare which traits they need; they never name a model.

Traits come from what a :class:`~model_zoo.spec.ModelSpec` declares, and where it declares nothing, from the model
itself: the input kind from ``example_inputs`` (integer ids are tokens, 4-D floats images, 2-D floats tables),
convolutions from the modules an image model builds.
"""

from __future__ import annotations

import contextlib
import dataclasses

import torch
from torch import nn

from harness.errors import ConfigError, ModelError, one_line
from model_zoo.spec import InputKind, ModelSpec, Task
from model_zoo.students import STUDENTS

# Each trait a technique may need, and how a message names it when a model lacks it.
NEEDS = {
    "classification": "a classification task",
    "labels": "class labels",
    "image": "image inputs",
    "tabular": "tabular inputs",
    "tokens": "token-id inputs",
    "trainable": "a training recipe",
    "conv": "convolutions",
    "student": "a student (ModelSpec.student, a registered student or a build_variant)",
    "search_space": "a search space or a training recipe to search around",
    "heavy": f"at least {10e6:,.0f} multiply-accumulates a call",
    "light": f"fewer than {10e6:,.0f} multiply-accumulates a call",
}
# A call this heavy spends its time computing, not in its fixed overhead, so a smaller model is faster on a CPU:
# speed claims are made only above it (the zoo's 8x8 models measured 1.0-1.6x for half their channels).
HEAVY_MACS = 10e6
CONV_MODULES = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclasses.dataclass(frozen=True)
class Traits:
    """A model's traits; ``student`` and ``search_space`` say where the student or the space comes from."""

    task: Task
    input_kind: InputKind
    trainable: bool
    conv: bool
    student: str | None  # "declared", "registered", "half-width variant" or None
    search_space: str | None  # "declared", "default around the recipe" or None
    macs: float | None = None  # multiply-accumulates of one batch-1 call (trainable models only)
    layers: int | None = None  # Linear and convolution modules (trainable models only)
    known: bool = True  # False: the model could not be looked at (its cases then fail with its one-line error)

    @property
    def names(self) -> frozenset[str]:
        out = {self.task.value, self.input_kind.value}
        if self.task is Task.CLASSIFICATION:
            out.add("labels")
        for name in ("trainable", "conv", "student", "search_space"):
            if getattr(self, name):
                out.add(name)
        if self.macs is not None:
            out.add("heavy" if self.macs >= HEAVY_MACS else "light")
        return frozenset(out)

    def missing(self, required: tuple[str, ...]) -> str | None:
        """Why a technique needing ``required`` does not apply (``needs image inputs``), or None."""
        lacking = [name for name in required if name not in self.names]
        if not lacking or not self.known:
            return None
        return "needs " + " and ".join(NEEDS.get(name, name) for name in lacking)


def unknown(spec: ModelSpec) -> Traits:
    """The traits of a model that could not be looked at: every technique is tried, and its cases fail with the
    model's own one-line error."""
    return Traits(spec.task, spec.input_kind or InputKind.TABULAR, spec.recipe is not None, False, None, None,
                  known=False)


def infer_input_kind(spec: ModelSpec) -> InputKind:
    """The declared input kind, else the one ``example_inputs(2)`` shows; an unclear shape is a ConfigError."""
    if spec.input_kind is not None:
        return spec.input_kind
    try:
        first = spec.example_inputs(2)[0]
    except Exception as exc:
        raise ModelError(f"model {spec.name!r}: example_inputs failed: {one_line(exc)}") from exc
    if not isinstance(first, torch.Tensor):
        raise ConfigError(f"model {spec.name!r}: example_inputs must return a tuple of tensors, got "
                          f"{type(first).__name__}")
    if not first.is_floating_point():
        return InputKind.TOKENS
    if first.ndim == 4:
        return InputKind.IMAGE
    if first.ndim == 2:
        return InputKind.TABULAR
    raise ConfigError(f"model {spec.name!r}: cannot tell its input kind from a {first.ndim}-D float input of shape "
                      f"{tuple(first.shape)}; declare ModelSpec(input_kind=InputKind.IMAGE|TABULAR|TOKENS)")


def count_macs(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> float:
    """Multiply-accumulates of one call, counted by torch's own FLOP counter (a MAC is two FLOPs)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module.eval()(*inputs)
    return counter.get_total_flops() / 2


def _built(spec: ModelSpec) -> nn.Module:
    try:
        return spec.build()
    except Exception as exc:
        raise ModelError(f"model {spec.name!r}: build failed: {one_line(exc)}") from exc


def traits_of(spec: ModelSpec) -> Traits:
    """The traits of ``spec``. A trainable model is built once, untrained, to count its work and look for
    convolutions; a pretrained one (large, slow to load) is trusted to declare its ``tags``."""
    kind = infer_input_kind(spec)
    conv, macs, layers = "conv" in spec.tags, None, None
    if spec.recipe is not None:
        module = _built(spec)
        conv = conv or any(isinstance(m, CONV_MODULES) for m in module.modules())
        layers = sum(isinstance(m, (nn.Linear, *CONV_MODULES)) for m in module.modules())
        with contextlib.suppress(Exception):  # a model that cannot run its own example fails in its cases, by name
            macs = count_macs(module, spec.example_inputs(1))
    if spec.student is not None:
        student: str | None = "declared"
    elif spec.name in STUDENTS:
        student = "registered"
    elif spec.build_variant is not None:
        student = "half-width variant"
    else:
        student = None
    if spec.search_space is not None:
        space: str | None = "declared"
    elif spec.recipe is not None:
        space = "default around the recipe"
    else:
        space = None
    return Traits(spec.task, kind, spec.recipe is not None, conv, student, space, macs, layers)
