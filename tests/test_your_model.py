"""The user's path, end to end: models defined only in another repo's conftest run through all nine suites.

A tabular MLP on scikit-learn's wine data (a set the zoo does not use) and a tiny CNN on images of its own are
registered from the pytester repo's ``conftest.py``, the nine three-line suite files are copied in as
docs/your-model.md describes, and pytest runs in a subprocess (registries stay clean): first with
``--optbench-allow-new``, then its record is accepted as the repo's baselines, then the suites run again against
them. Every suite must measure at least one of the two models, and what does not apply must be said in the header.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SUITES = sorted((REPO / "suites").glob("test_*.py"))

CONFTEST = '''
import numpy as np
import torch
from sklearn.datasets import load_wine
from torch import nn

from harness.metrics.quality import Accuracy
from model_zoo import ModelSpec, Split, Splits, Task, TrainRecipe, register_model


def _wine():
    x, y = load_wine(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    x = (x - x.mean(0)) / x.std(0)
    x, y = torch.tensor(x[order], dtype=torch.float32), y[order]
    return Splits(Split((x[:110],), y[:110]), Split((x[110:140],), y[110:140]), Split((x[140:],), y[140:]))


class WineMLP(nn.Module):
    def __init__(self, width=1.0):
        super().__init__()
        h = int(64 * width)
        self.net = nn.Sequential(nn.Linear(13, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, 3))

    def forward(self, features):
        return self.net(features)


def _images():
    g = torch.Generator().manual_seed(0)
    labels = np.arange(420) % 3
    x = 0.3 * torch.rand(420, 1, 8, 8, generator=g)
    for i, c in enumerate(labels):
        if c == 0:
            x[i, 0, 2:5, :] += 0.8
        elif c == 1:
            x[i, 0, :, 2:5] += 0.8
        else:
            x[i, 0, range(8), range(8)] += 0.8
    return Splits(Split((x[:300],), labels[:300]), Split((x[300:340],), labels[300:340]),
                  Split((x[340:],), labels[340:]))


class TinyCNN(nn.Module):
    def __init__(self, width=1.0):
        super().__init__()
        c = int(16 * width)
        self.features = nn.Sequential(nn.Conv2d(1, c, 3, padding=1), nn.ReLU(), nn.Conv2d(c, c, 3, padding=1),
                                      nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten())
        self.head = nn.Linear(4 * c, 3)

    def forward(self, pixels):
        return self.head(self.features(pixels))


WINE, IMAGES = _wine(), _images()
register_model(ModelSpec(
    name="wine_mlp", task=Task.CLASSIFICATION, build=WineMLP, data=lambda: WINE,
    example_inputs=lambda b: (WINE.train.inputs[0][np.arange(b) % 110],), quality=Accuracy(),
    recipe=TrainRecipe(epochs=10, lr=3e-3, batch_size=16), input_names=("features",), build_variant=WineMLP))
register_model(ModelSpec(
    name="my_cnn", task=Task.CLASSIFICATION, build=TinyCNN, data=lambda: IMAGES,
    example_inputs=lambda b: (IMAGES.train.inputs[0][np.arange(b) % 300],), quality=Accuracy(),
    recipe=TrainRecipe(epochs=6, lr=3e-3, batch_size=32), input_names=("pixels",), build_variant=TinyCNN))
'''


def _pytest(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # -p harness.plugin: the plugin as an installed package's entry point would load it, from outside its repo
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly", "-q", "-rA",
           "--optbench-models=wine_mlp,my_cnn", "--optbench-backends=torch_eager,onnxruntime",
           f"--optbench-cache-dir={repo / 'cache'}", "--optbench-report=off", "--optbench-history=off", *args]
    return subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=1500, check=False)


@pytest.fixture
def user_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "user_repo"
    (repo / "tests").mkdir(parents=True)
    (repo / "conftest.py").write_text(CONFTEST)
    for suite in SUITES:
        shutil.copy(suite, repo / "tests" / suite.name)
    (repo / "pytest.ini").write_text("[pytest]\ntestpaths = tests\n")
    return repo


def _last_record(repo: Path) -> dict:
    return json.loads(sorted((repo / "results").glob("run-*.json"))[-1].read_text())


def test_a_user_model_runs_every_suite_then_passes_against_the_baselines_it_accepted(user_repo):
    first = _pytest(user_repo, "--optbench-allow-new")
    out = first.stdout + first.stderr
    assert "INTERNALERROR" not in out and first.returncode in (0, 1), out[-6000:]
    run = _last_record(user_repo)
    # Whatever fails on the first run is a finding about the model (a contract it does not meet), never an error;
    # accepting it is the user's explicit act, naming each.
    failed = [c for c in run["cases"] if c["status"] not in ("pass", "inconclusive", "new", "skipped")]
    findings = [f"{c['case_id']}:{v['check']}" for c in failed for v in c["verdicts"]
                if v["source"] == "contract" and v["status"] == "fail"]
    assert all(c["status"] == "fail" for c in failed) and len(findings) >= len(failed), failed
    assert (first.returncode == 0) == (not failed)
    measured = {(c["suite"], c["model"]) for c in run["cases"] if c["record"] is not None and not c["is_reference"]}
    suites = {s.stem.removeprefix("test_") for s in SUITES}
    by_model = {m: {s for s, mm in measured if mm == m} for m in ("wine_mlp", "my_cnn")}
    assert by_model["wine_mlp"] == suites - {"dataset_distillation", "search"}, by_model  # 7 of 9
    assert by_model["my_cnn"] == suites - {"search"}, by_model  # 8 of 9: the search result is minilm's
    # what does not apply is said once per suite and model, in the header and the record
    assert "optbench: dataset_distillation: wine_mlp not applicable (needs image inputs)" in out
    assert "optbench: search: my_cnn not applicable (holds what a search found for minilm;" in out
    assert any(n.startswith("dataset_distillation: wine_mlp not applicable") for n in run["notes"])
    kd = next(c for c in run["cases"] if c["config"] == "kd_t4_a0.9" and c["model"] == "wine_mlp")
    assert kd["record"]["details"]["student"] == "build_variant(width=0.5)"

    from harness import accept

    runs = sorted((user_repo / "results").glob("run-*.json"))
    base_dir = str(user_repo / "results" / "baselines")
    if findings:  # refused until named
        assert accept.main([*map(str, runs), "--baseline-dir", base_dir]) == 2
    known = [arg for finding in findings for arg in ("--accept-known", finding)]
    assert accept.main([*map(str, runs), "--baseline-dir", base_dir, *known]) == 0
    # Against its own baselines; wide speed tolerances keep a shared runner's one-run toy timings from deciding a
    # test about the mechanics (quality, size and proofs are gated as usual).
    second = _pytest(user_repo, "--optbench-tolerance=speedup_rel=0.9", "--optbench-tolerance=latency_rel=0.9")
    assert second.returncode == 0, (second.stdout + second.stderr)[-6000:]
    statuses = {c["status"] for c in _last_record(user_repo)["cases"]}
    assert statuses <= {"pass", "inconclusive", "known", "skipped"}, statuses


def test_a_suite_with_no_case_for_the_selection_is_a_clean_no_tests_outcome(user_repo):
    result = _pytest(user_repo, "tests/test_search.py")
    assert result.returncode == pytest.ExitCode.NO_TESTS_COLLECTED, (result.stdout + result.stderr)[-3000:]
    out = result.stdout + result.stderr
    assert "INTERNALERROR" not in out
    assert "optbench: search: no case to run (every model filtered out or not applicable)" in out
    assert "optbench: search: wine_mlp not applicable (holds what a search found for minilm;" in out
