"""The interpretability suite's cases: the reference's rules, and how well each variant keeps them.

Every case fits (once per model) the reference's surrogate on the probe set and reads it on held-out rows (the
validation and test splits: neither was fitted on), then fits the variant's own surrogate and compares.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from typing import Any, ClassVar

import numpy as np
import torch

from harness.analysis import interpretability as interp
from harness.analysis import variants
from harness.analysis.run import AnalysisRun, Analyzer, Prepared, reference_predict
from harness.analysis.variants import AnalysisConfig, wrap
from harness.gate import Expectation
from model_zoo.spec import InputKind, ModelSpec
from model_zoo.traits import Traits

SUITE = "interpretability"
SETTINGS = interp.SurrogateSettings()
# The variants the suite reads by default: one of each kind the other suites make (a user adds more with
# register_preset("interpretability", InterpretabilityConfig(name=..., source="suite/preset"))).
SOURCES = ("quantization/torch_dynamic_int8", "quantization/ort_dynamic_int8_per_channel",
           "quantization/ort_static_int8_minmax", "pruning/l1_unstructured_50", "pruning/l1_unstructured_90",
           "pruning/structured_50_finetuned", "pruning/structured_50_finetuned.ort_static_int8",
           "distillation/kd_t4_a0.9")
MARGIN = 0.01  # the cross-fidelity may fall one point beyond the accuracy drop


@dataclasses.dataclass(frozen=True)
class InterpretabilityConfig(AnalysisConfig):
    """A variant read through the reference's rules; its contract: cross-fidelity falls no more than the top-1
    accuracy drop plus one point, on the interval over held-out items."""

    technique: ClassVar[str] = SUITE
    report_section: ClassVar[str] = SUITE
    requires: ClassVar[tuple[str, ...]] = ("classification",)

    def not_applicable(self, spec: ModelSpec, traits: Traits) -> str | None:
        if traits.known and traits.input_kind is InputKind.TOKENS:
            return "needs image or tabular inputs (rules over token ids read nothing)"
        return super().not_applicable(spec, traits)

    def expectations(self) -> list[Expectation]:
        return [Expectation("rules_kept", "proof.interp.excess", "<=", MARGIN, decision="interval",
                            unit="held-out items", across_weights=True)]


def _held_out(prep: Prepared) -> tuple[tuple[torch.Tensor, ...], np.ndarray]:
    splits = prep.reference.splits
    inputs = tuple(torch.cat([a, b]) for a, b in zip(splits.val.inputs, splits.test.inputs, strict=True))
    assert splits.val.targets is not None and splits.test.targets is not None
    return inputs, np.concatenate([splits.val.targets, splits.test.targets])


@dataclasses.dataclass
class ReferenceRules:
    """What every case of a model shares: the probe set, held-out rows, the reference's surrogate and figures."""

    probe: tuple[torch.Tensor, ...]
    probe_features: np.ndarray
    held_out: tuple[torch.Tensor, ...]
    held_out_features: np.ndarray
    labels: np.ndarray
    reference_pred: np.ndarray
    surrogate: interp.Surrogate
    surrogate_pred: np.ndarray
    edges: np.ndarray
    names: list[str]
    fit_s: float


def reference_rules(prep: Prepared) -> ReferenceRules:
    ref, spec = prep.reference, prep.reference.spec
    train = ref.splits.train.inputs[0].numpy()
    settings = SETTINGS if train.ndim == 2 else dataclasses.replace(SETTINGS, probe_copies=0)
    flat = interp.probe_set(train.reshape(len(train), -1), settings)
    probe = (torch.from_numpy(flat.reshape(-1, *train.shape[1:])),)
    held_out, labels = _held_out(prep)
    started = time.perf_counter()
    probe_features = interp.features(probe[0].numpy(), SETTINGS.image_grid)
    held_features = interp.features(held_out[0].numpy(), SETTINGS.image_grid)
    ref_probe = reference_predict(ref, probe).argmax(axis=1)
    ref_held = reference_predict(ref, held_out).argmax(axis=1)
    found = interp.surrogate(probe_features, ref_probe, held_features, ref_held, SETTINGS, stability=True)
    fit_s = time.perf_counter() - started
    return ReferenceRules(probe, probe_features, held_out, held_features, labels, ref_held, found,
                          found.tree.predict(held_features), interp.bin_edges(probe_features),
                          interp.feature_names(train[:1], spec.feature_names, SETTINGS.image_grid), fit_s)


def analyze(prep: Prepared, run: AnalysisRun) -> tuple[dict[str, float], dict[str, Any]]:
    shared: ReferenceRules = run.memo((prep.case.model, SUITE), lambda: reference_rules(prep))
    s = shared.surrogate
    var_held = prep.predict(shared.held_out).argmax(axis=1)
    var_probe = prep.predict(shared.probe).argmax(axis=1)
    own = interp.surrogate(shared.probe_features, var_probe, shared.held_out_features, var_held, SETTINGS,
                           stability=False)
    kept = interp.rules_kept(shared.surrogate_pred, shared.reference_pred, var_held, shared.labels)
    accuracy_drop = float(np.mean(shared.reference_pred == shared.labels) - np.mean(var_held == shared.labels))
    proof = {
        "interp.fidelity": s.fidelity, "interp.leaves": float(s.leaves),
        "interp.antecedents_max": float(s.antecedents_max), "interp.identical_seeds": s.identical_seeds,
        "interp.seed_agreement": s.seed_agreement,
        "interp.cross_fidelity": float(np.mean(shared.surrogate_pred == var_held)),
        "interp.own_fidelity": own.fidelity, "interp.rule_overlap": interp.overlap(s.rules, own.rules, shared.edges),
        "interp.agreement_drop": float(np.mean(var_held != shared.reference_pred)),
        "interp.accuracy_drop": accuracy_drop,
        "interp.excess": kept.mean, "interp.excess.ci_low": kept.low, "interp.excess.ci_high": kept.high,
        "interp.excess.n": float(kept.n),
    }
    classes = prep.reference.spec.class_names
    details = {
        "reference_rules": [r.text(shared.names, classes) for r in s.rules],
        "variant_rules": [r.text(shared.names, classes) for r in own.rules],
        "antecedents_mean": s.antecedents_mean, "reference_fit_s": shared.fit_s,
        "probe_rows": len(shared.probe_features), "held_out_rows": len(shared.labels),
        "settings": dataclasses.asdict(SETTINGS),
    }
    return proof, details


def settings() -> dict[str, Any]:
    """What the figures depend on besides the variant, the reference and the code (read at the call)."""
    return {"surrogate": dataclasses.asdict(SETTINGS), "quantile_bins": interp.QUANTILE_BINS, "margin": MARGIN}


def register(run: AnalysisRun) -> None:
    wrap(SUITE, InterpretabilityConfig, SOURCES)
    run.analyzers[SUITE] = Analyzer(analyze, settings, (sys.modules[__name__], interp, variants))
