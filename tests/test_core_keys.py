"""Code hashes a refactor keeps: an entry maps exactly the source it names, and nothing else."""

from __future__ import annotations

import importlib
import sys

import pytest

from harness import core_keys
from harness.cache import source_hash


@pytest.fixture
def module(tmp_path, monkeypatch):
    (tmp_path / "refactored_mod.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield importlib.import_module("refactored_mod"), tmp_path / "refactored_mod.py"
    sys.modules.pop("refactored_mod", None)


def test_a_module_named_with_its_current_source_keeps_its_old_hash(module):
    mod, _ = module
    now = source_hash(mod)
    assert core_keys.code_hash(mod, {"refactored_mod": {now: "old-hash"}}) == "old-hash"
    assert core_keys.code_hash(mod, {}) == now
    assert core_keys.code_hash(mod, {"other_mod": {now: "old-hash"}}) == now


def test_an_edit_after_the_entry_changes_the_hash_again(module):
    mod, path = module
    entry = {"refactored_mod": {source_hash(mod): "old-hash"}}
    path.write_text("X = 2\n")
    import linecache

    linecache.clearcache()
    assert core_keys.code_hash(mod, entry) == source_hash(mod) != "old-hash"


def test_every_entry_names_a_module_of_ours_and_differs_from_its_old_hash():
    for name, kept in core_keys.SAME_AS.items():
        assert name.split(".")[0] in ("harness", "model_zoo") and kept
        assert all(now != then and len(now) == len(then) == 20 for now, then in kept.items())


def test_kept_maps_a_named_modules_hash_only():
    same_as = {"m": {"now": "then"}}
    assert core_keys.kept("m", "now", same_as) == "then"
    assert core_keys.kept("m", "edited", same_as) == "edited"
    assert core_keys.kept("other", "now", same_as) == "now"
