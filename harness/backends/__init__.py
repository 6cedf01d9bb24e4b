"""Inference backends; importing this package registers every one of them in :data:`BACKENDS`."""

# Registration order is the order of the matrix and of the report: CPU backends first, reference eager first.
from harness.backends import torch_eager  # noqa: F401, I001 - imported to register
from harness.backends import torch_compile  # noqa: F401
from harness.backends import onnxruntime  # noqa: F401
from harness.backends import torch_eager_cuda  # noqa: F401
from harness.backends import torch_compile_cuda  # noqa: F401
from harness.backends import onnxruntime_cuda  # noqa: F401
from harness.backends.base import BACKENDS, Availability, Backend, Runner, register_backend

__all__ = ["BACKENDS", "Availability", "Backend", "Runner", "register_backend"]
