"""Transformer pruning: exactly the planned heads and FFN channels go, the outputs keep their shape, the proof is
counted from the shapes, the fine-tune lowers the loss, and bad configs say what was wrong."""

from __future__ import annotations

import pytest
import torch

from harness.errors import ConfigError
from harness.techniques._embedding_finetune import corpus_splits, layer_hidden_loss
from harness.techniques.transformer_pruning import (
    TransformerPruningConfig,
    activation_scores,
    apply_plan,
    apply_transformer_pruning,
    bert_layers,
    plan_pruning,
    pruned_structure,
    shape_counts,
)
from tests.techniques.embedding_toys import FAST, tiny_bert_reference


def test_apply_plan_removes_exactly_the_planned_heads_and_channels():
    module = tiny_bert_reference().module
    before = [(lay.query.weight.detach().clone(), lay.ffn_in.weight.detach().clone()) for lay in bert_layers(module)]
    apply_plan(module, {0: ((1, 3), (0, 5, 63)), 1: ((0,), ())})
    first, second = bert_layers(module)
    assert (first.heads, first.ffn_in.out_features, second.heads, second.ffn_in.out_features) == (2, 61, 3, 64)
    kept_rows = [h * 8 + i for h in (0, 2) for i in range(8)]
    assert torch.equal(first.query.weight, before[0][0][kept_rows])  # heads 0 and 2 are what is left
    assert torch.equal(first.ffn_in.weight, before[0][1][[c for c in range(64) if c not in (0, 5, 63)]])
    assert first.attention_out.in_features == 16 and first.ffn_out.in_features == 61
    assert first.attention.num_attention_heads == 2 and first.attention.all_head_size == 16


@pytest.mark.parametrize("importance", ["activation", "magnitude"])
def test_pruned_encoder_keeps_its_output_shape(importance):
    ref = tiny_bert_reference()
    module = ref.module
    inputs = ref.splits.test.inputs
    plan = plan_pruning(module, 1, 16, importance, inputs)
    assert all(len(h) == 1 and len(c) == 16 for h, c in plan.values())
    apply_plan(module, plan)
    assert module(*inputs).shape == (8, 32)
    assert shape_counts(module) == (6, 96)


def test_pruning_proves_what_it_removed_and_the_fine_tune_lowered_the_loss(ctx):
    ref = tiny_bert_reference()
    cfg = TransformerPruningConfig(name="p", head_ratio=0.25, ffn_ratio=0.25, **FAST)
    artifact = apply_transformer_pruning(ref, cfg, ctx)
    proof = artifact.proof
    assert proof["heads_removed"] == 0.25 and proof["ffn_channels_removed"] == 0.25
    assert shape_counts(artifact.module) == (6, 96) and shape_counts(ref.module) == (8, 128)
    assert proof["macs_ratio"] > 1 and proof["loss_after"] < proof["loss_before"]
    assert 0 < proof["hidden_share"] < 1 and proof["hidden_loss_after"] < proof["hidden_loss_before"]
    assert all(e.name != "heads_removed_planned_low" or proof["heads_removed"] >= e.threshold
               for e in cfg.expectations())


@pytest.mark.parametrize(("field", "value", "message"), [
    ("head_ratio", 1.0, r"`head_ratio` must be in \[0, 1\), got 1.0"),
    ("ffn_ratio", -0.1, r"`ffn_ratio` must be in \[0, 1\), got -0.1"),
    ("importance", "taylor", "`importance` must be one of activation, magnitude; got 'taylor'"),
    ("allocation", "greedy", "`allocation` must be one of uniform, global; got 'greedy'"),
    ("batch_size", 0, "`batch_size` must be a whole number >= 1"),
    ("hidden_weight", float("nan"), r"`hidden_weight` must be in \[0, 100\], got nan"),
    ("warmup", -0.1, r"`warmup` must be in \[0, 1\), got -0.1"),
    ("refit_sentences", -1, "`refit_sentences` must be a whole number >= 0"),
])
def test_bad_pruning_configs_name_the_field(field, value, message):
    with pytest.raises(ConfigError, match=message) as err:
        TransformerPruningConfig(name="p", **{field: value})
    assert "\n" not in str(err.value)


def test_pruning_nothing_is_a_config_error():
    with pytest.raises(ConfigError, match="`head_ratio` and `ffn_ratio` are both 0"):
        TransformerPruningConfig(name="p", head_ratio=0.0, ffn_ratio=0.0)


def test_a_plan_that_empties_a_layer_is_a_config_error():
    with pytest.raises(ConfigError, match="layer 0: the plan removes every head"):
        apply_plan(tiny_bert_reference().module, {0: ((0, 1, 2, 3), ())})


@pytest.mark.parametrize("importance", ["activation", "magnitude"])
def test_the_least_important_head_and_channel_go_first(importance):
    ref = tiny_bert_reference()
    lay = bert_layers(ref.module)[0]
    with torch.no_grad():
        lay.attention_out.weight[:, 16:24] *= 1e-3  # head 2 barely reaches the output
        lay.ffn_out.weight[:, 7] *= 1e-3  # nor does FFN channel 7
        lay.ffn_in.weight[7] *= 1e-3
    plan = plan_pruning(ref.module, 1, 1, importance, ref.splits.test.inputs)
    assert plan[0] == ((2,), (7,))


def test_pruned_layers_are_matched_to_the_teachers_same_layers(ctx):
    ref = tiny_bert_reference()
    cfg = TransformerPruningConfig(name="p", head_ratio=0.25, ffn_ratio=0.25, **FAST)
    proof = apply_transformer_pruning(ref, cfg, ctx).proof
    val = corpus_splits(ref.spec, ref.splits.test, cfg.sentences, cfg.val_sentences).val
    pruned = pruned_structure(ref, cfg)
    same = float(layer_hidden_loss(pruned, ref.module, val, (0, 1)).mean())
    assert proof["hidden_loss_before"] == pytest.approx(same, rel=1e-4)
    assert same < float(layer_hidden_loss(pruned, ref.module, val, (1, 1)).mean())  # a shifted map is far worse


def test_the_refit_brings_the_pruned_encoder_closer_before_any_training(ctx):
    ref = tiny_bert_reference()
    settings = {"head_ratio": 0.25, "ffn_ratio": 0.25, "epochs": 0}
    inputs = ref.splits.test.inputs
    with torch.inference_mode():
        target = ref.module(*inputs)
    cosines, proofs = [], []
    for sentences in (0, 256):
        artifact = apply_transformer_pruning(ref, TransformerPruningConfig(name="p", refit_sentences=sentences,
                                                                           **settings), ctx)
        with torch.inference_mode():
            cosines.append(float(torch.nn.functional.cosine_similarity(artifact.module(*inputs), target).mean()))
        proofs.append(artifact.proof)
    assert cosines[1] > cosines[0]
    assert "refit_error_ratio" not in proofs[0] and proofs[1]["refit_error_ratio"] < 1


def _quiet_heads(module, layer: int, heads: tuple[int, ...], scale: float = 1e-3) -> None:
    lay = bert_layers(module)[layer]
    with torch.no_grad():
        for h in heads:
            lay.attention_out.weight[:, h * lay.head_size:(h + 1) * lay.head_size] *= scale


def test_a_global_allocation_takes_the_same_totals_from_where_they_matter_least():
    ref = tiny_bert_reference()
    _quiet_heads(ref.module, 0, (1, 3))  # two of layer 0's heads barely reach its output; layer 1's all do
    inputs = ref.splits.test.inputs
    uniform = plan_pruning(ref.module, 1, 8, "activation", inputs)
    spread = plan_pruning(ref.module, 1, 8, "activation", inputs, "global")
    assert [len(h) for h, _ in uniform.values()] == [1, 1]
    assert spread[0][0] == (1, 3) and spread[1][0] == ()  # both quiet heads, none of layer 1's
    assert sum(len(c) for _, c in spread.values()) == 16  # the channels' total is kept too
    apply_plan(ref.module, spread)
    assert shape_counts(ref.module) == (6, 112)


def test_a_global_allocation_never_empties_a_layer():
    ref = tiny_bert_reference()
    _quiet_heads(ref.module, 0, (0, 1, 2, 3))  # every head of layer 0 is quieter than any of layer 1's
    plan = plan_pruning(ref.module, 2, 1, "activation", ref.splits.test.inputs, "global")
    assert len(plan[0][0]) == 3 and len(plan[1][0]) == 1  # layer 0 keeps one head; the fourth comes from layer 1
    apply_plan(ref.module, plan)


def test_a_global_allocation_compares_units_by_their_share_of_the_layers_signal():
    plans = []
    for scale in (1, 10):  # at 10, layer 1's FFN writes 10x larger into a sum its LayerNorm then scales back
        ref = tiny_bert_reference()
        lay = bert_layers(ref.module)[1]
        with torch.no_grad():
            lay.ffn_out.weight *= scale
            lay.ffn_out.bias *= scale
        plans.append([len(c) for _, c in plan_pruning(ref.module, 1, 8, "activation", ref.splits.test.inputs,
                                                      "global").values()])
        raw, rel = (activation_scores(ref.module, bert_layers(ref.module), ref.splits.test.inputs, relative=r)
                    for r in (False, True))
    assert plans[1] == plans[0]  # raw scores would take most of the 16 channels from layer 0 instead
    assert float(rel[1][1].mean() / rel[0][1].mean()) < float(raw[1][1].mean() / raw[0][1].mean()) / 3


def test_a_global_allocation_by_magnitude_is_a_config_error():
    with pytest.raises(ConfigError, match=r"`allocation` global ranks .* needs `importance` activation; got "
                                          "'magnitude'") as err:
        TransformerPruningConfig(name="p", importance="magnitude", allocation="global")
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match=r"`allocation` global ranks .* needs `importance` activation"):
        plan_pruning(tiny_bert_reference().module, 1, 1, "magnitude", None, "global")


def test_a_global_plan_that_would_empty_a_layer_is_a_config_error():
    ref = tiny_bert_reference()  # 2 layers of 4 heads: at most 6 can go, as each layer keeps one
    with pytest.raises(ConfigError, match=r"the plan removes 8 heads where at most 6 can go \(each layer keeps "
                                          r"one\); expected a lower ratio") as err:
        plan_pruning(ref.module, 4, 1, "activation", ref.splits.test.inputs, "global")
    assert "\n" not in str(err.value)
