"""The fp32 reference technique: hands the reference module itself to every backend, under its own key."""

from __future__ import annotations

from harness.artifact import ArtifactKind, Precision
from harness.techniques import REFERENCE, Fp32Config, apply


def test_reference_artifact_is_the_reference_module(tctx, make_reference):
    ref = make_reference("mlp")
    artifact = apply(ref, REFERENCE, tctx)
    assert artifact.module is ref.module and artifact.key == ref.key
    assert (artifact.kind, artifact.precision) == (ArtifactKind.TORCH_MODULE, Precision.FP32)
    assert artifact.proof == {}


def test_reference_config_is_named_fp32_with_only_the_default_contract():
    assert REFERENCE.name == "fp32" and REFERENCE.technique == "reference"
    assert [e.metric for e in REFERENCE.expectations()] == ["quality.retention"]
    assert Fp32Config.from_dict(REFERENCE.to_dict()) == REFERENCE
