"""Knowledge distillation: Hinton's loss, teacher logits looked up per batch, the student rules, bad configs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from harness.cache import Cache
from harness.context import Context
from harness.errors import ConfigError
from harness.techniques.distillation import Distill, DistillationConfig, distillation_loss
from harness.techniques.training import CONTROL_ARM, TECHNIQUE_ARM, train_arms
from harness.training import predict
from model_zoo import get_model
from model_zoo.students import STUDENTS, register_student, student_of
from tests.techniques.conftest import trainable_reference
from tests.toy_models import MLP


def test_the_loss_is_hintons():
    torch.manual_seed(0)
    student, teacher, y = torch.randn(8, 3), torch.randn(8, 3), torch.randint(0, 3, (8,))
    t, a = 3.0, 0.7
    p = torch.softmax(teacher / t, 1)
    kl = (p * (torch.log(p) - torch.log_softmax(student / t, 1))).sum(1).mean()
    expected = a * t * t * kl + (1 - a) * nn.functional.cross_entropy(student, y)
    assert torch.allclose(distillation_loss(student, teacher, y, t, a), expected, atol=1e-6)
    assert torch.allclose(distillation_loss(teacher, teacher, None, t, 1.0), torch.tensor(0.0), atol=1e-6)


def test_the_hook_looks_up_the_teachers_logits_of_the_batchs_rows():
    logits = torch.arange(12.0).reshape(6, 2)
    hook = Distill(logits, temperature=1.0, alpha=1.0)
    hook.indices(torch.tensor([4, 1]))
    out = hook.loss(logits[[4, 1]], None, (), None)
    assert torch.allclose(out, torch.tensor(0.0), atol=1e-6)  # the student equals the teacher on those rows


def test_the_declared_students_are_at_most_a_quarter_of_their_teachers():
    for name in ("digits_resnet", "digits_cnn", "cancer_mlp"):
        teacher = sum(p.numel() for p in get_model(name).build().parameters())
        student = sum(p.numel() for p in student_of(name)().parameters())
        assert student <= 0.25 * teacher, name


@pytest.fixture
def toy_student():
    register_student("toy_trainable", lambda: MLP(4, 2, 2))
    try:
        yield
    finally:
        STUDENTS.remove("toy_trainable")


def test_distillation_trains_student_and_scratch_and_compares_with_the_teacher(toy_student, tmp_path):
    ref = trainable_reference()
    ref.module = MLP(4, 64, 2).eval()  # a teacher big enough that the student is under a quarter of it
    outcome = train_arms(ref, DistillationConfig(name="kd", seeds=(0, 1)), Context(Cache(tmp_path), 1))
    assert set(outcome.arms) == {TECHNIQUE_ARM, CONTROL_ARM, "teacher"}
    metrics = outcome.metrics()
    assert "training.vs_teacher.mean" in metrics and metrics["training.params_share"] < 0.25


def test_the_distilled_student_learns_the_teacher_and_the_scratch_student_does_not(toy_student, tmp_path):
    """A random teacher disagrees with the labels on about half the items: only the Distill hook can teach its
    function, so the technique arm must match it on the test split far better than the scratch arm (same seed)."""
    ref = trainable_reference()
    torch.manual_seed(1)
    ref.module = MLP(4, 64, 2).eval()
    outcome = train_arms(ref, DistillationConfig(name="kd", seeds=(0,)), Context(Cache(tmp_path), 1))
    test = ref.splits.test
    teacher = predict(ref.module, test)

    def to_teacher(module):
        out = predict(module, test)
        kl = nn.functional.kl_div(torch.log_softmax(out, 1), torch.log_softmax(teacher, 1), reduction="batchmean",
                                  log_target=True)
        return float(kl), float((out.argmax(1) == teacher.argmax(1)).float().mean())

    kd_kl, kd_agree = to_teacher(outcome.modules[TECHNIQUE_ARM][0])
    scratch_kl, scratch_agree = to_teacher(outcome.modules[CONTROL_ARM][0])
    assert kd_kl < 0.25 * scratch_kl, (kd_kl, scratch_kl)
    assert kd_agree >= scratch_agree + 0.2, (kd_agree, scratch_agree)


def test_a_student_larger_than_a_quarter_is_refused(tmp_path):
    register_student("toy_trainable", lambda: MLP(4, 64, 2))
    try:
        with pytest.raises(ConfigError, match="more than a quarter of its teacher's"):
            train_arms(trainable_reference(), DistillationConfig(name="kd"), Context(Cache(tmp_path), 1))
    finally:
        STUDENTS.remove("toy_trainable")


def test_a_model_without_a_student_is_named():
    with pytest.raises(ConfigError, match="model 'minilm' declares no student; declare one with"):
        student_of("minilm")
    from model_zoo.traits import traits_of

    spec = get_model("minilm")
    assert "a student" in DistillationConfig(name="kd").not_applicable(spec, traits_of(spec))


@pytest.mark.parametrize(("field", "value", "message"), [
    ("temperature", 0.0, "`temperature` must be > 0"),
    ("temperature", -2.0, "`temperature` must be > 0"),
    ("alpha", 1.5, r"`alpha` must be in \[0, 1\]"),
    ("alpha", -0.1, r"`alpha` must be in \[0, 1\]"),
])
def test_bad_values_name_the_field(field, value, message):
    with pytest.raises(ConfigError, match=message):
        DistillationConfig(name="kd", **{field: value})
