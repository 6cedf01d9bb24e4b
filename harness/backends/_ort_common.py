"""What the ONNX Runtime backends share: session options, export of torch artifacts, and one runner per device kind.

ORT is imported lazily so the harness imports (and reports the backend unavailable) where it is not installed.
"""

from __future__ import annotations

import importlib.util
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from harness.artifact import Artifact, ArtifactKind, onnx_size_bytes
from harness.backends._torch_common import check_artifact, convert_inputs, module_dtype
from harness.backends.base import Availability, Backend, Runner
from harness.errors import BackendUnavailable, ExportError
from harness.onnx_export import cached_export

if TYPE_CHECKING:
    import onnxruntime as ort

    from model_zoo.spec import Inputs

logger = logging.getLogger(__name__)

_NUMPY_TYPES = {
    "tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
    "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(int8)": np.int8, "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
}


def ort_availability(provider: str) -> Availability:
    """Whether onnxruntime is installed and offers ``provider`` here."""
    if importlib.util.find_spec("onnxruntime") is None:
        return Availability(False, "onnxruntime is not installed")
    import onnxruntime as ort

    providers = ort.get_available_providers()
    if provider not in providers:
        hint = "; install onnxruntime-gpu for CUDA" if provider == "CUDAExecutionProvider" else ""
        return Availability(
            False, f"onnxruntime {ort.__version__} offers no {provider} (it has {', '.join(providers)}){hint}"
        )
    return Availability(True)


def session_options(threads: int) -> ort.SessionOptions:
    """``threads`` intra-op threads, one inter-op thread, every graph optimization; warnings left to our logs."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3  # errors only: ORT's own warnings go to stderr, not through logging
    return opts


def onnx_file(artifact: Artifact, example: Inputs, input_names: tuple[str, ...], backend: Backend) -> Path:
    """The artifact's .onnx file; a torch module is exported first (cached on the artifact's key)."""
    if artifact.kind is ArtifactKind.ONNX_MODEL:
        assert artifact.onnx_path is not None
        return artifact.onnx_path
    assert artifact.module is not None
    example = convert_inputs(example, "cpu", module_dtype(artifact.module))  # an fp16 module exports fp16 inputs
    return cached_export(artifact.key, artifact.module, example, input_names, backend.ctx.cache)


def feeds_for(session: ort.InferenceSession, inputs: Inputs, input_names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Numpy feeds in the session's input types, matched by name (by position when the names do not fit)."""
    wanted = session.get_inputs()
    names = input_names if len(input_names) == len(inputs) else tuple(i.name for i in wanted)
    given = dict(zip(names, inputs, strict=False))
    missing = [i.name for i in wanted if i.name not in given]
    if missing:
        raise ExportError(f"ONNX model needs inputs {', '.join(missing)}; given {', '.join(given)}")
    return {
        i.name: np.ascontiguousarray(given[i.name].detach().cpu().numpy().astype(_NUMPY_TYPES.get(i.type, np.float32)))
        for i in wanted  # inputs the exporter dropped as unused are not fed
    }


class OrtRunner(Runner):
    """Runs an InferenceSession on the CPU: the bound call is ``session.run`` on feeds converted once."""

    def __init__(self, session: ort.InferenceSession, input_names: tuple[str, ...], *, backend: str, device: str,
                 threads: int, size_bytes: int) -> None:
        self.session = session
        self.input_names = input_names
        self.output_name = session.get_outputs()[0].name
        self.backend, self.device, self.threads, self.size_bytes = backend, device, threads, size_bytes
        self.prepare_seconds = 0.0

    def bind(self, inputs: Inputs) -> Callable[[], Any]:
        feeds, outputs, session = feeds_for(self.session, inputs, self.input_names), [self.output_name], self.session
        return lambda: session.run(outputs, feeds)

    def to_numpy(self, output: object) -> np.ndarray:
        first = output[0]  # type: ignore[index]
        array = first.numpy() if hasattr(first, "numpy") else first  # OrtValue from io-binding, or an ndarray
        return np.asarray(array, dtype=np.float32)

    def close(self) -> None:
        del self.session


class OrtCudaRunner(OrtRunner):
    """Inputs are copied to the GPU once (io-binding); the output is bound to host memory, so a run ends only
    when the device work and the copy back are done."""

    def bind(self, inputs: Inputs) -> Callable[[], Any]:
        import onnxruntime as ort

        binding = self.session.io_binding()
        device_inputs = {name: ort.OrtValue.ortvalue_from_numpy(array, "cuda", 0)
                         for name, array in feeds_for(self.session, inputs, self.input_names).items()}
        for name, value in device_inputs.items():
            binding.bind_ortvalue_input(name, value)
        binding.bind_output(self.output_name, "cpu")
        session = self.session

        def run(_keep_alive: object = device_inputs) -> object:  # the binding does not own the device buffers
            session.run_with_iobinding(binding)
            return binding.get_outputs()

        return run


class OrtBackend(Backend):
    """An ONNX Runtime backend for one execution provider; subclasses declare the provider and the runner."""

    provider: ClassVar[str]
    runner_cls: ClassVar[type[OrtRunner]] = OrtRunner

    @classmethod
    def availability(cls) -> Availability:
        return ort_availability(cls.provider)

    def prepare(self, artifact: Artifact, example: Inputs, input_names: tuple[str, ...]) -> Runner:
        available = self.availability()
        if not available.ok:
            raise BackendUnavailable(f"{self.name}: {available.reason}")
        check_artifact(type(self), artifact)
        import onnxruntime as ort

        start = time.perf_counter()
        path = onnx_file(artifact, example, input_names, self)
        session = ort.InferenceSession(str(path), session_options(self.ctx.threads), providers=[self.provider])
        if self.provider not in session.get_providers():  # ORT falls back to the CPU silently when a provider fails
            raise BackendUnavailable(f"{self.name}: {self.provider} failed to load; session runs on "
                                     f"{', '.join(session.get_providers())}")
        runner = self.runner_cls(session, input_names, backend=self.name, device=self.device,
                                 threads=self.ctx.threads, size_bytes=onnx_size_bytes(path))
        runner.prepare_seconds = time.perf_counter() - start
        logger.debug("%s prepared %s in %.2f s", self.name, path.name, runner.prepare_seconds)
        return runner
