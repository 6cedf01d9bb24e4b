"""Layering: the zoo imports no technique, backend or ONNX code, the core and the search library nothing above
them, and the report renders without torch (python -m harness.layers checks the imports' source; this, what
importing really loads)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

FORBIDDEN = {
    "model_zoo": ("harness.techniques", "harness.backends", "harness.onnx_export", "harness.session", "onnx",
                  "onnxruntime", "optuna", "torch_pruning", "kornia"),
    # The core vocabulary and the run context import nothing above them (harness.layers' bottom layer).
    "harness.core": ("torch", "numpy", "harness.gate", "harness.techniques", "harness.search", "model_zoo"),
    "harness.context": ("torch", "optuna", "sqlalchemy", "harness.gate", "harness.techniques", "harness.search",
                        "model_zoo"),
    # The training loop imports on its own (it once failed: the zoo's package imported reference loading, which
    # imports the loop back half-made), and loads no reference loading, technique or search code.
    "harness.training": ("model_zoo.training", "harness.techniques", "harness.search", "harness.gate", "optuna"),
    "harness.env": ("harness.gate", "harness.techniques", "model_zoo", "scipy"),
    # Search is a library the techniques use: it loads none of them.
    "harness.search.storage": ("torch", "harness.techniques", "harness.gate", "model_zoo"),
    "harness.search.space": ("torch", "harness.techniques", "harness.gate", "model_zoo"),
    # Techniques speak the core vocabulary, not the gate's checks, and know nothing of the session.
    "harness.techniques": ("harness.gate", "harness.session", "harness.plugin", "harness.backends", "_pytest"),
    "harness.report.terminal": ("torch", "onnx", "onnxruntime", "harness.session", "model_zoo"),
    "harness.report.training_table": ("torch", "onnx", "numpy", "harness.session"),
    # The counting worker runs under Valgrind, where importing torch costs ~25 s: an ONNX Runtime worker imports
    # nothing of torch or the harness beyond the dump reader.
    "harness.work.worker": ("torch", "onnxruntime", "onnx", "harness.session", "harness.techniques", "model_zoo"),
    # Reports take one RunResult value: nothing of the session, torch, ONNX or the zoo.
    **{module: ("torch", "onnx", "onnxruntime", "harness.session", "harness.plugin", "model_zoo", "_pytest")
       for module in ("harness.result", "harness.report.json_report", "harness.report.html", "harness.history",
                      "harness.report.sections", "harness.report.pytest_html_summary", "harness.docs")},
}


def loaded_after_import(module: str) -> list[str]:
    code = f"import json, sys; import {module}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


@pytest.mark.parametrize("module", list(FORBIDDEN))
def test_importing_loads_nothing_above_its_layer(module):
    loaded = loaded_after_import(module)
    bad = [m for m in loaded for prefix in FORBIDDEN[module] if m == prefix or m.startswith(prefix + ".")]
    assert bad == [], f"importing {module} loaded {bad}"
