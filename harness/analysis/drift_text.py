"""The drift suite for token models with embedding outputs (minilm): text shifts on sentences, quality as cosine
to the reference's clean embedding, and the drift detectors on embeddings.

Quality is read on the model's test sentences (``Splits.extra["sentences"]``, the texts of its test split); the
detectors draw their windows from a larger pool: the held-out sentences of the committed corpus
(:mod:`model_zoo.corpus`). Every sentence set is tokenized again by the model's own tokenizer at the length of its
test inputs; the reference encodes each set once per model (shared by the model's cases), a variant once per case.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch

from harness.analysis import detectors
from harness.analysis import drift as drift_figures
from harness.analysis.run import AnalysisRun, Prepared, reference_predict
from harness.analysis.shifts import SEVERITIES, seed_of
from harness.analysis.text_shifts import TEXT_SHIFTS, TextShift
from harness.env import cpus_available
from harness.errors import ConfigError
from model_zoo.reference import Reference
from model_zoo.spec import ModelSpec, Splits

logger = logging.getLogger(__name__)

# Columns the detectors read: None, the embedding's own (384 for minilm; "Failing Loudly" runs KS with Bonferroni
# on representations so); or a fixed random projection to that many.
PROJECTION: int | None = None
PROJECTION_SEED = 0
# Whether a variant's own detectors are measured on its embeddings of the pool (as for images: severity 3, 20
# draws). Off: that is 1,800 more sentences each variant encodes at its padded length (64 tokens, ONNX graphs take
# no other) — 40-130 s per variant, 6 of a cold run's 10.5 minutes on a loaded 2-core machine — and, measured so
# once, every minilm variant's detectors fired on 20 of 20 windows of both shifts at severity 3 and on 0-2 of 20
# clean ones, as the reference's (its table, over 100 and 500 draws, is in every case's details).
VARIANT_DETECTORS = False
QUALITY = "cosine to the reference's embedding of the clean sentence"
SEVERITY_TOP = max(SEVERITIES)
Features = Callable[[np.ndarray], np.ndarray]


def drift_pool() -> tuple[str, ...]:
    """The detectors' sentence pool: the committed corpus's held-out sentences (its last ``corpus.HELD_OUT``, 600:
    two disjoint halves of 300 per draw, windows of 200 from each), which nothing trains on."""
    from model_zoo import corpus

    return corpus.held_out()


def pool_digest() -> str:
    """A hash of the pool's sentences: part of the figures' cache key (a regenerated corpus makes new figures)."""
    return hashlib.sha256("\n".join(drift_pool()).encode()).hexdigest()[:20]


@dataclasses.dataclass(frozen=True)
class TextReader:
    """How a token model reads text: its own tokenizer, padded and cut to the length of its test inputs, the
    tensors named as its inputs (``input_ids``, ``attention_mask``)."""

    tokenizer: Any
    length: int
    names: tuple[str, ...]

    def __call__(self, sentences: Sequence[str]) -> tuple[torch.Tensor, ...]:
        enc = self.tokenizer(list(sentences), padding="max_length", truncation=True, max_length=self.length,
                             return_tensors="pt")
        return tuple(torch.as_tensor(enc[name], dtype=torch.int64) for name in self.names)


def text_reader(spec: ModelSpec, splits: Splits) -> TextReader:
    """The model's reader: its declared tokenizer (``ModelSpec.tokenizer``), checked to make its test inputs again
    from ``extra["sentences"]``. A ConfigError says what is missing."""
    sentences = splits.extra.get("sentences")
    if not sentences or len(sentences) != len(splits.test):
        raise ConfigError(f"model {spec.name!r}: drift on text needs the test split's sentences as "
                          f"`Splits.extra['sentences']` ({len(splits.test)} texts), got {_how_many(sentences)}")
    make = spec.tokenizer
    if not callable(make):
        raise ConfigError(f"model {spec.name!r}: drift on text needs a tokenizer to tokenize shifted sentences: "
                          "expected `ModelSpec(tokenizer=...)`; found none")
    reader = TextReader(make(), int(splits.test.inputs[0].shape[1]), spec.input_names)
    again = reader(sentences)
    if len(again) != len(splits.test.inputs) or not all(torch.equal(a, b) for a, b in
                                                        zip(again, splits.test.inputs, strict=False)):
        raise ConfigError(f"model {spec.name!r}: its `tokenizer()` at length {reader.length} does not make its test "
                          "inputs from `extra['sentences']`; expected the tokenizer its data was made with")
    return reader


def _how_many(value: Any) -> str:
    return "none" if not value else f"{len(value)}"


@contextlib.contextmanager
def every_core() -> Iterator[None]:
    """Torch on every core this process may use, then back: the reference's encoding of the shifted sets is never
    timed (MiniLM's 4,536 sentences: 30 s on one thread, 18 s on two, measured on this 2-core runner)."""
    before = torch.get_num_threads()
    torch.set_num_threads(cpus_available())
    try:
        yield
    finally:
        torch.set_num_threads(before)


def embed_reference(reference: Reference, inputs: tuple[torch.Tensor, ...]) -> np.ndarray:
    """The reference's embeddings, rows sorted by length and each batch cut to its longest row (padding the
    attention mask hides changes nothing but the work: 4x less at 17 of 64 tokens); rows in input order."""
    names = reference.spec.input_names
    if "attention_mask" not in names:
        return reference_predict(reference, inputs)
    lengths = inputs[names.index("attention_mask")].sum(dim=1)
    order = torch.argsort(lengths, stable=True)
    step = reference.spec.throughput_batch
    out: np.ndarray | None = None
    with torch.inference_mode():
        for i in range(0, len(order), step):
            rows = order[i:i + step]
            width = max(1, int(lengths[rows].max()))
            part = reference.module(*(t[rows, :width] for t in inputs)).float().numpy()
            if out is None:
                out = np.empty((len(order), *part.shape[1:]), dtype=np.float32)
            out[rows.numpy()] = part
    assert out is not None
    return out


@dataclasses.dataclass
class TextSets:
    """One model's shifted sentence sets tokenized, the reference's embeddings of each, its detector table."""

    shifts: tuple[TextShift, ...]
    test: dict[tuple[str, int], tuple[torch.Tensor, ...]]  # (shift, severity) -> shifted test sentences' inputs
    reference_test: dict[tuple[str, int], np.ndarray]
    pool: tuple[torch.Tensor, ...]
    reference_pool: np.ndarray
    pool_shifted: dict[tuple[str, int], tuple[torch.Tensor, ...]]
    reference_pool_shifted: dict[tuple[str, int], np.ndarray]
    examples: dict[str, str]  # "shift.sK" -> the first test sentence so shifted (for the report)
    reference_detector: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)
    made_s: float = 0.0


def features(embeddings: np.ndarray) -> np.ndarray:
    """What the detectors read of an embedding: its columns, or their fixed random projection (:data:`PROJECTION`)."""
    if PROJECTION is None:
        return embeddings.astype(np.float32)
    return embeddings.astype(np.float32) @ detectors.random_projection(embeddings.shape[1], PROJECTION,
                                                                       PROJECTION_SEED)


def text_sets(prep: Prepared, settings: detectors.DetectorSettings) -> TextSets:
    """Shift the test sentences and the pool at every severity, tokenize them, and encode them with the reference;
    its embeddings of the test split must be the model's own reference outputs (the reader and the cut batches
    change nothing)."""
    started = time.perf_counter()
    with every_core():
        sets = _encoded_sets(prep)
    sets.reference_detector = embedding_table(sets, features(sets.reference_pool), sets.reference_pool_shifted,
                                              SEVERITIES, settings)
    sets.made_s = time.perf_counter() - started
    logger.info("drift text sets of %s made in %.1f s", prep.reference.spec.name, sets.made_s)
    return sets


def _encoded_sets(prep: Prepared) -> TextSets:
    """The shifted test and pool sentences tokenized, and the reference's embeddings of each."""
    ref, splits = prep.reference, prep.reference.splits
    reader = text_reader(ref.spec, splits)
    sentences, pool_text = list(splits.extra["sentences"]), list(drift_pool())
    check = embed_reference(ref, splits.test.inputs)
    if not np.allclose(check, prep.reference_outputs, atol=1e-5):
        raise ConfigError(f"model {ref.spec.name!r}: the reference's embeddings of batches cut to their longest "
                          "sentence differ from its own test outputs; expected right-padded inputs")
    pool = reader(pool_text)
    sets = TextSets(TEXT_SHIFTS, {}, {}, pool, embed_reference(ref, pool), {}, {}, {})
    for shift in TEXT_SHIFTS:
        for severity in SEVERITIES:
            key = (shift.name, severity)
            moved = shift(sentences, severity, np.random.default_rng(seed_of(shift.name, severity)))
            sets.examples[f"{shift.name}.s{severity}"] = moved[0]
            sets.test[key] = reader(moved)
            sets.reference_test[key] = embed_reference(ref, sets.test[key])
            moved_pool = shift(pool_text, severity, np.random.default_rng(seed_of(shift.name, severity, base=1)))
            sets.pool_shifted[key] = reader(moved_pool)
            sets.reference_pool_shifted[key] = embed_reference(ref, sets.pool_shifted[key])
    return sets


def embedding_table(sets: TextSets, clean: np.ndarray, shifted: dict[tuple[str, int], np.ndarray],
                    severities: tuple[int, ...], settings: detectors.DetectorSettings) -> dict[str, dict[str, float]]:
    """The detectors' table (false positives, power per "shift.sK") on one model's embeddings of the pool."""
    windows = {f"{s.name}.s{k}": (detectors.moved_window(features(shifted[(s.name, k)])), seed_of(s.name, k))
               for s in sets.shifts for k in severities}
    return detectors.table(clean, windows, settings)


def analyze(prep: Prepared, run: AnalysisRun, suite: str, detector: detectors.DetectorSettings,
            variant_settings: detectors.DetectorSettings,
            variant_severities: tuple[int, ...]) -> tuple[dict[str, float], dict[str, Any]]:
    """One case's figures: quality and disagreement per shift and severity on the test sentences, the contract's
    inputs, the variant's own detectors on its embeddings of the pool."""
    sets: TextSets = run.memo((prep.case.model, suite), lambda: text_sets(prep, detector))
    # The fp32 reference on its own backend is the reference: its embeddings are read from the shared sets.
    same = prep.case.is_reference and np.array_equal(prep.test_outputs, prep.reference_outputs)
    ref_clean = prep.reference_outputs
    variant = {key: sets.reference_test[key] if same else prep.predict(inputs) for key, inputs in sets.test.items()}
    clean, points = drift_figures.embedding_points(ref_clean, prep.test_outputs, sets.reference_test, variant)
    fragility = drift_figures.fragility_of(clean, points)
    own = own_detectors(prep, sets, same, variant_severities, variant_settings) if VARIANT_DETECTORS else {}
    proof = drift_figures.proof_figures(fragility, points, own, sets.reference_detector if prep.case.is_reference
                                        else None, SEVERITY_TOP)
    details = {
        "points": [p.to_dict() for p in points], "clean": clean.to_dict(),
        "worst": fragility.worst.to_dict() if fragility.worst is not None else None,
        "detector": own, "reference_detector": sets.reference_detector,
        "detector_settings": dataclasses.asdict(detector), "variant_trials": variant_settings.trials,
        "shifts": {s.name: s.describe for s in sets.shifts}, "quality": QUALITY,
        "detector_features": _features_text(ref_clean.shape[1]), "examples": sets.examples,
        "pool": f"the last {len(drift_pool())} sentences of model_zoo/data/corpus.txt (held out from training)",
        "test_sentences": len(ref_clean), "reference_sets_s": sets.made_s, "reused_reference": same,
        "variant_detectors": VARIANT_DETECTORS,
    }
    return proof, details


def own_detectors(prep: Prepared, sets: TextSets, same: bool, severities: tuple[int, ...],
                  settings: detectors.DetectorSettings) -> dict[str, dict[str, float]]:
    """The variant's detectors on its own embeddings of the pool, clean and shifted at ``severities``."""
    clean = sets.reference_pool if same else prep.predict(sets.pool)
    shifted = {(s.name, k): sets.reference_pool_shifted[(s.name, k)] if same else prep.predict(
        sets.pool_shifted[(s.name, k)]) for s in sets.shifts for k in severities}
    return embedding_table(sets, features(clean), shifted, severities, settings)


def _features_text(columns: int) -> str:
    if PROJECTION is None:
        return f"the {columns} embedding columns"
    return f"a fixed random projection of the {columns} embedding columns to {PROJECTION}"


def settings() -> dict[str, Any]:
    """What text figures depend on besides the variant, the reference and the code: the shifts, the pool, the
    detectors' columns."""
    return {"text_shifts": [(s.name, s.kind, s.describe) for s in TEXT_SHIFTS], "pool": len(drift_pool()),
            "pool_digest": pool_digest(), "projection": PROJECTION, "projection_seed": PROJECTION_SEED,
            "variant_detectors": VARIANT_DETECTORS}
