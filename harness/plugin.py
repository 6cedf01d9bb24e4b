"""The optbench pytest plugin: the ``--optbench-*`` options and the hooks that drive a session. Nothing else."""

from __future__ import annotations

import argparse
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from harness.cache import default_cache_dir
from harness.context import StudyStorage
from harness.env import cpus_available
from harness.errors import BaselineError, ConfigError, RegistryError
from harness.gate import Tolerances

_TOL = Tolerances()  # the defaults, as the help text shows them

SESSION_KEY = pytest.StashKey["Any"]()
CASE_ARG = "optbench_case"
SUITE_MARK = "optbench_suite"
pytest_plugins = ["harness.analysis.plugin"]  # the analysis suites: --optbench-price, their fixture, cost last


def _names(value: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in value.split(",") if n.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of names, got {value!r}")
    return names


def _positive_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value!r}")
    return n


def _non_negative_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {value!r}")
    return n


def _accept_pattern(value: str) -> str:
    if not value.strip() or any(c.isspace() for c in value):
        raise argparse.ArgumentTypeError(f"expected CASE:CHECK (e.g. cancer_mlp-kd_t4_a0.9-*:beats_scratch) or a "
                                         f"contract name, got {value!r}")
    return value


def _positive_float(value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        x = -1.0
    if not x > 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {value!r}")
    return x


def _report_path(value: str) -> Path | str:
    if not value.strip():
        raise argparse.ArgumentTypeError("expected a file path for the HTML report, or off")
    return "off" if value == "off" else Path(value)


def _history_url(value: str) -> str:
    if value != "off" and "://" not in value:
        raise argparse.ArgumentTypeError(
            f"expected a database URL such as sqlite:///results/history.sqlite or postgresql+psycopg://user@host/db, "
            f"or off; got {value!r}")
    return value


# One intra-op thread by default: on a shared 2-core runner, two threads made the same speedup move by a median
# of 4.5 % (worst 64 %) between back-to-back runs, one thread by 1.3 % (worst 22 %) — a gate needs the latter.
DEFAULT_THREADS = 1
# Run records kept in the results dir: enough for `python -m harness.accept` over several runs and a look back; the
# history keeps every run's figures for the trends.
DEFAULT_KEEP_RUNS = 10


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("optbench", "optbench: model-optimization benchmarks and regression gate")
    add = group.addoption
    add("--optbench-models", metavar="NAMES", type=_names, default=None,
        help="comma-separated zoo models to run (default: all registered)")
    add("--optbench-configs", metavar="NAMES", type=_names, default=None,
        help="comma-separated technique presets to run (default: all of each suite; fp32 always runs)")
    add("--optbench-backends", metavar="NAMES", type=_names, default=None,
        help="comma-separated backends to run (default: all registered)")
    add("--optbench-update-baselines", action="store_true", default=False,
        help="accept this run: rewrite results/baselines/<suite>.json with its figures; a case with an unmet "
             "contract is refused unless --optbench-accept-known names it (default: off)")
    add("--optbench-accept-known", metavar="CASE:CHECK", action="append", default=[], type=_accept_pattern,
        help="with --optbench-update-baselines, accept this unmet contract as a finding (reported as known every "
             "run), repeatable; CASE may hold * wildcards, a bare CHECK matches it in every case (default: none)")
    add("--optbench-seed-offset", metavar="N", type=_non_negative_int, default=0,
        help="add N to every training seed (references and training arms): other weights from the same recipes, "
             "as another machine's numerics give, to check that verdicts hold there (default: 0)")
    add("--optbench-count", action="store_true", default=False,
        help="also count each case's instructions per inference under Valgrind (torch eager and ONNX Runtime) and "
             "gate them against results/baselines/work/instructions.json, on any machine class; without Valgrind the "
             "header says `work: not counted: why` and the run goes on (default: off; `python -m harness.count` is the "
             "same gate as a command of its own)")
    add("--optbench-require-baseline-class", action="store_true", default=False,
        help="fail a case whose baseline holds no entry of this machine class (default: off; speed is then not "
             "gated and the header says so)")
    add("--optbench-allow-new", action="store_true", default=False,
        help="let cases with no baseline pass, reported as new (default: off, they fail)")
    add("--optbench-baseline-dir", metavar="DIR", type=Path, default=None,
        help="where baselines live (default: <rootdir>/results/baselines)")
    add("--optbench-results-dir", metavar="DIR", type=Path, default=None,
        help="where run records are written (default: <rootdir>/results)")
    add("--optbench-cache-dir", metavar="DIR", type=Path, default=None,
        help=f"trained weights, exports and quantized models (default: {default_cache_dir()}; "
             "$OPTBENCH_CACHE_DIR overrides)")
    add("--optbench-threads", metavar="N", type=_positive_int, default=None,
        help=f"intra-op threads for every backend (default: {DEFAULT_THREADS}, the most repeatable; this machine has "
             f"{cpus_available()} CPUs available). Speed is gated only against baselines taken with the same count")
    add("--optbench-tolerance", metavar="NAME=VALUE", action="append", default=[],
        help=f"override a gate tolerance, repeatable: quality_abs ({_TOL.quality_abs:g}), size_rel "
             f"({_TOL.size_rel:g}), speedup_rel ({_TOL.speedup_rel:.2f}) and latency_rel ({_TOL.latency_rel:.2f}; "
             f"off turns it off): minimum effects of the calibrated speed thresholds, spread_k ({_TOL.spread_k:g}), "
             f"uncalibrated_rel ({_TOL.uncalibrated_rel:g}), detect_rel ({_TOL.detect_rel:g}), weights_alpha "
             f"({_TOL.weights_alpha:g}), work_rel ({_TOL.work_rel:g}, the work gate's minimum effect); see "
             "docs/gate.md")
    add("--optbench-throughput-time", metavar="SECONDS", type=_positive_float, default=0.3,
        help="time spent timing the throughput batch per case (default: 0.3)")
    add("--optbench-report", metavar="PATH|off", type=_report_path, default=None,
        help="where to write the HTML report, or off (default: <results dir>/report.html)")
    add("--optbench-history", metavar="URL", type=_history_url, default=None,
        help="SQLAlchemy URL of the run history each run is appended to, e.g. postgresql+psycopg://user@host/db "
             "for a shared one, or off (default: sqlite:///<results dir>/history.sqlite)")
    add("--optbench-keep-runs", metavar="N", type=_non_negative_int, default=DEFAULT_KEEP_RUNS,
        help="after writing this run's record, delete all but the newest N run records (run-*.json and their "
             f".samples.npz) in the results dir; 0 keeps all (default: {DEFAULT_KEEP_RUNS})")
    add("--optbench-history-keep-runs", metavar="N", type=_non_negative_int, default=0,
        help="after appending this run to the history, delete all but its newest N runs; 0 keeps all (default: 0; "
             "`python -m harness.history prune --keep-runs N` does it as a command)")
    # Optuna studies (harness.search): in memory unless a storage is named, shared by every worker that names it.
    add("--optbench-optuna-storage", metavar="URL", default=None,
        help="Optuna RDB storage for studies, e.g. sqlite:///studies.db or postgresql+psycopg://user@host/db; "
             "workers naming the same URL and study share trials (default: in memory, results cached)")
    add("--optbench-optuna-study", metavar="NAME", default=None,
        help="prefix of the study names in that storage (default: optbench)")


def _validate(names: tuple[str, ...] | None, registry: Any, option: str) -> None:
    for name in names or ():
        if name not in registry:
            raise pytest.UsageError(f"{option}: unknown name {name!r}; expected one of: {', '.join(registry.names())}")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{SUITE_MARK}(name): run the test once per case of the named optbench suite")
    config.addinivalue_line("markers", "large: a case of a large model (tag `large`): run with `pytest -m large`")
    # A case that fails before it is timed (export error, NaN outputs) leaves the benchmark fixture unused; the
    # failure already says why, and pytest-benchmark's warning about it must not add an error under `-W error`.
    config.addinivalue_line(
        "filterwarnings", "ignore:Benchmark fixture was not used at all:pytest_benchmark.logger.PytestBenchmarkWarning"
    )
    # Imported here, not at module import: `pytest --help` must not pay for torch.
    import harness.backends
    import harness.techniques  # noqa: F401 - registers techniques and presets
    from harness.backends.base import BACKENDS
    from harness.session import OptbenchSession, Options
    from harness.techniques.base import PRESETS
    from model_zoo import MODELS, load_entry_point_models

    try:
        load_entry_point_models()
        tolerances = Tolerances.parse(config.getoption("optbench_tolerance"))
    except (RegistryError, ConfigError) as exc:
        raise pytest.UsageError(f"optbench: {exc}") from None
    models, configs, backends = (config.getoption(f"optbench_{k}") for k in ("models", "configs", "backends"))
    _validate(models, MODELS, "--optbench-models")
    _validate(backends, BACKENDS, "--optbench-backends")
    all_presets = {name for reg in PRESETS.values() for name in reg.names()} | {"fp32"}
    for name in configs or ():
        if name not in all_presets:
            raise pytest.UsageError(
                f"--optbench-configs: unknown name {name!r}; expected one of: {', '.join(sorted(all_presets))}"
            )
    threads = config.getoption("optbench_threads") or DEFAULT_THREADS
    if threads > cpus_available():
        raise pytest.UsageError(f"--optbench-threads: {threads} is more than the {cpus_available()} CPUs this process "
                                "may use; threads beyond the cores only time contention")
    if config.getoption("optbench_accept_known") and not config.getoption("optbench_update_baselines"):
        raise pytest.UsageError("--optbench-accept-known accepts findings into a baseline: it needs "
                                "--optbench-update-baselines")
    root = Path(config.rootpath)
    options = Options(
        models=models,
        configs=configs,
        backends=backends,
        update_baselines=config.getoption("optbench_update_baselines"),
        allow_new=config.getoption("optbench_allow_new"),
        baseline_dir=config.getoption("optbench_baseline_dir") or root / "results" / "baselines",
        results_dir=config.getoption("optbench_results_dir") or root / "results",
        cache_dir=config.getoption("optbench_cache_dir") or default_cache_dir(),
        threads=threads,
        tolerances=tolerances,
        throughput_time_s=config.getoption("optbench_throughput_time"),
        require_baseline_class=config.getoption("optbench_require_baseline_class"),
        accept_known=tuple(config.getoption("optbench_accept_known")),
        seed_offset=config.getoption("optbench_seed_offset"),
        count=config.getoption("optbench_count"),
        keep_runs=config.getoption("optbench_keep_runs"),
        large=_selects_large(config),
        study_storage=_study_storage(config),
    )
    config.stash[SESSION_KEY] = OptbenchSession(options)


def _study_storage(config: pytest.Config) -> StudyStorage:
    """Where every study of this run lives (``--optbench-optuna-storage``, checked and reachable; else in memory);
    a bad or unreachable URL is a usage error."""
    url, study = config.getoption("optbench_optuna_storage"), config.getoption("optbench_optuna_study")
    if url is None and study is None:
        return StudyStorage()
    if url is None:
        raise pytest.UsageError("--optbench-optuna-study names studies in a storage: give --optbench-optuna-storage "
                                "URL too (without one, studies live in memory and their results in the cache)")
    from harness.search import storage

    try:
        chosen = storage.storage_for(url, study)
        storage.open_storage(url)
    except ConfigError as exc:
        raise pytest.UsageError(f"--optbench-optuna-storage: {exc}") from None
    return chosen


def _selects_large(config: pytest.Config) -> bool:
    """Whether the run's ``-m`` expression selects the ``large`` mark (``-m large``, ``-m "large or not large"``):
    only then are the large models' and large presets' cases made at all (building them costs time, even deselected)."""
    expression = config.getoption("markexpr", "") or ""
    if not expression:
        return False
    from _pytest.mark.expression import Expression  # pytest's own parser of -m, so the answer is pytest's

    try:
        return bool(Expression.compile(expression).evaluate(lambda name, **_: name == "large"))
    except Exception:  # an expression pytest itself refuses is reported by pytest
        return False


def _session(config: pytest.Config) -> Any:
    return config.stash[SESSION_KEY]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if CASE_ARG not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker(SUITE_MARK)
    if marker is None or not marker.args:
        raise pytest.UsageError(
            f"{metafunc.definition.nodeid}: a test taking `{CASE_ARG}` needs @pytest.mark.{SUITE_MARK}(name)"
        )
    cases = _session(metafunc.config).cases(marker.args[0])
    params = [
        pytest.param(c, id=c.id, marks=([pytest.mark.skip(reason=c.skip_reason)] if c.skip_reason else [])
                     + ([pytest.mark.large] if c.large else []))
        for c in cases
    ]
    metafunc.parametrize(CASE_ARG, params)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # A suite with no case is parametrized with an empty list, which pytest turns into one placeholder item: it is
    # deselected, so such a suite runs nothing and the header says why.
    empty = [item for item in items if _is_placeholder(item)]
    if empty:
        items[:] = [item for item in items if not _is_placeholder(item)]
        config.hook.pytest_deselected(items=empty)
    sess = _session(config)
    try:
        sess.load_baselines({case.suite for item in items if (case := _case(item)) is not None})
    except BaselineError as exc:
        raise pytest.UsageError(str(exc)) from None
    sess.find_stale()


def pytest_report_collectionfinish(config: pytest.Config) -> list[str]:
    sess = config.stash.get(SESSION_KEY, None)
    return [f"optbench: {line}" for line in sess.header_lines()] if sess is not None else []


def _is_placeholder(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    return callspec is not None and CASE_ARG in callspec.params and _case(item) is None


def _case(item: pytest.Item) -> Any:
    from harness.case import Case

    callspec = getattr(item, "callspec", None)
    case = callspec.params.get(CASE_ARG) if callspec is not None else None
    return case if isinstance(case, Case) else None


@pytest.fixture
def optbench(request: pytest.FixtureRequest) -> Any:
    """The run's OptbenchSession: ``optbench.run(optbench_case, benchmark)`` measures and judges a case."""
    return _session(request.config)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    case = _case(item)
    if case is not None and report.skipped and call.when == "setup":
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _session(item.config).skipped(case, reason.removeprefix("Skipped: "))
    return report


@pytest.hookimpl(tryfirst=True)  # before pytest-html's, which links to the report
def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    sess = config.stash.get(SESSION_KEY, None)
    if sess is None:
        return
    from harness.result import git_commit

    try:
        sess.finish(commit=git_commit(Path(config.rootpath)))
    except BaselineError as exc:  # the baseline changed under the run: say so, fail, leave the file alone
        sess.finish_error = str(exc)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if sess.result is not None:
        errors = _write_reports(config, sess)
        if errors:
            sess.finish_error = "\n".join(filter(None, [sess.finish_error, *errors]))
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _write_reports(config: pytest.Config, sess: Any) -> list[str]:
    """Append the run to the history store, then write the HTML report (with the history's trends); each step's
    failure is one line, and the run's JSON record is already written whatever happens here."""
    from harness import history
    from harness.errors import OptbenchError

    errors: list[str] = []
    results_dir = Path(sess.options.results_dir)
    url = config.getoption("optbench_history") or history.default_url(results_dir)
    rows = None
    if url != "off":
        try:
            history.append(url, sess.result, str(sess.run_file or ""))
            if keep := config.getoption("optbench_history_keep_runs"):
                history.prune(url, keep)
            rows = history.recent(url)
        except OptbenchError as exc:
            errors.append(f"{exc} (the run record {sess.run_file} is written)")
    target = config.getoption("optbench_report")
    if target != "off":
        from harness.report import html

        path = Path(target) if target else results_dir / "report.html"
        try:
            sess.report_file = html.write([sess.result], path, rows)
        except (OSError, OptbenchError) as exc:
            errors.append(f"cannot write the HTML report {path}: {exc}")
    return errors


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    sess = config.stash.get(SESSION_KEY, None)
    if sess is None or not sess.outcomes:
        return
    from harness.report import terminal

    terminalreporter.write_sep("=", "optbench")
    if sess.result is not None:
        for line in terminal.render(sess.result):
            terminalreporter.write_line(line)
    if sess.run_file is not None:
        terminalreporter.write_line(f"run record: {sess.run_file}")
    if getattr(sess, "pruned", None):
        terminalreporter.write_line(f"deleted {len(sess.pruned)} old run file(s) in {sess.options.results_dir}, "
                                    f"keeping the newest {sess.options.keep_runs} record(s) (--optbench-keep-runs)")
    if getattr(sess, "report_file", None) is not None:
        terminalreporter.write_line(f"report: {sess.report_file}")
    if sess.finish_error:
        terminalreporter.write_line(f"optbench: {sess.finish_error}", red=True)
    elif sess.options.update_baselines:
        for line in sess.baseline_changes:  # old -> new per case and figure, and what would now fail
            terminalreporter.write_line(line)
        terminalreporter.write_line(f"baselines updated in {sess.options.baseline_dir}")


@pytest.hookimpl(optionalhook=True)
def pytest_html_results_summary(prefix: list[str], summary: list[str], postfix: list[str],
                                session: pytest.Session) -> None:
    """Under pytest-html (never required): optbench's counts and a link to its own report, above the tests."""
    sess = session.config.stash.get(SESSION_KEY, None)
    if sess is None or sess.result is None:
        return
    from harness.report import pytest_html_summary

    html_path = getattr(session.config.option, "htmlpath", None)
    prefix.append(pytest_html_summary.render(sess.result, getattr(sess, "report_file", None), html_path))
