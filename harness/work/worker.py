"""The counting worker: runs under Valgrind, loads each job's model and counts its calls between client requests.

A script (``python worker.py --helper LIB --fd N --dumps DIR``) that imports only the dump reader of optbench, so
an ONNX Runtime worker never pays for importing torch under Valgrind. It reads one JSON job a line from stdin and
answers each on file descriptor N (stdout and stderr stay the libraries'):

  job:    {"name", "kind": "onnx"|"torch", "path", "inputs": .npz, "input_names": [...], "calls": n or null,
           "repeats": r, "extra_every": k (0: none), "graph_optimization": "all"|"disabled"}
  answer: {"name", "ok": true, "calls": n, "windows": [{event: count}, ...]}  or  {"name", "ok": false, "error"}

Each window zeroes Callgrind's counters, collects over ``calls`` calls and dumps them under its name; the worker
reads each dump back (``--dumps``) and deletes it. One warm-up call runs first, uncounted (first-call allocations
and lazy initialisation), and up to ten more before a window of several calls. ``calls`` null: one call is
counted first and the window takes as many calls as make about ``TARGET`` instructions (1 to ``MAX_CALLS``); a
one-call job keeps that first window as its only one (a large model's call costs half a minute under Valgrind;
counts of ONNX Runtime repeat to 1e-6, and the spread comes from separate counting runs). With ``extra_every`` k,
every k-th counted call is made twice: added work of 1/k, as a regression adds it.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.work.figures import Counts, DumpError, read_dumps  # light: no torch, no ONNX Runtime

_loaded: dict[str, Callable[[], Any]] = {}  # the last job's bound call, by what it was built from


def _cpu(lib: ctypes.CDLL) -> dict[str, Any]:
    brand = ctypes.create_string_buffer(49)
    avx2, avx512f = ctypes.c_int(), ctypes.c_int()
    lib.ob_cpu(brand, ctypes.byref(avx2), ctypes.byref(avx512f))
    return {"cpu": brand.value.decode(errors="replace").strip(), "avx2": bool(avx2.value),
            "avx512f": bool(avx512f.value), "valgrind": bool(lib.ob_running())}


def _onnx_call(job: dict[str, Any], inputs: dict[str, Any]) -> Callable[[], Any]:
    import numpy as np
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1  # one thread: no spin-waiting or hand-offs in the count
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_DISABLE_ALL
                                     if job.get("graph_optimization") == "disabled"
                                     else ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    opts.log_severity_level = 3
    session = ort.InferenceSession(job["path"], opts, providers=["CPUExecutionProvider"])
    names = job["input_names"]
    given = dict(zip(names, inputs.values(), strict=False)) if len(names) == len(inputs) else dict(inputs)
    types = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int64)": np.int64,
             "tensor(int32)": np.int32}
    feeds = {i.name: np.ascontiguousarray(given[i.name].astype(types.get(i.type, np.float32)))
             for i in session.get_inputs()}
    outputs = [session.get_outputs()[0].name]
    return lambda: session.run(outputs, feeds)


def _torch_call(job: dict[str, Any], inputs: dict[str, Any]) -> Callable[[], Any]:
    import torch

    torch.set_num_threads(1)
    module = torch.load(job["path"], weights_only=False)
    module.eval()
    dtype = next((t.dtype for t in (*module.parameters(), *module.buffers()) if t.is_floating_point()),
                 torch.float32)
    tensors = [torch.from_numpy(a) for a in inputs.values()]
    tensors = [t.to(dtype) if t.is_floating_point() else t for t in tensors]

    def call() -> Any:
        with torch.inference_mode():
            return module(*tensors)

    return call


def _bound(job: dict[str, Any]) -> Callable[[], Any]:
    import numpy as np

    key = json.dumps([job["kind"], job["path"], job["inputs"], job.get("graph_optimization", "all")])
    if key not in _loaded:
        _loaded.clear()
        with np.load(job["inputs"]) as data:
            inputs = {name: data[name] for name in data.files}
        _loaded[key] = (_onnx_call if job["kind"] == "onnx" else _torch_call)(job, inputs)
        _loaded[key]()  # the warm-up call, uncounted
    return _loaded[key]


TARGET = 10_000_000  # instructions a counted window aims at: 50-200 calls of a small model, ~1 s under Valgrind
MAX_CALLS = 100


def _window(lib: ctypes.CDLL, dumps: Path, name: str, call: Callable[[], Any], calls: int, every: int) -> Counts:
    gc.collect()
    gc.disable()
    try:
        lib.ob_start()
        for i in range(1, calls + 1):
            call()
            if every and i % every == 0:
                call()
        lib.ob_stop(name.encode())
    finally:
        gc.enable()
    files = sorted(dumps.glob("cg.out.*"))
    found = read_dumps(files)
    for f in files:
        f.unlink()
    if name not in found:
        raise DumpError(f"no callgrind dump named {name!r} in {dumps}; is the worker running under callgrind?")
    return found[name]


def count(lib: ctypes.CDLL, dumps: Path, job: dict[str, Any]) -> tuple[int, list[Counts]]:
    call = _bound(job)
    every, repeats = int(job.get("extra_every") or 0), int(job["repeats"])
    windows: list[Counts] = []
    calls = job.get("calls")
    if calls is None:
        probe = _window(lib, dumps, f"{job['name']}#probe", call, 1, 0)
        calls = max(1, min(MAX_CALLS, TARGET // max(probe.instructions, 1)))
        if calls == 1:
            windows.append(probe)
            repeats = 1
    if calls > 1:  # a light model: its first calls after loading still allocate and fill caches (measured +4 %)
        for _ in range(min(int(calls), 10)):
            call()
    while len(windows) < repeats:
        windows.append(_window(lib, dumps, f"{job['name']}#{len(windows)}", call, int(calls), every))
    return int(calls), windows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--helper", required=True)
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--dumps", type=Path, required=True, help="the folder of --callgrind-out-file")
    args = parser.parse_args(argv)
    lib = ctypes.CDLL(args.helper)
    lib.ob_stop.argtypes = [ctypes.c_char_p]
    with os.fdopen(args.fd, "w", buffering=1) as answers:
        answers.write(json.dumps({"hello": _cpu(lib), "python": sys.version.split()[0]}) + "\n")
        for line in sys.stdin:
            if not line.strip():
                continue
            job = json.loads(line)
            try:
                calls, windows = count(lib, args.dumps, job)
                answer = {"name": job["name"], "ok": True, "calls": calls, "windows": [dict(w.events) for w in windows]}
            except Exception as exc:  # one job's failure is its answer; the worker goes on
                traceback.print_exc()
                answer = {"name": job.get("name", "?"), "ok": False,
                          "error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}
            answers.write(json.dumps(answer) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
