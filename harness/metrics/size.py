"""Parameter and non-zero counts of a torch module or an ONNX graph's initializers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn


def torch_param_counts(module: nn.Module) -> tuple[int, int]:
    """(parameters, non-zero parameters), counting quantized packed weights of eager int8 modules too."""
    total = nonzero = 0
    seen: set[int] = set()
    for tensor in list(module.parameters()) + [b for b in module.buffers() if b.is_floating_point()]:
        if id(tensor) in seen:
            continue
        seen.add(id(tensor))
        total += tensor.numel()
        nonzero += int(torch.count_nonzero(tensor.detach()).item())
    for sub in module.modules():  # torch.ao dynamic-quantized Linear keeps its weight in a packed param
        weight_fn = getattr(sub, "weight", None)
        if callable(weight_fn) and not isinstance(weight_fn, nn.Parameter):
            try:
                w = weight_fn()
            except (RuntimeError, TypeError):
                continue
            if isinstance(w, torch.Tensor):
                w = w.dequantize() if w.is_quantized else w
                total += w.numel()
                nonzero += int(torch.count_nonzero(w).item())
    return total, nonzero


def onnx_param_counts(path: Path) -> tuple[int, int]:
    """(elements, non-zero elements) of every initializer of a float or int weight in the graph."""
    model = onnx.load(str(path), load_external_data=True)
    total = nonzero = 0
    for init in model.graph.initializer:
        arr = numpy_helper.to_array(init)
        if arr.size <= 1:
            continue  # scales and zero points, not weights
        total += int(arr.size)
        nonzero += int(np.count_nonzero(arr))
    return total, nonzero
