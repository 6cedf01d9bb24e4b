import numpy as np
import pytest

from harness.analysis import drift

LABELS = np.arange(300) % 3


def _condition(shift, severity, variant_wrong=0, reference=None):
    ref = LABELS.copy() if reference is None else reference
    var = ref.copy()
    var[:variant_wrong] = (var[:variant_wrong] + 1) % 3
    return drift.Condition(shift, severity, np.arange(len(LABELS)), ref, var)


def test_a_variant_like_its_reference_is_not_fragile():
    clean = _condition("clean", 0)
    points = [drift.point(_condition("noise", s), LABELS) for s in (1, 2, 3)]
    found = drift.fragility(clean, points, LABELS)
    assert found.judged and found.worst is not None and found.worst.excess.mean == 0.0
    assert found.figures()["drift.fragile"] == 0.0


def test_the_worst_shift_is_the_one_with_the_largest_loss_beyond_the_reference():
    clean = _condition("clean", 0)
    points = [drift.point(_condition("noise", 3, 3), LABELS), drift.point(_condition("blur", 2, 30), LABELS)]
    found = drift.fragility(clean, points, LABELS)
    assert found.worst.shift == "blur" and found.worst.excess.mean == 30 / 300
    assert found.figures()["drift.fragile"] == 1.0
    # 9 items of 300 more lost (0.03): beyond 0.02 on the mean, not on its interval: not (yet) fragile
    unsure = drift.fragility(clean, [drift.point(_condition("blur", 2, 9), LABELS)], LABELS).figures()
    assert unsure["drift.worst_excess"] == pytest.approx(0.03) and unsure["drift.worst_excess.ci_low"] < 0.02
    assert unsure["drift.fragile"] == 0.0


def test_a_variant_losing_a_point_on_clean_data_is_not_judged():
    found = drift.fragility(_condition("clean", 0, 3), [], LABELS)
    assert found.clean_loss == pytest.approx(3 / 300) and not found.judged and found.figures()["drift.clean_ok"] == 0.0
    assert drift.fragility(_condition("clean", 0, 2), [], LABELS).judged  # 0.67 points: judged


def _judge(metrics):
    from harness.analysis.drift_case import DriftConfig
    from harness.gate import check_contract

    config = DriftConfig(name="x", source="quantization/torch_dynamic_int8")
    (verdict,) = check_contract("c", {f"proof.drift.{k}": v for k, v in metrics.items()}, config.expectations())
    return verdict.status.value


def test_the_not_fragile_contract_fails_a_fragile_variant_and_skips_one_that_lost_on_clean_data():
    fragile = {"worst_excess": 0.15, "worst_excess.ci_low": 0.11, "worst_excess.ci_high": 0.19,
               "worst_excess.n": 360, "clean_ok": 1.0}
    assert _judge(fragile) == "fail"
    assert _judge(fragile | {"clean_ok": 0.0}) == "skip"
    kept = {"worst_excess": 0.0, "worst_excess.ci_low": -0.005, "worst_excess.ci_high": 0.01,
            "worst_excess.n": 360, "clean_ok": 1.0}
    assert _judge(kept) == "pass"


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _embeddings(n=120, dim=16, seed=0):
    rng = np.random.default_rng(seed)
    clean = _unit(rng.normal(size=(n, dim)))
    return clean, _unit(clean + 0.4 * _unit(rng.normal(size=(n, dim))))  # clean, shifted (both models alike)


def test_embedding_quality_is_the_cosine_to_the_references_clean_embedding():
    clean, shifted = _embeddings()
    # a variant that moved its own embeddings everywhere (a rotation): near its own clean ones, far from the
    # reference's; read against its own clean embedding it would look as good as the reference
    rotation = np.linalg.qr(np.random.default_rng(1).normal(size=(16, 16)))[0]
    p = drift.embedding_point(drift.EmbeddingCondition("typos", 2, clean, shifted, shifted @ rotation))
    assert p.reference == pytest.approx(float(np.mean(np.sum(shifted * clean, axis=1))))
    assert p.variant == pytest.approx(float(np.mean(np.sum((shifted @ rotation) * clean, axis=1))))
    assert p.variant < p.reference - 0.3 and p.excess.low > drift.EXCESS_MAX
    assert p.disagreement == pytest.approx(1 - float(np.mean(np.sum((shifted @ rotation) * shifted, axis=1))))


def test_an_embedding_variant_equal_to_its_reference_has_no_excess_and_no_disagreement():
    clean, shifted = _embeddings()
    p = drift.embedding_point(drift.EmbeddingCondition("word_dropout", 3, clean, shifted, shifted.copy()))
    assert p.excess.mean == 0.0 and p.disagreement == pytest.approx(0.0, abs=1e-12) and p.variant < 1.0


def test_embedding_fragility_judges_on_the_clean_cosine_and_finds_the_worst_shift():
    clean, shifted = _embeddings()
    rng = np.random.default_rng(2)
    near = _unit(clean + 0.01 * rng.normal(size=clean.shape))  # cosine ~0.999 to the reference: loss < 0.01
    base = drift.embedding_point(drift.EmbeddingCondition("clean", 0, clean, clean, near))
    assert base.reference == pytest.approx(1.0) and 0 < 1 - base.variant < drift.CLEAN_LOSS_MAX
    worse = _unit(shifted + 0.5 * rng.normal(size=clean.shape))
    points = [drift.embedding_point(drift.EmbeddingCondition("typos", 3, clean, shifted, shifted)),
              drift.embedding_point(drift.EmbeddingCondition("word_dropout", 3, clean, shifted, worse))]
    found = drift.fragility_of(base, points)
    assert found.judged and found.worst.shift == "word_dropout"
    assert found.clean_loss == pytest.approx(1 - base.variant) and found.figures()["drift.fragile"] == 1.0
    far = drift.embedding_point(drift.EmbeddingCondition("clean", 0, clean, clean, shifted))
    assert not drift.fragility_of(far, points).judged  # loses > 0.01 of cosine on clean data: not judged


def test_proof_figures_keep_the_names_the_report_and_baselines_read():
    clean, shifted = _embeddings()
    points = [drift.embedding_point(drift.EmbeddingCondition("typos", s, clean, shifted, shifted)) for s in (1, 3)]
    base = drift.embedding_point(drift.EmbeddingCondition("clean", 0, clean, clean, clean))
    own = {"ks": {"fpr": 0.05, "typos.s3": 1.0, "trials": 20.0}}
    proof = drift.proof_figures(drift.fragility_of(base, points), points, own, {"ks": {"fpr": 0.04, "typos.s1": 0.2,
                                                                                       "typos.s3": 1.0}}, 3)
    assert {"drift.typos.s3.quality", "drift.typos.s3.disagreement", "drift.worst_excess", "drift.clean_loss",
            "detector.ks.fpr", "detector.ks.typos.s3", "reference_detector.ks.fpr",
            "reference_detector.ks.typos.s3"} <= set(proof)
    assert "drift.typos.s1.quality" not in proof and "detector.ks.trials" not in proof
    assert "reference_detector.ks.typos.s1" not in proof


def test_every_embedding_point_is_read_against_the_references_clean_embeddings():
    clean, shifted = _embeddings()
    rotation = np.linalg.qr(np.random.default_rng(1).normal(size=(16, 16)))[0]
    # the variant rotated everything: its own clean and shifted embeddings are as close as the reference's are
    base, points = drift.embedding_points(clean, clean @ rotation, {("typos", 1): shifted},
                                          {("typos", 1): shifted @ rotation})
    assert base.reference == pytest.approx(1.0) and base.variant < 0.5  # far from the reference on clean data
    (p,) = points
    assert p.reference == pytest.approx(float(np.mean(np.sum(shifted * clean, axis=1))))
    assert p.variant < p.reference - 0.3 and p.excess.mean > 0.3


def test_drift_applies_to_classifiers_on_images_or_tables_and_to_embedding_models_on_tokens():
    import model_zoo
    from harness.analysis.drift_case import DriftConfig
    from model_zoo.spec import InputKind, Task
    from model_zoo.traits import Traits

    config = DriftConfig(name="x", source="quantization/torch_dynamic_int8")
    minilm = model_zoo.MODELS.get("minilm")

    def why(task, kind):
        return config.not_applicable(minilm, Traits(task, kind, False, False, None, None))

    assert why(Task.EMBEDDING, InputKind.TOKENS) is None
    assert why(Task.CLASSIFICATION, InputKind.TOKENS).startswith("needs an embedding task for token inputs")
    assert why(Task.EMBEDDING, InputKind.IMAGE) == "needs a classification task"
    assert why(Task.CLASSIFICATION, InputKind.TABULAR) is None
