"""Error-compensating rounding of an int8 file's weights: GPTQ (Frantar et al., 2022, "GPTQ: Accurate Post-Training
Quantization for Generative Pre-trained Transformers"; Optimal Brain Quantization underneath).

ORT rounds every weight to its nearest grid point. GPTQ rounds one input column at a time and moves the columns not
yet rounded to cancel the error it made, weighted by ``H = X Xᵀ`` of the layer's calibration inputs, so the
layer's *output* on data like the calibration data stays close to fp32. It keeps ORT's grid (the scales and zero
points in the file): only the integers change, so the file runs on the same kernels at the same speed.

The damping of ``H`` is chosen per layer on held-out inputs (the validation split), among GPTQ with each damping
and plain nearest rounding: a layer whose GPTQ rounding does not lower the output error on data it was not fitted
on keeps ORT's. Input channels silent on every calibration input keep their nearest rounding (GPTQ's reference code
zeroes them, which is harmless in a language model and breaks a CNN the moment a test photograph lights them).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from harness.techniques._ort_quant import _Reader, is_depthwise, probe_session, weighted_nodes

if TYPE_CHECKING:
    from model_zoo.spec import Inputs

DAMPINGS = (0.01, 0.1, 1.0)  # of H's mean diagonal; GPTQ's paper uses 0.01
BLOCK = 128  # columns per lazy batch of GPTQ's column loop (the paper's)
_BATCH = 8  # inputs per ORT run while the layer inputs are gathered: bounds memory (every layer input is an output)


@dataclasses.dataclass(frozen=True)
class _Layer:
    """A weighted node of the float graph and its integers in the int8 file, as rows (output channels) × columns."""

    node: onnx.NodeProto
    weight: np.ndarray  # float weight, as in the float graph
    int_name: str  # the int8 file's initializer holding its integers
    rows: Callable[[np.ndarray], np.ndarray]  # weight-shaped array → (rows, columns)
    unrows: Callable[[np.ndarray], np.ndarray]  # the inverse
    scale: np.ndarray  # per row
    zero_point: np.ndarray  # per row
    depthwise: bool


def refine(fp32: Path, int8: Path, fit: Inputs, held_out: Inputs, input_names: tuple[str, ...], *,
           qmin: int, qmax: int, depthwise_grid: tuple[int, int] | None = None) -> None:
    """Re-round the weights of ``int8`` (a QDQ file ORT quantized from the preprocessed float graph ``fp32``) in place.

    ``fit`` gives the inputs whose layer inputs make each ``H``; ``held_out`` picks, per layer, the damping or
    nearest rounding. ``qmin``/``qmax`` bound the integers (ORT's grid: 7-bit weights span -64..64);
    ``depthwise_grid``, where given, bounds a depthwise convolution's instead (kept at 8 bits where the rest has 7).
    """
    float_model = onnx.load(str(fp32))
    int_model = onnx.load(str(int8))
    layers = _layers(float_model, int_model)
    if not layers:
        return
    session, outputs = _probe(float_model, layers)
    fit_h = _hessians(session, outputs, fp32, layers, fit, input_names)
    held_h = _hessians(session, outputs, fp32, layers, held_out, input_names)
    ints = {i.name: i for i in int_model.graph.initializer}
    for layer in layers:
        w = torch.from_numpy(layer.rows(layer.weight).astype(np.float64))
        scale = torch.from_numpy(layer.scale.astype(np.float64))
        zp = torch.from_numpy(layer.zero_point.astype(np.float64))
        lo, hi = depthwise_grid if depthwise_grid is not None and layer.depthwise else (qmin, qmax)
        nearest = torch.clamp(torch.round(w / scale[:, None]) + zp[:, None], lo, hi)
        best, best_err = nearest, _error(w, nearest, scale, zp, held_h[layer.int_name])
        for damping in DAMPINGS:
            q = _gptq(w, fit_h[layer.int_name], scale, zp, lo, hi, damping)
            err = _error(w, q, scale, zp, held_h[layer.int_name])
            if err < best_err:
                best, best_err = q, err
        if best is not nearest:
            old = numpy_helper.to_array(ints[layer.int_name])
            new = layer.unrows(best.numpy()).astype(old.dtype).reshape(old.shape)
            ints[layer.int_name].CopyFrom(numpy_helper.from_array(new, layer.int_name))
    onnx.save(int_model, str(int8))


def _layers(float_model: onnx.ModelProto, int_model: onnx.ModelProto) -> list[_Layer]:
    """The float graph's Conv (dense or depthwise), Gemm and MatMul nodes whose weight the int8 file holds as
    integers with a dequantization it can re-round (per row or per tensor)."""
    ints = {i.name: i for i in int_model.graph.initializer}
    dequant = {n.input[0]: n for n in int_model.graph.node if n.op_type == "DequantizeLinear"}
    layers = []
    for node, init in weighted_nodes(float_model, ("Conv", "Gemm", "MatMul")):
        int_name = f"{init.name}_quantized"
        if int_name not in ints or int_name not in dequant:
            continue  # left in float
        weight = numpy_helper.to_array(init)
        shaped = _shape(node, weight)
        if shaped is None:
            continue
        rows, unrows, depthwise = shaped
        dq = dequant[int_name]
        scale = numpy_helper.to_array(ints[dq.input[1]]).astype(np.float64).reshape(-1)
        zero = (numpy_helper.to_array(ints[dq.input[2]]).astype(np.float64).reshape(-1) if len(dq.input) > 2
                else np.zeros(1))
        n_rows = rows(weight).shape[0]
        if scale.size not in (1, n_rows) or not _axis_is_rows(node, dq, weight, scale.size):
            continue
        layers.append(_Layer(node, weight, int_name, rows, unrows, np.broadcast_to(scale, (n_rows,)).copy(),
                             np.broadcast_to(zero, (n_rows,)).copy(), depthwise))
    return layers


def _attrs(node: onnx.NodeProto) -> dict[str, object]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _shape(node: onnx.NodeProto, w: np.ndarray) -> tuple[Callable[[np.ndarray], np.ndarray],
                                                         Callable[[np.ndarray], np.ndarray], bool] | None:
    """How ``node``'s weight becomes rows × columns, or None for a layout GPTQ here does not handle."""
    attrs = _attrs(node)
    if node.op_type == "Conv":
        depthwise = is_depthwise(node, w.shape)
        if int(attrs.get("group", 1)) != 1 and not depthwise:  # type: ignore[call-overload]
            return None
        return (lambda a: a.reshape(a.shape[0], -1)), (lambda a: a.reshape(w.shape)), depthwise
    if w.ndim != 2:
        return None
    if node.op_type == "Gemm":
        if attrs.get("transA", 0):
            return None
        if attrs.get("transB", 0):
            return (lambda a: a), (lambda a: a), False
    return (lambda a: a.T), (lambda a: a.T), False  # MatMul and Gemm without transB: (in, out)


def _axis_is_rows(node: onnx.NodeProto, dq: onnx.NodeProto, w: np.ndarray, n_scales: int) -> bool:
    if n_scales == 1:
        return True
    axis = int(_attrs(dq).get("axis", 1))  # type: ignore[call-overload]
    transposed = node.op_type == "MatMul" or (node.op_type == "Gemm" and not _attrs(node).get("transB", 0))
    return axis % w.ndim == (1 if transposed else 0)


def _layer_input(x: torch.Tensor, layer: _Layer) -> torch.Tensor:
    """What a layer's weight rows multiply: (samples, columns), or (channels, samples, taps) when depthwise."""
    node = layer.node
    if node.op_type != "Conv":
        return x.reshape(-1, x.shape[-1])
    attrs = _attrs(node)
    kernel = tuple(layer.weight.shape[2:])
    if kernel == (1, 1) and not layer.depthwise and list(attrs.get("strides", [1, 1])) == [1, 1] \
            and not any(attrs.get("pads", [0, 0, 0, 0])):  # type: ignore[call-overload]
        return x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])
    pads = list(attrs.get("pads", [0, 0, 0, 0]))  # type: ignore[call-overload]
    x = torch.nn.functional.pad(x, (pads[1], pads[3], pads[0], pads[2]))
    cols = torch.nn.functional.unfold(x, kernel, dilation=tuple(attrs.get("dilations", (1, 1))),  # type: ignore[arg-type]
                                      stride=tuple(attrs.get("strides", (1, 1))))  # type: ignore[arg-type]
    taps = kernel[0] * kernel[1]
    if layer.depthwise:
        return cols.reshape(x.shape[0], x.shape[1], taps, -1).permute(1, 0, 3, 2).reshape(x.shape[1], -1, taps)
    return cols.transpose(1, 2).reshape(-1, x.shape[1] * taps)


def _probe(model: onnx.ModelProto, layers: list[_Layer]) -> tuple[Any, list[str]]:
    """An ORT session of the float graph that also returns every layer's input, and those inputs' names."""
    wanted = list(dict.fromkeys(layer.node.input[0] for layer in layers))
    return probe_session(model, wanted), wanted


def _hessians(session: Any, wanted: list[str], path: Path, layers: list[_Layer], inputs: Inputs,
              input_names: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """``X Xᵀ`` of each layer's input over ``inputs``, run through the float graph (per channel when depthwise)."""
    reader = _Reader(path, inputs, input_names)
    hessians: dict[str, torch.Tensor] = {}
    while (feed := reader.get_next()) is not None:
        # ORT's reader chunks by the calibration batch; split further to bound memory
        n = len(next(iter(feed.values())))
        for i in range(0, n, _BATCH):
            outs = dict(zip(wanted, session.run(wanted, {k: v[i:i + _BATCH] for k, v in feed.items()}), strict=True))
            for layer in layers:
                x = torch.from_numpy(np.ascontiguousarray(outs[layer.node.input[0]], dtype=np.float32))
                cols = _layer_input(x, layer)
                h = (torch.einsum("csk,csj->ckj", cols, cols) if layer.depthwise else cols.T @ cols).double()
                hessians[layer.int_name] = hessians[layer.int_name] + h if layer.int_name in hessians else h
    return hessians


def _gptq(w: torch.Tensor, h: torch.Tensor, scale: torch.Tensor, zp: torch.Tensor, qmin: int, qmax: int,
          damping: float) -> torch.Tensor:
    """GPTQ: integers for ``w`` (rows × columns), with ``h`` shared by the rows or one per row."""
    order = None
    if h.ndim == 2:  # GPTQ's "act order": the columns with the most input energy first, while most are left to adjust
        order = torch.argsort(torch.diagonal(h), descending=True)
        w, h = w[:, order], h[order][:, order]
    q = _round_columns(w, _inverse_upper(h, damping), scale, zp, qmin, qmax)
    if order is not None:
        q = q[:, torch.argsort(order)]
    return q


def _inverse_upper(h: torch.Tensor, damping: float) -> torch.Tensor:
    """The upper Cholesky factor of the damped ``H⁻¹`` (``h`` one matrix, or one per row), what the column loop
    spreads each rounding error through."""
    eye = torch.eye(h.shape[-1], dtype=h.dtype)
    diag = torch.diagonal(h, dim1=-2, dim2=-1)
    h = h + torch.diag_embed((diag == 0).to(h.dtype))  # silent columns: nothing to compensate, nearest rounding
    diag = torch.diagonal(h, dim1=-2, dim2=-1)
    h = h + damping * diag.mean(-1, keepdim=True).unsqueeze(-1) * eye
    return torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(h)), upper=True)


def _round_columns(w: torch.Tensor, inv_upper: torch.Tensor, scale: torch.Tensor, zp: torch.Tensor, qmin: int,
                   qmax: int) -> torch.Tensor:
    """GPTQ's column loop: each column rounded in turn, its error spread over the columns after it through
    ``inv_upper`` (:func:`_inverse_upper`; one shared, or one per row: rows × columns × columns).

    In lazy batches, as the paper's code: inside a block of ``BLOCK`` columns each error moves the block's later
    columns at once; the columns after the block take the block's errors in one product when it is done. The same
    sums in another order (float64) and, on every layer of the zoo's GPTQ presets, the same integers as moving the
    whole rest of the weight after each column — 4x faster on digits_resnet (docs/runners.md)."""
    per_row = inv_upper.ndim == 3
    w = w.clone()
    q = torch.empty_like(w)
    cols = w.shape[1]
    for start in range(0, cols, BLOCK):
        end = min(start + BLOCK, cols)
        errors = torch.empty_like(w[:, start:end])
        for j in range(start, end):
            qj = torch.clamp(torch.round(w[:, j] / scale) + zp, qmin, qmax)
            q[:, j] = qj
            pivot = inv_upper[:, j, j] if per_row else inv_upper[j, j]
            errors[:, j - start] = err = (w[:, j] - (qj - zp) * scale) / pivot
            w[:, j + 1:end] -= err[:, None] * (inv_upper[:, j, j + 1:end] if per_row else inv_upper[j, j + 1:end])
        if end < cols:
            w[:, end:] -= (torch.einsum("rb,rbk->rk", errors, inv_upper[:, start:end, end:]) if per_row
                           else errors @ inv_upper[start:end, end:])
    return q


def _error(w: torch.Tensor, q: torch.Tensor, scale: torch.Tensor, zp: torch.Tensor, h: torch.Tensor) -> float:
    """The output error ``‖(W - Ŵ) X‖²`` on the inputs behind ``h``."""
    d = w - (q - zp[:, None]) * scale[:, None]
    if h.ndim == 3:
        return float(torch.einsum("rk,rkj,rj->", d, h, d))
    return float(torch.einsum("rk,kj,rj->", d, h, d))


def views(inputs: Inputs, extra: int, seed: int = 0) -> Inputs:
    """``inputs`` and ``extra`` random views of each image (a crop of 50-100 % of the side, resized back, mirrored
    half the time): more positions for ``H``, from the same photographs. Non-image inputs come back as they are."""
    (images, *rest) = inputs
    if extra <= 0 or rest or images.ndim != 4 or not images.is_floating_point():
        return inputs
    gen = torch.Generator().manual_seed(seed)
    side_h, side_w = images.shape[2:]
    out = [images]
    for _ in range(extra):
        batch = []
        for image in images:
            frac = float(torch.empty(1).uniform_(0.5, 1.0, generator=gen))
            ch, cw = max(1, int(side_h * frac)), max(1, int(side_w * frac))
            top = int(torch.randint(0, side_h - ch + 1, (1,), generator=gen))
            left = int(torch.randint(0, side_w - cw + 1, (1,), generator=gen))
            view = torch.nn.functional.interpolate(image[None, :, top:top + ch, left:left + cw], size=(side_h, side_w),
                                                   mode="bilinear", align_corners=False)[0]
            if float(torch.rand(1, generator=gen)) < 0.5:
                view = view.flip(-1)
            batch.append(view)
        out.append(torch.stack(batch))
    return (torch.cat(out),)
