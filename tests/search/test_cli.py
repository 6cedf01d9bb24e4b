"""``python -m harness search``: a study from the command line, and workers sharing one study in PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna

from harness.search.cli import main
from tests.postgres import postgres_url  # noqa: F401 - the session fixture

ROOT = Path(__file__).resolve().parents[2]
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def worker(url: str, study: str, cache: Path, trials: int) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "harness", "search", "study", "--model", "cancer_mlp", "--params", "lr,batch_size",
           "--trials", str(trials), "--storage", url, "--study", study, "--cache-dir", str(cache), "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_a_study_runs_from_the_command_line_and_resumes_in_sqlite(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    args = ["study", "--model", "cancer_mlp", "--params", "lr", "--trials", "2", "--storage", url, "--study", "s",
            "--cache-dir", str(tmp_path / "cache"), "--no-progress"]
    assert main(args) == 0
    assert "2 trials" in capsys.readouterr().out
    assert main([*args[:6], "3", *args[7:]]) == 0  # the budget counts the trials already stored
    assert "3 trials" in capsys.readouterr().out


def test_bad_input_is_one_line_naming_what_was_wrong(tmp_path, capsys):
    assert main(["study", "--model", "nosuch", "--cache-dir", str(tmp_path)]) == 2
    assert "--model: unknown model 'nosuch'" in capsys.readouterr().err
    assert main(["study", "--model", "cancer_mlp", "--trials", "0", "--cache-dir", str(tmp_path)]) == 2
    assert "`n_trials` must be a whole number >= 1" in capsys.readouterr().err
    assert main(["study", "--model", "cancer_mlp", "--storage", "nope://", "--cache-dir", str(tmp_path)]) == 2
    assert "'nope://' is not a usable database URL" in capsys.readouterr().err


def test_two_workers_share_a_postgres_study_and_a_killed_one_loses_no_finished_trial(postgres_url, tmp_path):  # noqa: F811
    trials, name = 5, "shared"
    workers = [worker(postgres_url, name, tmp_path / "cache", trials) for _ in range(2)]
    storage = optuna.storages.RDBStorage(postgres_url)
    try:
        deadline, before = time.monotonic() + 240, []
        while time.monotonic() < deadline:
            try:
                study = optuna.load_study(study_name=name, storage=storage)
                before = study.get_trials(deepcopy=True, states=FINISHED)
            except KeyError:  # not created yet
                before = []
            if len(before) >= 2:
                break
            assert workers[0].poll() is None, workers[0].communicate()[0]
            time.sleep(0.2)
        assert len(before) >= 2, "the workers finished no trial in time"
        workers[0].send_signal(signal.SIGKILL)
        workers[0].communicate(timeout=30)
        out, _ = workers[1].communicate(timeout=300)
        assert workers[1].returncode == 0, out
        after = optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.communicate()
        storage.remove_session()
        storage.engine.dispose()
    numbers = [t.number for t in after]
    assert len(numbers) == len(set(numbers)) and len({t._trial_id for t in after}) == len(after)
    finished = {t.number: t for t in after if t.state in FINISHED}
    assert len(finished) >= trials
    for t in before:  # every trial finished before the kill is there once, unchanged
        assert finished[t.number].value == t.value and finished[t.number].params == t.params
    assert sum(t.state == optuna.trial.TrialState.RUNNING for t in after) <= 1  # the killed worker's trial
