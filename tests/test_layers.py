"""``python -m harness.layers``: optbench's imports point only down, and a planted upward import fails it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from harness import layers

ROOT = Path(__file__).resolve().parents[1]


def copy_packages(dst: Path) -> Path:
    """The sources of harness/ and model_zoo/ under ``dst`` (Python files only), to plant imports in."""
    for package in layers.PACKAGES:
        shutil.copytree(ROOT / package, dst / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dst


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.layers", *args], capture_output=True, text=True,
                          cwd=ROOT, check=False)


def test_the_repository_has_no_upward_import_and_prints_its_layers():
    done = run()
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "upward imports: 0;" in out and "modules in no layer: 0" in out
    # the layers the design names, in this order, bottom first
    order = ["core", "zoo data", "training loop", "zoo", "search library", "techniques", "backends", "judging",
             "session", "entry points"]
    names = [line[5:20].strip() for line in out.splitlines() if line[:5].strip().isdigit()]
    assert [n for n in names if n in order] == order


def test_a_planted_function_level_upward_import_fails_naming_it(tmp_path):
    root = copy_packages(tmp_path)
    chain = root / "harness" / "techniques" / "chain.py"
    chain.write_text(chain.read_text() + "\n\ndef _planted() -> None:\n    from harness.session import Options\n")
    done = run("--root", str(root))
    assert done.returncode == 1
    assert ("upward import: harness.techniques.chain (techniques) imports harness.session (session)"
            in done.stdout), done.stdout
    assert "upward imports: 1;" in done.stdout


def test_the_zoo_importing_a_technique_fails(tmp_path):
    root = copy_packages(tmp_path)
    spec = root / "model_zoo" / "spec.py"
    spec.write_text(spec.read_text() + "\nfrom harness.techniques.training import Arm  # noqa\n")
    done = run("--root", str(root))
    assert done.returncode == 1
    assert "upward import: model_zoo.spec (zoo data) imports harness.techniques.training (techniques)" in done.stdout


def toy(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in {"toy/__init__.py": "", **files}.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


TOY_LAYERS = (("low", ("toy.low",)), ("high", ("toy", "toy.high")))


def test_relative_and_type_checking_imports(tmp_path):
    root = toy(tmp_path, {
        "toy/high.py": "from toy import low\n",
        "toy/low.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import high\n",
    })
    report = layers.check(root, ("toy",), TOY_LAYERS)
    assert report.ok() and report.skipped_type_checking == 1
    counted = layers.check(root, ("toy",), TOY_LAYERS, type_checking=True)
    assert [(i.source, i.target) for i, _, _ in counted.upward] == [("toy.low", "toy.high")]
    (root / "toy" / "low.py").write_text("def f():\n    from .high import thing\n")
    late = layers.check(root, ("toy",), TOY_LAYERS)
    assert [(i.source, i.target, i.line) for i, _, _ in late.upward] == [("toy.low", "toy.high", 2)]


def test_a_module_in_no_layer_fails_and_a_cycle_is_listed(tmp_path):
    root = toy(tmp_path, {"toy/low.py": "", "toy/high.py": "import toy.other\n", "toy/other.py": "import toy.high\n"})
    report = layers.check(root, ("toy",), (("low", ("toy.low",)), ("high", ("toy.high",))))
    assert report.unplaced == ["toy", "toy.other"] and not report.ok()
    placed = layers.check(root, ("toy",), (("low", ("toy.low",)), ("high", ("toy",))))
    assert placed.cycles == [["toy.high", "toy.other"]]
    assert placed.ok() and not placed.ok(strict=True)
    assert any(line.startswith("import cycle within a layer: toy.high <-> toy.other") for line in layers.render(placed))


def test_a_root_without_the_packages_is_a_one_line_error(tmp_path):
    done = run("--root", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip() == f"python -m harness.layers: {tmp_path} holds no package harness, model_zoo"
