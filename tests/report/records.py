"""Hand-made run records following the run JSON schema (and the training/details/proof fields of records from
suites still being written), so every report section is tested before its suite lands."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from harness.result import RUN_SCHEMA_VERSION

ENV = {"cpu": "Test CPU", "cpu_flags": ["avx2"], "logical_cores": 2, "threads": 1, "gpu": None,
       "libraries": {"torch": "2.13.0", "onnxruntime": "1.32.0"}}


def stats(curve: list[float], grad: list[float], reason: str = "max_epochs") -> dict[str, Any]:
    return {"val_quality": curve, "val_loss": [1 - q for q in curve], "train_loss": [1 - q for q in curve],
            "grad_norm": grad, "epochs_run": len(curve), "stop_reason": reason, "best_epoch": len(curve) - 1,
            "diverged": False}


def training(seeds=(0, 1, 2), technique_q=(0.95, 0.96, 0.94), control_q=(0.93, 0.94, 0.92), stop_early=True,
             extra_arms: dict[str, Any] | None = None, summary: dict[str, float] | None = None) -> dict[str, Any]:
    def arm(qs: tuple[float, ...], short: bool) -> dict[str, Any]:
        curves = [[0.5 + 0.1 * e for e in range(4 if short else 6)] for _ in seeds]
        grads = [[10.0 / (1 + i) for i in range(500)] for _ in seeds]
        return {"seeds": list(seeds), "quality": list(qs), "mean": sum(qs) / len(qs), "std": 0.01,
                "wall_s": [1.0] * len(seeds), "epochs_run": [len(c) for c in curves],
                "stats": [stats(c, g, "hook:early_stopping" if short else "max_epochs")
                          for c, g in zip(curves, grads, strict=True)]}

    arms = {"technique": arm(technique_q, stop_early), "control": arm(control_q, False)}
    arms.update(extra_arms or {})
    return {"arms": arms,
            "comparisons": [{"arm": "technique", "against": "control", "metric": "quality", "mean_diff": 0.02,
                             "mean": 0.02, "ci_low": 0.01, "ci_high": 0.03, "n": len(seeds),
                             "within_noise": False}],
            "summary": summary or {"epochs_saved": 0.33}}


def record(model: str, technique: str, config: str, backend: str, *, reference: bool = False,
           quality: float = 0.95, p50: float = 0.001, speedup: float | None = 1.5, size: float = 4096.0,
           rss: float = 2**28, proof: dict[str, float] | None = None, train: dict[str, Any] | None = None,
           details: dict[str, Any] | None = None) -> dict[str, Any]:
    metrics = {"latency.p50_s": p50, "quality.value": quality, "speedup": None if reference else speedup,
               "size_bytes": size, "memory.peak_rss_bytes": rss, "throughput.items_per_s": 1000.0,
               "memory.delta_rss_bytes": 2**20}
    metrics.update({f"proof.{k}": v for k, v in (proof or {}).items()})
    return {"case_id": f"{model}-{config}-{backend}", "suite": technique, "model": model, "technique": technique,
            "config_name": config, "backend": backend, "is_reference": reference, "metrics": metrics,
            "quality": {"metric": "accuracy", "value": quality}, "memory": {"device_peak_bytes": None},
            "proof": proof or {}, "training": train, "details": details or {}}


def declared(section: str = "generic", figures: tuple[tuple[str, str, str], ...] = (),
             plots: tuple[str, ...] = ()) -> dict[str, Any]:
    """A case's ``report``: what its technique's config declares (TechniqueConfig.report_declaration())."""
    return {"section": section, "figures": [{"key": k, "label": label, "format": f} for k, label, f in figures],
            "plots": list(plots)}


# What each technique of the zoo declares; tests/techniques/test_report_declarations.py checks these against the
# config classes themselves.
DECLARED = {
    "reference": declared(), "quantization": declared(), "chain": declared(), "pruning": declared("pruning"),
    "search": declared("search"),
    "early_stopping": declared("training", (("training.epochs_saved", "epochs saved", "{:.0%}"),
                                            ("training.wall_saved", "time saved", "{:.0%}"),
                                            ("training.best_epoch", "best epoch", "{:.1f}"))),
    "gradient_clipping": declared("training", (("training.divergence_rate", "diverged", "{:.0%}"),
                                               ("training.control_divergence_rate", "control diverged", "{:.0%}")),
                                  ("grad_norm",)),
    "augmentation": declared("training", (("training.time_cost", "train time", "{:.2f}x"),)),
    "tuning": declared("training", plots=("grad_norm",)),
    "distillation": declared("distillation", plots=("grad_norm",)),
    "dataset_distillation": declared("dataset_distillation", plots=("grad_norm",)),
    "interpretability": declared("interpretability"), "drift": declared("drift"), "cost": declared("cost"),
}


def case(rec: dict[str, Any], status: str = "pass", verdicts: list[dict[str, Any]] | None = None,
         suite: str | None = None) -> dict[str, Any]:
    return {"case_id": rec["case_id"], "suite": suite or rec["suite"], "model": rec["model"],
            "config": rec["config_name"], "backend": rec["backend"], "is_reference": rec["is_reference"],
            "status": status, "message": "", "record": rec, "verdicts": verdicts or [],
            "report": copy.deepcopy(DECLARED.get(rec["technique"], declared()))}


FAILED = {"check": "speedup", "source": "baseline", "metric": "speedup", "status": "fail", "current": 1.1,
          "expected": 1.8, "tolerance": 0.35, "message": "m-int8-ort: speedup dropped beyond tolerance",
          "basis": ""}


def run(cases: list[dict[str, Any]] | None = None, started: str = "2026-11-28T19:00:00Z", commit: str = "abc123",
        environment: dict[str, Any] | None = None) -> dict[str, Any]:
    """A complete run record (schema version 1)."""
    if cases is None:
        cases = all_techniques()
    return {"schema_version": RUN_SCHEMA_VERSION, "started": started, "finished": started, "duration_s": 61.0,
            "environment": copy.deepcopy(environment or ENV), "options": {}, "baselines": {}, "cases": cases,
            "commit": commit}


def all_techniques() -> list[dict[str, Any]]:
    """Every technique the report knows, on two models, with a failure, a known finding, an error and a skip."""
    out = []
    for model in ("digits_cnn", "cancer_mlp"):
        for backend in ("torch_eager", "onnxruntime"):
            out.append(case(record(model, "reference", "fp32", backend, reference=True, quality=0.96, p50=0.002),
                            suite="quantization"))
        out.append(case(record(model, "quantization", "int8", "onnxruntime", quality=0.955, p50=0.0012),
                        "fail", [FAILED]))
        out.append(case(record(model, "quantization", "bf16", "torch_eager", quality=0.96, p50=0.003,
                               speedup=0.6), "known"))
        for s in (0.25, 0.5, 0.75):
            out.append(case(record(model, "pruning", f"prune_{int(s * 100)}", "torch_eager", quality=0.96 - s / 10,
                                   p50=0.002 * (1 - s / 2), speedup=1 + s / 2,
                                   proof={"sparsity": s, "flops_ratio": 1 - s})))
        out.append(case(record(model, "early_stopping", "early_stopping", "torch_eager", train=training())))
        out.append(case(record(model, "gradient_clipping", "clip_1", "torch_eager",
                               train=training(stop_early=False))))
        out.append(case(record(model, "augmentation", "augment", "torch_eager", train=training(stop_early=False))))
        out.append(case(record(model, "distillation", "kd_small", "onnxruntime", quality=0.94, p50=0.0005,
                               speedup=4.0, train=training(summary={"teacher_quality": 0.96}))))
        out.append(case(record(model, "tuning", "tuned", "torch_eager", train=training(stop_early=False))))
        out.append(case(record(model, "search", "search", "onnxruntime", details={"search": search_details()})))
        out.append(case(record(model, "dataset_distillation", "distilled_10", "torch_eager",
                               train=training(stop_early=False), details={"images": "images/distilled.png"})))
        out.append(case(record(model, "chain", "prune_quant", "onnxruntime", p50=0.0008, speedup=2.5)))
    out.append({"case_id": "digits_cnn-int8-broken", "suite": "quantization", "model": "digits_cnn",
                "config": "int8", "backend": "broken", "is_reference": False, "status": "error",
                "message": "digits_cnn-int8-broken: ExportError: no", "record": None, "verdicts": []})
    out.append({"case_id": "digits_cnn-int8-cuda", "suite": "quantization", "model": "digits_cnn",
                "config": "int8", "backend": "cuda", "is_reference": False, "status": "skipped",
                "message": "no GPU", "record": None, "verdicts": []})
    return out


def search_details() -> dict[str, Any]:
    trials = [{"number": i, "values": [0.9 + i / 100, 0.002 - i / 10000], "params": {"lr": 0.001 * (i + 1)}}
              for i in range(8)]
    return {"history": trials, "pareto": trials[-3:], "chosen": trials[-1], "direction": "maximize",
            "objectives": ["quality", "latency (s)"]}


# A 2x2 RGB PNG (a red, green, blue and white pixel), as a distilled image grid would be saved.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000002000000020802000000fdd49a730000001249444154789c63f8cfc0c000c20cff"
    "8100001fee05fb0bd9688b0000000049454e44ae426082")


def write(directory: Path, data: dict[str, Any], name: str = "run-20261128-190000.json") -> Path:
    """Write the record (and the distilled image it points to) under ``directory``."""
    (directory / "images").mkdir(parents=True, exist_ok=True)
    (directory / "images" / "distilled.png").write_bytes(PNG)
    path = directory / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path
