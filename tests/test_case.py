"""Case generation: which (model, config, backend) cells exist, and which are skipped with a reason."""

from __future__ import annotations

import pytest

from harness.case import generate_cases

NO_BF16 = ("avx", "avx2", "fma", "avx512f", "avx512_vnni")


@pytest.fixture
def cpu(monkeypatch):
    def set_cpu(machine: str, flags: tuple[str, ...]) -> None:
        monkeypatch.setattr("platform.machine", lambda: machine)
        monkeypatch.setattr("harness.env.cpu_flags", lambda: flags)
        monkeypatch.setattr("harness.backends._torch_common.cpu_flags", lambda: flags)

    return set_cpu


def _by_id(**kwargs):
    return {c.id: c for c in generate_cases("quantization", ["cancer_mlp"], **kwargs)}


def test_reference_first_and_no_case_a_backend_cannot_run(cpu):
    cpu("x86_64", (*NO_BF16, "avx512_bf16"))
    cases = generate_cases("quantization", ["cancer_mlp"], backends=["torch_eager", "onnxruntime"])
    assert cases[0].id == "cancer_mlp-fp32-torch_eager"
    ids = {c.id for c in cases}
    assert "cancer_mlp-ort_dynamic_int8_per_channel-onnxruntime" in ids
    assert "cancer_mlp-ort_dynamic_int8_per_channel-torch_eager" not in ids  # an ORT graph: no eager case
    assert "cancer_mlp-ort_dynamic_int8_conv-onnxruntime" not in ids  # no convolutions in an MLP


@pytest.mark.parametrize("backend", ["torch_eager", "torch_compile"])
def test_bf16_on_a_cpu_without_bf16_instructions_is_skipped_with_the_reason(cpu, backend):
    cpu("x86_64", NO_BF16)
    case = _by_id(backends=[backend])[f"cancer_mlp-bf16-{backend}"]
    assert case.skip_reason is not None
    assert case.skip_reason.startswith(f"bf16 on {backend}: this CPU has no bf16 instructions (avx512_bf16, amx_bf16)")
    assert "--optbench-configs" in case.skip_reason
    assert _by_id(backends=[backend])[f"cancer_mlp-fp32-{backend}"].skip_reason is None


def test_bf16_selected_by_name_is_measured_anyway(cpu):
    cpu("x86_64", NO_BF16)
    assert _by_id(backends=["torch_eager"], configs=["bf16"])["cancer_mlp-bf16-torch_eager"].skip_reason is None


@pytest.mark.parametrize(("machine", "flags"), [("x86_64", ("avx2", "avx512_bf16")), ("x86_64", ("amx_bf16",)),
                                                ("aarch64", ())])
def test_bf16_runs_where_the_cpu_has_it_or_is_not_x86(cpu, machine, flags):
    cpu(machine, flags)
    assert _by_id(backends=["torch_eager"])["cancer_mlp-bf16-torch_eager"].skip_reason is None


def test_a_large_model_joins_only_when_asked_or_named():
    from harness.case import default_models, generate_cases, is_large

    assert is_large("efficientnet_lite0") and not is_large("digits_cnn") and not is_large("no_such_model")
    assert "efficientnet_lite0" not in default_models() and "efficientnet_lite0" in default_models(large=True)
    assert {c.model for c in generate_cases("quantization", backends=["onnxruntime"])} == set(default_models())
    named = generate_cases("quantization", models=["efficientnet_lite0"], backends=["onnxruntime"])
    assert named and {c.model for c in named} == {"efficientnet_lite0"}


def test_a_large_preset_joins_only_when_asked_or_named(monkeypatch):
    """A config class with ``large = True`` (fine-tuning a pretrained transformer) makes cases only under -m large
    or when its preset is named; its cases carry the mark, and so does a chain through it."""
    import dataclasses
    from typing import ClassVar

    from harness.case import chosen_presets, not_applicable
    from harness.techniques import base
    from harness.techniques.chain import ChainConfig
    from harness.techniques.pruning import PruningConfig
    from harness.techniques.quantization import OrtStaticInt8Config, TorchDynamicInt8Config

    @dataclasses.dataclass(frozen=True)
    class HeavyPruning(PruningConfig):
        large: ClassVar[bool] = True

    heavy = HeavyPruning(name="heavy_prune")
    chain = ChainConfig(name="heavy_then_static", steps=(heavy, OrtStaticInt8Config(name="s")))
    monkeypatch.setitem(base.PRESETS, "toy_large", base.Registry("toy_large preset"))
    base.register_preset("toy_large", TorchDynamicInt8Config(name="light_int8"))
    base.register_preset("toy_large", heavy)
    base.register_preset("toy_large", chain)

    assert [c.name for c in chosen_presets("toy_large", None)] == ["light_int8"]
    assert [c.name for c in chosen_presets("toy_large", None, large=True)] == ["light_int8", "heavy_prune",
                                                                                 "heavy_then_static"]
    assert [c.name for c in chosen_presets("toy_large", ["heavy_prune"])] == ["heavy_prune"]
    default = generate_cases("toy_large", ["cancer_mlp"], backends=["torch_eager"])
    assert {c.config.name for c in default} == {"fp32", "light_int8"} and not any(c.large for c in default)
    every = generate_cases("toy_large", ["cancer_mlp"], backends=["torch_eager", "onnxruntime"], large=True)
    assert {c.config.name for c in every if c.large} == {"heavy_prune", "heavy_then_static"}
    assert not_applicable("toy_large", ["cancer_mlp"]) == {}


def test_a_large_presets_baseline_entry_is_stale_only_in_a_run_that_takes_large_presets(monkeypatch, tmp_path):
    """A baseline entry of a large preset, in a run that leaves large presets out, is not called stale."""
    import dataclasses
    from typing import ClassVar

    from harness.gate import Tolerances
    from harness.session import OptbenchSession, Options
    from harness.techniques import base
    from harness.techniques.pruning import PruningConfig

    @dataclasses.dataclass(frozen=True)
    class HeavyPruning(PruningConfig):
        large: ClassVar[bool] = True

    monkeypatch.setitem(base.PRESETS, "toy_large", base.Registry("toy_large preset"))
    base.register_preset("toy_large", HeavyPruning(name="heavy_prune"))

    def selected(**kwargs: object) -> bool:
        options = Options(models=None, configs=None, backends=None, update_baselines=False, allow_new=False,
                          baseline_dir=tmp_path, results_dir=tmp_path, cache_dir=tmp_path, threads=1,
                          tolerances=Tolerances(), throughput_time_s=0.1)
        session = OptbenchSession(dataclasses.replace(options, **kwargs))
        return session._selected("toy_large", "cancer_mlp-heavy_prune-torch_eager")

    assert not selected()
    assert selected(large=True)
    assert selected(configs=("heavy_prune",))
    assert selected(models=("cancer_mlp",), large=True)
