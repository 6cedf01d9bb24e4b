"""Every case the zoo's suites make on some CPU class has a committed baseline entry in some class.

A case that runs only on some CPUs (bf16 where the CPU has bf16 instructions: the AVX2 class skips it as
emulated) has no entry in the class where the baselines were first taken; a runner of a class that runs it then
failed the main command with "no baseline" for a case that did not regress. This walks the cases of every suite as
a bf16-capable CPU generates them (the CPU backends; CUDA cases are skipped here, and their machines bring their own
baselines) and asks each for an entry.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import baselines
from harness.backends import _torch_common
from harness.case import default_models, generate_cases, is_large
from harness.techniques.base import PRESETS
from model_zoo.spec import MODELS

BASELINES = Path(__file__).resolve().parents[1] / "results" / "baselines"
CPU_BACKENDS = ["torch_eager", "torch_compile", "onnxruntime"]


def _zoo_models() -> list[str]:
    """The zoo's own models (registered by model_zoo's modules), not toys other tests register."""
    return [m for m in default_models(large=True) if MODELS.get(m).build.__module__.startswith("model_zoo.")]


def _uncovered(suite: str) -> list[str]:
    loaded = baselines.load(baselines.baseline_path(BASELINES, suite))
    held = {cid for cls in loaded.classes.values() for cid in cls.cases} if loaded is not None else set()
    main = generate_cases(suite, [m for m in _zoo_models() if not is_large(m)], backends=CPU_BACKENDS)
    # The large job collects only large cases (`pytest -m large`): a reference it needs only for them runs
    # ungated, as it does there.
    large = [c for c in generate_cases(suite, _zoo_models(), backends=CPU_BACKENDS, large=True) if c.large]
    return sorted({c.id for c in main + large if c.skip_reason is None and c.id not in held})


@pytest.mark.parametrize("suite", sorted(PRESETS))
def test_every_case_a_bf16_cpu_makes_has_an_entry_in_some_class(suite, monkeypatch):
    monkeypatch.setattr(_torch_common, "cpu_flags", lambda: ("avx", "avx2", "fma", "avx512f", "avx512_bf16"))
    assert _uncovered(suite) == [], (f"{suite}: no baseline entry in any class; take them on a runner that runs "
                                     "these cases natively (python -m harness.accept)")


def test_the_walk_sees_a_case_only_a_bf16_cpu_makes(monkeypatch):
    """The check above could pass by generating nothing: on an AVX2 CPU the bf16 cases are skipped."""
    monkeypatch.setattr(_torch_common, "cpu_flags", lambda: ("avx", "avx2", "fma"))
    avx2 = {c.id for c in generate_cases("quantization", _zoo_models(), backends=CPU_BACKENDS) if c.skip_reason is None}
    monkeypatch.setattr(_torch_common, "cpu_flags", lambda: ("avx", "avx2", "fma", "avx512_bf16"))
    bf16 = {c.id for c in generate_cases("quantization", _zoo_models(), backends=CPU_BACKENDS) if c.skip_reason is None}
    assert "minilm-bf16-torch_eager" in bf16 - avx2
