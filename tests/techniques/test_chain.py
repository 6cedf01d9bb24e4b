"""Chains: each step runs on the previous step's model, proofs add up, and a chain that cannot run is refused."""

from __future__ import annotations

import pytest

from harness.artifact import ArtifactKind
from harness.cache import Cache
from harness.context import Context
from harness.errors import ConfigError
from harness.techniques.base import apply
from harness.techniques.chain import ChainConfig
from harness.techniques.pruning import PruningConfig
from harness.techniques.quantization import OrtStaticInt8Config, TorchDynamicInt8Config

PRUNE = PruningConfig(name="structured_50", sparsity=0.5, method="structured")
STATIC = OrtStaticInt8Config(name="ort_static_int8")


def test_prune_then_quantize_quantizes_the_pruned_model(make_reference, tmp_path):
    ctx = Context(Cache(tmp_path), 1)
    ref = make_reference("cnn")
    chained = apply(ref, ChainConfig(name="prune.quantize", steps=(PRUNE, STATIC)), ctx)
    alone = apply(ref, STATIC, ctx)
    assert chained.kind is ArtifactKind.ONNX_MODEL and chained.onnx_path != alone.onnx_path
    assert chained.proof["channels_removed"] == pytest.approx(0.5, abs=0.01)  # the pruning step's proof is kept
    assert any(k.startswith("int8") and v >= 1 for k, v in chained.proof.items())  # and the quantizer's
    assert chained.size_bytes() < alone.size_bytes()


def test_the_chain_promises_what_each_step_does():
    chain = ChainConfig(name="c", steps=(PRUNE, STATIC))
    names = [e.name for e in chain.expectations()]
    assert names.count("quality_retention") == 1
    assert "sparsity_at_target_low" in names and any("present" in n for n in names)
    assert chain.output_kind is ArtifactKind.ONNX_MODEL and chain.to_dict()["steps"][0]["method"] == "structured"


def test_a_step_that_cannot_take_the_previous_artifact_is_refused_naming_it():
    with pytest.raises(ConfigError, match=r"step 2 \(structured_50\) cannot take the onnx_model that step 1 "
                                          r"\(ort_static_int8\) makes"):
        ChainConfig(name="c", steps=(STATIC, PRUNE))
    with pytest.raises(ConfigError, match="cannot take the torch_quantized"):
        ChainConfig(name="c", steps=(TorchDynamicInt8Config(name="q"), PRUNE))


def test_a_chain_needs_two_steps():
    with pytest.raises(ConfigError, match="`steps` must hold at least two technique configs"):
        ChainConfig(name="c", steps=(PRUNE,))
