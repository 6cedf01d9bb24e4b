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


def test_a_variant_losing_a_point_on_clean_data_is_not_judged():
    found = drift.fragility(_condition("clean", 0, 3), [], LABELS)
    assert found.clean_loss == pytest.approx(3 / 300) and not found.judged and found.figures()["drift.clean_ok"] == 0.0
