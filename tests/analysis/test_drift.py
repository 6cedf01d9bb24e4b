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
