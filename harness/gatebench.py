"""A benchmark of the gate itself: false alarms and detection on real zoo cases, beside pytest-benchmark's checks.

For each case it prepares the optimized runner, the fp32 reference and the speed probe once, accepts a baseline
from ``--calibration`` no-change measurements (median and spread, as ``python -m harness.accept`` does), then runs
``K`` trials of each condition, in shuffled order: no change; the optimized path made 10 % and 20 % slower; both
paths made 10 % and 20 % slower; and the whole machine 20 % slower (probe included), which must not fail. A slowdown
is injected by busy-waiting after each call for the stated share of the call's own time. Each trial is judged by
optbench's speed checks (with their second look) and by pytest-benchmark's ``--benchmark-compare-fail`` rules
``mean:5%`` and ``median:10%`` on the same candidate timings, compared with the first calibration run as
pytest-benchmark compares with one saved run::

    python -m harness.gatebench                       # the default: 5 cases, K=10 (a few minutes on 2 cores)
    python -m harness.gatebench --trials 50 --cases digits_cnn-ort_static_int8_minmax-onnxruntime,...
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness import env
from harness.cache import Cache, default_cache_dir
from harness.case import Case, generate_cases
from harness.errors import ConfigError
from harness.gate import LATENCY, SPEEDUP, Basis, Scope, Status, Tolerances, with_second_look
from harness.measure import CaseRun, ReferenceRunners, Settings, reference_outputs
from harness.metrics.latency import (
    block_size,
    paired_ratios,
    relative_spread,
    sample_interleaved,
    sample_latency,
)
from harness.probe import make_probe
from harness.techniques.base import Context
from model_zoo import MODELS
from model_zoo.training import load_reference

DEFAULT_CASES = (
    "cancer_mlp-torch_dynamic_int8-torch_eager",
    "cancer_mlp-ort_static_int8_minmax-onnxruntime",
    "digits_cnn-torch_dynamic_int8-torch_eager",
    "digits_cnn-ort_static_int8_minmax-onnxruntime",
    "digits_cnn-bf16-torch_eager",
)
# name -> (slowdown of the optimized path, of the fp32 reference, of the probe: the whole machine)
CONDITIONS: dict[str, tuple[float, float, float]] = {
    "no change": (1.0, 1.0, 1.0),
    "opt +10%": (1.1, 1.0, 1.0),
    "opt +20%": (1.2, 1.0, 1.0),
    "both +10%": (1.1, 1.1, 1.0),
    "both +20%": (1.2, 1.2, 1.0),
    "machine +20%": (1.2, 1.2, 1.2),
}
RULES = ("optbench", "mean:5%", "median:10%")


def slowed(fn: Callable[[], object], factor: float) -> Callable[[], object]:
    """``fn`` made ``factor`` times as slow: after each call, busy-wait for ``factor - 1`` of its duration."""
    if factor == 1.0:
        return fn

    def call() -> object:
        start = time.perf_counter()
        out = fn()
        end = time.perf_counter()
        until = end + (end - start) * (factor - 1.0)
        while time.perf_counter() < until:
            pass
        return out

    return call


@dataclasses.dataclass
class Bench:
    """One case's three timed callables and the baseline accepted from its calibration runs."""

    case_id: str
    fns: tuple[Callable[[], object], Callable[[], object], Callable[[], object]]  # candidate, probe, reference
    block: int
    baseline: dict[str, float] = dataclasses.field(default_factory=dict)
    spread: dict[str, float] = dataclasses.field(default_factory=dict)
    pb_saved: dict[str, float] = dataclasses.field(default_factory=dict)  # pytest-benchmark's saved run

    def measure(self, condition: str, time_s: float) -> list[list[float]]:
        f_cand, f_ref, f_probe = CONDITIONS[condition]
        cand, probe, ref = self.fns
        return sample_interleaved((slowed(cand, f_cand), slowed(probe, f_probe), slowed(ref, f_ref)), self.block,
                                  max_time_s=time_s)


def figures(blocks: list[list[float]], block: int) -> tuple[dict[str, float], dict[str, list[float]], np.ndarray]:
    """Medians, per-round samples (speedup: ref/cand; latency.normalized: cand/probe) and per-call candidate
    times, from one interleaved measurement."""
    cand, probe, ref = (np.asarray(b) for b in blocks)
    samples = {"speedup": list(paired_ratios(ref, cand)), "latency.normalized": list(paired_ratios(cand, probe))}
    return {k: float(np.median(v)) for k, v in samples.items()}, samples, cand / block


def judge(bench: Bench, condition: str, time_s: float, tolerances: Tolerances) -> tuple[dict[str, bool], int]:
    """Whether each rule fails this trial, and how many re-measures optbench's second look took."""
    from pytest_benchmark.utils import parse_compare_fail

    blocks = bench.measure(condition, time_s)
    per_call = figures(blocks, bench.block)[2]

    def optbench() -> tuple[bool, bool]:
        """(undecided: every failure asks for a second look, failed)."""
        medians, samples, _ = figures(blocks, bench.block)
        basis = Basis(bench.baseline, tolerances, frozenset(Scope), spread=bench.spread, samples=samples)
        verdicts = [chk.judge(bench.case_id, medians, basis) for chk in (SPEEDUP, LATENCY)]
        failed = [v for v in verdicts if v is not None and v.status is Status.FAIL]
        return bool(failed) and all(v.retry for v in failed), bool(failed)

    def remeasure() -> None:
        more = bench.measure(condition, time_s)
        for i in range(3):
            blocks[i] = blocks[i] + more[i]

    (_, failed), retries = with_second_look(optbench, lambda r: r[0], remeasure)
    current = {"mean": float(per_call.mean()), "median": float(np.median(per_call))}
    out = {"optbench": failed}
    for rule in RULES[1:]:
        out[rule] = parse_compare_fail(rule).fails(current, bench.pb_saved) is not None
    return out, retries


def prepare(case_ids: list[str], threads: int, cache: Cache, calibration: int, time_s: float) -> list[Bench]:
    import harness.backends
    import harness.techniques  # noqa: F401 - registers techniques and backends

    by_id = {c.id: c for c in generate_cases("quantization", None, None, None)}
    unknown = [c for c in case_ids if c not in by_id]
    if unknown:
        raise SystemExit(f"unknown case(s) {', '.join(unknown)}; expected quantization case ids such as "
                         f"{', '.join(DEFAULT_CASES[:2])}")
    torch.set_num_threads(threads)
    settings, ctx = Settings(threads), Context(cache, threads)
    refs = ReferenceRunners(settings)
    benches = []
    for case_id in case_ids:
        case: Case = by_id[case_id]
        ref = load_reference(MODELS.get(case.model), cache)
        measuring = CaseRun(case, ref, settings, ctx)  # kept open for the whole benchmark
        measuring.prepare(reference_outputs(ref))
        measuring.time(lambda fn: sample_latency(fn, warmup=2, min_rounds=5, max_time_s=0.05))
        ref_one = refs.get(ref, case.backend, ctx).bind(ref.spec.example_inputs(1))
        fns = (measuring.one, make_probe(), ref_one)
        bench = Bench(case_id, fns, block_size(fns, 0.002))
        calibrate(bench, calibration, time_s)
        benches.append(bench)
    return benches


def calibrate(bench: Bench, calibration: int, time_s: float) -> None:
    """Accept ``bench``'s baseline from ``calibration`` no-change measurements: median and spread of each speed
    figure (as ``python -m harness.accept`` does), and pytest-benchmark's saved run from the first."""
    runs = [figures(bench.measure("no change", time_s), bench.block) for _ in range(calibration)]
    for name in ("speedup", "latency.normalized"):
        values = [r[0][name] for r in runs]
        bench.baseline[name] = float(np.median(values))
        bench.spread[name] = relative_spread(values)
    first = runs[0][2]
    bench.pb_saved = {"mean": float(first.mean()), "median": float(np.median(first))}


def run(benches: list[Bench], trials: int, time_s: float, tolerances: Tolerances, seed: int) -> dict[str, Any]:
    """Every (trial, condition) in shuffled order; returns per case, condition and rule the count of failures."""
    plan = [(k, cond) for k in range(trials) for cond in CONDITIONS]
    random.Random(seed).shuffle(plan)
    fails = {b.case_id: {c: dict.fromkeys(RULES, 0) for c in CONDITIONS} for b in benches}
    runs_failed = {c: dict.fromkeys(RULES, 0) for c in CONDITIONS}  # a "run": every case once, per trial
    per_trial: dict[tuple[int, str], dict[str, bool]] = {}
    retries = 0
    for k, cond in plan:
        any_fail = dict.fromkeys(RULES, False)
        for bench in benches:
            result, n = judge(bench, cond, time_s, tolerances)
            retries += n
            for rule, failed in result.items():
                fails[bench.case_id][cond][rule] += failed
                any_fail[rule] |= failed
        per_trial[(k, cond)] = any_fail
        for rule in RULES:
            runs_failed[cond][rule] += any_fail[rule]
    return {"fails": fails, "runs_failed": runs_failed, "retries": retries}


def _pct(value: float | None) -> str:
    return "off" if value is None else f"{value:.0%}"


def render(benches: list[Bench], result: dict[str, Any], trials: int, tolerances: Tolerances,
           seconds: float) -> list[str]:
    e = env.capture(torch.get_num_threads())
    lines = [f"gatebench: K={trials} trials per condition, {len(benches)} cases, {env.describe(e)}; "
             f"took {seconds:.0f} s ({result['retries']} second looks); minimum effects: speedup "
             f"{tolerances.speedup_rel:.0%}, latency {_pct(tolerances.latency_rel)}",
             "",
             "runs failed (a run = every case once), per condition:",
             f"  {'condition':<14}" + "".join(f"{r:>14}" for r in RULES)]
    for cond in CONDITIONS:
        row = result["runs_failed"][cond]
        lines.append(f"  {cond:<14}" + "".join(f"{row[r] / trials:>14.0%}" for r in RULES))
    lines += ["", "per case: share of trials failed (no change / machine +20%: false alarms; others: detection),",
              "  optbench | pytest-benchmark mean:5% | median:10%; thr = optbench's speedup / latency thresholds",
              "  (! = too noisy to detect a 20 % change: reported as such by the gate)"]
    header = f"  {'case':<48}{'thr':>12}" + "".join(f"{c:>20}" for c in CONDITIONS)
    lines.append(header)
    for b in benches:
        thr = "/".join(f"{t:.0%}" + ("!" if t >= tolerances.detect_rel else "")
                       for n, m in (("speedup", tolerances.speedup_rel),
                                    ("latency.normalized", tolerances.latency_rel or 0.0))
                       for t in (tolerances.threshold(m, b.spread.get(n))[0],))
        cells = []
        for cond in CONDITIONS:
            f = result["fails"][b.case_id][cond]
            cells.append("|".join(f"{f[r] / trials:.0%}" for r in RULES))
        lines.append(f"  {b.case_id:<48}{thr:>12}" + "".join(f"{c:>20}" for c in cells))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.gatebench", description=__doc__.splitlines()[0])
    parser.add_argument("--trials", "-K", type=int, default=10, help="trials per condition (default 10)")
    parser.add_argument("--cases", default=None,
                        help="comma-separated quantization case ids (default: five cases; four with --work)")
    parser.add_argument("--work", action="store_true",
                        help="bench the work gate (instructions counted under Valgrind) beside the wall-clock gate "
                             "and pytest-benchmark, under added work and realistic regressions "
                             "(harness.gatebench_work)")
    parser.add_argument("--calibration", type=int, default=3, help="no-change runs the baseline is accepted from")
    parser.add_argument("--time", type=float, default=0.3, help="seconds of interleaved timing per measurement")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--tolerance", action="append", default=[], metavar="NAME=VALUE",
                        help="as pytest's --optbench-tolerance, e.g. speedup_rel=0.1 to bench a tighter floor")
    args = parser.parse_args(argv)
    if args.trials < 1 or args.calibration < 2:
        parser.error("--trials must be >= 1 and --calibration >= 2 (a spread needs two runs)")
    try:
        tolerances = Tolerances.parse(args.tolerance)
    except ConfigError as exc:
        parser.error(str(exc))
    if args.work:
        from harness import gatebench_work  # lazy: it imports this module

        cache = Cache(args.cache_dir or default_cache_dir())
        work_cases = gatebench_work.prepare((args.cases or ",".join(gatebench_work.DEFAULT_CASES)).split(","),
                                            cache, args.time, args.calibration)
        result = gatebench_work.run(work_cases, args.trials, args.calibration, args.time, tolerances, cache)
        for line in gatebench_work.render(work_cases, result, args.trials, args.calibration, tolerances):
            print(line)
        return 0
    start = time.perf_counter()
    benches = prepare((args.cases or ",".join(DEFAULT_CASES)).split(","), args.threads,
                      Cache(args.cache_dir or default_cache_dir()), args.calibration, args.time)
    result = run(benches, args.trials, args.time, tolerances, args.seed)
    for line in render(benches, result, args.trials, tolerances, time.perf_counter() - start):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
