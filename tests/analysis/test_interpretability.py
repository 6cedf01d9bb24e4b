import numpy as np
import pytest

from harness.analysis import interpretability as interp
from harness.errors import ConfigError

RNG = np.random.default_rng(0)
X = RNG.normal(size=(600, 5)).astype(np.float32)
RULE = ((X[:, 1] > 0.2) & (X[:, 3] <= 0.5)).astype(int)  # a model that is a two-antecedent rule


def test_the_surrogate_recovers_a_rule_model_with_full_fidelity_on_every_seed():
    s = interp.surrogate(X[:400], RULE[:400], X[400:], RULE[400:], interp.SurrogateSettings())
    assert s.fidelity > 0.97 and s.identical_seeds == 1.0 and s.antecedents_max <= 3 and s.leaves <= 8
    used = {f for r in s.rules for f, _, _ in r.antecedents}
    assert used == {1, 3}
    text = s.rules[0].text([f"f{i}" for i in range(5)], ["no", "yes"])
    assert text.startswith("IF f") and (" THEN no " in text or " THEN yes " in text)


def test_seeds_that_break_ties_differently_are_counted_as_other_rules():
    """Feature 5 is a copy of feature 1: each seed may split on either, so the rules differ in name while the
    predictions agree."""
    x = np.column_stack([X, X[:, 1]])
    s = interp.surrogate(x[:400], RULE[:400], x[400:], RULE[400:], interp.SurrogateSettings(seeds=tuple(range(8))))
    assert s.identical_seeds < 1.0 and s.seed_agreement == 1.0


def test_sibling_leaves_of_one_class_read_as_one_rule():
    """x0 > 0.5 is class 1 on 90 % (x1 <= 0.5) or 60 % (x1 > 0.5) of its rows: the tree splits it on x1 (the
    entropy falls enough), both leaves predict class 1, and the split decides nothing a rule should say."""
    rng = np.random.default_rng(1)
    x = rng.random((2000, 2)).astype(np.float32)
    share = np.where(x[:, 0] <= 0.5, 0.0, np.where(x[:, 1] <= 0.5, 0.9, 0.6))
    y = (rng.random(2000) < share).astype(int)
    s = interp.surrogate(x[:1500], y[:1500], x[1500:], y[1500:], interp.SurrogateSettings(), stability=False)
    assert s.tree.get_n_leaves() == 3
    assert [(r.antecedents[0][:2], r.predicted) for r in s.rules] == [((0, "<="), 0), ((0, ">"), 1)]
    assert all(len(r.antecedents) == 1 for r in s.rules)
    constant = interp.surrogate(X[:400], np.zeros(400, int), X[400:], np.zeros(200, int), interp.SurrogateSettings())
    assert len(constant.rules) == 1 and constant.rules[0].antecedents == ()


def test_rules_kept_flags_a_variant_right_for_other_reasons():
    labels = RULE[400:]
    reference = labels.copy()
    reference[50:80] = 1 - reference[50:80]  # the reference errs on 30 items, and its rules follow it
    surrogate = reference.copy()
    assert interp.rules_kept(surrogate, reference, reference, labels).mean == 0.0
    # as accurate as the reference (right on its 30 errors, wrong on 30 others), but off its rules on 60 items
    other = labels.copy()
    other[80:110] = 1 - other[80:110]
    kept = interp.rules_kept(surrogate, reference, other, labels)
    assert kept.mean == pytest.approx(60 / 200) and kept.low > 0.01
    # a variant that only loses accuracy where it leaves the rules is not flagged
    worse = reference.copy()
    worse[80:110] = 1 - worse[80:110]
    assert interp.rules_kept(surrogate, reference, worse, labels).mean == 0.0


def test_overlap_counts_rules_whose_thresholds_fall_in_one_quantile_bin():
    edges = interp.bin_edges(X)
    a = [interp.Rule(((1, ">", 0.20),), 1, 0.5)]
    near = [interp.Rule(((1, ">", 0.21),), 1, 0.5)]
    far = [interp.Rule(((1, ">", 1.5),), 1, 0.5)]
    assert interp.overlap(a, near, edges) == 1.0 and interp.overlap(a, far, edges) == 0.0


def test_images_are_read_on_a_grid_of_cells():
    images = RNG.random((3, 1, 32, 32)).astype(np.float32)
    assert interp.features(images).shape == (3, 64)
    assert interp.feature_names(images, None)[9] == "cell (1, 1)"


def test_settings_without_seeds_are_refused():
    with pytest.raises(ConfigError, match="`seeds`"):
        interp.SurrogateSettings(seeds=())


def _judge(metrics):
    from harness.analysis.interpretability_case import InterpretabilityConfig
    from harness.gate import check_contract

    config = InterpretabilityConfig(name="x", source="quantization/torch_dynamic_int8")
    (verdict,) = check_contract("c", {f"proof.interp.{k}": v for k, v in metrics.items()}, config.expectations())
    return verdict.status.value


def test_the_rules_kept_contract_fails_a_variant_off_the_rules_and_passes_one_on_them():
    assert _judge({"excess": 0.3, "excess.ci_low": 0.25, "excess.ci_high": 0.35, "excess.n": 200}) == "fail"
    assert _judge({"excess": 0.0, "excess.ci_low": -0.004, "excess.ci_high": 0.004, "excess.n": 200}) == "pass"
    assert _judge({"excess": 0.0, "excess.ci_low": -0.03, "excess.ci_high": 0.03, "excess.n": 20}) == "inconclusive"
