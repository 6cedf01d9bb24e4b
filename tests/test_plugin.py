"""The plugin end to end, through pytester, on toy models registered for each test only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from unittest.mock import ANY

import pytest

from harness.gate import Tolerances
from harness.result import RunResult
from tests import plugin_toys

SUITE = """
import pytest

pytestmark = pytest.mark.optbench_suite("toy")


def test_toy(optbench, optbench_case, benchmark):
    optbench.run(optbench_case, benchmark)
"""

FAST = ["-p", "no:cacheprovider", "--benchmark-max-time=0.01", "--benchmark-min-rounds=3",
        "--optbench-throughput-time=0.01", "--optbench-threads=1"]


@pytest.fixture(scope="module", autouse=True)
def _import_lazy_modules_once(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Run a toy case on torch and ONNX Runtime in this process first.

    Training, export and quantization import parts of torch lazily; pytester's in-process runs drop the modules
    they imported afterwards, and torch refuses to register its operator libraries a second time.
    """
    from harness.cache import Cache
    from harness.case import Case
    from harness.measure import Settings, measure_case, reference_outputs
    from harness.techniques import REFERENCE, Context
    from model_zoo.training import load_reference

    cache = Cache(tmp_path_factory.mktemp("warm"))
    with plugin_toys.registered():
        ref = load_reference(plugin_toys.SPECS[0], cache)
        for backend in ("torch_eager", "onnxruntime"):
            case = Case("toy", ref.spec.name, REFERENCE, backend)
            measure_case(case, ref, reference_outputs(ref), Settings(1, 0.01, 0.01), Context(cache, 1),
                         timer=lambda fn: [0.0])


@pytest.fixture
def toy(pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory):
    pytester.makepyfile(test_suite=SUITE)
    cache = tmp_path_factory.mktemp("cache")
    with plugin_toys.registered():

        def run(*args: str) -> pytest.RunResult:
            return pytester.runpytest(*FAST, f"--optbench-cache-dir={cache}", *args)

        yield run


def baseline_file(pytester: pytest.Pytester):
    return pytester.path / "results" / "baselines" / "toy.json"


def class_cases(data: dict) -> dict:
    """The cases of the one machine class a toy baseline holds."""
    (cls,) = data["classes"].values()
    return cls["cases"]


def test_options_are_listed_in_help(pytester):
    result = pytester.runpytest("--help")
    out = result.stdout.str()
    for option in ("--optbench-models=NAMES", "--optbench-update-baselines", "--optbench-threads=N",
                   "--optbench-tolerance=NAME=VALUE", "--optbench-cache-dir=DIR"):
        assert option in out
    defaults = Tolerances()
    assert f"speedup_rel ({defaults.speedup_rel:.2f})" in out and f"latency_rel ({defaults.latency_rel:.2f};" in out
    assert "--optbench-require-baseline-class" in out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--optbench-models=nope"], "--optbench-models: unknown name 'nope'; expected one of: "),
        (["--optbench-backends=tpu"], "--optbench-backends: unknown name 'tpu'; expected one of: "),
        (["--optbench-configs=int3"], "--optbench-configs: unknown name 'int3'; expected one of: "),
        (["--optbench-tolerance=speed=1"], "tolerance must be NAME=VALUE"),
        (["--optbench-threads=0"], "expected a whole number >= 1, got '0'"),
        (["--optbench-threads=4096"], "--optbench-threads: 4096 is more than the"),
        (["--optbench-tolerance=speedup_rel=10"],
         "tolerance `speedup_rel` is a fraction below 1 (0.1 for 10 %), got 10"),
        (["--optbench-optuna-study=mine"], "--optbench-optuna-study names studies in a storage: give "
                                           "--optbench-optuna-storage URL too"),
        (["--optbench-seed-offset=-1"], "expected a whole number >= 0, got '-1'"),
    ],
)
def test_bad_option_values_are_usage_errors(toy, args, expected):
    result = toy(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert expected in result.stderr.str()


def test_unknown_model_error_lists_valid_names(toy):
    result = toy("--optbench-models=nope")
    err = result.stderr.str()
    assert "toy_mlp" in err and "digits_cnn" in err


def test_new_case_fails_without_baseline_and_passes_when_allowed(toy, pytester):
    args = ("--optbench-models=toy_mlp", "--optbench-backends=torch_eager", "--optbench-configs=gentle")
    result = toy(*args)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*toy_mlp-gentle-torch_eager: no baseline in *toy.json*--optbench-update-baselines*"])
    toy(*args, "--optbench-allow-new").assert_outcomes(passed=2)
    assert not baseline_file(pytester).exists()


HARSH = "toy_mlp-harsh-torch_eager:quality_retention"


def test_accepting_refuses_an_unmet_contract_it_was_not_told_to_accept(toy, pytester):
    args = ("--optbench-models=toy_mlp", "--optbench-backends=torch_eager")
    result = toy(*args, "--optbench-update-baselines")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([f"*contract quality_retention not met*--optbench-accept-known {HARSH}*"])
    cases = class_cases(json.loads(baseline_file(pytester).read_text()))
    assert set(cases) == {"toy_mlp-fp32-torch_eager", "toy_mlp-gentle-torch_eager"}  # the others are written
    toy(*args, "--optbench-update-baselines", "--optbench-accept-known=toy_mlp-*:quality_retention"
        ).assert_outcomes(passed=2, xfailed=1)
    assert "toy_mlp-harsh-torch_eager" in class_cases(json.loads(baseline_file(pytester).read_text()))


def test_accept_known_without_updating_is_a_usage_error(toy):
    result = toy("--optbench-accept-known=quality_retention")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--optbench-accept-known accepts findings into a baseline: it needs --optbench-update-baselines" in \
        result.stderr.str()


def test_update_then_gate_twice_passes_and_writes_run_record(toy, pytester):
    args = ("--optbench-models=toy_mlp", "--optbench-backends=torch_eager")
    result = toy(*args, "--optbench-update-baselines", f"--optbench-accept-known={HARSH}")
    result.assert_outcomes(passed=2, xfailed=1)  # harsh's unmet contract is accepted, and shown as a finding
    result.stdout.fnmatch_lines([f"*accepted as a finding (--optbench-accept-known): {HARSH}*"])
    result.stdout.fnmatch_lines(["*class *: new", "    toy_mlp-gentle-torch_eager: new"])  # reviewed before written
    data = json.loads(baseline_file(pytester).read_text())
    assert data["schema_version"] == 2
    assert set(class_cases(data)) == {"toy_mlp-fp32-torch_eager", "toy_mlp-gentle-torch_eager",
                                      "toy_mlp-harsh-torch_eager"}
    assert class_cases(data)["toy_mlp-harsh-torch_eager"]["accepted_contract_failures"] == ["quality_retention"]
    (cls,) = data["classes"].values()
    assert cls["environment"]["threads"] == 1
    for _ in range(2):
        result = toy(*args)
        result.assert_outcomes(passed=2, xfailed=1)  # harsh: a known, accepted contract failure
    result.stdout.fnmatch_lines(["*optbench*", "case*p50 b1*speedup*verdict*", "toy_mlp-harsh-torch_eager*known*"])
    runs = sorted((pytester.path / "results").glob("run-*.json"))
    assert runs
    run = json.loads(runs[-1].read_text())
    assert run["baselines"]["toy"]["compared"] == ["quality", "size", "speedup", "latency"]
    assert run["baselines"]["toy"]["environment"]["threads"] == 1 and run["baselines"]["toy"]["class_baseline"]
    statuses = {c["case_id"]: c["status"] for c in run["cases"]}
    assert statuses == {"toy_mlp-fp32-torch_eager": "pass", "toy_mlp-gentle-torch_eager": "pass",
                        "toy_mlp-harsh-torch_eager": "known"}
    gentle = next(c for c in run["cases"] if c["config"] == "gentle")["record"]
    assert gentle["latency"]["rounds"] >= 3 and gentle["speedup"] > 0
    assert gentle["paired"]["candidate_s"] == {"$samples": ANY}  # raw samples kept beside the record, read back:
    gentle = next(c for c in RunResult.load(runs[-1]).cases if c["config"] == "gentle")["record"]
    assert len(gentle["latency"]["samples_s"]) == gentle["latency"]["rounds"]
    assert len(gentle["paired"]["candidate_s"]) == gentle["paired"]["rounds"] >= 10
    assert gentle["metrics"]["latency.normalized"] > 0 and gentle["metrics"]["probe.p50_s"] > 0
    accepted = class_cases(json.loads(baseline_file(pytester).read_text()))["toy_mlp-gentle-torch_eager"]
    assert "samples_s" not in json.dumps(accepted)  # the baseline stays small enough to review
    assert gentle["quality"]["retention"] == pytest.approx(1.0)


def test_a_baseline_accepted_from_the_median_of_runs_gates_the_next_run(toy, pytester):
    from harness import accept

    args = ("--optbench-models=toy_mlp", "--optbench-backends=torch_eager", "--optbench-configs=gentle")
    for _ in range(3):
        toy(*args, "--optbench-allow-new").assert_outcomes(passed=2)
    runs = sorted((pytester.path / "results").glob("run-*.json"))
    assert len(runs) == 3
    assert accept.main([*map(str, runs), "--baseline-dir", str(baseline_file(pytester).parent)]) == 0
    entry = class_cases(json.loads(baseline_file(pytester).read_text()))["toy_mlp-gentle-torch_eager"]
    speedups = sorted(json.loads(r.read_text())["cases"][1]["record"]["speedup"] for r in runs)
    assert entry["metrics"]["speedup"] == pytest.approx(speedups[1], rel=1e-5)
    assert entry["identity"]["weights"]
    assert entry["runs"] == 3 and entry["spread"]["speedup"] >= 0 and entry["spread"]["latency.normalized"] >= 0
    # The accepted baseline gates the next run; wide minimum effects keep a shared runner's toy timings (a spread
    # from three 10 ms runs) from deciding this test, which is about the mechanics.
    toy(*args, "--optbench-tolerance=speedup_rel=0.9", "--optbench-tolerance=latency_rel=0.9").assert_outcomes(passed=2)


def test_contract_failure_not_accepted_fails_the_case(toy, pytester):
    args = ("--optbench-models=toy_mlp", "--optbench-backends=torch_eager")
    toy(*args, "--optbench-update-baselines", f"--optbench-accept-known={HARSH}").assert_outcomes(passed=2, xfailed=1)
    path = baseline_file(pytester)
    data = json.loads(path.read_text())
    class_cases(data)["toy_mlp-harsh-torch_eager"]["accepted_contract_failures"] = []
    path.write_text(json.dumps(data))
    result = toy(*args)
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*toy_mlp-harsh-torch_eager: contract quality_retention not met: quality.retention ="
                                 "*(95 % interval * to *, n = * test items) lies wholly beyond >= 0.99*"])


@pytest.mark.parametrize(("weights", "spread", "outcomes"), [
    ("other", 0.05, {"passed": 3}),  # one draw of the recipe, within what other weights give: inconclusive
    ("other", None, {"passed": 2, "failed": 1}),  # no spread measured: the items decide
    ("same", 0.05, {"passed": 2, "failed": 1}),  # the baseline's own weights: the items decide
])
def test_a_contract_on_other_weights_is_widened_by_the_baselines_spread_across_weights(toy, pytester, weights, spread,
                                                                                     outcomes):
    args = ("--optbench-models=toy_mlp", "--optbench-backends=torch_eager")
    toy(*args, "--optbench-update-baselines", f"--optbench-accept-known={HARSH}").assert_outcomes(passed=2, xfailed=1)
    path = baseline_file(pytester)
    data = json.loads(path.read_text())
    entry = class_cases(data)["toy_mlp-harsh-torch_eager"]
    entry["accepted_contract_failures"] = []
    if weights == "other":
        entry["identity"]["weights"] = "0123456789abcdef"
    if spread is not None:
        entry["spread"] = {**entry.get("spread", {}), "quality.retention": spread, "quality.retention.weights": 5.0}
    path.write_text(json.dumps(data))
    result = toy(*args)
    result.assert_outcomes(**outcomes)
    if outcomes == {"passed": 3}:
        result.stdout.fnmatch_lines(["*toy_mlp-harsh-torch_eager: contract quality_retention inconclusive: "
                                     "*prediction interval across 5 weights, sd 0.0500*"])


def test_a_regression_beyond_tolerance_fails_with_one_message(toy, pytester):
    args = ("--optbench-models=toy_mlp", "--optbench-backends=torch_eager", "--optbench-configs=gentle")
    toy(*args, "--optbench-update-baselines").assert_outcomes(passed=2)
    path = baseline_file(pytester)
    data = json.loads(path.read_text())
    class_cases(data)["toy_mlp-gentle-torch_eager"]["metrics"]["quality.value"] = 1.5
    class_cases(data)["toy_mlp-gentle-torch_eager"]["metrics"]["size_bytes"] = 10
    path.write_text(json.dumps(data))
    result = toy(*args)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*toy_mlp-gentle-torch_eager: quality.value dropped beyond tolerance: baseline 1.5000, current *",
    ])
    result.stdout.fnmatch_lines(["*toy_mlp-gentle-torch_eager: size_bytes grew beyond tolerance: baseline 10*"])


@pytest.mark.parametrize(("weights", "outcomes"), [("same", {"passed": 1, "failed": 1}), ("other", {"passed": 2})])
def test_quality_of_other_reference_weights_is_judged_within_sampling_error(toy, pytester, weights, outcomes):
    """A baseline accepted with weights trained elsewhere: a quality gap beyond 0.005 but inside the two
    figures' sampling error passes; with the same weights it fails."""
    args = ("--optbench-models=toy_mlp", "--optbench-backends=torch_eager", "--optbench-configs=gentle")
    toy(*args, "--optbench-update-baselines").assert_outcomes(passed=2)
    path = baseline_file(pytester)
    data = json.loads(path.read_text())
    entry = class_cases(data)["toy_mlp-gentle-torch_eager"]
    low, high = entry["metrics"]["quality.ci_low"], entry["metrics"]["quality.ci_high"]
    assert high - low > 0.05  # the toy's test split is small: a wide interval
    entry["metrics"]["quality.value"] += 0.02
    if weights == "other":
        entry["identity"]["weights"] = "0123456789abcdef"
    path.write_text(json.dumps(data))
    result = toy(*args)
    result.assert_outcomes(**outcomes)
    from harness.result import RunResult

    run = RunResult.load(sorted((pytester.path / "results").glob("run-*.json"))[-1])
    (case,) = [c for c in run.cases if c["case_id"] == "toy_mlp-gentle-torch_eager"]
    (quality,) = [v for v in case["verdicts"] if v["check"] == "quality"]
    assert (quality["tolerance"] > 0.02) is (weights == "other")


def test_a_case_selected_without_its_fp32_case_still_gets_a_speedup(toy, pytester):
    result = toy("--optbench-models=toy_mlp", "--optbench-backends=torch_eager", "--optbench-allow-new", "-k", "gentle")
    result.assert_outcomes(passed=1)
    run = json.loads(sorted((pytester.path / "results").glob("run-*.json"))[-1].read_text())
    (case,) = run["cases"]
    assert case["case_id"] == "toy_mlp-gentle-torch_eager" and case["record"]["paired"]["rounds"] >= 10
    assert 0.2 < case["record"]["speedup"] < 5  # the same module on both sides: a ratio near 1


def test_a_slower_change_fails_on_its_interleaved_speedup(toy, monkeypatch):
    """The question CI must answer: a change that makes a case slower fails the run, naming the speedup."""
    args = ("--optbench-models=toy_mlp", "--optbench-backends=torch_eager", "--optbench-configs=gentle")
    toy(*args, "--optbench-update-baselines").assert_outcomes(passed=2)
    monkeypatch.setenv(plugin_toys.SLOW_ENV, "0.002")  # the toy artifact now sleeps 2 ms per call
    result = toy(*args)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*toy_mlp-gentle-torch_eager: speedup dropped beyond its threshold: baseline *, current *"
        "(95 % interval *), threshold 35% (uncalibrated*",
    ])


def test_a_speed_failure_is_measured_again_before_it_stands(toy, pytester):
    """Only speed fails (the baseline's speedup is ten times today's): the session takes two more interleaved blocks,
    pools them, and the failure that still holds says so."""
    args = ("--optbench-models=toy_mlp", "--optbench-backends=torch_eager", "--optbench-configs=gentle")
    toy(*args, "--optbench-update-baselines").assert_outcomes(passed=2)
    first = json.loads(sorted((pytester.path / "results").glob("run-*.json"))[-1].read_text())
    path = baseline_file(pytester)
    data = json.loads(path.read_text())
    class_cases(data)["toy_mlp-gentle-torch_eager"]["metrics"]["speedup"] *= 10
    path.write_text(json.dumps(data))
    result = toy(*args)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*toy_mlp-gentle-torch_eager: speedup dropped beyond its threshold*"
                                 "(still beyond after 2 more interleaved block(s), pooled)"])
    run = json.loads(sorted((pytester.path / "results").glob("run-*.json"))[-1].read_text())
    rounds = [next(c for c in r["cases"] if c["case_id"] == "toy_mlp-gentle-torch_eager")["record"]["paired"]["rounds"]
              for r in (first, run)]
    assert rounds[1] >= 1.6 * rounds[0]  # three time-bounded blocks pooled: about three times one block's rounds


def test_a_renamed_proof_key_fails_the_run_naming_the_figure(toy, monkeypatch):
    args = ("--optbench-models=toy_mlp", "--optbench-backends=torch_eager", "--optbench-configs=gentle")
    toy(*args, "--optbench-update-baselines").assert_outcomes(passed=2)
    monkeypatch.setenv(plugin_toys.PROOF_ENV, "noised_tensor_count")
    result = toy(*args)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*contract noise_applied cannot be judged: proof.noised_tensors was not measured*"])
    result.stdout.fnmatch_lines(["*proof.noised_tensors is in the baseline (*) but was not measured in this run*"])


@pytest.mark.parametrize(("kind", "word"), [("nan", "NaN"), ("inf", "Inf")])
def test_an_optimized_artifact_emitting_nan_or_inf_fails_while_fp32_passes(toy, monkeypatch, kind, word):
    """The fp32 reference is finite; only the technique's artifact is broken: the candidate's checks catch it."""
    monkeypatch.setenv(plugin_toys.POISON_ENV, kind)
    result = toy("--optbench-models=toy_mlp", "--optbench-backends=torch_eager", "--optbench-configs=gentle",
                 "--optbench-allow-new")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([f"*toy_mlp-gentle-torch_eager: model output contains {word} in 32 of 32 rows*"])


def test_a_machine_class_with_no_baseline_says_so_and_gates_what_does_not_depend_on_it(toy, pytester):
    args = ("--optbench-models=toy_mlp", "--optbench-backends=torch_eager", "--optbench-configs=gentle")
    toy(*args, "--optbench-update-baselines").assert_outcomes(passed=2)
    path = baseline_file(pytester)
    data = json.loads(path.read_text())
    ((key, cls),) = data["classes"].items()
    cls["environment"]["cpu_flags"] = ["avx512f", "avx512_vnni"]  # the only class is another runner's
    cls["cases"]["toy_mlp-gentle-torch_eager"]["metrics"]["speedup"] = 100.0  # far faster there: not compared
    data["classes"] = {"x86_64-avx512-other-class": cls}
    path.write_text(json.dumps(data))
    result = toy(*args)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["baseline toy: no entry for this machine class (*); speed not gated*"])
    run = json.loads(sorted((pytester.path / "results").glob("run-*.json"))[-1].read_text())
    info = run["baselines"]["toy"]
    assert info["class_baseline"] is False and info["machine_class"] == key and info["compared"] == ["quality", "size"]
    gentle = next(c for c in run["cases"] if c["config"] == "gentle")
    assert {v["check"]: v["status"] for v in gentle["verdicts"] if v["source"] == "baseline"} == {
        "quality": "pass", "size": "pass", "speedup": "skip", "latency": "skip"}
    strict = toy(*args, "--optbench-require-baseline-class")
    strict.assert_outcomes(failed=2)
    strict.stdout.fnmatch_lines(["*no baseline of this machine class (*) in *toy.json*"])


def test_a_class_holding_some_cases_gates_the_rest_against_another_class_and_says_so(toy, pytester):
    """A class entry may hold only what no other class could run natively (bf16 where only its CPU has bf16
    instructions); its other cases are judged on another class's machine-independent figures, and the header
    says how many."""
    args = ("--optbench-models=toy_mlp", "--optbench-backends=torch_eager", "--optbench-configs=gentle")
    toy(*args, "--optbench-update-baselines").assert_outcomes(passed=2)
    path = baseline_file(pytester)
    data = json.loads(path.read_text())
    ((key, own),) = data["classes"].items()
    other = json.loads(json.dumps(own))
    other["environment"]["cpu_flags"] = ["avx512f", "avx512_vnni"]
    other["cases"]["toy_mlp-gentle-torch_eager"]["metrics"]["speedup"] = 100.0  # another runner's: not compared
    del own["cases"]["toy_mlp-gentle-torch_eager"]
    data["classes"] = {key: own, "x86_64-avx512-other-class": other}
    path.write_text(json.dumps(data))
    result = toy(*args)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["baseline toy: 1 case of this run has no entry of this machine class; for them "
                                 "speed is not gated*"])
    run = json.loads(sorted((pytester.path / "results").glob("run-*.json"))[-1].read_text())
    assert run["baselines"]["toy"]["other_class_cases"] == ["toy_mlp-gentle-torch_eager"]
    gentle = next(c for c in run["cases"] if c["config"] == "gentle")
    assert {v["check"]: v["status"] for v in gentle["verdicts"] if v["source"] == "baseline"} == {
        "quality": "pass", "size": "pass", "speedup": "skip", "latency": "skip"}


@pytest.mark.parametrize("content", ['{"schema_version": 1, "cases": {"a"', '{"schema_version": 7, "cases": {}}'])
def test_corrupt_baseline_stops_the_run_and_is_left_untouched(toy, pytester, content):
    path = baseline_file(pytester)
    path.parent.mkdir(parents=True)
    path.write_text(content)
    for extra in ((), ("--optbench-update-baselines",)):
        result = toy("--optbench-models=toy_mlp", "--optbench-backends=torch_eager", *extra)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        assert f"baseline {path}" in result.stderr.str()
        assert path.read_text() == content


def test_nan_outputs_fail_the_case_with_that_message(toy):
    result = toy("--optbench-models=toy_nan", "--optbench-backends=torch_eager", "--optbench-allow-new")
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(["*model output contains NaN in 32 of 32 rows; expected finite values*"])


def test_an_unexpected_error_fails_its_case_and_is_still_reported(toy, pytester):
    result = toy("--optbench-models=toy_crashing,toy_mlp", "--optbench-backends=torch_eager",
                 "--optbench-configs=gentle", "--optbench-allow-new")
    result.assert_outcomes(failed=2, passed=2)
    result.stdout.fnmatch_lines(["*toy_crashing-gentle-torch_eager * error"])
    run = json.loads(sorted((pytester.path / "results").glob("run-*.json"))[-1].read_text())
    crashed = {c["case_id"]: c for c in run["cases"] if c["model"] == "toy_crashing"}
    assert {c["status"] for c in crashed.values()} == {"error"} and len(crashed) == 2
    assert crashed["toy_crashing-fp32-torch_eager"]["message"] == (
        "toy_crashing-fp32-torch_eager: RuntimeError: kernel exploded")


def test_failed_export_fails_that_case_and_others_go_on(toy):
    result = toy("--optbench-models=toy_unexportable,toy_mlp", "--optbench-backends=torch_eager,onnxruntime",
                 "--optbench-configs=gentle", "--optbench-allow-new")
    outcomes = result.parseoutcomes()
    assert outcomes["failed"] == 2 and outcomes["passed"] == 6
    result.stdout.fnmatch_lines(
        ["*toy_unexportable-fp32-onnxruntime: ONNX export of *failed: DispatchError: No ONNX function found for*eigh*"]
    )


def test_unavailable_backend_cases_are_skipped_with_reason(toy):
    from harness.backends.base import BACKENDS

    unavailable = [n for n in BACKENDS.names() if not BACKENDS.get(n).availability().ok]
    if not unavailable:
        pytest.skip("every backend is available on this machine (GPU present)")
    result = toy("--optbench-models=toy_mlp", f"--optbench-backends={unavailable[0]}", "-rs")
    assert result.parseoutcomes()["skipped"] >= 1
    result.stdout.fnmatch_lines([f"SKIPPED*{unavailable[0]} unavailable: *"])


def test_user_model_from_an_entry_point_joins_the_matrix(pytester, tmp_path_factory):
    """A package exposing `optbench.models` adds its model without touching optbench: a real entry point, found
    by importlib.metadata in a separate interpreter, like a user's installed package."""
    site = pytester.mkdir("site")
    repo = Path(plugin_toys.__file__).parent.parent
    (site / "mymodels.py").write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(repo)!r})
        from tests import plugin_toys
        SPEC = plugin_toys._spec("my_model", plugin_toys.ToyMLP)
    """))
    dist = site / "mymodels-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mymodels\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[optbench.models]\nmy_model = mymodels:SPEC\n")
    pytester.makepyfile(test_suite=SUITE.replace('"toy"', '"quantization"'))
    cache = tmp_path_factory.mktemp("cache")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *FAST, f"--optbench-cache-dir={cache}", "--optbench-models=my_model",
         "--optbench-backends=torch_eager", "--optbench-configs=bf16", "--optbench-allow-new"],
        cwd=pytester.path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "my_model-fp32-torch_eager" in proc.stdout and "my_model-bf16-torch_eager" in proc.stdout


def test_work_counted_under_valgrind_is_gated_on_any_machine_class(toy, pytester):
    """--optbench-count: each case's instructions per inference join its record, and a work baseline of the counting
    environment gates them; work grown beyond the threshold fails with a message that says work, not time."""
    from harness.work import baseline as work_baseline
    from harness.work.counter import availability

    if not availability().ok:
        pytest.skip(f"work not counted here: {availability().reason}")
    args = ("--optbench-models=toy_mlp", "--optbench-backends=onnxruntime", "--optbench-configs=gentle",
            "--optbench-count")
    result = toy(*args, "--optbench-allow-new")
    result.assert_outcomes(passed=2)
    (run_file,) = sorted((pytester.path / "results").glob("run-*.json"))
    run = json.loads(run_file.read_text())
    environment = run["environment"]["counting"]
    assert environment["presented_cpu"] and environment["valgrind"].startswith("valgrind")
    work = {c["case_id"]: c["record"]["metrics"]["work.instructions"] for c in run["cases"]}
    assert all(v > 0 for v in work.values())
    gentle = "toy_mlp-gentle-onnxruntime"
    # The baseline says the case took a third less work: the same count now reads as +50 %.
    entries = {cid: work_baseline.WorkEntry(instructions=v / 1.5 if cid == gentle else v, spread=0.001, runs=3)
               for cid, v in work.items()}
    work_baseline.save(work_baseline.work_path(pytester.path / "results" / "baselines"),
                       work_baseline.merged(None, environment, entries))
    result = toy(*args, "--optbench-allow-new")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([f"*{gentle}: work (instructions per inference, counted under Valgrind) grew +50.0%*"])


def _plant_slower_latency_and_work(pytester, args, toy, work_factor: float) -> str:
    """Accept a baseline, then make the toy ONNX case's accepted latency a tenth of today's (with a measured spread,
    so it is gated) and its accepted work today's count / ``work_factor``. Returns the case id."""
    from harness.work import baseline as work_baseline

    toy(*args, "--optbench-update-baselines", "--optbench-count").assert_outcomes(passed=2)
    run = json.loads(sorted((pytester.path / "results").glob("run-*.json"))[-1].read_text())
    case = "toy_mlp-gentle-onnxruntime"
    work = {c["case_id"]: c["record"]["metrics"]["work.instructions"] for c in run["cases"]}
    entries = {cid: work_baseline.WorkEntry(instructions=v / (work_factor if cid == case else 1.0), spread=0.001,
                                            runs=3) for cid, v in work.items()}
    work_baseline.save(work_baseline.work_path(pytester.path / "results" / "baselines"),
                       work_baseline.merged(None, run["environment"]["counting"], entries))
    path = baseline_file(pytester)
    data = json.loads(path.read_text())
    entry = class_cases(data)[case]
    entry["metrics"]["latency.normalized"] /= 10
    entry.setdefault("spread", {})["latency.normalized"] = 0.01
    path.write_text(json.dumps(data))
    return case


def test_a_latency_failure_with_unchanged_work_is_inconclusive_not_failed(toy, pytester):
    """CI's shared runner slowed one case for longer than its second look (docs/gate.md): without --optbench-count,
    a latency failure that stands is settled by counting the case's work; the same work means the machine was
    slower, so the case passes as inconclusive, saying both figures."""
    from harness.work.counter import availability

    if not availability().ok:
        pytest.skip(f"work not counted here: {availability().reason}")
    args = ("--optbench-models=toy_mlp", "--optbench-backends=onnxruntime", "--optbench-configs=gentle")
    case = _plant_slower_latency_and_work(pytester, args, toy, 1.0)
    result = toy(*args)
    result.assert_outcomes(passed=2)
    run = json.loads(sorted((pytester.path / "results").glob("run-*.json"))[-1].read_text())
    outcome = next(c for c in run["cases"] if c["case_id"] == case)
    assert outcome["status"] == "inconclusive"
    (latency,) = [v for v in outcome["verdicts"] if v["check"] == "latency"]
    assert latency["status"] == "inconclusive"
    assert "latency.normalized grew beyond its threshold" in latency["message"]
    assert "but work per inference did not grow (+0.00%" in latency["message"]
    assert run["environment"]["counting"]["valgrind"].startswith("valgrind")


def test_a_latency_failure_with_grown_work_stands_with_both_figures(toy, pytester):
    from harness.work.counter import availability

    if not availability().ok:
        pytest.skip(f"work not counted here: {availability().reason}")
    args = ("--optbench-models=toy_mlp", "--optbench-backends=onnxruntime", "--optbench-configs=gentle")
    case = _plant_slower_latency_and_work(pytester, args, toy, 1.5)
    result = toy(*args)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([f"*{case}: latency.normalized grew beyond its threshold*(still beyond after 2 more*",
                                 f"*{case}: work (instructions per inference, counted under Valgrind) grew +50.0%*"])


def test_a_latency_failure_stands_where_work_cannot_be_counted(toy, pytester, monkeypatch):
    from harness.work import counter
    from harness.work.counter import availability

    if not availability().ok:
        pytest.skip(f"work not counted here: {availability().reason}")
    args = ("--optbench-models=toy_mlp", "--optbench-backends=onnxruntime", "--optbench-configs=gentle")
    case = _plant_slower_latency_and_work(pytester, args, toy, 1.0)
    monkeypatch.setattr(counter.shutil, "which", lambda name: None)
    result = toy(*args)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([f"*{case}: latency.normalized grew beyond its threshold*(still beyond after 2 more*"])


def test_without_valgrind_the_header_says_work_is_not_counted_and_the_run_goes_on(toy, monkeypatch):
    from harness.work import counter

    monkeypatch.setattr(counter.shutil, "which", lambda name: None)
    result = toy("--optbench-models=toy_mlp", "--optbench-backends=torch_eager", "--optbench-configs=gentle",
                 "--optbench-count", "--optbench-allow-new")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*work: not counted: valgrind is not on PATH*"])


def test_shards_of_a_run_merge_into_the_cases_of_the_unsharded_run(toy, pytester, tmp_path):
    """pytest-split's shards (by recorded durations, one without the fp32 case its variant is timed beside) each write
    a record; merged, they hold exactly the unsharded run's cases."""
    from harness.report.__main__ import main as report_main

    args = ("--optbench-models=toy_mlp", "--optbench-backends=torch_eager,onnxruntime", "--optbench-allow-new")
    toy(*args, f"--optbench-results-dir={tmp_path / 'whole'}")
    whole = RunResult.load(*sorted((tmp_path / "whole").glob("run-*.json")))
    ids = sorted((c["suite"], c["case_id"]) for c in whole.cases)
    assert len(ids) >= 5
    durations = tmp_path / "durations.json"  # the fp32 cases recorded long: least_duration puts them apart
    durations.write_text(json.dumps({f"test_suite.py::test_toy[{c['case_id']}]": 5.0 if c["is_reference"] else 1.0
                                     for c in whole.cases}))
    shard_records = []
    for group in (1, 2, 3):
        result = toy(*args, "--splits=3", f"--group={group}", f"--durations-path={durations}",
                     "--splitting-algorithm=least_duration", f"--optbench-results-dir={tmp_path / f'shard{group}'}")
        result.stdout.fnmatch_lines([f"*pytest-split? Running group {group}/3*"])
        (record,) = (tmp_path / f"shard{group}").glob("run-*.json")
        shard_records.append(record)
    sizes = [len(RunResult.load(r).cases) for r in shard_records]
    assert all(0 < n < len(ids) for n in sizes) and sum(sizes) == len(ids)
    orphans = [c for r in shard_records for c in RunResult.load(r).cases if not c["is_reference"]
               and not any(o["is_reference"] and o["backend"] == c["backend"] for o in RunResult.load(r).cases)]
    assert orphans and all(c["record"]["speedup"] > 0 for c in orphans)  # timed beside an fp32 prepared for it
    out = tmp_path / "report.html"
    assert report_main([*map(str, shard_records), "--merge", f"--record-dir={tmp_path / 'merged'}", "-o", str(out),
                        "--history", "off"]) == 0
    (merged,) = (tmp_path / "merged").glob("run-*.json")
    assert sorted((c["suite"], c["case_id"]) for c in RunResult.load(merged).cases) == ids


def test_only_the_newest_run_records_are_kept(toy, pytester):
    args = ("--optbench-models=toy_mlp", "--optbench-backends=torch_eager", "--optbench-allow-new", "-k", "gentle")
    toy(*args).assert_outcomes(passed=1)
    toy(*args).assert_outcomes(passed=1)
    result = toy(*args, "--optbench-keep-runs=1")
    result.stdout.fnmatch_lines(["deleted 4 old run file(s) in *, keeping the newest 1 record(s) "
                                 "(--optbench-keep-runs)"])
    (record,) = (pytester.path / "results").glob("run-*.json")
    assert [p.name for p in (pytester.path / "results").glob("run-*.samples.npz")] == [
        record.name.replace(".json", ".samples.npz")]
    assert toy(*args, "--optbench-keep-runs=-1").ret == pytest.ExitCode.USAGE_ERROR
