"""Embedding distillation: the layer-dropping student keeps the teacher's chosen layers, the shared fine-tune lowers
the embedding loss, the proof is counted from the module, and bad configs say what was wrong."""

from __future__ import annotations

import itertools

import pytest
import torch

from harness.errors import ConfigError
from harness.techniques._embedding_finetune import (
    FineTune,
    corpus_splits,
    cosine_loss,
    distil_embeddings,
    embed,
    layer_hidden_loss,
    layer_list,
    lr_factor,
    teacher_targets,
    text_model_missing,
    trim,
)
from harness.techniques.embedding_distillation import EmbeddingStudentConfig, apply_embedding_student, drop_layers
from model_zoo import corpus
from model_zoo.traits import traits_of
from tests.techniques.embedding_toys import FAST, HashTokenizer, tiny_bert_reference


def test_student_has_the_chosen_layers_of_its_teacher_before_fine_tuning():
    teacher = tiny_bert_reference().module
    student = drop_layers(teacher, (1,))
    kept = layer_list(student)[2]
    assert len(kept) == 1 and len(layer_list(teacher)[2]) == 2  # the teacher is untouched
    for (name, p), (_, q) in zip(kept[0].state_dict().items(), layer_list(teacher)[2][1].state_dict().items(),
                                 strict=True):
        assert torch.equal(p, q), name
    assert torch.equal(student.encoder.embeddings.word_embeddings.weight,
                       teacher.encoder.embeddings.word_embeddings.weight)
    assert student.encoder.config.num_hidden_layers == 1 and teacher.encoder.config.num_hidden_layers == 2


def test_trimmed_padding_changes_no_embedding():
    ref = tiny_bert_reference()
    inputs = ref.splits.test.inputs
    full = ref.module(*inputs)
    assert trim(inputs)[0].shape[1] < inputs[0].shape[1]
    assert torch.allclose(ref.module(*trim(inputs)), full, atol=1e-5)
    assert torch.allclose(embed(ref.module, ref.splits.test, batch_size=3), full, atol=1e-5)  # order kept


def test_student_fine_tune_lowers_the_loss_and_proves_its_layers(ctx):
    ref = tiny_bert_reference()
    artifact = apply_embedding_student(ref, EmbeddingStudentConfig(name="s", layers=(1,), **FAST), ctx)
    proof = artifact.proof
    assert proof["layers"] == 1 == len(layer_list(artifact.module)[2]) and proof["teacher_layers"] == 2
    assert proof["loss_after"] < proof["loss_before"] and proof["loss_ratio"] < 1
    assert 0 < proof["hidden_share"] < 1 and proof["hidden_loss_after"] < proof["hidden_loss_before"]
    untuned = drop_layers(ref.module, (1,))
    teacher = ref.module(*ref.splits.test.inputs)
    assert cosine_loss(artifact.module(*ref.splits.test.inputs), teacher) < cosine_loss(
        untuned(*ref.splits.test.inputs), teacher)
    again = apply_embedding_student(ref, EmbeddingStudentConfig(name="other_name", layers=(1,), **FAST), ctx)
    assert again.weights == artifact.weights  # from the cache: the name is not part of the key


def test_student_applies_by_traits_not_by_name():
    ref = tiny_bert_reference()
    assert text_model_missing(ref.spec, traits_of(ref.spec)) is None
    bare = type(ref.spec)(**{**ref.spec.__dict__, "tags": frozenset()})
    assert "transformer" in (EmbeddingStudentConfig(name="s").not_applicable(bare, traits_of(bare)) or "")


def test_layers_the_teacher_lacks_are_a_config_error(ctx):
    with pytest.raises(ConfigError, match=r"`layers` must be a subset of the teacher's layers 0-1, got \[1, 4\]"):
        apply_embedding_student(tiny_bert_reference(), EmbeddingStudentConfig(name="s", layers=(1, 4), **FAST), ctx)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("layers", (), "`layers` must be distinct layer indices >= 0 in increasing order"),
    ("layers", (3, 1), "`layers` must be distinct layer indices >= 0 in increasing order"),
    ("layers", (1, 1), "`layers` must be distinct layer indices >= 0 in increasing order"),
    ("layers", (-1,), "`layers` must be distinct layer indices >= 0 in increasing order"),
    ("sentences", 0, "`sentences` must be a whole number >= 1"),
    ("lr", 0.0, r"`lr` must be in \(0, 1\]"),
    ("epochs", 0, "`epochs` must be a whole number >= 1"),
    ("hidden_weight", -1.0, r"`hidden_weight` must be in \[0, 100\], got -1.0"),
    ("warmup", 1.0, r"`warmup` must be in \[0, 1\), got 1.0"),
    ("threads", 0, "`threads` must be a whole number >= 1, got 0"),
])
def test_bad_student_configs_name_the_field(field, value, message):
    with pytest.raises(ConfigError, match=message) as err:
        EmbeddingStudentConfig(name="s", **{field: value})
    assert "\n" not in str(err.value)


def test_more_sentences_than_the_corpus_is_a_config_error(ctx):
    with pytest.raises(ConfigError, match="`sentences` \\+ `val_sentences` must be at most the corpus's"):
        apply_embedding_student(tiny_bert_reference(),
                                EmbeddingStudentConfig(name="s", layers=(1,), sentences=10**6), ctx)


def _identity_first_layer(teacher: torch.nn.Module) -> None:
    """Make the teacher's layer 0 pass its input through (no attention or FFN contribution: LayerNorm of an
    already normalised input), so a student keeping only layer 1 computes exactly the teacher's layer 1 output."""
    layer = layer_list(teacher)[2][0]
    with torch.no_grad():
        for dense in (layer.attention.output.dense, layer.output.dense):
            dense.weight.zero_()
            dense.bias.zero_()


def test_hidden_loss_is_zero_for_an_identical_student_and_positive_after_perturbing_one_layer():
    ref = tiny_bert_reference()
    student = drop_layers(ref.module, (0, 1))
    split = ref.splits.test
    assert torch.allclose(layer_hidden_loss(student, ref.module, split, (0, 1)), torch.zeros(2), atol=1e-5)
    with torch.no_grad():
        weight = layer_list(student)[2][1].output.dense.weight
        weight.add_(torch.randn(weight.shape, generator=torch.Generator().manual_seed(0)))
    first, second = layer_hidden_loss(student, ref.module, split, (0, 1)).tolist()
    assert first < 1e-5 and second > 1e-2  # only the perturbed layer's output moved


def test_teacher_targets_hold_the_real_tokens_only():
    ref = tiny_bert_reference()
    split = ref.splits.test
    targets = teacher_targets(ref.module, split, (1,))
    assert targets.hidden.shape == (int(split.inputs[-1].sum()), 1, 32)
    assert torch.allclose(targets.embeddings, ref.module(*split.inputs), atol=1e-5)
    with torch.no_grad():  # the teacher's layer 1 output (hidden_states[0] is the embeddings) at item 2's real tokens
        states = ref.module.encoder(*split.inputs, output_hidden_states=True).hidden_states[2]
    real = states[2, : int(split.inputs[-1][2].sum())]
    assert torch.allclose(targets.hidden_of(torch.tensor([2]))[:, 0], real, atol=1e-2, rtol=1e-2)


def test_student_layers_are_matched_to_the_kept_layers_own_outputs(ctx):
    ref = tiny_bert_reference()
    _identity_first_layer(ref.module)  # the student keeping layer 1 now reproduces the teacher's layer 1 exactly
    artifact = apply_embedding_student(ref, EmbeddingStudentConfig(name="s", layers=(1,), **FAST), ctx)
    assert artifact.details["layer_map"] == [1]
    assert artifact.proof["hidden_loss_before"] < 1e-5  # matched to layer 0's output it would be far from 0
    assert artifact.proof["loss_before"] < 1e-5


def test_the_hidden_term_brings_the_layer_outputs_closer_than_the_embedding_alone(ctx):
    ref = tiny_bert_reference()
    alone = apply_embedding_student(ref, EmbeddingStudentConfig(name="s", layers=(1,), hidden_weight=0.0, **FAST),
                                    ctx).proof
    both = apply_embedding_student(ref, EmbeddingStudentConfig(name="s", layers=(1,), **FAST), ctx).proof
    assert alone["hidden_share"] == 0.0 and alone["loss_after"] < alone["loss_before"]
    assert both["hidden_loss_after"] < alone["hidden_loss_after"]


def test_learning_rate_warms_up_then_decays_linearly_to_zero():
    factors = [lr_factor(step, 10, 0.2) for step in range(10)]
    assert factors[:3] == [0.5, 1.0, 1.0] and factors[-1] == 1 / 8
    assert all(a >= b for a, b in itertools.pairwise(factors[1:]))
    assert lr_factor(0, 10, 0.0) == 1.0


@pytest.mark.parametrize("layer_map", [(3,), (0, 1), ()])
def test_a_layer_map_that_does_not_fit_is_a_config_error(layer_map):
    ref = tiny_bert_reference()
    settings = FineTune(16, 8, 1, 1e-3, 8, 1.0, 0.1, 1)
    with pytest.raises(ConfigError, match=r"`layer_map` must name one teacher layer 0-1 for each of the "
                                          r"student's 1 layers, in increasing order, got \[") as err:
        distil_embeddings(drop_layers(ref.module, (1,)), ref.module, ref.spec, ref.splits.test, settings, "s",
                          layer_map)
    assert "\n" not in str(err.value)


def test_fine_tune_sentences_leave_out_the_drift_pool():
    trainable = corpus.trainable()
    assert not set(trainable) & set(corpus.held_out()) and len(corpus.held_out()) == corpus.HELD_OUT == 600
    ref = tiny_bert_reference()
    splits = corpus_splits(ref.spec, ref.splits.test, 32, 16)
    expected = HashTokenizer()(list(trainable[-16:]), max_length=16)["input_ids"]
    assert torch.equal(splits.val.inputs[0], expected)  # held out from training, and not the drift pool
    with pytest.raises(ConfigError, match=f"at most the corpus's {len(trainable):,} trainable sentences "
                                          r"\(the drift suite's 600 are held out\)"):
        corpus_splits(ref.spec, ref.splits.test, len(trainable), 1)


def test_the_refit_before_training_starts_the_student_closer_and_says_so(ctx):
    ref = tiny_bert_reference()
    settings = {**FAST, "epochs": 1}
    plain = apply_embedding_student(ref, EmbeddingStudentConfig(name="s", layers=(1,), **settings), ctx).proof
    refit = apply_embedding_student(ref, EmbeddingStudentConfig(name="s", layers=(1,), **{
        **settings, "refit_sentences": 256}), ctx).proof
    assert "refit_error_ratio" not in plain and refit["refit_error_ratio"] < 1
    assert refit["loss_before"] < plain["loss_before"]  # the held-out loss before training, measured after the refit
    names = {e.name: e for e in EmbeddingStudentConfig(name="s", refit_sentences=256).expectations()}
    assert names["refit_lowered_error"].metric == "proof.refit_error_ratio"
    assert "refit_lowered_error" not in {e.name for e in EmbeddingStudentConfig(name="s", refit_sentences=0)
                                        .expectations()}
