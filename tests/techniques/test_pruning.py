"""Pruning: sparsity counted from the weights, masks made permanent, structured shapes, and bad configs."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from harness.errors import ConfigError, TechniqueError
from harness.techniques.pruning import PruningConfig, apply_pruning, channels, compressed_bytes, sparsity
from tests.techniques.conftest import build_reference, trainable_reference
from tests.toy_models import MLP


def test_sparsity_is_counted_from_the_weights():
    model = MLP(2, 2, 2)
    with torch.no_grad():
        model.net[0].weight.copy_(torch.tensor([[0.0, 1.0], [0.0, 0.0]]))  # 3 of 4 zero
        model.net[2].weight.copy_(torch.tensor([[1.0, 1.0], [1.0, 0.0]]))  # 1 of 4 zero
    overall, per_layer = sparsity(model)
    assert overall == 0.5 and per_layer == {"net.0": 0.75, "net.2": 0.25}


@pytest.mark.parametrize("method", ["l1_unstructured", "global_unstructured"])
def test_unstructured_pruning_leaves_plain_weights_at_the_target_sparsity(method, make_reference, ctx):
    ref = make_reference("mlp")
    artifact = apply_pruning(ref, PruningConfig(name="p", sparsity=0.6, method=method), ctx)
    names = [n for n, _ in artifact.module.named_parameters()] + [n for n, _ in artifact.module.named_buffers()]
    assert not any(n.endswith(("_orig", "_mask")) for n in names)
    assert not any(m._forward_pre_hooks for m in artifact.module.modules())
    assert artifact.proof["sparsity"] == pytest.approx(0.6, abs=0.01)
    assert artifact.proof["macs_ratio"] == 1.0 and artifact.proof["params_removed"] == 0.0
    assert artifact.proof["compressed_bytes"] < artifact.proof["compressed_bytes_reference"]
    assert sparsity(ref.module)[0] == 0.0  # the reference is untouched


def test_fine_tuning_keeps_pruned_weights_at_zero_and_comes_back_from_the_cache(ctx):
    ref = trainable_reference()
    cfg = PruningConfig(name="p", sparsity=0.5, finetune_epochs=2, finetune_lr=0.05)
    first = apply_pruning(ref, cfg, ctx)
    untuned = apply_pruning(ref, PruningConfig(name="u", sparsity=0.5), ctx)
    assert first.proof["sparsity"] >= 0.5
    assert first.weights and not untuned.weights  # only fine-tuning makes new weights, with their own digest
    assert not torch.equal(first.module.net[0].weight, untuned.module.net[0].weight)  # fine-tuning moved weights
    assert torch.equal(first.module.net[0].weight == 0, untuned.module.net[0].weight == 0)  # ... not the zeros
    again = apply_pruning(ref, cfg, ctx)  # from the cache
    assert again.weights == first.weights


def test_structured_pruning_removes_channels_and_macs(make_reference, ctx):
    ref = make_reference("cnn")
    artifact = apply_pruning(ref, PruningConfig(name="s", sparsity=0.5, method="structured"), ctx)
    assert artifact.proof["channels_removed"] == pytest.approx(0.5, abs=0.01)
    assert artifact.proof["macs_ratio"] > 1.5 and artifact.proof["params_removed"] > 0.5
    assert channels(artifact.module) < channels(ref.module)
    x = ref.splits.test.inputs[0]
    assert artifact.module(x).shape == ref.module(x).shape  # the classifier keeps its classes


def _zero_share(module: nn.Module) -> float:
    """Exact zeros over all Linear/Conv2d weights, counted here without the technique's own helper."""
    weights = [m.weight.detach() for m in module.modules() if isinstance(m, nn.Linear | nn.Conv2d)]
    return sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)


def test_recorded_sparsity_is_the_artifacts_zero_share_not_the_configs_target(make_reference, ctx):
    """Where the weights and the config disagree, the record follows the weights: structured pruning removes
    channels and leaves no zeros; unstructured pruning of a model already 80 % zero leaves 80 %, not 50 %."""
    structured = apply_pruning(make_reference("cnn"), PruningConfig(name="s", sparsity=0.5, method="structured"),
                               ctx)
    assert structured.proof["sparsity"] == pytest.approx(_zero_share(structured.module), abs=1e-12)
    assert structured.proof["sparsity"] < 0.05
    ref = make_reference("mlp")
    with torch.no_grad():
        for m in ref.module.modules():
            if isinstance(m, nn.Linear):
                m.weight.mul_(torch.rand(m.weight.shape, generator=torch.Generator().manual_seed(1)) > 0.8)
    ref.key += "-sparse"
    already = _zero_share(ref.module)
    artifact = apply_pruning(ref, PruningConfig(name="p", sparsity=0.5), ctx)
    assert artifact.proof["sparsity"] == pytest.approx(_zero_share(artifact.module), abs=1e-12)
    assert artifact.proof["sparsity"] == pytest.approx(already, abs=1e-12) and already > 0.75


def test_compressed_size_pays_for_zeros():
    dense, sparse = MLP(64, 64, 4), MLP(64, 64, 4)
    with torch.no_grad():
        sparse.net[0].weight.mul_(torch.rand_like(sparse.net[0].weight) > 0.9)
    assert compressed_bytes(sparse) < 0.6 * compressed_bytes(dense)


class NoLayers(nn.Module):
    def forward(self, x):
        return x * 2


def test_a_model_without_prunable_layers_is_refused(make_reference, ctx):
    ref = make_reference("mlp")
    ref.module = NoLayers()
    with pytest.raises(TechniqueError, match="has no prunable layers"):
        apply_pruning(ref, PruningConfig(name="p"), ctx)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"sparsity": 1.0}, r"`sparsity` must be in \[0, 1\)"),
    ({"sparsity": -0.1}, r"`sparsity` must be in \[0, 1\)"),
    ({"method": "random"}, "`method` must be one of"),
    ({"importance": "hessian"}, "`importance` must be one of magnitude, l1, taylor"),
    ({"finetune_epochs": -1}, "`finetune_epochs` must be a whole number >= 0"),
    ({"min_speedup": 1.4}, "`min_speedup` needs method 'structured'"),
    ({"importance": "taylor"}, "`importance` 'taylor' ranks channels for method 'structured'"),
    ({"weight": "huge"}, "`weight` must be one of any, heavy, light"),
])
def test_bad_configs_name_the_field(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        PruningConfig(name="p", **kwargs)


def test_structured_pruning_that_empties_a_layer_is_refused(ctx, monkeypatch):
    """Torch-Pruning keeps a layer's last channel at local ratios below 1; the guard catches any step that does
    not (a global ranking, a per-layer ratio)."""
    from harness.techniques import pruning

    def emptying_step(module, config, reference):
        module.net[0].weight = nn.Parameter(module.net[0].weight[:0])
        module.net[0].out_features = 0

    monkeypatch.setattr(pruning, "_structured", emptying_step)
    with pytest.raises(ConfigError, match=r"`sparsity` 0.5 removes every channel of net.0"):
        apply_pruning(build_reference("mlp"), PruningConfig(name="s", sparsity=0.5, method="structured"), ctx)


def test_a_sweep_point_promises_no_quality_and_a_fine_tuned_preset_does():
    from harness.techniques.base import presets

    sweep = presets("pruning").get("l1_unstructured_30")
    assert [e.name for e in sweep.expectations()] == ["sparsity_at_target_low", "sparsity_at_target_high"]
    tuned = presets("pruning").get("structured_50_finetuned_small")
    assert "quality_retention" in {e.name for e in tuned.expectations()}


def test_taylor_importance_without_labels_is_one_line(ctx, make_reference):
    ref = make_reference("mlp")
    unlabelled = dataclasses.replace(ref.splits, train=dataclasses.replace(ref.splits.train, targets=None))
    ref = dataclasses.replace(ref, splits=unlabelled)
    with pytest.raises(ConfigError, match="`importance` taylor needs a labelled training split; use magnitude or l1"):
        apply_pruning(ref, PruningConfig(name="p", method="structured", importance="taylor"), ctx)
