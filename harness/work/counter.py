"""Counting work under Valgrind: one Callgrind worker process per kind of model (ONNX, torch), fed jobs, results cached.

The worker runs ``worker.py`` under ``valgrind --tool=callgrind`` with instrumentation off until a client request
turns it on around the counted calls, so importing torch, loading the model and creating a session cost wall time
but are never counted. The cache simulation runs with a fixed geometry (32 KiB 8-way L1s, an 8 MiB 16-way last
level, 64-byte lines): Callgrind would otherwise size it from the host, and the miss counts would follow the host.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import logging
import os
import platform
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness.backends.base import Availability
from harness.cache import Cache, atomic_write, make_key
from harness.errors import OptbenchError
from harness.work.figures import Counts, WorkFigures

logger = logging.getLogger(__name__)

HERE = Path(__file__).parent
CACHE_GEOMETRY = ("--I1=32768,8,64", "--D1=32768,8,64", "--LL=8388608,16,64")
JOB_TIMEOUT_S = 1800.0  # one job: a large model's counted call costs ~40 s under Valgrind
REPEATS = 3  # counted windows per job (one for a job whose window is one call)


class CountError(OptbenchError):
    """A job could not be counted (the worker refused the model, died, or Valgrind is missing)."""


@dataclasses.dataclass(frozen=True)
class Job:
    """One model to count: an ONNX file or a saved torch module, its batch-1 inputs, and how to call it.

    ``digest`` identifies the model's content (file bytes), so an unchanged artifact is never counted twice.
    """

    name: str
    kind: str  # "onnx" or "torch"
    path: Path
    digest: str
    inputs: Path
    inputs_digest: str
    input_names: tuple[str, ...]
    calls: int | None = None  # None: as many as make about worker.TARGET instructions a window
    extra_every: int = 0  # gatebench: every k-th call made twice
    graph_optimization: str = "all"  # gatebench: "disabled" runs ONNX Runtime without graph optimisations

    def payload(self, repeats: int) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "path": str(self.path), "inputs": str(self.inputs),
                "input_names": list(self.input_names), "calls": self.calls, "repeats": repeats,
                "extra_every": self.extra_every, "graph_optimization": self.graph_optimization}

    def cache_parts(self) -> list[Any]:
        return [self.kind, self.digest, self.inputs_digest, list(self.input_names), self.calls, self.extra_every,
                self.graph_optimization]


def availability() -> Availability:
    """Whether work can be counted here: Linux on x86-64, ``valgrind`` on PATH, a C compiler and callgrind.h."""
    if platform.system() != "Linux" or platform.machine().lower() not in ("x86_64", "amd64"):
        return Availability(False, f"counting runs on Linux x86-64, this is {platform.system()} "
                                   f"{platform.machine()}")
    if shutil.which("valgrind") is None:
        return Availability(False, "valgrind is not on PATH (Debian: apt-get install valgrind)")
    if shutil.which("cc") is None:
        return Availability(False, "no C compiler (cc) to build the Callgrind client helper")
    return Availability(True)


def valgrind_version() -> str:
    out = subprocess.run(["valgrind", "--version"], capture_output=True, text=True, check=False)
    return out.stdout.strip() or "valgrind (unknown version)"


def helper_library(cache: Cache) -> Path:
    """The client-request helper, compiled once per source into the cache."""
    source = HERE / "client.c"
    path = cache.path("work", f"client-{make_key(source.read_text())}", ".so")

    def build(tmp: Path) -> None:
        done = subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", str(tmp), str(source)],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            first = (done.stderr.strip().splitlines() or ["no output"])[0]
            raise CountError(f"cannot build the Callgrind client helper ({first}); expected valgrind/callgrind.h "
                             "from Debian's valgrind package")

    if not path.exists():
        atomic_write(path, build)
    return path


def code_digest() -> str:
    """What the counts depend on in optbench's own code: the worker, the reader and the client requests."""
    return make_key(*((HERE / n).read_text() for n in ("worker.py", "figures.py", "client.c", "counter.py")))


def worker_environment() -> dict[str, str]:
    """The worker's environment: this process's, with its import path, and Python's string hashing pinned.

    A random hash seed per process moved a torch eager count by up to 0.65 % between processes (dict probes in
    torch's Python dispatch: cancer_mlp fp32 252,939-254,615 instructions a call over five seeds, each seed
    repeatable to 0.1 %); a pinned seed leaves only the work itself in the count.
    """
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), "PYTHONHASHSEED": "0"}


class Worker:
    """One Callgrind process running ``worker.py``: jobs in on stdin, answers back on a pipe of its own."""

    def __init__(self, helper: Path, log: Path) -> None:
        self.dumps = Path(tempfile.mkdtemp(prefix="optbench-callgrind-"))
        read_fd, write_fd = os.pipe()
        cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--collect-atstart=no", "--cache-sim=yes",
               *CACHE_GEOMETRY, f"--callgrind-out-file={self.dumps}/cg.out", "-q",
               sys.executable, str(HERE / "worker.py"), "--helper", str(helper), "--fd", str(write_fd),
               "--dumps", str(self.dumps)]
        self.log = log.open("ab")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=self.log, stderr=self.log,
                                     pass_fds=(write_fd,), env=worker_environment())
        os.close(write_fd)
        self.answers = os.fdopen(read_fd, "r")
        started = time.perf_counter()
        self.hello: dict[str, Any] = self._read(300.0)
        self.start_s = time.perf_counter() - started

    def _read(self, timeout: float) -> dict[str, Any]:
        ready, _, _ = select.select([self.answers], [], [], timeout)
        line = self.answers.readline() if ready else ""
        if not line:
            code = self.proc.poll()
            self.close()
            why = f"exited with {code}" if code is not None else f"gave no answer in {timeout:.0f} s"
            raise CountError(f"the counting worker {why}; its output is in {self.log.name}")
        return json.loads(line)

    def run(self, job: Job, repeats: int) -> tuple[int, list[Counts]]:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(job.payload(repeats)) + "\n").encode())
        self.proc.stdin.flush()
        answer = self._read(JOB_TIMEOUT_S)
        if not answer.get("ok"):
            raise CountError(f"{job.name}: not counted: {answer.get('error', 'the worker gave no reason')}")
        return int(answer["calls"]), [Counts(w) for w in answer["windows"]]

    def close(self) -> None:
        if self.proc.poll() is None:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.answers.close()
        self.log.close()
        shutil.rmtree(self.dumps, ignore_errors=True)


class Counter:
    """Counts jobs, one worker per kind started on first use; figures cached by everything that makes them."""

    def __init__(self, cache: Cache, repeats: int = REPEATS, use_cache: bool = True) -> None:
        self.cache, self.repeats, self.use_cache = cache, repeats, use_cache
        self._workers: dict[str, Worker] = {}
        self._environment: dict[str, Any] | None = None
        self.counted = 0  # jobs counted by a worker in this run (not read from the cache)

    def worker(self, kind: str) -> Worker:
        if kind not in self._workers:
            log = self.cache.path("work", f"worker-{kind}", ".log")
            self._workers[kind] = Worker(helper_library(self.cache), log)
            logger.info("counting worker (%s) started under Valgrind in %.1f s", kind, self._workers[kind].start_s)
        return self._workers[kind]

    def environment(self) -> dict[str, Any]:
        """The counting environment: what decides a count (Valgrind, the CPU it presents, the libraries), never the
        host CPU. The presented CPU is read inside Valgrind, from the ONNX Runtime worker (it starts fastest)."""
        if self._environment is None:
            hello = self.worker("onnx").hello["hello"]
            self._environment = {
                "valgrind": valgrind_version(),
                "presented_cpu": hello["cpu"],
                "isa": "avx512" if hello["avx512f"] else "avx2" if hello["avx2"] else "sse",
                "python": platform.python_version(),
                **{dist: _version(dist) for dist in ("torch", "onnxruntime", "numpy")},
            }
        return self._environment

    @property
    def started(self) -> bool:
        """Whether any worker ran in this counter (the environment is then known without starting one)."""
        return self._environment is not None

    def count(self, job: Job) -> WorkFigures:
        key = make_key("work", environment_key(self.environment()), job.cache_parts(), self.repeats, code_digest())
        path = self.cache.path("work", key, ".json")
        if self.use_cache and path.exists():
            return WorkFigures.from_dict(json.loads(path.read_text()))
        calls, windows = self.worker(job.kind).run(job, self.repeats)
        figures = WorkFigures.from_counts(windows, calls)
        self.counted += 1
        atomic_write(path, lambda tmp: tmp.write_text(json.dumps(figures.to_dict())))
        return figures

    def close(self) -> None:
        for worker in self._workers.values():
            worker.close()
        self._workers.clear()

    def __enter__(self) -> Counter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def environment_key(environment: dict[str, Any]) -> str:
    """A readable key of the counting environment (the work baseline is kept per key)."""
    e = environment
    return (f"{e['valgrind']} | {e['presented_cpu']} ({e['isa']}) | python {e['python']} | torch {e['torch']} | "
            f"onnxruntime {e['onnxruntime']} | numpy {e['numpy']}")


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "absent"
