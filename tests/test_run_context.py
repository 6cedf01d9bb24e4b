"""A run makes one context and passes it down: every case gets the same one, with the run's study storage and
memo stores."""

from __future__ import annotations

import harness.session as session_module
from harness.context import StudyStorage
from model_zoo.training import REFERENCES_MEMO
from tests.test_plugin import _import_lazy_modules_once, toy  # noqa: F401 - fixtures


def test_every_case_of_a_run_gets_the_runs_one_context(toy, monkeypatch, tmp_path):  # noqa: F811
    seen: list[object] = []
    real = session_module.CaseRun

    def recording(case, ref, settings, ctx, *args, **kwargs):
        seen.append(ctx)
        return real(case, ref, settings, ctx, *args, **kwargs)

    monkeypatch.setattr(session_module, "CaseRun", recording)
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    toy("--optbench-models=toy_mlp", "--optbench-backends=torch_eager", "--optbench-allow-new",
        f"--optbench-optuna-storage={url}", "--optbench-optuna-study=mine")
    assert len(seen) == 3  # fp32, gentle, harsh
    assert all(ctx is seen[0] for ctx in seen)
    ctx = seen[0]
    assert ctx.optuna == StudyStorage(url, "mine") and ctx.threads == 1
    assert [key[0] for key in ctx.memos.store(REFERENCES_MEMO)] == ["toy_mlp"]
