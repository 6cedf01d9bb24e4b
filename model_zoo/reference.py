"""Reference: a zoo model trained (or loaded) in fp32, the thing every technique starts from."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from harness.artifact import weights_digest

if TYPE_CHECKING:
    from torch import nn

    from harness.training import TrainingStats
    from model_zoo.spec import Inputs, ModelSpec, Splits


@dataclasses.dataclass
class Reference:
    """A zoo model trained (or loaded) in fp32, in eval mode, with the key of its weights and its data.

    ``training`` holds the figures of the run that trained it, where it was trained (None for pretrained models).
    """

    spec: ModelSpec
    module: nn.Module
    key: str
    splits: Splits
    weights_digest: str = ""  # content hash of ``module`` as loaded (harness.artifact.weights_digest)
    training: TrainingStats | None = None

    def __post_init__(self) -> None:
        if not self.weights_digest:  # taken before any technique sees the module
            self.weights_digest = weights_digest(self.module)

    def calibration_inputs(self) -> Inputs:
        """The first ``spec.calibration_size`` items of the training split: techniques never see the test split."""
        n = min(self.spec.calibration_size, len(self.splits.train))
        return self.splits.train.batch(0, n)
