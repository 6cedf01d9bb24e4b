"""A user's model that cannot be built or trained: one line naming the model and the phase, failing fast."""

from __future__ import annotations

import dataclasses
import json

import pytest

from model_zoo.spec import MODELS
from tests import plugin_toys
from tests.test_plugin import _import_lazy_modules_once, toy  # noqa: F401 - fixtures used by name
from tests.toy_models import MLP


def misfit() -> MLP:
    return MLP(5, 16, 2)  # the toy data has 4 features: the first layer does not fit


@pytest.fixture
def with_misfit():
    spec = dataclasses.replace(plugin_toys.SPECS[0], name="toy_misfit", build=misfit)
    MODELS.add(spec.name, spec)
    try:
        yield
    finally:
        MODELS.remove(spec.name)


def test_a_model_that_fails_to_train_fails_each_case_with_one_line_and_others_go_on(with_misfit, pytester, request):
    result = request.getfixturevalue("toy")("--optbench-models=toy_misfit,toy_mlp", "--optbench-backends=torch_eager",
                 "--optbench-configs=gentle,harsh", "--optbench-allow-new")
    outcomes = result.parseoutcomes()
    assert outcomes["failed"] == 3 + 1  # the misfit's three cases, and toy_mlp's harsh contract
    lines = [line for line in result.stdout.lines if "mat1 and mat2 shapes cannot be multiplied" in line]
    # each case's one line (pytest repeats it in its summary; under CI it is not shortened there)
    assert {line.split("toy_misfit-")[1].split("-")[0] for line in lines} == {"fp32", "gentle", "harsh"}
    assert "Traceback" not in result.stdout.str()
    run = json.loads(sorted((pytester.path / "results").glob("run-*.json"))[-1].read_text())
    messages = {c["message"].split(": ", 1)[1] for c in run["cases"] if c["model"] == "toy_misfit"}
    assert len(messages) == 1
    assert messages.pop().startswith("model 'toy_misfit': training failed: RuntimeError: mat1 and mat2 shapes")


def test_suites_sharing_a_reference_each_keep_it_in_their_baseline(pytester, request):
    from harness.techniques import base as tbase

    pytester.makepyfile(test_second=SECOND_SUITE)
    run = request.getfixturevalue("toy")
    tbase.register_preset("toy2", plugin_toys.PRESETS[0])
    try:
        result = run("--optbench-models=toy_mlp", "--optbench-backends=torch_eager", "--optbench-update-baselines",
                     "--optbench-accept-known=*harsh*:quality_retention")
    finally:
        tbase.PRESETS.pop("toy2", None)
    result.assert_outcomes(passed=4, xfailed=1)  # toy: fp32, gentle, harsh (known: unmet contract); toy2: fp32, gentle
    for suite in ("toy", "toy2"):
        (cls,) = json.loads((pytester.path / "results" / "baselines" / f"{suite}.json").read_text())["classes"].values()
        cases = cls["cases"]
        assert "toy_mlp-fp32-torch_eager" in cases, suite


SECOND_SUITE = """
import pytest

pytestmark = pytest.mark.optbench_suite("toy2")


def test_toy2(optbench, optbench_case, benchmark):
    optbench.run(optbench_case, benchmark)
"""
