"""Optimization techniques; importing this package registers every config, its ``apply`` and its presets."""

from harness.techniques import (  # noqa: F401 - imported to register
    augmentation,
    chain,
    dataset_distillation,
    distillation,
    early_stopping,
    gradient_clipping,
    pruning,
    quantization,
    reference,
    searched_int8,
    tuning,
)
from harness.techniques.base import (
    PRESETS,
    TECHNIQUES,
    Context,
    Reference,
    TechniqueConfig,
    apply,
    presets,
    register_preset,
    register_technique,
)
from harness.techniques.reference import REFERENCE, Fp32Config

__all__ = [
    "PRESETS", "REFERENCE", "TECHNIQUES", "Context", "Fp32Config", "Reference", "TechniqueConfig", "apply",
    "presets", "register_preset", "register_technique",
]
