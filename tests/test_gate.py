import pytest

from harness.errors import ConfigError
from harness.gate import Expectation, Scope, Status, Tolerances, check_baseline, check_contract

ALL = frozenset(Scope)
ON = Tolerances(latency_rel=0.75)  # every check on

EXP = [Expectation("quality_retention", "quality.retention", ">=", 0.99)]


def test_contract_pass_and_fail_message():
    assert check_contract("c", {"quality.retention": 0.995}, EXP)[0].status is Status.PASS
    (v,) = check_contract("c", {"quality.retention": 0.95}, EXP)
    assert v.status is Status.FAIL
    assert v.message == "c: contract quality_retention not met: quality.retention = 0.9500, expected >= 0.9900"


def test_contract_failure_accepted_in_baseline_is_known():
    (v,) = check_contract("c", {"quality.retention": 0.95}, EXP, frozenset({"quality_retention"}))
    assert v.status is Status.KNOWN
    assert "accepted in the baseline" in v.message


def test_contract_on_missing_metric_is_skipped():
    (v,) = check_contract("c", {}, EXP)
    assert v.status is Status.SKIP


def test_upper_bound_contract():
    exp = [Expectation("small", "size_bytes", "<=", 100)]
    assert check_contract("c", {"size_bytes": 100.0}, exp)[0].status is Status.PASS
    assert check_contract("c", {"size_bytes": 101.0}, exp)[0].status is Status.FAIL


def _by_check(verdicts):
    return {v.check: v for v in verdicts}


def test_baseline_within_tolerance_passes():
    base = {"quality.value": 0.95, "size_bytes": 1000.0, "speedup": 2.0, "latency.p50_s": 0.01}
    cur = {"quality.value": 0.946, "size_bytes": 1019.0, "speedup": 1.4, "latency.p50_s": 0.017}
    verdicts = _by_check(check_baseline("c", cur, base, ON, comparable=ALL))
    assert {k: v.status for k, v in verdicts.items()} == {
        "quality": Status.PASS, "size": Status.PASS, "speedup": Status.PASS, "latency": Status.PASS
    }


@pytest.mark.parametrize(
    ("metric", "current", "check"),
    [
        ("quality.value", 0.94, "quality"),
        ("size_bytes", 1021.0, "size"),
        ("speedup", 1.29, "speedup"),
        ("latency.p50_s", 0.0176, "latency"),
    ],
)
def test_each_baseline_check_fails_beyond_tolerance(metric, current, check):
    base = {"quality.value": 0.95, "size_bytes": 1000.0, "speedup": 2.0, "latency.p50_s": 0.01}
    cur = dict(base, **{metric: current})
    verdicts = _by_check(check_baseline("case-x", cur, base, ON, comparable=ALL))
    assert verdicts[check].status is Status.FAIL
    assert verdicts[check].message.startswith(f"case-x: {metric} ")
    assert "baseline" in verdicts[check].message and "tolerance" in verdicts[check].message
    assert [v.check for v in verdicts.values() if v.status is Status.FAIL] == [check]


@pytest.mark.parametrize(
    ("comparable", "judged"),
    [
        (frozenset({Scope.ANYWHERE}), {"quality", "size"}),
        (frozenset({Scope.ANYWHERE, Scope.SAME_ISA}), {"quality", "size", "speedup"}),
        (ALL, {"quality", "size", "speedup", "latency"}),
    ],
)
def test_speed_is_judged_only_where_the_baseline_environment_matches(comparable, judged):
    """Far worse speed everywhere: only the checks whose scope matches may fail; the others say why not."""
    base = {"quality.value": 0.95, "size_bytes": 1000.0, "speedup": 2.0, "latency.p50_s": 0.01}
    cur = {"quality.value": 0.5, "size_bytes": 5000.0, "speedup": 0.1, "latency.p50_s": 1.0}
    verdicts = _by_check(check_baseline("c", cur, base, ON, comparable=comparable))
    assert {k for k, v in verdicts.items() if v.status is Status.FAIL} == judged
    for name in set(verdicts) - judged:
        assert verdicts[name].status is Status.SKIP and verdicts[name].message.startswith("not compared: ")


def test_latency_is_not_gated_by_default_but_can_be_turned_on_and_off():
    base, cur = {"latency.p50_s": 0.01}, {"latency.p50_s": 1.0}
    (v,) = check_baseline("c", cur, base, Tolerances(), comparable=ALL)
    assert v.status is Status.SKIP and v.message == "not gated: latency_rel is off"
    (v,) = check_baseline("c", cur, base, Tolerances.parse(["latency_rel=0.5"]), comparable=ALL)
    assert v.status is Status.FAIL and "tolerance 50%" in v.message
    assert Tolerances.parse(["latency_rel=0.5", "latency_rel=off"]).latency_rel is None


def test_metric_absent_on_either_side_is_not_judged():
    assert check_baseline("c", {"speedup": None}, {"speedup": 2.0}, Tolerances(), ALL) == []
    assert check_baseline("c", {"speedup": 2.0}, {}, Tolerances(), ALL) == []


def test_tolerances_parse():
    tol = Tolerances.parse(["speedup_rel=0.2", "quality_abs=0.01"])
    assert tol.speedup_rel == 0.2 and tol.quality_abs == 0.01 and tol.size_rel == Tolerances().size_rel
    with pytest.raises(ConfigError, match="NAME=VALUE with NAME one of"):
        Tolerances.parse(["nope=1"])
    with pytest.raises(ConfigError, match="`speedup_rel` must be a number"):
        Tolerances.parse(["speedup_rel=fast"])
    with pytest.raises(ConfigError, match=r"`size_rel` must be in \[0, 10\]"):
        Tolerances.parse(["size_rel=-1"])
