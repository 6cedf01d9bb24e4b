"""The work gate benchmarked beside the wall-clock gate and pytest-benchmark (``python -m harness.gatebench --work``).

Conditions add real work to the optimized path, the same way in the counted and the timed call: an extra call
every 20th, 10th or 5th call (+5 %, +10 %, +20 %), and two realistic regressions — an ONNX Runtime session with
its graph optimisations off, and an int8 quantizer that leaves one MatMul in fp32 (the largest MatMul / Gemm by
weight, excluded by name: what a slipped node filter does). Each trial counts every (case, condition) in fresh
Valgrind workers, uncached, and judges the counts with the work gate against a baseline accepted from
``--calibration`` separate counting runs; the timed side judges the same conditions with optbench's speed checks
(second look included) and pytest-benchmark's ``mean:5%`` / ``median:10%`` rules, as ``python -m harness.gatebench``
does.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
import torch

from harness import env, gatebench
from harness.artifact import Artifact, ArtifactKind, Precision
from harness.backends._ort_common import OrtRunner, onnx_file
from harness.backends.base import BACKENDS
from harness.cache import Cache, make_key
from harness.case import Case, generate_cases
from harness.count import count_all
from harness.gate import WORK, Status, Tolerances
from harness.measure import CaseRun, ReferenceRunners, Settings, reference_outputs
from harness.metrics.latency import block_size, sample_latency
from harness.onnx_export import validate_onnx
from harness.probe import make_probe
from harness.techniques._ort_quant import optimized_op_counts, weighted_nodes
from harness.techniques.base import Context
from harness.techniques.quantization import OrtDynamicInt8Config, OrtStaticInt8Config, write_int8
from harness.work import baseline as work_baseline
from harness.work.counter import Counter, Job
from harness.work.figures import WorkFigures
from harness.work.jobs import job_for
from model_zoo import MODELS
from model_zoo.reference import Reference
from model_zoo.training import load_reference
from model_zoo.traits import count_macs

DEFAULT_CASES = (
    "cancer_mlp-torch_dynamic_int8-torch_eager",
    "cancer_mlp-ort_static_int8_minmax-onnxruntime",
    "digits_cnn-torch_dynamic_int8-torch_eager",
    "digits_cnn-ort_static_int8_minmax-onnxruntime",
)
CALLS = 100  # counted calls a window: every 20th / 10th / 5th call doubled adds exactly 5 / 10 / 20 %
# A model whose 100-call window would hold more multiply-accumulates than this (MiniLM: 0.7 G a call) is counted in
# the worker's own window (one call for MiniLM) under the realistic conditions only: adding exactly 5 % needs 20
# calls, ~40 s each of emulated fp32 under Valgrind.
WINDOW_MACS = 5e9
EXTRA = {"work +5%": 20, "work +10%": 10, "work +20%": 5}
REALISTIC = ("ORT graph opts off", "MatMul left fp32")
CONDITIONS = ("no change", *EXTRA, *REALISTIC)


def every_kth_twice(fn: Callable[[], object], k: int) -> Callable[[], object]:
    """``fn`` with every ``k``-th call made twice: 1/k more work, as the counted worker adds it."""
    calls = [0]

    def call() -> object:
        calls[0] += 1
        out = fn()
        if calls[0] % k == 0:
            fn()
        return out

    return call


def largest_matmul(model: onnx.ModelProto) -> list[str]:
    """The name of the MatMul / Gemm node with the largest weight initializer (the first of equals in graph order),
    as a one-item list for ORT's ``nodes_to_exclude``; empty when the graph has none."""
    best: tuple[int, str] | None = None
    for node, weight in weighted_nodes(model, ("MatMul", "Gemm")):
        size = int(np.prod(weight.dims))
        if best is None or size > best[0]:
            best = (size, node.name)
    return [best[1]] if best is not None else []


def _one_matmul_fp32(case: Case, ref: Reference, ctx: Context, artifact: Artifact) -> Artifact | None:
    """The case's ORT int8 file quantized again with its largest MatMul / Gemm left in fp32 (cached); None for a
    case that is no ORT int8 quantization or whose graph has no MatMul / Gemm left to exclude."""
    if not isinstance(case.config, OrtDynamicInt8Config | OrtStaticInt8Config):
        return None
    key = make_key(artifact.key, "largest MatMul left fp32")
    path = ctx.cache.get_or_create(ctx.cache.path("gatebench", key, ".onnx"),
                                   lambda tmp: write_int8(ref, case.config, ctx, tmp, exclude=largest_matmul),
                                   validate_onnx)
    if optimized_op_counts(path, 1) == optimized_op_counts(artifact.onnx_path, 1):  # nothing was left out
        return None
    return Artifact(ArtifactKind.ONNX_MODEL, Precision.INT8, key=key, onnx_path=path)


@dataclasses.dataclass
class WorkCase:
    case: Case
    jobs: dict[str, Job]  # condition -> job (conditions that apply to this case)
    timed: dict[str, Callable[[], object]]  # condition -> the candidate call timed under it
    bench: gatebench.Bench
    entry: work_baseline.WorkEntry | None = None


def prepare(case_ids: list[str], cache: Cache, calibration_time_s: float, calibration: int) -> list[WorkCase]:
    by_id = {c.id: c for c in generate_cases("quantization", None, None, None)}
    unknown = [c for c in case_ids if c not in by_id]
    if unknown:
        raise SystemExit(f"unknown case(s) {', '.join(unknown)}; expected quantization case ids such as "
                         f"{', '.join(DEFAULT_CASES[:2])}")
    torch.set_num_threads(1)
    settings, ctx = Settings(1), Context(cache, 1)
    refs = ReferenceRunners(settings)
    out = []
    for case_id in case_ids:
        case = by_id[case_id]
        ref = load_reference(MODELS.get(case.model), cache)
        measuring = CaseRun(case, ref, settings, ctx)  # kept open for the whole benchmark
        measuring.prepare(reference_outputs(ref))
        measuring.time(lambda fn: sample_latency(fn, warmup=2, min_rounds=5, max_time_s=0.05))
        base = job_for(case.id, case.backend, measuring.artifact, ref.spec, cache)
        calls = CALLS if count_macs(ref.module, ref.spec.example_inputs(1)) * CALLS <= WINDOW_MACS else None
        base = dataclasses.replace(base, calls=calls)
        extra = EXTRA if calls else {}
        jobs = {"no change": base, **{name: dataclasses.replace(base, extra_every=k) for name, k in extra.items()}}
        timed = {"no change": measuring.one, **{name: every_kth_twice(measuring.one, k) for name, k in extra.items()}}
        example = ref.spec.example_inputs(1)
        if base.kind == "onnx":
            jobs["ORT graph opts off"] = dataclasses.replace(base, graph_optimization="disabled")
            assert measuring.artifact is not None
            timed["ORT graph opts off"] = _session(measuring.artifact, case, ref.spec, cache,
                                                   optimized=False).bind(example)
        assert measuring.artifact is not None
        variant = _one_matmul_fp32(case, ref, ctx, measuring.artifact)
        if variant is not None:
            jobs["MatMul left fp32"] = dataclasses.replace(
                job_for(f"{case.id}:matmul_fp32", case.backend, variant, ref.spec, cache), calls=calls)
            timed["MatMul left fp32"] = _session(variant, case, ref.spec, cache, optimized=True).bind(example)
        ref_one = refs.get(ref, case.backend, ctx).bind(example)
        fns = (measuring.one, make_probe(), ref_one)
        bench = gatebench.Bench(case_id, fns, block_size(fns, 0.002))
        gatebench.calibrate(bench, calibration, calibration_time_s)
        out.append(WorkCase(case, jobs, timed, bench))
    return out


def _session(artifact: Artifact, case: Case, spec: Any, cache: Cache, optimized: bool) -> OrtRunner:
    """An ORT session of ``artifact``'s file, one thread, with ORT's graph optimisations or with none (fusions,
    constant folding off)."""
    import onnxruntime as ort

    from harness.backends._ort_common import session_options

    backend = BACKENDS.get(case.backend)(Context(cache, 1))
    path = onnx_file(artifact, spec.example_inputs(2), spec.input_names, backend)
    opts = session_options(1)
    if not optimized:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return OrtRunner(session, spec.input_names, backend=case.backend, device="cpu", threads=1, size_bytes=0)


def count_trial(cases: list[WorkCase], cache: Cache, conditions: tuple[str, ...]) -> dict[tuple[str, str], WorkFigures]:
    """One trial: every (case, condition) counted in fresh workers, uncached, the ONNX Runtime and the torch worker
    side by side."""
    jobs = {f"{wc.case.id}|{cond}": dataclasses.replace(job, name=f"{wc.case.id}|{cond}")
            for wc in cases for cond, job in wc.jobs.items() if cond in conditions}
    with Counter(cache, use_cache=False) as counter:
        counted = count_all(jobs, counter)
    return {tuple(name.split("|", 1)): fig for name, fig in counted.items()}  # type: ignore[misc]


def run(cases: list[WorkCase], trials: int, calibration: int, time_s: float, tolerances: Tolerances,
        cache: Cache) -> dict[str, Any]:
    """Counting first (immune to load, both cores busy), then the timed trials on a machine left quiet."""
    started = time.perf_counter()
    runs = [{cid: f for (cid, _), f in count_trial(cases, cache, ("no change",)).items()} for _ in range(calibration)]
    entries = work_baseline.entries_from_runs(runs)
    for wc in cases:
        wc.entry = entries[wc.case.id]
    rules = ("work", *gatebench.RULES)
    fails = {wc.case.id: {c: dict.fromkeys(rules, 0) for c in wc.jobs} for wc in cases}
    changes: dict[tuple[str, str], list[float]] = {}
    for _ in range(trials):
        counted = count_trial(cases, cache, CONDITIONS)
        for wc in cases:
            assert wc.entry is not None
            for cond in wc.jobs:
                fig = counted[(wc.case.id, cond)]
                verdict = WORK.judge(wc.case.id, fig.instructions, wc.entry.instructions, wc.entry.spread,
                                     tolerances)
                fails[wc.case.id][cond]["work"] += verdict.status is Status.FAIL
                changes.setdefault((wc.case.id, cond), []).append(fig.instructions / wc.entry.instructions - 1)
    counting_s = time.perf_counter() - started
    plan = [(k, wc, cond) for k in range(trials) for wc in cases for cond in wc.jobs]
    random.Random(0).shuffle(plan)
    for _, wc, cond in plan:
        timed = dataclasses.replace(wc.bench, fns=(wc.timed[cond], *wc.bench.fns[1:]))
        result, _ = gatebench.judge(timed, "no change", time_s, tolerances)
        for rule, failed in result.items():
            fails[wc.case.id][cond][rule] += failed
    return {"fails": fails, "changes": changes, "entries": entries, "counting_s": counting_s,
            "seconds": time.perf_counter() - started}


def render(cases: list[WorkCase], result: dict[str, Any], trials: int, calibration: int,
           tolerances: Tolerances) -> list[str]:
    e = env.capture(1)
    lines = [f"gatebench --work: K={trials} trials per condition (each in fresh Valgrind workers), work baseline "
             f"from {calibration} counting runs, {len(cases)} cases, {env.describe(e)}; took "
             f"{result['seconds']:.0f} s ({result['counting_s']:.0f} s counting); work gate minimum effect "
             f"{tolerances.work_rel:.0%}, speedup "
             f"{tolerances.speedup_rel:.0%}",
             "",
             "share of trials failed: work gate | optbench wall-clock | pytest-benchmark mean:5% | median:10%",
             "(no change: false alarms; the others: detection); Δwork = median counted change"]
    lines.append(f"  {'case':<48}{'thr':>7}" + "".join(f"  {c:>26}" for c in CONDITIONS))
    for wc in cases:
        assert wc.entry is not None
        thr = WORK.judge(wc.case.id, wc.entry.instructions, wc.entry.instructions, wc.entry.spread,
                         tolerances).threshold or 0.0
        cells = []
        for cond in CONDITIONS:
            f = result["fails"][wc.case.id].get(cond)
            if f is None:
                cells.append("n/a")
                continue
            delta = sorted(result["changes"][(wc.case.id, cond)])[trials // 2]
            cells.append("|".join(f"{f[r] / trials:.0%}" for r in f) + f" Δ{delta:+.1%}")
        lines.append(f"  {wc.case.id:<48}{thr:>7.1%}" + "".join(f"  {c:>26}" for c in cells))
    return lines
