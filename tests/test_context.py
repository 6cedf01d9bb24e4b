"""The run context: one per run, carrying its memo stores and study storage to everything it is passed to."""

from __future__ import annotations

from harness.cache import Cache
from harness.context import Context, Memos, StudyStorage


def test_a_memo_store_is_one_dict_per_name_and_per_context(tmp_path):
    ctx = Context(Cache(tmp_path))
    ctx.memos.store("a")["k"] = 1
    assert ctx.memos.store("a") == {"k": 1} and ctx.memos.store("b") == {}
    assert Context(Cache(tmp_path)).memos.store("a") == {}  # another run remembers nothing of this one
    ctx.memos.clear()
    assert ctx.memos.store("a") == {}


def test_another_thread_count_is_the_same_run(tmp_path):
    ctx = Context(Cache(tmp_path), 4, 7, optuna=StudyStorage("sqlite:///x.db", "p"))
    ctx.memos.store("a")["k"] = 1
    other = ctx.with_threads(1)
    assert (other.threads, other.seed_offset, other.optuna, other.cache) == (1, 7, ctx.optuna, ctx.cache)
    assert other.memos is ctx.memos and ctx.threads == 4


def test_by_default_studies_live_in_memory(tmp_path):
    ctx = Context(Cache(tmp_path))
    assert ctx.optuna == StudyStorage(None, "optbench")
    assert isinstance(ctx.memos, Memos)
