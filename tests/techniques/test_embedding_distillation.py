"""Embedding distillation: the layer-dropping student keeps the teacher's chosen layers, the shared fine-tune lowers
the embedding loss, the proof is counted from the module, and bad configs say what was wrong."""

from __future__ import annotations

import pytest
import torch

from harness.cache import Cache
from harness.context import Context
from harness.errors import ConfigError
from harness.techniques.embedding_distillation import (
    EmbeddingStudentConfig,
    apply_embedding_student,
    cosine_loss,
    drop_layers,
    embed,
    layer_list,
    text_model_missing,
    trim,
)
from model_zoo.traits import traits_of
from tests.techniques.embedding_toys import tiny_bert_reference

FAST = {"sentences": 128, "val_sentences": 16, "batch_size": 16, "lr": 1e-3, "epochs": 2}


@pytest.fixture
def ctx(tmp_path):
    return Context(Cache(tmp_path), 1)


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
])
def test_bad_student_configs_name_the_field(field, value, message):
    with pytest.raises(ConfigError, match=message) as err:
        EmbeddingStudentConfig(name="s", **{field: value})
    assert "\n" not in str(err.value)


def test_more_sentences_than_the_corpus_is_a_config_error(ctx):
    with pytest.raises(ConfigError, match="`sentences` \\+ `val_sentences` must be at most the corpus's"):
        apply_embedding_student(tiny_bert_reference(),
                                EmbeddingStudentConfig(name="s", layers=(1,), sentences=10**6), ctx)
