"""Knowledge distillation (Hinton, Vinyals & Dean 2015): a student the zoo declares for a model learns from the
model's softened outputs, against the same student trained from scratch on the same data, seeds and epochs.

The loss is ``α · T² · KL(softmax(teacher / T) ‖ softmax(student / T)) + (1 − α) · CE(student, labels)``; the
teacher's logits are computed once for the whole training split and looked up per batch. The student is a new
model, so it is measured on every backend against the teacher's fp32 reference: speedup, size, memory, quality.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import ClassVar

import torch
from torch import nn

from harness.config import require_range
from harness.errors import ConfigError
from harness.gate import Expectation
from harness.techniques.base import Context, register_preset, register_technique
from harness.techniques.training import CONTROL_ARM, TECHNIQUE_ARM, Arm, TrainingConfig, TrainingOutcome, apply_training
from harness.training import Hook, predict
from model_zoo.reference import Reference
from model_zoo.spec import ModelSpec
from model_zoo.students import STUDENTS, student_of

MAX_STUDENT_SHARE = 0.25  # a student has at most a quarter of its teacher's parameters


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
    """Replaces the loss with the distillation loss, against teacher logits computed once for the split."""

    name = "distillation"

    def __init__(self, teacher_logits: torch.Tensor, temperature: float, alpha: float) -> None:
        self.teacher_logits, self.temperature, self.alpha = teacher_logits, temperature, alpha
        self._idx: torch.Tensor | None = None

    def indices(self, idx: torch.Tensor) -> None:
        self._idx = idx

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor | None, inputs: tuple[torch.Tensor, ...],
             loss: torch.Tensor | None) -> torch.Tensor:
        assert self._idx is not None
        return distillation_loss(outputs, self.teacher_logits[self._idx], targets, self.temperature, self.alpha)


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@dataclasses.dataclass(frozen=True)
class DistillationConfig(TrainingConfig):
    """Distil the model into its declared student at ``temperature`` with soft-loss weight ``alpha``.

    Contracts: the distilled student beats the scratch student on the mean over seeds; it is within
    ``max_teacher_gap`` (absolute accuracy) of the teacher; and it is faster than the teacher on each backend.
    """

    temperature: float = 4.0
    alpha: float = 0.9
    max_teacher_gap: float = 0.03
    changes_graph: ClassVar[bool] = True
    technique: ClassVar[str] = "distillation"

    def validate(self) -> None:
        super().validate()
        if not (isinstance(self.temperature, int | float) and math.isfinite(self.temperature)
                and self.temperature > 0):
            raise ConfigError(f"`temperature` must be > 0, got {self.temperature!r}")
        require_range("alpha", self.alpha, 0.0, 1.0)
        require_range("max_teacher_gap", self.max_teacher_gap, 0.0, 1.0)

    def not_applicable(self, spec: ModelSpec) -> str | None:
        reason = super().not_applicable(spec)
        if reason is None and not self.models and spec.name not in STUDENTS:
            return f"{spec.name} declares no student"
        return reason

    def arms(self, reference: Reference, ctx: Context) -> dict[str, Arm]:
        spec = reference.spec
        assert spec.recipe is not None
        build = student_of(spec.name)
        teacher_params, student_params = _params(reference.module), _params(build())
        if student_params > MAX_STUDENT_SHARE * teacher_params:
            raise ConfigError(f"the student of {spec.name} has {student_params:,} parameters, more than a quarter "
                              f"of its teacher's {teacher_params:,}")
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
        return {"params_share": _params(student) / _params(teacher)}

    def expectations(self) -> list[Expectation]:
        return [
            Expectation("beats_scratch", "training.effect.mean", ">", 0.0),
            Expectation("near_teacher", "training.vs_teacher.mean", ">=", -self.max_teacher_gap),
            Expectation("smaller_than_teacher", "training.params_share", "<=", MAX_STUDENT_SHARE),
            Expectation("faster_than_teacher", "speedup", ">", 1.0),
        ]


register_technique(DistillationConfig)(apply_training)

SUITE = "distillation"
register_preset(SUITE, DistillationConfig(name="kd_t4_a0.9", models=("digits_resnet", "digits_cnn", "cancer_mlp")))
