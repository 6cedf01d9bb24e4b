"""Training is deterministic and reaches a floor accuracy; references come from a cache that is never trusted."""

import dataclasses
import random

import numpy as np
import pytest
import torch

import model_zoo
from harness.cache import Cache
from harness.context import Context
from harness.errors import ConfigError
from model_zoo import training
from model_zoo.datasets import digits_splits
from model_zoo.spec import ModelSpec, Split, Splits
from model_zoo.training import accuracy, load_reference, reference_key, train, train_with_stats

FLOOR = {"digits_cnn": 0.93, "cancer_mlp": 0.90}


@pytest.fixture(scope="module")
def trained_cache(tmp_path_factory):
    """A cache holding trained digits_cnn and cancer_mlp weights: each is trained once for this module."""
    cache = Cache(tmp_path_factory.mktemp("zoo-cache"))
    for name in FLOOR:
        load_reference(model_zoo.get_model(name), cache)
    return cache


class TrainCounter:
    """Stands in for ``training.train_with_stats``: counts calls, and can refuse to train at all."""

    def __init__(self, allow: bool) -> None:
        self.calls = 0
        self.allow = allow

    def __call__(self, spec, **kwargs):
        self.calls += 1
        if not self.allow:
            raise AssertionError(f"{spec.name} was retrained although its weights are cached")
        return train_with_stats(spec, **kwargs)


def weights_file(cache: Cache, name: str):
    spec = model_zoo.get_model(name)
    return cache.path(training.WEIGHTS_NAMESPACE, reference_key(spec), ".pt")


@pytest.mark.parametrize("name", list(FLOOR))
def test_trained_reference_reaches_a_floor_accuracy_on_the_test_split(name, trained_cache):
    ref = load_reference(model_zoo.get_model(name), trained_cache)
    assert accuracy(ref.module, ref.splits.test) >= FLOOR[name]
    assert not ref.module.training
    assert all(p.dtype == torch.float32 for p in ref.module.parameters())
    assert ref.key == reference_key(ref.spec) and ref.spec.name == name
    assert ref.splits is ref.spec.data()


def test_training_is_deterministic():
    spec = model_zoo.get_model("cancer_mlp")
    a, b = train(spec).state_dict(), train(spec).state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_training_does_not_depend_on_the_callers_thread_count():
    spec = model_zoo.get_model("digits_cnn")
    recipe = dataclasses.replace(spec.recipe, epochs=1)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        a = train(spec, recipe=recipe).state_dict()
        torch.set_num_threads(2)
        b = train(spec, recipe=recipe).state_dict()
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_training_seed_changes_the_weights():
    spec = model_zoo.get_model("cancer_mlp")
    recipe = dataclasses.replace(spec.recipe, epochs=1)
    a = train(spec, recipe=recipe).state_dict()
    b = train(spec, recipe=dataclasses.replace(recipe, seed=recipe.seed + 1)).state_dict()
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_training_leaves_the_callers_random_state_and_flags_alone():
    torch.manual_seed(1234)
    np.random.seed(1234)
    random.seed(1234)
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(1234)
    np.random.seed(1234)
    random.seed(1234)
    flags = torch.are_deterministic_algorithms_enabled()
    threads = torch.get_num_threads()
    spec = model_zoo.get_model("cancer_mlp")
    train(spec, recipe=dataclasses.replace(spec.recipe, epochs=1))
    assert torch.get_num_threads() == threads
    got = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(got[0], expected[0]) and np.array_equal(got[1], expected[1]) and got[2] == expected[2]
    assert torch.are_deterministic_algorithms_enabled() == flags


def test_training_returns_an_eval_mode_model():
    spec = model_zoo.get_model("cancer_mlp")
    model = train(spec, recipe=dataclasses.replace(spec.recipe, epochs=1))
    assert not model.training and not any(m.training for m in model.modules())


def test_resnet_learns_in_two_epochs():
    spec = model_zoo.get_model("digits_resnet")
    model = train(spec, recipe=dataclasses.replace(spec.recipe, epochs=2))
    assert accuracy(model, spec.data().val) > 0.5  # chance is 0.1


def test_training_a_pretrained_model_is_a_config_error():
    with pytest.raises(ConfigError, match="minilm"):
        train(model_zoo.get_model("minilm"))


def test_training_needs_labels():
    spec = model_zoo.get_model("cancer_mlp")
    split = Split(spec.data().train.inputs)
    with pytest.raises(ConfigError, match="targets"):
        train(spec, splits=Splits(split, split, split))


def test_second_load_reads_the_cache_instead_of_training(trained_cache, monkeypatch):
    spec = model_zoo.get_model("digits_cnn")
    first = load_reference(spec, trained_cache)
    monkeypatch.setattr(training, "train_with_stats", TrainCounter(allow=False))
    second = load_reference(spec, trained_cache)
    a, b = first.module.state_dict(), second.module.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_reference_is_loaded_once_per_memo_and_each_caller_gets_its_own_copy(tmp_path, monkeypatch):
    spec = model_zoo.get_model("cancer_mlp")
    counter = TrainCounter(allow=True)
    monkeypatch.setattr(training, "train_with_stats", counter)
    cache, memo = Cache(tmp_path), Context(Cache(tmp_path)).memos.store(training.REFERENCES_MEMO)
    first = load_reference(spec, cache, memo=memo)
    weights_file(cache, "cancer_mlp").unlink()  # a second load must not even look at the disk
    second = load_reference(spec, cache, memo=memo)
    assert counter.calls == 1
    assert first.module is not second.module
    with torch.no_grad():
        for p in first.module.parameters():
            p.zero_()
    assert any(bool(p.abs().sum() > 0) for p in second.module.parameters())
    assert load_reference(spec, Cache(tmp_path / "other"), memo=memo).key == first.key
    assert counter.calls == 2  # another cache root is another memo entry
    assert load_reference(spec, cache).key == first.key  # no memo: the disk again (its entry is gone: trained)
    assert counter.calls == 3
    assert load_reference(spec, cache, memo={}).key == first.key  # another run's memo: the disk, now filled
    assert counter.calls == 3


def _bad_files(good: dict[str, torch.Tensor]) -> dict[str, object]:
    first = next(iter(good))
    return {
        "garbage": b"this is not a torch file \x00\x01\x02" * 10,
        "truncated": None,  # filled in from the real file
        "missing_key": {k: v for k, v in good.items() if k != first},
        "extra_key": {**good, "surprise.weight": torch.zeros(1)},
        "wrong_shape": {**good, first: torch.zeros(*good[first].shape[:-1], good[first].shape[-1] + 1)},
        "nan": {**good, first: torch.full_like(good[first], float("nan"))},
        "not_a_dict": [torch.zeros(1)],
    }


@pytest.mark.parametrize("damage", list(_bad_files({"w": torch.zeros(2, 2)})))
def test_a_corrupt_or_mismatched_cache_entry_is_rebuilt(damage, tmp_path, monkeypatch):
    spec = model_zoo.get_model("cancer_mlp")
    cache = Cache(tmp_path)
    good = load_reference(spec, cache).module.state_dict()
    path = weights_file(cache, "cancer_mlp")
    bad = _bad_files(good)[damage]
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif isinstance(bad, bytes):
        path.write_bytes(bad)
    else:
        torch.save({"state_dict": bad, "training": None} if isinstance(bad, dict) else bad, path)
    counter = TrainCounter(allow=True)
    monkeypatch.setattr(training, "train_with_stats", counter)
    rebuilt = load_reference(spec, cache)
    assert counter.calls == 1
    state = rebuilt.module.state_dict()
    assert all(torch.equal(state[k], good[k]) for k in good)
    reloaded = torch.load(path, weights_only=True)
    assert isinstance(reloaded, dict) and reloaded["state_dict"].keys() == good.keys()
    assert reloaded["training"]["epochs_run"] == spec.recipe.epochs


_UNPICKLED: list[str] = []


def _record_unpickling(tag: str) -> str:
    _UNPICKLED.append(tag)
    return tag


class Payload:
    """An object whose unpickling runs code: a weights_only load must refuse it."""

    def __reduce__(self):
        return (_record_unpickling, ("payload ran",))


def test_cache_files_are_read_with_weights_only(tmp_path, monkeypatch):
    spec = model_zoo.get_model("cancer_mlp")
    cache = Cache(tmp_path)
    load_reference(spec, cache)
    path = weights_file(cache, "cancer_mlp")
    torch.save({"state_dict": {"net.0.weight": Payload()}}, path)
    seen: list[object] = []
    real_load = torch.load

    def spy_load(*args, **kwargs):
        seen.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(training.torch, "load", spy_load)
    load_reference(spec, cache)
    assert _UNPICKLED == []
    assert seen and all(flag is True for flag in seen)


def test_key_changes_with_recipe_version_and_data_but_not_otherwise():
    spec = model_zoo.get_model("digits_cnn")
    key = reference_key(spec)
    assert reference_key(spec) == key
    for change in ({"lr": spec.recipe.lr * 2}, {"seed": 7}, {"epochs": 1}, {"batch_size": 8}, {"weight_decay": 0.5}):
        assert reference_key(dataclasses.replace(spec, recipe=dataclasses.replace(spec.recipe, **change))) != key
    assert reference_key(dataclasses.replace(spec, version=spec.version + "-b")) != key
    assert reference_key(dataclasses.replace(spec, name="digits_cnn_b")) != key
    splits = digits_splits()
    shifted = dataclasses.replace(splits, train=Split((splits.train.inputs[0] * 0.5,), splits.train.targets))
    assert reference_key(spec, shifted) != key
    assert reference_key(spec) != reference_key(model_zoo.get_model("digits_resnet"))


class FakePretrained:
    """A pretrained model's builder: ``fingerprint()`` stands for the identity of its weight files."""

    def __init__(self, fingerprint: str) -> None:
        self._fingerprint = fingerprint

    def __call__(self) -> torch.nn.Module:
        torch.manual_seed(0)
        return torch.nn.Linear(30, 4)

    def fingerprint(self) -> str:
        return self._fingerprint


def _pretrained_spec(fingerprint: str) -> ModelSpec:
    base = model_zoo.get_model("cancer_mlp")
    return dataclasses.replace(base, name="fake_pretrained", recipe=None, build=FakePretrained(fingerprint))


def test_pretrained_reference_is_built_not_trained_and_keyed_by_its_weights(tmp_path, monkeypatch):
    monkeypatch.setattr(training, "train_with_stats", TrainCounter(allow=False))
    cache = Cache(tmp_path)
    ref = load_reference(_pretrained_spec("v1"), cache)
    assert isinstance(ref.module, torch.nn.Linear) and not ref.module.training
    assert not (tmp_path / training.WEIGHTS_NAMESPACE).exists() or not any(
        (tmp_path / training.WEIGHTS_NAMESPACE).iterdir()
    )
    assert reference_key(_pretrained_spec("v1")) == ref.key
    assert reference_key(_pretrained_spec("v2")) != ref.key


def test_minilm_reference_loads_offline_in_eval_mode(tmp_path, monkeypatch):
    monkeypatch.setattr(training, "train_with_stats", TrainCounter(allow=False))
    ref = load_reference(model_zoo.get_model("minilm"), Cache(tmp_path))
    assert not ref.module.training and ref.key == reference_key(ref.spec)
    with torch.inference_mode():
        out = ref.module(*ref.calibration_inputs())
    assert out.shape == (32, 384)


def test_reference_knows_its_weights_digest(trained_cache):
    from harness.artifact import weights_digest

    ref = load_reference(model_zoo.get_model("digits_cnn"), trained_cache)
    assert len(ref.weights_digest) == 16 and ref.weights_digest == weights_digest(ref.module)
