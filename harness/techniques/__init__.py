"""Optimization techniques; importing this package registers every config, its ``apply`` and its presets.

Every public module of this package is imported here, so a new technique is one new module and nothing else.
"""

import importlib
import pkgutil

from harness.techniques.base import (
    PRESETS,
    TECHNIQUES,
    Context,
    Reference,
    ReportFigure,
    Technique,
    TechniqueConfig,
    apply,
    presets,
    register_preset,
    register_technique,
)
from harness.techniques.reference import REFERENCE, Fp32Config


def _import_modules() -> list[str]:
    """Import every module of this package but the private ones (``_name``): each registers what it defines."""
    names = [info.name for info in pkgutil.iter_modules(__path__, f"{__name__}.")
             if not info.name.rsplit(".", 1)[1].startswith("_")]
    for name in names:
        importlib.import_module(name)
    return names


MODULES = _import_modules()

__all__ = [
    "MODULES", "PRESETS", "REFERENCE", "TECHNIQUES", "Context", "Fp32Config", "Reference", "ReportFigure", "Technique",
    "TechniqueConfig", "apply", "presets", "register_preset", "register_technique",
]
