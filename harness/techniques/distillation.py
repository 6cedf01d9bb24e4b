"""Knowledge distillation (Hinton, Vinyals & Dean 2015): a student the zoo declares for a model learns from the
model's softened outputs, against the same student trained from scratch on the same data, seeds and epochs.

The loss is ``α · T² · KL(softmax(teacher / T) ‖ softmax(student / T)) + (1 − α) · CE(student, labels)``; the
teacher's logits are computed once for the whole training split and looked up per batch. The student is a new
model, so it is measured on every backend against the teacher's fp32 reference: speedup, size, memory, quality.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import nn

from harness.artifact import Artifact
from harness.config import require_range
from harness.core import Expectation
from harness.errors import ConfigError
from harness.techniques.base import Context, register_preset, register_technique
from harness.techniques.training import (
    CONTROL_ARM,
    TECHNIQUE_ARM,
    Arm,
    TrainingConfig,
    TrainingOutcome,
    apply_training,
    seed_mean,
)
from harness.training import Hook, predict
from model_zoo.reference import Reference
from model_zoo.spec import ModelSpec
from model_zoo.students import STUDENTS, student_of
from model_zoo.traits import HEAVY_MACS, count_macs

MAX_STUDENT_SHARE = 0.25  # a declared student has at most a quarter of its teacher's parameters
VARIANT_WIDTH = 0.5  # a model that declares no student is distilled into its build_variant at this width


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, targets: torch.Tensor | None,
                      temperature: float, alpha: float) -> torch.Tensor:
    """Hinton et al.'s loss: the soft term scaled by T² keeps its gradients' size independent of T."""
    soft = nn.functional.kl_div(
        nn.functional.log_softmax(student / temperature, dim=1),
        nn.functional.log_softmax(teacher / temperature, dim=1),
        reduction="batchmean", log_target=True,
    ) * temperature**2
    if targets is None or alpha == 1.0:
        return soft
    return alpha * soft + (1 - alpha) * nn.functional.cross_entropy(student, targets)


class Distill(Hook):
    """Replaces the loss with the distillation loss, against teacher logits computed once for the split, and
    records the soft (teacher) term's share of the loss it optimised: the proof that it acted."""

    name = "distillation"

    def __init__(self, teacher_logits: torch.Tensor, temperature: float, alpha: float) -> None:
        self.teacher_logits, self.temperature, self.alpha = teacher_logits, temperature, alpha
        self._idx: torch.Tensor | None = None
        self.steps, self.share_sum = 0, 0.0

    def indices(self, idx: torch.Tensor) -> None:
        self._idx = idx

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor | None, inputs: tuple[torch.Tensor, ...],
             loss: torch.Tensor | None) -> torch.Tensor:
        assert self._idx is not None
        teacher = self.teacher_logits[self._idx]
        total = distillation_loss(outputs, teacher, targets, self.temperature, self.alpha)
        with torch.no_grad():
            soft = distillation_loss(outputs, teacher, None, self.temperature, 1.0)
            weight = 1.0 if targets is None else self.alpha
            self.share_sum += float(weight * soft / total.clamp(min=1e-12)) if float(total) > 0 else 0.0
        self.steps += 1
        return total

    def figures(self) -> dict[str, float]:
        return {"soft_share": self.share_sum / self.steps if self.steps else 0.0}


def kl_to_teacher(student: nn.Module, teacher_logits: torch.Tensor, split: Any, temperature: float) -> float:
    """Mean KL(teacher ‖ student) of the softened outputs on ``split``: how far a student is from its teacher."""
    logits = predict(student, split)
    return float(nn.functional.kl_div(nn.functional.log_softmax(logits / temperature, dim=1),
                                      nn.functional.log_softmax(teacher_logits / temperature, dim=1),
                                      reduction="batchmean", log_target=True))


def student_builder(spec: ModelSpec) -> tuple[Callable[[], nn.Module], str]:
    """The student to distil ``spec`` into and where it came from: the spec's own, one registered for its name,
    else its ``build_variant`` at half width; a model with none of them is a ConfigError saying how to declare one."""
    if spec.student is not None:
        return spec.student, "declared"
    if spec.name in STUDENTS:
        return student_of(spec.name), "registered"
    if spec.build_variant is not None:
        return functools.partial(spec.build_variant, width=VARIANT_WIDTH), f"build_variant(width={VARIANT_WIDTH})"
    raise ConfigError(f"model {spec.name!r} declares no student; give ModelSpec(student=build_small) or a "
                      "build_variant(width=...)")


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@dataclasses.dataclass(frozen=True)
class DistillationConfig(TrainingConfig):
    """Distil the model into its student (declared, registered, or its build_variant at half width) at
    ``temperature`` with soft-loss weight ``alpha``.

    Contracts — proof that it acted (point): the soft term is part of the loss, and the distilled student ends
    closer to its teacher (KL on the test split) than the scratch student of the same seeds. Decisions on
    intervals over seeds and test items: it beats the scratch student; it is within ``max_teacher_gap`` (absolute
    accuracy) of the teacher; and, from the paired timing rounds, it is faster than the teacher on each backend.
    """

    temperature: float = 4.0
    alpha: float = 0.9
    max_teacher_gap: float = 0.03
    changes_graph: ClassVar[bool] = True
    technique: ClassVar[str] = "distillation"
    report_section: ClassVar[str] = "distillation"

    def validate(self) -> None:
        super().validate()
        if not (isinstance(self.temperature, int | float) and math.isfinite(self.temperature)
                and self.temperature > 0):
            raise ConfigError(f"`temperature` must be > 0, got {self.temperature!r}")
        require_range("alpha", self.alpha, 0.0, 1.0)
        require_range("max_teacher_gap", self.max_teacher_gap, 0.0, 1.0)

    requires: ClassVar[tuple[str, ...]] = ("trainable", "labels", "student")

    def arms(self, reference: Reference, ctx: Context) -> dict[str, Arm]:
        spec = reference.spec
        assert spec.recipe is not None
        build, source = student_builder(spec)
        teacher_params, student_params = _params(reference.module), _params(build())
        if not source.startswith("build_variant") and student_params > MAX_STUDENT_SHARE * teacher_params:
            raise ConfigError(f"the student of {spec.name} has {student_params:,} parameters, more than a quarter "
                              f"of its teacher's {teacher_params:,}")
        if student_params >= teacher_params:
            raise ConfigError(f"the student of {spec.name} ({source}) has {student_params:,} parameters, not fewer "
                              f"than its teacher's {teacher_params:,}")
        logits = predict(reference.module, reference.splits.train)
        hook = lambda seed: [Distill(logits, self.temperature, self.alpha)]  # noqa: E731
        key = {"teacher": reference.weights_digest}
        teacher = reference.module
        return {
            TECHNIQUE_ARM: Arm(build, spec.recipe, reference.splits, hooks=hook, key=key),
            CONTROL_ARM: Arm(build, spec.recipe, reference.splits),
            # The teacher itself, untrained here: "vs_teacher" is then the student's gap to it, seed by seed.
            "teacher": Arm(lambda: copy.deepcopy(teacher), None, reference.splits, key=key),
        }

    def summary(self, outcome: TrainingOutcome) -> dict[str, float]:
        student, teacher = outcome.modules[TECHNIQUE_ARM][0], outcome.modules["teacher"][0]
        test = outcome.test_split
        teacher_logits = predict(teacher, test)
        kl = [kl_to_teacher(m, teacher_logits, test, self.temperature) for m in outcome.modules[TECHNIQUE_ARM]]
        kl_scratch = [kl_to_teacher(m, teacher_logits, test, self.temperature) for m in outcome.modules[CONTROL_ARM]]
        mean_kl, mean_scratch = sum(kl) / len(kl), sum(kl_scratch) / len(kl_scratch)
        teacher_macs = count_macs(teacher, tuple(t[:1] for t in test.inputs))
        return {
            "teacher_macs": teacher_macs,
            "teacher_heavy": float(teacher_macs >= HEAVY_MACS),
            "params_share": _params(student) / _params(teacher),
            "soft_share": seed_mean(outcome.arms[TECHNIQUE_ARM].stats, "soft_share"),
            "kl_to_teacher": mean_kl,
            "control_kl_to_teacher": mean_scratch,
            "kl_ratio": mean_kl / mean_scratch if mean_scratch > 0 else math.nan,
        }

    def expectations(self) -> list[Expectation]:
        return [
            Expectation("teacher_in_loss", "training.soft_share", ">", 0.0),
            Expectation("closer_to_teacher", "training.kl_ratio", "<", 1.0),
            Expectation("beats_scratch", "training.effect.mean", ">", 0.0, decision="interval", unit="seeds"),
            Expectation("near_teacher", "training.vs_teacher.mean", ">=", -self.max_teacher_gap,
                        decision="interval", unit="seeds"),
            Expectation("smaller_than_teacher", "training.params_share", "<", 1.0),
            Expectation("faster_than_teacher", "speedup", ">", 1.0, decision="interval", unit="timing rounds",
                        given=("training.teacher_heavy", "the teacher's call is light: its fixed overhead, not "
                               "compute, sets its latency, so a smaller student need not be faster")),
        ]


@register_technique(DistillationConfig)
def apply_distillation(reference: Reference, config: DistillationConfig, ctx: Context) -> Artifact:
    """The distilled student of the first seed, saying in its details which student it is."""
    artifact = apply_training(reference, config, ctx)
    artifact.details["student"] = student_builder(reference.spec)[1]
    return artifact

SUITE = "distillation"
register_preset(SUITE, DistillationConfig(name="kd_t4_a0.9"))
