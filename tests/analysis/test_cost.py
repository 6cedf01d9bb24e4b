import pytest

from harness.analysis.cost import serving_figures, training_figures
from harness.analysis.prices import Price

PRICES = (Price("a", 3.6), Price("b", 7.2))


def test_serving_cost_is_given_per_price():
    figures = serving_figures(1000.0, PRICES)
    assert figures["cost.usd_per_1m.a"] == pytest.approx(1.0)
    assert figures["cost.usd_per_1m.b"] == pytest.approx(2 * figures["cost.usd_per_1m.a"])


def test_training_cost_prices_each_arm_and_the_saving_per_run():
    training = {"arms": {"technique": {"wall_s": [1.0, 3.0]}, "control": {"wall_s": [10.0, 10.0]}}}
    figures = training_figures({}, training, PRICES)
    assert figures["cost.train.saved_run_s"] == pytest.approx(8.0)
    assert figures["cost.train.saved_run_usd.a"] == pytest.approx(3.6 * 8 / 3600)


def test_training_cost_reads_study_and_distillation_wall_times_and_leaves_out_the_rest():
    metrics = {"training.tpe.wall_s": 36.0, "training.distill_s": 10.0, "training.technique_train_s": 2.0,
               "training.full_train_s": 5.0}
    figures = training_figures(metrics, None, PRICES)
    assert figures["cost.train.study_tpe_usd.a"] == pytest.approx(0.036)
    assert figures["cost.train.distill_and_train_s"] == 12.0 and figures["cost.train.full_train_s"] == 5.0
    assert not any("saved" in k for k in figures)
