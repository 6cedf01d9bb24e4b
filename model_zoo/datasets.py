"""The zoo's embedded data: deterministic train/val/test splits of scikit-learn's bundled sets and shipped sentences.

Everything here is built from files installed with the packages (no network), with a fixed seed, once per process.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any, Protocol

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.model_selection import train_test_split

from model_zoo.spec import Inputs, Split, Splits

logger = logging.getLogger(__name__)

SEED = 0
TRAIN_FRACTION, VAL_FRACTION, TEST_FRACTION = 0.6, 0.2, 0.2
SENTENCES_FILE = "sentences.json"


class Tokenizer(Protocol):
    """The part of a Hugging Face tokenizer that :func:`sentence_splits` uses."""

    def __call__(self, text: list[str], **kwargs: object) -> Mapping[str, Any]: ...


def split_indices(n: int, labels: np.ndarray | None = None, seed: int = SEED) -> tuple[np.ndarray, ...]:
    """Indices of a 60/20/20 train/val/test split of ``n`` items, stratified on ``labels`` when given.

    Each index array is sorted, so a split keeps the source's order and is identical on every machine.
    """
    idx = np.arange(n)
    rest_fraction = VAL_FRACTION + TEST_FRACTION
    train, rest = train_test_split(idx, test_size=rest_fraction, random_state=seed, stratify=labels)
    rest_labels = labels[rest] if labels is not None else None
    val, test = train_test_split(
        rest, test_size=TEST_FRACTION / rest_fraction, random_state=seed + 1, stratify=rest_labels
    )
    return np.sort(train), np.sort(val), np.sort(test)


def _labelled_splits(x: torch.Tensor, y: np.ndarray) -> Splits:
    train, val, test = split_indices(len(y), y)
    t_train, t_val, t_test = (torch.from_numpy(i) for i in (train, val, test))
    return Splits(
        train=Split((x[t_train].contiguous(),), y[train].copy()),
        val=Split((x[t_val].contiguous(),), y[val].copy()),
        test=Split((x[t_test].contiguous(),), y[test].copy()),
    )


@functools.cache
def digits_splits(size: int = 8) -> Splits:
    """scikit-learn's 8×8 digits (1,797 images, 10 classes) as float32 (N, 1, size, size) in [0, 1].

    ``size`` other than 8 upsamples bilinearly, for models that want a larger input than the 8×8 originals.
    """
    if not isinstance(size, int) or size < 8:
        raise ValueError(f"`size` must be an int >= 8, got {size!r}")
    data = load_digits()
    x = torch.from_numpy((data.images / 16.0).astype(np.float32)).unsqueeze(1)
    if size != 8:
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        x = x.clamp_(0.0, 1.0)
    y = data.target.astype(np.int64)
    logger.debug("digits %dx%d: %d images", size, size, len(y))
    return _labelled_splits(x, y)


@functools.cache
def cancer_splits() -> Splits:
    """scikit-learn's breast-cancer set (569 × 30 features, 2 classes), standardised with the train split's stats.

    Val and test are scaled with the train mean and deviation, so nothing about them leaks into the model.
    """
    data = load_breast_cancer()
    features = data.data.astype(np.float64)
    y = data.target.astype(np.int64)
    train, val, test = split_indices(len(y), y)
    mean = features[train].mean(axis=0)
    std = features[train].std(axis=0)
    std = np.where(std > 0, std, 1.0)

    def part(idx: np.ndarray) -> Split:
        scaled = ((features[idx] - mean) / std).astype(np.float32)
        return Split((torch.from_numpy(scaled),), y[idx].copy())

    return Splits(train=part(train), val=part(val), test=part(test))


@functools.lru_cache(maxsize=1)
def sentence_data() -> dict[str, Any]:
    """The shipped sentences file, checked: evaluation, calibration and validation sentences, and pairs."""
    text = resources.files("model_zoo").joinpath("data", SENTENCES_FILE).read_text(encoding="utf-8")
    data = json.loads(text)
    for key in ("evaluation", "calibration", "validation", "pairs"):
        if not isinstance(data.get(key), list) or not data[key]:
            raise ValueError(f"{SENTENCES_FILE}: `{key}` must be a non-empty list")
    n = len(data["evaluation"])
    for pair in data["pairs"]:
        if not (0 <= pair["a"] < n and 0 <= pair["b"] < n and pair["a"] != pair["b"]):
            raise ValueError(f"{SENTENCES_FILE}: pair {pair} must name two different evaluation sentences < {n}")
    return data


def _tokenize(tokenizer: Tokenizer, sentences: Sequence[str], max_length: int) -> Inputs:
    enc = tokenizer(list(sentences), padding="max_length", truncation=True, max_length=max_length, return_tensors="pt")
    return (
        torch.as_tensor(enc["input_ids"], dtype=torch.int64),
        torch.as_tensor(enc["attention_mask"], dtype=torch.int64),
    )


@functools.lru_cache(maxsize=8)
def sentence_splits(tokenizer: Tokenizer, max_length: int) -> Splits:
    """Shipped sentences tokenized to fixed length ``max_length``: (input_ids, attention_mask), int64.

    train = calibration sentences, val = validation sentences, test = evaluation sentences (no labels);
    ``extra["pairs"]`` is an int64 (P, 2) array of test-sentence indices for similarity-ranking checks,
    ``extra["pair_relations"]`` says how close each pair is meant to be, ``extra["sentences"]`` the test texts.
    """
    if max_length < 8:
        raise ValueError(f"`max_length` must be >= 8, got {max_length!r}")
    data = sentence_data()
    pairs = np.array([[p["a"], p["b"]] for p in data["pairs"]], dtype=np.int64)
    return Splits(
        train=Split(_tokenize(tokenizer, data["calibration"], max_length)),
        val=Split(_tokenize(tokenizer, data["validation"], max_length)),
        test=Split(_tokenize(tokenizer, data["evaluation"], max_length)),
        extra={
            "pairs": pairs,
            "pair_relations": tuple(p["relation"] for p in data["pairs"]),
            "sentences": tuple(data["evaluation"]),
        },
    )


def take(split: Split, n: int) -> Inputs:
    """The first ``n`` items of ``split``, cycling through it again when ``n`` exceeds its length."""
    if n < 1:
        raise ValueError(f"batch size must be >= 1, got {n}")
    idx = torch.arange(n) % len(split)
    return tuple(t[idx].contiguous() for t in split.inputs)


def splits_fingerprint(splits: Splits) -> str:
    """A content hash of every split (shapes, dtypes, values, targets) and of ``extra``: part of cache keys."""
    h = hashlib.sha256()

    def feed(name: str, value: object) -> None:
        h.update(name.encode())
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().contiguous().numpy()
        if isinstance(value, np.ndarray):
            h.update(f"{value.dtype}{value.shape}".encode())
            h.update(np.ascontiguousarray(value).tobytes())
        else:
            h.update(repr(value).encode())

    for part in ("train", "val", "test"):
        split: Split = getattr(splits, part)
        for i, tensor in enumerate(split.inputs):
            feed(f"{part}.inputs[{i}]", tensor)
        feed(f"{part}.targets", split.targets)
    for key in sorted(splits.extra):
        feed(f"extra.{key}", splits.extra[key])
    return h.hexdigest()[:20]
