"""What the torch backends share: one runner, input conversion, CUDA checks and the torch.compile step.

Eager and compiled, CPU and CUDA differ only in the device and in the function the runner calls, so each
backend module is a few declarations over :class:`TorchBackend`.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import logging
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np
import torch
from torch import nn

from harness.artifact import Artifact, Precision
from harness.backends.base import Availability, Backend, Runner
from harness.env import cpu_flags, is_x86
from harness.errors import BackendUnavailable, ModelOutputError

if TYPE_CHECKING:
    from model_zoo.spec import Inputs

logger = logging.getLogger(__name__)

TorchCall = Callable[..., Any]


def module_dtype(module: nn.Module) -> torch.dtype:
    """The floating dtype of the module's first floating parameter or buffer (float32 if it has none)."""
    for tensor in (*module.parameters(), *module.buffers()):
        if tensor.is_floating_point():
            return tensor.dtype
    return torch.float32


def convert_inputs(inputs: Inputs, device: str, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    """Move inputs to ``device``; float inputs take the module's dtype, integer ones (token ids) stay as they are."""
    return tuple(t.to(device=device, dtype=dtype if t.is_floating_point() else t.dtype) for t in inputs)


def first_output(output: object) -> torch.Tensor:
    """The first tensor of a model's output (a tensor, a tuple/list, or a mapping such as a HF ModelOutput)."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, list | tuple) and output:
        return first_output(output[0])
    if isinstance(output, Mapping) and output:
        return first_output(next(iter(output.values())))
    raise ModelOutputError(f"model output of type {type(output).__name__} holds no tensor")


def cuda_availability(*, need_triton: bool = False) -> Availability:
    """Whether torch can run on a CUDA device here (and, for inductor, whether triton is installed)."""
    if torch.version.cuda is None:
        return Availability(False, f"torch {torch.__version__} is built without CUDA")
    if not torch.cuda.is_available():
        return Availability(False, "torch.cuda.is_available() is False (no CUDA device or driver)")
    if need_triton and importlib.util.find_spec("triton") is None:
        return Availability(False, "triton is not installed (inductor needs it for CUDA)")
    return Availability(True)


class TorchRunner(Runner):
    """Calls a torch callable under ``inference_mode`` on inputs converted once; on CUDA the call synchronizes."""

    def __init__(
        self, call: TorchCall, *, backend: str, device: str, threads: int, dtype: torch.dtype, size_bytes: int,
        warm_new_shapes: bool = False,
    ) -> None:
        self.call = call
        self.backend, self.device, self.threads, self.size_bytes = backend, device, threads, size_bytes
        self.dtype = dtype
        self.prepare_seconds = 0.0
        self._warm_new_shapes = warm_new_shapes  # compiled code specializes on shapes: compile them in bind
        self._seen_shapes: set[tuple[tuple[int, ...], ...]] = set()

    def bind(self, inputs: Inputs) -> Callable[[], Any]:
        args = convert_inputs(inputs, self.device, self.dtype)
        if self._warm_new_shapes:
            # Compiled code guards on whether an input is a view: the test split's batches are slices, the timed
            # inputs are not, and each kind of the same shape was compiled anew. Bound inputs own their storage.
            args = tuple(a.clone() if a._base is not None else a for a in args)
        call, threads = self.call, self.threads
        sync = torch.cuda.synchronize if self.device.startswith("cuda") else None

        def run() -> object:
            if torch.get_num_threads() != threads:  # the count is process-wide; another runner may have changed it
                torch.set_num_threads(threads)
            with torch.inference_mode():
                out = call(*args)
            if sync is not None:
                sync()
            return out

        shapes = tuple(tuple(a.shape) for a in args)
        if self._warm_new_shapes and shapes not in self._seen_shapes:
            start = time.perf_counter()
            with quiet_inductor():
                run()
            self.prepare_seconds += time.perf_counter() - start
            self._seen_shapes.add(shapes)
        return run

    def to_numpy(self, output: object) -> np.ndarray:
        return first_output(output).detach().to(device="cpu", dtype=torch.float32).numpy()

    def close(self) -> None:
        self.call = _closed
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()


def _closed(*args: object) -> NoReturn:
    raise RuntimeError("runner is closed")


@contextlib.contextmanager
def quiet_inductor() -> Iterator[None]:
    """Ignore two warnings inductor raises while compiling, which `-W error` would turn into failed cases:

    - its import-time DeprecationWarning (torch.utils.mkldnn runs ``torch.jit.script_method``);
    - on CUDA, the advice to enable TF32 for float32 matmuls. fp32 cases stay true fp32 on purpose: TF32 changes
      the numerics, so it would be a precision of its own, not a free setting of the reference.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.script_method` is deprecated",
                                category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=r"TensorFloat32 tensor cores for float32 matrix multiplication",
                                category=UserWarning)
        yield


def compile_module(module: nn.Module) -> TorchCall:
    """``torch.compile`` with inductor; compilation itself happens on the first call."""
    with quiet_inductor():
        return torch.compile(module, backend="inductor")


def check_artifact(backend: type[Backend], artifact: Artifact) -> None:
    """Refuse an artifact whose kind or precision this backend does not run, saying what it accepts."""
    if artifact.kind not in backend.accepts or artifact.precision not in backend.precisions:
        kinds = ", ".join(sorted(k.value for k in backend.accepts))
        precisions = ", ".join(sorted(p.value for p in backend.precisions))
        raise BackendUnavailable(f"{backend.name} cannot run a {artifact.precision.value} {artifact.kind.value} "
                                 f"artifact; it runs {kinds} in {precisions}")


BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


class TorchBackend(Backend):
    """A torch backend: eager or compiled (``compiled``), on ``device``; subclasses only declare what they are."""

    compiled: bool = False

    @classmethod
    def emulated(cls, precision: Precision) -> str | None:
        """bf16 on an x86 CPU without bf16 instructions: torch converts every operand to fp32 and back.
        (Measured on an AVX2 CPU: MiniLM 0.17-0.24x the speed of fp32.) ARM CPUs are not second-guessed."""
        if cls.device != "cpu" or precision is not Precision.BF16 or not is_x86():
            return None
        if set(BF16_CPU_FLAGS) & set(cpu_flags()):
            return None
        return (f"bf16 on {cls.name}: this CPU has no bf16 instructions ({', '.join(BF16_CPU_FLAGS)}), so torch "
                "emulates bf16 through fp32; select the config with --optbench-configs to measure it anyway")

    def prepare(self, artifact: Artifact, example: Inputs, input_names: tuple[str, ...]) -> Runner:
        available = self.availability()
        if not available.ok:
            raise BackendUnavailable(f"{self.name}: {available.reason}")
        check_artifact(type(self), artifact)
        assert artifact.module is not None
        start = time.perf_counter()
        module = artifact.module
        if self.device != "cpu":  # never move the caller's module (often the shared reference) off the CPU
            module = copy.deepcopy(module).to(self.device)
        module.eval()
        torch.set_num_threads(self.ctx.threads)  # inductor fixes its OpenMP thread count when it compiles
        call = compile_module(module) if self.compiled else module
        runner = TorchRunner(call, backend=self.name, device=self.device, threads=self.ctx.threads,
                             dtype=module_dtype(module), size_bytes=artifact.size_bytes(),
                             warm_new_shapes=self.compiled)
        if self.compiled:
            # Compiles outside any timing, for batch 1 first: the timed call gets its static code, and the larger
            # batches that follow (the test split, throughput) share one dynamic-batch compile. Compiling the
            # example's batch first cost a third compile, its own static one, that nothing timed used.
            runner.bind(tuple(t[:1] for t in example))
        runner.prepare_seconds = time.perf_counter() - start
        logger.debug("%s prepared in %.2f s", self.name, runner.prepare_seconds)
        return runner
