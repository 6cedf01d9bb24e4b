"""The drift suite's cases: each variant and its reference on every shift and severity, the fragility contract,
and the drift detectors' power and false-positive rate on the variant's own outputs.

Chosen by input kind: images and tables (classifiers) here — quality is accuracy on the test split (labels, never
trained on), the detectors draw their windows from the validation and test splits pooled (softmax outputs);
token models with embedding outputs in :mod:`harness.analysis.drift_text` (text shifts on sentences, cosine
quality, detectors on embeddings). The shifted sets and the reference's outputs on them are made once per model
and shared by its cases.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any, ClassVar

import numpy as np
import torch
from scipy.special import softmax

from harness.analysis import detectors, drift_text, interpretability, text_shifts, variants
from harness.analysis import drift as drift_figures
from harness.analysis import shifts as shift_code
from harness.analysis.run import AnalysisRun, Analyzer, Prepared, reference_predict
from harness.analysis.shifts import SEVERITIES, FeatureStats, Shift, seed_of, shifts_for
from harness.analysis.variants import AnalysisConfig, wrap
from harness.gate import Expectation
from model_zoo.spec import InputKind, ModelSpec, Task
from model_zoo.traits import Traits, infer_input_kind

SUITE = "drift"
SOURCES = ("quantization/torch_dynamic_int8", "quantization/ort_dynamic_int8_per_channel",
           "quantization/ort_static_int8_minmax", "pruning/l1_unstructured_50", "pruning/l1_unstructured_90",
           "pruning/structured_50_finetuned", "pruning/structured_50_finetuned.ort_static_int8",
           "distillation/kd_t4_a0.9")
DETECTOR = detectors.DetectorSettings()
# A variant's own detector is measured at the highest severity only, over 20 draws (the reference's at every
# severity over DETECTOR.trials, its false-positive rate over DETECTOR.null_trials): the monitoring figure a user
# deploys, within the suite's time budget (a cold run computes it; later runs read it from the cache).
VARIANT_SEVERITIES = (max(SEVERITIES),)
VARIANT_DETECTOR = dataclasses.replace(DETECTOR, trials=20, null_trials=20)


@dataclasses.dataclass(frozen=True)
class DriftConfig(AnalysisConfig):
    """A variant under shifted inputs; its contract: no more than two points lost beyond the reference under any
    shift at severity <= 3, judged where the variant loses less than one point on clean data. Images and tables
    need a classifier (accuracy); token inputs an embedding model (cosine to the reference)."""

    technique: ClassVar[str] = SUITE
    report_section: ClassVar[str] = SUITE

    def not_applicable(self, spec: ModelSpec, traits: Traits) -> str | None:
        if traits.known and traits.input_kind is InputKind.TOKENS and traits.task is not Task.EMBEDDING:
            return "needs an embedding task for token inputs (text drift reads cosine to the reference's embeddings)"
        if traits.known and traits.input_kind is not InputKind.TOKENS:
            missing = traits.missing(("classification",))
            if missing:
                return missing
        return super().not_applicable(spec, traits)

    def expectations(self) -> list[Expectation]:
        given = ("proof.drift.clean_ok", f"the variant loses {drift_figures.CLEAN_LOSS_MAX:.0%} or more on clean "
                                         "data: fragility is judged on variants that keep their clean quality")
        return [Expectation("not_fragile", "proof.drift.worst_excess", "<=", drift_figures.EXCESS_MAX,
                            decision="interval", unit="test items", given=given, across_weights=True)]


@dataclasses.dataclass
class ShiftedSets:
    """One model's shifted test sets and pools, the reference's predictions on them, its detector table."""

    shifts: tuple[Shift, ...]
    test: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]]  # (shift, severity) -> (inputs, rows)
    reference: dict[tuple[str, int], np.ndarray]  # reference top-1 on each
    pool: np.ndarray
    pool_labels: np.ndarray
    pool_shifted: dict[tuple[str, int], np.ndarray]  # inputs of the pool moved (shifts that move inputs)
    stats: FeatureStats
    reference_detector: dict[str, dict[str, float]]


def _tensor(x: np.ndarray, like: torch.Tensor) -> tuple[torch.Tensor, ...]:
    return (torch.from_numpy(np.ascontiguousarray(x)).to(like.dtype),)


def _probabilities(outputs: np.ndarray) -> np.ndarray:
    return softmax(outputs.astype(np.float64), axis=1)


def shifted_sets(prep: Prepared) -> ShiftedSets:
    ref, splits = prep.reference, prep.reference.splits
    kind = "image" if splits.test.inputs[0].ndim == 4 else "tabular"
    like = splits.test.inputs[0]
    stats = FeatureStats.of(splits.train.inputs[0].numpy())
    x_test, y_test = splits.test.inputs[0].numpy(), splits.test.targets
    assert y_test is not None and splits.val.targets is not None
    pool = np.concatenate([splits.val.inputs[0].numpy(), x_test])
    pool_labels = np.concatenate([splits.val.targets, y_test])
    shifts = shifts_for(kind)
    test, reference, pool_shifted = {}, {}, {}
    for shift in shifts:
        for severity in SEVERITIES:
            rng = np.random.default_rng(seed_of(shift.name, severity))
            x, rows = shift(x_test, y_test, severity, rng, stats)
            test[(shift.name, severity)] = (x, rows)
            reference[(shift.name, severity)] = reference_predict(ref, _tensor(x, like)).argmax(axis=1)
            if not shift.resamples:
                rng = np.random.default_rng(seed_of(shift.name, severity, base=1))
                pool_shifted[(shift.name, severity)] = shift(pool, pool_labels, severity, rng, stats)[0]
    sets = ShiftedSets(shifts, test, reference, pool, pool_labels, pool_shifted, stats, {})
    clean = _probabilities(reference_predict(ref, _tensor(pool, like)))
    sets.reference_detector = detector_table(sets, clean, lambda x: _probabilities(reference_predict(ref, x)),
                                             SEVERITIES, like, DETECTOR)
    return sets


def detector_table(sets: ShiftedSets, clean: np.ndarray, probs: Any, severities: tuple[int, ...],
                   like: torch.Tensor, settings: detectors.DetectorSettings) -> dict[str, dict[str, float]]:
    """Per detector, its false-positive rate ("fpr", and "fpr_high" its 95 % upper bound over the draws) and its
    power per "shift.sK", with the window size and the number of draws."""
    windows: dict[str, tuple[detectors.ShiftedWindow, int]] = {}
    for shift in sets.shifts:
        for severity in severities:
            if shift.resamples:
                window = _resampled(shift, sets, clean, severity)
            else:
                window = detectors.moved_window(probs(_tensor(sets.pool_shifted[(shift.name, severity)], like)))
            windows[f"{shift.name}.s{severity}"] = (window, seed_of(shift.name, severity))
    return detectors.table(clean, windows, settings)


def _resampled(shift: Shift, sets: ShiftedSets, clean: np.ndarray, severity: int) -> detectors.ShiftedWindow:
    """A population shift drawn inside the window's half of the pool, so the two windows share no row."""

    def window(rows: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        _, picked = shift(sets.pool[rows], sets.pool_labels[rows], severity, rng, sets.stats)
        return clean[rows[rng.permutation(picked)[:n]]]

    return window


def analyze(prep: Prepared, run: AnalysisRun) -> tuple[dict[str, float], dict[str, Any]]:
    if infer_input_kind(prep.reference.spec) is InputKind.TOKENS:
        return drift_text.analyze(prep, run, SUITE, DETECTOR, VARIANT_DETECTOR, VARIANT_SEVERITIES)
    sets: ShiftedSets = run.memo((prep.case.model, SUITE), lambda: shifted_sets(prep))
    splits, like = prep.reference.splits, prep.reference.splits.test.inputs[0]
    labels = splits.test.targets
    assert labels is not None
    clean = drift_figures.Condition("clean", 0, np.arange(len(labels)), prep.reference_outputs.argmax(axis=1),
                                    prep.test_outputs.argmax(axis=1))
    points = []
    for (name, severity), (x, rows) in sets.test.items():
        cond = drift_figures.Condition(name, severity, rows, sets.reference[(name, severity)],
                                       prep.predict(_tensor(x, like)).argmax(axis=1))
        points.append(drift_figures.point(cond, labels))
    fragility = drift_figures.fragility(clean, points, labels)
    clean_probs = _probabilities(prep.predict(_tensor(sets.pool, like)))
    own = detector_table(sets, clean_probs, lambda x: _probabilities(prep.predict(x)), VARIANT_SEVERITIES, like,
                         VARIANT_DETECTOR)
    proof = drift_figures.proof_figures(fragility, points, own,
                                        sets.reference_detector if prep.case.is_reference else None, max(SEVERITIES))
    details = {
        "points": [p.to_dict() for p in points],
        "clean": drift_figures.point(clean, labels).to_dict(),
        "worst": fragility.worst.to_dict() if fragility.worst is not None else None,
        "detector": own, "reference_detector": sets.reference_detector,
        "detector_settings": dataclasses.asdict(DETECTOR), "variant_trials": VARIANT_DETECTOR.trials,
        "shifts": {s.name: s.describe for s in sets.shifts},
    }
    return proof, details


def settings() -> dict[str, Any]:
    """What the figures depend on besides the variant, the reference and the code (read at the call): the
    shifts and severities, the detectors' draws, windows and seeds, the contract's limits."""
    return {"shifts": [(s.name, s.kind, s.describe, s.resamples) for s in shift_code.SHIFTS],
            "severities": list(SEVERITIES), "variant_severities": list(VARIANT_SEVERITIES),
            "detector": dataclasses.asdict(DETECTOR), "variant_detector": dataclasses.asdict(VARIANT_DETECTOR),
            "clean_loss_max": drift_figures.CLEAN_LOSS_MAX, "excess_max": drift_figures.EXCESS_MAX,
            **drift_text.settings()}


def register(run: AnalysisRun) -> None:
    wrap(SUITE, DriftConfig, SOURCES)
    # interpretability: the paired intervals (mean_interval) come from there
    run.analyzers[SUITE] = Analyzer(analyze, settings, (sys.modules[__name__], drift_figures, detectors, shift_code,
                                                         interpretability, variants, drift_text, text_shifts))
