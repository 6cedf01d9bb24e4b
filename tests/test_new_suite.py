"""``python -m harness.new_suite``: the suite file for a registered suite, and one-line refusals of anything else.

The end-to-end test is a user's technique in one file (the repo's ``conftest.py``): the command writes its suite,
``--optbench-update-baselines`` accepts it, and the gate run after it is green, its declared figure in the report.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness import cli, new_suite
from harness.techniques.base import PRESETS

TECHNIQUE = '''
"""Round every weight to a few decimals: a technique in one file, registered from this repo's conftest.py."""

import copy
import dataclasses
from typing import ClassVar

import torch

from harness.artifact import Artifact, ArtifactKind
from harness.cache import make_key
from harness.config import require_int
from harness.gate import Expectation
from harness.techniques import ReportFigure, TechniqueConfig, register_preset, register_technique


@dataclasses.dataclass(frozen=True)
class RoundWeightsConfig(TechniqueConfig):
    decimals: int = 2
    technique: ClassVar[str] = "round_weights"
    report_figures: ClassVar[tuple[ReportFigure, ...]] = (
        ReportFigure("proof.rounded_share", "weights changed", "{:.0%}"),)

    def validate(self) -> None:
        super().validate()
        require_int("decimals", self.decimals, 0)

    @property
    def output_kind(self) -> ArtifactKind:
        return ArtifactKind.TORCH_MODULE

    def expectations(self) -> list[Expectation]:
        return [*super().expectations(), Expectation("rounding_acted", "proof.rounded_share", ">", 0.0)]


@register_technique(RoundWeightsConfig)
def apply_round_weights(reference, config, ctx):
    module = copy.deepcopy(reference.module)
    changed = total = 0
    with torch.no_grad():
        for p in module.parameters():
            rounded = torch.round(p, decimals=config.decimals)
            changed += int((rounded != p).sum())
            total += p.numel()
            p.copy_(rounded)
    return Artifact(ArtifactKind.TORCH_MODULE, config.precision, make_key(reference.key, config.to_dict()),
                    module=module, proof={"rounded_share": changed / total})


register_preset("round_weights", RoundWeightsConfig(name="round_2dp", decimals=2))
'''


def _command(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.new_suite", *args], cwd=repo, capture_output=True,
                          text=True, timeout=300, check=False)


def _pytest(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly", "-q",
           "--optbench-models=cancer_mlp", "--optbench-backends=torch_eager", "--optbench-threads=1",
           "--benchmark-max-time=0.01", "--benchmark-min-rounds=3", "--optbench-throughput-time=0.01",
           f"--optbench-cache-dir={repo / 'cache'}", "--optbench-history=off", *args]
    return subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=1200, check=False)


def test_a_technique_in_one_file_gets_its_suite_from_the_command_then_accepts_and_gates_green(tmp_path):
    repo = tmp_path / "user_repo"
    repo.mkdir()
    (repo / "conftest.py").write_text(TECHNIQUE)
    made = _command(repo, "round_weights", "--module", "conftest.py")
    assert made.returncode == 0, made.stderr
    suite = repo / "suites" / "test_round_weights.py"
    assert "round_weights" in suite.read_text()
    assert "--optbench-update-baselines" in made.stdout and "python -m harness.docs" in made.stdout
    assert "python -m harness.accept" in made.stdout

    accepted = _pytest(repo, "suites", "--optbench-update-baselines")
    assert accepted.returncode == 0, accepted.stdout[-3000:] + accepted.stderr[-2000:]
    assert (repo / "results" / "baselines" / "round_weights.json").is_file()

    gated = _pytest(repo, "suites", f"--optbench-report={repo / 'report.html'}")
    assert gated.returncode == 0, gated.stdout[-3000:] + gated.stderr[-2000:]
    assert "2 passed" in gated.stdout  # the fp32 reference and round_2dp, against the baseline just accepted
    from harness.result import RunResult

    run = RunResult.load(sorted((repo / "results").glob("run-*.json"))[-1])  # the record as the run made it
    case = next(c for c in run.cases if c["config"] == "round_2dp")
    assert case["status"] == "pass" and case["report"]["figures"][0]["label"] == "weights changed"
    assert "weights changed " in (repo / "report.html").read_text()  # the generic section's declared figure

    again = _command(repo, "round_weights", "--module", "conftest.py")
    assert again.returncode == 2 and "already exists" in again.stderr


@pytest.fixture
def run(tmp_path, capsys):
    def call(*args: str) -> tuple[int, str, str]:
        code = new_suite.main([*args, "--suites-dir", str(tmp_path / "suites")])
        out, err = capsys.readouterr()
        return code, out, err

    return call


def test_a_registered_suite_gets_its_three_line_file_and_the_next_steps(run, tmp_path):
    code, out, err = run("pruning")
    assert (code, err) == (0, "")
    text = (tmp_path / "suites" / "test_pruning.py").read_text()
    assert 'pytest.mark.optbench_suite("pruning")' in text and "def test_pruning(optbench" in text
    assert "results/baselines/pruning.json" in out and "python -m harness.docs" in out


@pytest.mark.parametrize(("args", "message"), [
    (("Bad-Name",), "new-suite: bad suite name 'Bad-Name': expected lowercase letters, digits and _"),
    (("1st",), "new-suite: bad suite name '1st': expected lowercase letters"),
    (("no_such_suite",), "new-suite: unknown suite 'no_such_suite': no technique registers presets for it"),
    (("pruning", "--module", "missing.py"), "new-suite: --module missing.py: no such file; expected a .py file"),
    (("pruning", "--module", "no_such.module"), "new-suite: --module no_such.module: cannot import it"),
])
def test_bad_input_is_refused_with_one_line_and_no_file(run, tmp_path, args, message):
    code, out, err = run(*args)
    assert code == 2 and out == ""
    assert err.startswith(message) and err.count("\n") == 1
    assert not (tmp_path / "suites").exists() or not list((tmp_path / "suites").iterdir())


def test_it_is_the_optbench_new_suite_command(tmp_path, capsys):
    assert cli.main(["new-suite", "pruning", "--suites-dir", str(tmp_path)]) == 0
    assert (tmp_path / "test_pruning.py").is_file() and "wrote" in capsys.readouterr().out


def test_an_existing_suite_file_is_refused_and_left_as_it_was(run, tmp_path):
    (tmp_path / "suites").mkdir()
    mine = tmp_path / "suites" / "test_pruning.py"
    mine.write_text("# mine\n")
    code, _, err = run("pruning")
    assert code == 2 and err == f"new-suite: {mine} already exists: remove it first or pick another suite name\n"
    assert mine.read_text() == "# mine\n"


def test_a_module_that_fails_to_import_is_one_line(run, tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('no GPU\\nsecond line')\n")
    code, _, err = run("pruning", "--module", str(broken))
    assert code == 2 and err == f"new-suite: --module {broken}: importing it failed: RuntimeError: no GPU second line\n"


def test_a_module_path_registers_its_suite_once(run, tmp_path):
    module = tmp_path / "mine.py"
    module.write_text("from harness.techniques import register_preset, REFERENCE\n"
                      "register_preset('mine', REFERENCE)\n")
    try:
        code, out, _ = run("mine", "--module", str(module))
        assert code == 0 and "presets fp32" in out
        assert (tmp_path / "suites" / "test_mine.py").is_file()
    finally:
        PRESETS.pop("mine", None)
