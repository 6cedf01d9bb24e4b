"""``python -m harness search``: run a tuning study or the whole tuned-vs-default-vs-random comparison outside
pytest, with a progress bar and the current best; ``--storage`` lets several workers share one study."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

import optuna
from tqdm import tqdm

from harness.cache import Cache
from harness.context import Context
from harness.errors import OptbenchError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m harness search", description=__doc__)
    sub = parser.add_subparsers(dest="mode", required=True)
    for mode, text in (("study", "run (or join) one tuning study"),
                       ("compare", "tuned vs default recipe vs random search over seeds, judged on test")):
        p = sub.add_parser(mode, help=text)
        p.add_argument("--model", required=True, help="zoo model with a declared search space")
        p.add_argument("--trials", type=int, default=8, help="trial budget per study (default: 8)")
        p.add_argument("--pruner", default="median", help="median, successive_halving or none (default: median)")
        p.add_argument("--params", default="", help="comma-separated dimensions to search (default: all)")
        p.add_argument("--cache-dir", default=None, help="optbench cache (default: the usual one)")
        if mode == "study":
            p.add_argument("--sampler", default="tpe", help="tpe or random (default: tpe)")
            p.add_argument("--seed", type=int, default=0, help="sampler and training seed (default: 0)")
            p.add_argument("--storage", default=None, help="Optuna RDB URL shared by workers (default: memory)")
            p.add_argument("--study", default=None, help="study name in that storage")
            p.add_argument("--no-progress", action="store_true", help="no progress bar")
        else:
            p.add_argument("--seeds", default="0,1,2", help="study seeds (default: 0,1,2)")
            p.add_argument("--json", default=None, help="also write the figures to this file")
    p = sub.add_parser("int8", help="accuracy-aware search over ORT dynamic int8 settings (MiniLM)")
    p.add_argument("--model", default="minilm", help="zoo model (default: minilm)")
    p.add_argument("--budget", type=float, default=0.998, help="least mean cosine to fp32 (default: 0.998)")
    p.add_argument("--threads", type=int, default=1, help="ORT intra-op threads when timing (default: 1)")
    p.add_argument("--out", default=None, help="write candidates, Pareto front and choice to this JSON file")
    p.add_argument("--cache-dir", default=None, help="optbench cache (default: the usual one)")
    return parser


def _int8(args: argparse.Namespace) -> int:
    from harness.techniques.searched_int8 import search

    cache = Cache(args.cache_dir)
    reference = _reference(args.model, cache)
    bar = tqdm(unit="config", file=sys.stderr)
    best: list[float] = []

    def progress(point: dict[str, Any]) -> None:
        if point["cosine_low"] >= args.budget:
            best.append(point["speedup"])
        bar.update(1)
        bar.set_postfix(cosine=f"{point['cosine']:.4f}", speedup=f"{point['speedup']:.2f}",
                        best_within_budget=f"{max(best):.2f}" if best else "none")

    result = search(reference, Context(cache, threads=args.threads), quality_budget=args.budget,
                    threads=args.threads, progress=progress)
    bar.close()
    print("Pareto front (speedup over ORT fp32, mean cosine to fp32 on validation, size):")
    for p in result["pareto"]:
        print(f"  {p['speedup']:.2f}x  cosine {p['cosine']:.4f}  {p['size_mib']:.1f} MiB  {p['settings']}")
    chosen = result["chosen"]
    print(f"chosen ({'within' if chosen['met'] else 'NOT within'} budget {args.budget}): {chosen['speedup']:.2f}x, "
          f"cosine {chosen['cosine']:.4f}, {chosen['size_mib']:.1f} MiB, {chosen['settings']}")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(with_machine(result, args.threads), fh, indent=1)
    return 0


def with_machine(result: dict[str, Any], threads: int) -> dict[str, Any]:
    """The search record with the machine it ran on: its speedups (and, through ``reduce_range``, its cosines) are
    that machine class's, and a record of another class must not pass for this one's."""
    from harness import env

    machine = env.capture(threads)
    return {**result, "machine": env.describe(machine), "machine_class": env.machine_class(machine)}


def _config(args: argparse.Namespace, seeds: tuple[int, ...] = (0,)) -> Any:
    from harness.techniques.tuning import TuningConfig

    params = tuple(p.strip() for p in args.params.split(",") if p.strip())
    return TuningConfig(name="tuning_cli", seeds=seeds, n_trials=args.trials,
                        pruner=args.pruner, params=params)


def _reference(model: str, cache: Cache) -> Any:
    import harness.techniques  # noqa: F401 - registers the techniques
    from model_zoo import MODELS
    from model_zoo.training import load_reference

    if model not in MODELS:
        raise OptbenchError(f"--model: unknown model {model!r}; expected one of {', '.join(MODELS.names())}")
    return load_reference(MODELS.get(model), cache)


class Progress:
    """A tqdm bar over the trial budget whose postfix shows the current best value and its trial."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.bar = tqdm(total=total, disable=not enabled, unit="trial", file=sys.stderr)

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.bar.update(1)
        try:
            self.bar.set_postfix(best=f"{study.best_value:.4f}", trial=study.best_trial.number, state=trial.state.name)
        except ValueError:  # no completed trial yet
            self.bar.set_postfix(state=trial.state.name)


def _study(args: argparse.Namespace) -> int:
    from harness.search.storage import open_storage
    from harness.techniques.tuning import run_study

    config = _config(args, (args.seed,))
    open_storage(args.storage)  # a bad or unreachable URL is said before any training
    reference = _reference(args.model, Cache(args.cache_dir))
    progress = Progress(args.trials, not args.no_progress)
    result = run_study(reference, config, args.sampler, args.seed, url=args.storage, study_name=args.study,
                       callbacks=(progress,))
    progress.bar.close()
    print(f"study {result['study']}: best {result['best_value']:.4f} at trial {result['best_trial']} "
          f"{result['best_params']}; {result['n_trials']} trials, {result['n_pruned']} pruned, "
          f"{result['wall_s']:.1f} s")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from harness.techniques.tuning import train_tuning_arms

    seeds = tuple(int(s) for s in args.seeds.split(","))
    cache = Cache(args.cache_dir)
    config = _config(args, seeds)
    outcome, studies = train_tuning_arms(_reference(args.model, cache), config, Context(cache))
    figures = {"model": args.model, "trials": args.trials, "seeds": list(seeds),
               "arms": {k: v.quality for k, v in outcome.arms.items()}, "summary": outcome.summary,
               "best_params": {s: [r["best_params"] for r in rs] for s, rs in studies.items()}}
    for name, result in outcome.arms.items():
        print(f"{name:>9}: test accuracy mean {result.spread.mean:.4f} per seed "
              f"{', '.join(f'{q:.4f}' for q in result.quality)}")
    for sampler, rs in studies.items():
        print(f"{sampler:>9} study: best val {outcome.summary[f'{sampler}.best_val']:.4f}; trials "
              f"{[r['n_trials'] for r in rs]}, pruned {[r['n_pruned'] for r in rs]}, "
              f"wall {[round(r['wall_s'], 1) for r in rs]} s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(figures, fh, indent=1)
    return 0


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        return {"study": _study, "compare": _compare, "int8": _int8}[args.mode](args)
    except OptbenchError as exc:
        print(f"python -m harness search: {exc}", file=sys.stderr)
        return 2
