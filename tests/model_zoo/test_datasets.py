"""Embedded data: deterministic, disjoint, stratified 60/20/20 splits with the right shapes, dtypes and scaling."""

import json
from importlib import resources

import numpy as np
import pytest
import torch
from sklearn.datasets import load_breast_cancer, load_digits

from model_zoo import minilm
from model_zoo.datasets import (
    cancer_splits,
    digits_splits,
    sentence_data,
    sentence_splits,
    split_indices,
    splits_fingerprint,
    take,
)
from model_zoo.spec import Split, Splits


def test_split_indices_are_disjoint_cover_everything_and_are_60_20_20():
    labels = load_digits().target
    train, val, test = split_indices(len(labels), labels)
    assert not set(train) & set(val) and not set(train) & set(test) and not set(val) & set(test)
    assert sorted(np.concatenate([train, val, test]).tolist()) == list(range(len(labels)))
    assert abs(len(train) / len(labels) - 0.6) < 0.01
    assert abs(len(val) / len(labels) - 0.2) < 0.01
    assert abs(len(test) / len(labels) - 0.2) < 0.01


def test_split_indices_are_deterministic_and_depend_on_the_seed():
    labels = load_breast_cancer().target
    first = split_indices(len(labels), labels)
    again = split_indices(len(labels), labels)
    other = split_indices(len(labels), labels, seed=123)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[2], other[2])


def test_split_indices_are_stratified():
    labels = load_digits().target
    overall = np.bincount(labels) / len(labels)
    for part in split_indices(len(labels), labels):
        share = np.bincount(labels[part], minlength=10) / len(part)
        assert np.abs(share - overall).max() < 0.02


def test_digits_splits_shapes_dtypes_and_range():
    splits = digits_splits()
    total = 0
    for split in (splits.train, splits.val, splits.test):
        (x,) = split.inputs
        assert x.dtype == torch.float32 and x.shape[1:] == (1, 8, 8)
        assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
        assert split.targets is not None and split.targets.dtype == np.int64
        assert split.targets.shape == (len(split),)
        total += len(split)
    assert total == 1797
    assert float(splits.train.inputs[0].max()) == 1.0  # scaled by 16, not left at 0..16


def test_digits_splits_match_the_source_images_at_the_split_indices():
    source = load_digits()
    _, _, test = split_indices(len(source.target), source.target)
    splits = digits_splits()
    np.testing.assert_array_equal(splits.test.targets, source.target[test])
    np.testing.assert_allclose(splits.test.inputs[0][:, 0].numpy(), source.images[test] / 16.0, rtol=1e-6)


def test_digits_upsampled_to_32_keeps_the_same_split_and_labels():
    small, big = digits_splits(8), digits_splits(32)
    for a, b in ((small.train, big.train), (small.val, big.val), (small.test, big.test)):
        assert b.inputs[0].shape == (len(a), 1, 32, 32) and b.inputs[0].dtype == torch.float32
        np.testing.assert_array_equal(a.targets, b.targets)
    # downsampling the upsampled images again gives back roughly the originals
    back = torch.nn.functional.avg_pool2d(big.test.inputs[0], 4)
    assert float((back - small.test.inputs[0]).abs().mean()) < 0.1


def test_digits_splits_are_built_once_and_rebuild_identically():
    first = digits_splits()
    assert digits_splits() is first
    digits_splits.cache_clear()
    rebuilt = digits_splits()
    assert rebuilt is not first
    assert splits_fingerprint(rebuilt) == splits_fingerprint(first)


def test_digits_rejects_a_size_below_8():
    with pytest.raises(ValueError, match="size"):
        digits_splits(4)


def test_cancer_is_standardised_with_train_statistics_only():
    splits = cancer_splits()
    train = splits.train.inputs[0].double()
    assert torch.allclose(train.mean(0), torch.zeros(30, dtype=torch.float64), atol=1e-5)
    assert torch.allclose(train.std(0, unbiased=False), torch.ones(30, dtype=torch.float64), atol=1e-4)
    # val and test are scaled with the train mean and std, so their own means are not exactly 0
    assert float(splits.test.inputs[0].mean(0).abs().max()) > 1e-3
    source = load_breast_cancer()
    tr, _, te = split_indices(len(source.target), source.target)
    mean, std = source.data[tr].mean(0), source.data[tr].std(0)
    np.testing.assert_allclose(splits.test.inputs[0].numpy(), (source.data[te] - mean) / std, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(splits.test.targets, source.target[te])


def test_cancer_shapes_and_dtypes():
    splits = cancer_splits()
    assert [len(s) for s in (splits.train, splits.val, splits.test)] == [341, 114, 114]
    for split in (splits.train, splits.val, splits.test):
        assert split.inputs[0].dtype == torch.float32 and split.inputs[0].shape[1] == 30
        assert split.targets.dtype == np.int64 and set(np.unique(split.targets)) == {0, 1}


def test_sentence_file_sets_are_disjoint_and_pairs_span_all_relations():
    raw = json.loads(resources.files("model_zoo").joinpath("data", "sentences.json").read_text(encoding="utf-8"))
    data = sentence_data()
    assert data == raw
    sets = [set(data[k]) for k in ("evaluation", "calibration", "validation")]
    assert [len(s) for s in sets] == [len(data[k]) for k in ("evaluation", "calibration", "validation")]
    assert not sets[0] & sets[1] and not sets[0] & sets[2] and not sets[1] & sets[2]
    assert len(data["evaluation"]) >= 40 and len(data["calibration"]) >= 32 and len(data["pairs"]) >= 30
    assert {p["relation"] for p in data["pairs"]} == {"paraphrase", "related", "unrelated"}
    assert len({(p["a"], p["b"]) for p in data["pairs"]}) == len(data["pairs"])


def test_sentence_splits_are_fixed_length_int64_with_pairs():
    tok = minilm.tokenizer()
    splits = sentence_splits(tok, 64)
    data = sentence_data()
    for split, key in ((splits.train, "calibration"), (splits.val, "validation"), (splits.test, "evaluation")):
        ids, mask = split.inputs
        assert ids.shape == mask.shape == (len(data[key]), 64)
        assert ids.dtype == mask.dtype == torch.int64
        assert split.targets is None
        assert bool((mask.sum(1) > 2).all()) and bool((ids[mask == 0] == tok.pad_token_id).all())
    pairs = splits.extra["pairs"]
    assert pairs.dtype == np.int64 and pairs.shape == (len(data["pairs"]), 2)
    assert pairs.min() >= 0 and pairs.max() < len(splits.test)
    assert len(splits.extra["pair_relations"]) == len(pairs)
    assert sentence_splits(tok, 64) is splits
    assert sentence_splits(tok, 32).test.inputs[0].shape == (len(data["evaluation"]), 32)


def test_take_cycles_through_a_split():
    split = Split((torch.arange(5).reshape(5, 1), torch.arange(5) * 10))
    a, b = take(split, 12)
    assert a.shape == (12, 1) and a[:, 0].tolist() == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1]
    assert b[7] == 20
    assert take(split, 2)[0].tolist() == [[0], [1]]
    with pytest.raises(ValueError):
        take(split, 0)


def test_fingerprint_changes_with_any_value_or_extra():
    def splits(value: float, pairs: list[list[int]]) -> Splits:
        x = torch.zeros(4, 3)
        x[0, 0] = value
        part = Split((x,), np.zeros(4, dtype=np.int64))
        return Splits(part, part, part, extra={"pairs": np.array(pairs, dtype=np.int64)})

    base = splits_fingerprint(splits(0.0, [[0, 1]]))
    assert splits_fingerprint(splits(0.0, [[0, 1]])) == base
    assert splits_fingerprint(splits(1e-6, [[0, 1]])) != base
    assert splits_fingerprint(splits(0.0, [[0, 2]])) != base
