"""Post-training quantization and half precision: torch dynamic int8, ONNX Runtime dynamic and static int8, fp16/bf16.

Each config is registered with its ``apply``; the presets of the "quantization" suite are at the bottom with the
measurements that chose them. Every int8 config adds a contract that int8 really appears in what it makes.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import onnx
import torch
from torch import nn

from harness.artifact import Artifact, ArtifactKind, Precision
from harness.cache import make_key, source_hash
from harness.config import require_choice, require_int, require_range
from harness.core import Expectation
from harness.errors import ConfigError
from harness.onnx_export import cached_export, validate_onnx
from harness.techniques import _gptq, _ort_quant, _smooth
from harness.techniques.base import Context, Reference, TechniqueConfig, register_preset, register_technique

if TYPE_CHECKING:
    from model_zoo.spec import ModelSpec
    from model_zoo.traits import Traits

SUITE = "quantization"
INT8_TYPES = ("QInt8", "QUInt8")
CALIBRATION_METHODS = ("MinMax", "Entropy", "Percentile")
QUANT_FORMATS = ("QDQ", "QOperator")
WEIGHT_ROUNDINGS = ("nearest", "gptq")
# ORT's dynamic quantizer handles these (its IntegerOpsRegistry, plus Gemm which it rewrites to MatMulInteger).
DYNAMIC_OP_TYPES = ("MatMul", "Gemm", "Conv", "Attention", "LSTM", "Gather", "EmbedLayerNormalization", "Transpose")


def _require_bool(field: str, value: object) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"`{field}` must be true or false, got {value!r}")


def _require_op_types(field: str, value: object, allowed: tuple[str, ...] | None) -> None:
    """A non-empty tuple of ONNX op type names, each in ``allowed`` when given."""
    if not isinstance(value, tuple) or not value or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"`{field}` must be a non-empty list of ONNX op types, got {value!r}")
    bad = [v for v in value if allowed is not None and v not in allowed]
    if bad:
        raise ConfigError(f"`{field}` must hold op types among {', '.join(allowed or ())}; got {', '.join(bad)}")


def _int8_contract(proof_key: str) -> Expectation:
    return Expectation(f"{proof_key}_present", f"proof.{proof_key}", ">=", 1.0)


def artifact_key(reference: Reference, config: TechniqueConfig, *extra: object) -> str:
    """Key of what a config makes: its fields except the preset name and the contract, plus what it was made from."""
    fields = {k: v for k, v in config.to_dict().items() if k not in ("name", "min_quality_retention")}
    return make_key(reference.key, fields, *extra)


@contextlib.contextmanager
def _quiet_torch_ao() -> Iterator[None]:
    """torch 2.13 warns that torch.ao.quantization, and the quantized tensors it makes, are deprecated."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"torch\.ao\.quantization is deprecated",
                                category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=r"torch\.quantize_per_tensor, torch\.quantize_per_channel",
                                category=UserWarning)
        yield


# --- torch dynamic int8 ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TorchDynamicInt8Config(TechniqueConfig):
    """nn.Linear weights in int8, activations quantized per call, run by torch eager on the CPU."""

    technique = "quantization"

    @property
    def output_kind(self) -> ArtifactKind:
        return ArtifactKind.TORCH_QUANTIZED

    @property
    def precision(self) -> Precision:
        return Precision.INT8

    def expectations(self) -> list[Expectation]:
        return [*super().expectations(), _int8_contract("quantized_modules")]


@register_technique(TorchDynamicInt8Config)
def torch_dynamic_int8(reference: Reference, config: TorchDynamicInt8Config, ctx: Context) -> Artifact:
    """Quantize a copy of the reference with ``torch.ao.quantization.quantize_dynamic``.

    torch 2.13 still ships this API for CPU dynamic int8 (deprecated in favour of torchao); torchao's int8
    paths measured far slower than fp32 on these AVX2 machines without VNNI, so the fbgemm kernels are used.
    """
    with _quiet_torch_ao():
        from torch.ao.nn.quantized.dynamic import Linear as DynamicQuantLinear

        module = torch.ao.quantization.quantize_dynamic(copy.deepcopy(reference.module), {nn.Linear},
                                                        dtype=torch.qint8)
    count = sum(isinstance(m, DynamicQuantLinear) for m in module.modules())
    return Artifact(ArtifactKind.TORCH_QUANTIZED, Precision.INT8, key=artifact_key(reference, config,
                    torch.__version__), module=module.eval(), proof={"quantized_modules": float(count)})


# --- ONNX Runtime int8 ----------------------------------------------------------------------------------------------


def reference_onnx(reference: Reference, ctx: Context) -> Path:
    """The reference exported to ONNX (cached on its key) from a batch-2 example of its spec."""
    return cached_export(reference.key, reference.module, reference.spec.example_inputs(2),
                         reference.spec.input_names, ctx.cache)


def ort_recipe() -> str:
    """What an ORT-quantized file depends on besides the config and the export: ORT's version and our steps'."""
    import onnxruntime

    return f"onnxruntime {onnxruntime.__version__}, steps v{_ort_quant.STEPS_VERSION}"


@dataclasses.dataclass(frozen=True)
class _OrtInt8Config(TechniqueConfig):
    """What the ORT int8 configs share: an int8 ONNX model, whose proof must show int8 ops in the file and int8
    kernels in the graph ORT runs.

    ``reduce_range`` quantizes weights to 7 bits. ORT's u8 × s8 kernels on x86 without VNNI multiply with
    VPMADDUBSW, whose 16-bit sums saturate with full-range weights: measured on an AVX2 CPU, a 3-layer MLP's
    worst output row fell to cosine 0.82 (dynamic) and 0.77 (static) against fp32, and 0.9998 / 0.9993 with 7-bit
    weights. None (the default) decides per machine: on for s8 weights on x86 without VNNI, off elsewhere.
    """

    technique = "quantization"
    reduce_range: bool | None = None

    def validate(self) -> None:
        super().validate()
        if self.reduce_range is not None:
            _require_bool("reduce_range", self.reduce_range)

    def resolved_reduce_range(self, weight_type: str) -> bool:
        """``reduce_range`` as it applies on this machine (None: :func:`_ort_quant.saturates_u8s8`)."""
        if self.reduce_range is not None:
            return self.reduce_range
        return weight_type == "QInt8" and _ort_quant.saturates_u8s8()

    @property
    def output_kind(self) -> ArtifactKind:
        return ArtifactKind.ONNX_MODEL

    @property
    def precision(self) -> Precision:
        return Precision.INT8

    def expectations(self) -> list[Expectation]:
        return [*super().expectations(), _int8_contract("int8_ops"), _int8_contract("int8_kernels")]


def reduce_range_choice(config: _OrtInt8Config, reduce_range: bool) -> dict[str, str]:
    """The weight range as a machine choice when the config left it to the machine (None), else nothing."""
    return {"reduce_range": str(reduce_range).lower()} if config.reduce_range is None else {}


@dataclasses.dataclass(frozen=True)
class OrtDynamicInt8Config(_OrtInt8Config):
    """ORT dynamic int8: weights of ``op_types`` quantized offline, activations at run time.

    ``per_channel`` gives each output channel its own weight scale (MiniLM: mean cosine 0.9935 vs 0.966 per tensor).
    Conv in ``op_types`` makes ConvInteger, which is several times slower than float Conv on AVX2 CPUs.

    ``smooth_alpha`` above 0 smooths the inputs of the MatMul and Gemm nodes first (SmoothQuant,
    :mod:`harness.techniques._smooth`): their channel maxima, measured on the calibration inputs, are divided out
    of the activations and into the weights with migration strength ``alpha``, so the one scale per tensor of a
    dynamic activation is not spent on a few outlier channels. On MiniLM, alpha 0.7 lifted mean cosine from 0.9923
    to 0.9946 with every MatMul in int8, and to 0.9988 with the feed-forward output MatMuls in fp32 (docs/search.md).
    """

    per_channel: bool = False
    op_types: tuple[str, ...] = ("MatMul", "Gemm")
    weight_type: str = "QInt8"
    smooth_alpha: float = 0.0

    def validate(self) -> None:
        super().validate()
        _require_bool("per_channel", self.per_channel)
        _require_op_types("op_types", self.op_types, DYNAMIC_OP_TYPES)
        require_choice("weight_type", self.weight_type, INT8_TYPES)
        require_range("smooth_alpha", self.smooth_alpha, 0.0, 1.0)
        if self.smooth_alpha and not set(self.op_types) & set(_smooth.OP_TYPES):
            raise ConfigError(f"`smooth_alpha` smooths the inputs of {' and '.join(_smooth.OP_TYPES)} nodes; "
                              f"`op_types` quantizes none of them, got {', '.join(self.op_types)}")

    def expectations(self) -> list[Expectation]:
        extra = [_int8_contract("smoothed_tensors")] if self.smooth_alpha else []
        return [*super().expectations(), *extra]

    def requirements(self) -> tuple[str, ...]:
        return ("conv",) if "Conv" in self.op_types else ()


@register_technique(OrtDynamicInt8Config)
def ort_dynamic_int8(reference: Reference, config: OrtDynamicInt8Config, ctx: Context) -> Artifact:
    """Export the reference, quantize it with ORT's dynamic quantizer; both steps are cached."""
    fp32 = reference_onnx(reference, ctx)
    reduce_range = config.resolved_reduce_range(config.weight_type)
    key = artifact_key(reference, config, fp32.stem, ort_recipe(), reduce_range, *smoothing_parts(reference, config))
    path = ctx.cache.get_or_create(ctx.cache.path("quantized", key, ".onnx"),
                                   lambda tmp: write_int8(reference, config, ctx, tmp), validate_onnx)
    proof = {**_ort_quant.int8_proof(path, ctx.threads), "reduce_range": float(reduce_range),
             **smoothing_proof(path, config)}
    return Artifact(ArtifactKind.ONNX_MODEL, Precision.INT8, key=key, onnx_path=path, proof=proof,
                    machine_choices=reduce_range_choice(config, reduce_range))


def dynamic_int8(src: Path, dst: Path, reference: Reference, config: OrtDynamicInt8Config,
                 exclude: _ort_quant.Exclude | None = None) -> None:
    """``config``'s dynamic int8 file of the float graph ``src``: smoothed first where ``config.smooth_alpha`` says
    (on the reference's calibration inputs), then quantized by ORT with the nodes ``exclude`` picks left in float."""
    with _smooth.smoothed(src, config.smooth_alpha, reference.calibration_inputs(), reference.spec.input_names,
                          config.op_types) as smoothed:
        _ort_quant.quantize_dynamic(smoothed, dst, per_channel=config.per_channel, op_types=config.op_types,
                                    weight_type=config.weight_type,
                                    reduce_range=config.resolved_reduce_range(config.weight_type), exclude=exclude)


def smoothing_parts(reference: Reference, config: OrtDynamicInt8Config) -> tuple[object, ...]:
    """What a smoothed int8 file depends on besides the config: the smoothing code and the inputs it measures on
    (their count and chunking); nothing where smoothing does not run."""
    if not config.smooth_alpha:
        return ()
    return source_hash(_smooth), len(reference.calibration_inputs()[0]), _ort_quant.CALIBRATION_BATCH


def smoothing_proof(path: Path, config: OrtDynamicInt8Config) -> dict[str, float]:
    """The tensors divided by their smoothing scales in the file (``smoothed_tensors``), where smoothing runs."""
    return {"smoothed_tensors": float(_smooth.count(onnx.load(str(path))))} if config.smooth_alpha else {}


@dataclasses.dataclass(frozen=True)
class OrtStaticInt8Config(_OrtInt8Config):
    """ORT static int8: activation ranges calibrated on training inputs, QDQ nodes that ORT fuses to int8 kernels.

    ``activation_type`` QUInt8 (u8 activations × s8 weights) is ORT's fast path on AVX2 without VNNI; s8×s8
    measured 5-10x slower there. ``op_types`` defaults to the matmul/conv family: quantizing every op (Add, Mul,
    Softmax...) drops MiniLM's cosine to 0.44 and gains no speed on the CNN. None quantizes all that ORT can.
    "Entropy" is accepted but, through ``quantize_static``, ORT uses 128 histogram bins for 128 quantized bins,
    so its search has one candidate and the ranges equal MinMax's (measured identical scales on MiniLM).

    ``fp32_first_layers`` leaves the first that many weighted layers (Conv, Gemm and MatMul nodes with a constant
    weight, in graph order: the ones nearest the input) in float, the usual first remedy when int8 costs too much
    quality: on EfficientNet-Lite0 its first three convolutions in fp32 lifted top-1 agreement from 0.585 to 0.835
    (docs/usage.md).

    Where ``reduce_range`` is left to the machine (None) and this one needs it (u8 × s8 GEMM kernels that saturate,
    :func:`_ort_quant.saturates_u8s8`), depthwise convolutions keep the 8-bit grid and only the rest gets 7 bits:
    MLAS runs them through a kernel that widens to 16 bits first, which cannot saturate. On EfficientNet-Lite0
    that lifted top-1 agreement from 0.845 to 0.86 with nearest rounding and from 0.925 to 0.955 with GPTQ's, at the
    same speed (docs/usage.md); 8 bits for the 1×1 convolutions as well saturated and lost agreement (0.815).

    ``weight_rounding`` "gptq" re-rounds the integers ORT wrote, layer by layer, so each layer's output on the
    calibration inputs stays close to fp32 (:mod:`harness.techniques._gptq`); the grid, the kernels and the speed
    are ORT's. ``gptq_views`` adds that many random crops of each calibration image to the inputs GPTQ fits on
    (images only). On EfficientNet-Lite0 it lifted top-1 agreement from 0.845 to 0.925 and logit cosine from
    0.985 to 0.997 (docs/usage.md).
    """

    calibration_method: str = "MinMax"
    per_channel: bool = True
    quant_format: str = "QDQ"
    activation_type: str = "QUInt8"
    weight_type: str = "QInt8"
    op_types: tuple[str, ...] | None = ("Conv", "MatMul", "Gemm")
    percentile: float = 99.999  # used by "Percentile" only
    fp32_first_layers: int = 0
    weight_rounding: str = "nearest"
    gptq_views: int = 3  # used by "gptq" only

    def validate(self) -> None:
        super().validate()
        require_int("fp32_first_layers", self.fp32_first_layers, 0)
        require_choice("weight_rounding", self.weight_rounding, WEIGHT_ROUNDINGS)
        require_int("gptq_views", self.gptq_views, 0)
        if self.weight_rounding == "gptq" and self.quant_format != "QDQ":
            raise ConfigError("`weight_rounding` gptq needs `quant_format` QDQ (it re-rounds the integers of the "
                              f"file's DequantizeLinear weights), got {self.quant_format!r}")
        require_choice("calibration_method", self.calibration_method, CALIBRATION_METHODS)
        _require_bool("per_channel", self.per_channel)
        require_choice("quant_format", self.quant_format, QUANT_FORMATS)
        require_choice("activation_type", self.activation_type, INT8_TYPES)
        require_choice("weight_type", self.weight_type, INT8_TYPES)
        if self.activation_type == "QInt8" and self.weight_type == "QUInt8":
            raise ConfigError("`weight_type` QUInt8 needs `activation_type` QUInt8; ORT has no s8 × u8 kernels")
        if self.op_types is not None:
            _require_op_types("op_types", self.op_types, None)
        require_range("percentile", self.percentile, 90.0, 100.0, low_open=True)

    def requirements(self) -> tuple[str, ...]:
        # Keeping early layers in float is meant for convolutional networks, where the first layers read few
        # channels at full resolution; a 3-layer MLP would keep everything in float.
        return ("conv",) if self.fp32_first_layers else ()

    def depthwise_full_range(self, reduce_range: bool) -> bool:
        """Whether depthwise convolutions keep the 8-bit grid while the rest gets 7 bits: where ``reduce_range``
        was left to the machine (None) and this one needs it. Their kernel widens to 16 bits and cannot saturate
        (:func:`_ort_quant.is_depthwise`); an explicit ``reduce_range=True`` gives every weight 7 bits."""
        return reduce_range and self.reduce_range is None

    def not_applicable(self, spec: ModelSpec, traits: Traits) -> str | None:
        n = self.fp32_first_layers
        if n and traits.layers is not None and traits.layers <= n:
            return f"needs more than {n} weighted layers to leave {n} in float (it has {traits.layers})"
        return super().not_applicable(spec, traits)


@dataclasses.dataclass(frozen=True)
class OrtStaticInt8LargeConfig(OrtStaticInt8Config):
    """ORT static int8 in the large job only (``pytest -m large``): settings whose calibration costs minutes on an
    ImageNet-sized network (GPTQ over several crops of each calibration photograph)."""

    large: ClassVar[bool] = True


@register_technique(OrtStaticInt8LargeConfig)
@register_technique(OrtStaticInt8Config)
def ort_static_int8(reference: Reference, config: OrtStaticInt8Config, ctx: Context) -> Artifact:
    """Export the reference, calibrate on ``reference.calibration_inputs()`` (training split), quantize; cached."""
    fp32 = reference_onnx(reference, ctx)
    calibration = reference.calibration_inputs()
    # u8 activations × s8 weights is the only pairing that saturates; s8 × s8 and u8 × u8 do not.
    reduce_range = config.activation_type == "QUInt8" and config.resolved_reduce_range(config.weight_type)
    # Where reduce_range is this machine's choice, depthwise convolutions keep 8 bits: a file that has some differs.
    depthwise = (("depthwise 8-bit",) if config.depthwise_full_range(reduce_range)
                 and _ort_quant.has_depthwise(fp32) else ())
    key = artifact_key(reference, config, fp32.stem, ort_recipe(), len(calibration[0]), _ort_quant.CALIBRATION_BATCH,
                        reduce_range, *((source_hash(_gptq.refine),) if config.weight_rounding == "gptq" else ()),
                        *depthwise)
    path = ctx.cache.get_or_create(ctx.cache.path("quantized", key, ".onnx"),
                                   lambda tmp: write_int8(reference, config, ctx, tmp), validate_onnx)
    proof = {**_ort_quant.int8_proof(path, ctx.threads), "reduce_range": float(reduce_range),
             "depthwise_8bit": float(_ort_quant.depthwise_8bit(path))}
    return Artifact(ArtifactKind.ONNX_MODEL, Precision.INT8, key=key, onnx_path=path, proof=proof,
                    machine_choices=reduce_range_choice(config, reduce_range))


def write_int8(reference: Reference, config: _OrtInt8Config, ctx: Context, dst: Path,
               exclude: _ort_quant.Exclude | None = None) -> None:
    """Write ``config``'s int8 file of ``reference`` to ``dst``, leaving the nodes ``exclude`` picks in float (the
    gate benchmark's "MatMul left fp32" regression; the techniques exclude nothing)."""
    fp32 = reference_onnx(reference, ctx)
    if isinstance(config, OrtDynamicInt8Config):
        dynamic_int8(fp32, dst, reference, config, exclude)
        return
    if not isinstance(config, OrtStaticInt8Config):
        raise TypeError(f"write_int8 takes an ORT int8 config, got {type(config).__name__}")
    if config.fp32_first_layers:
        exclude = _with_first_layers(config.fp32_first_layers, exclude)
    reduce_range = config.activation_type == "QUInt8" and config.resolved_reduce_range(config.weight_type)
    calibration = reference.calibration_inputs()

    def gptq(pre: Path) -> None:
        # The validation split picks each layer's damping; a model without one picks on its calibration inputs.
        n_val = min(len(reference.splits.val), reference.spec.calibration_size)
        held_out = reference.splits.val.batch(0, n_val) if n_val else calibration
        qmin, qmax = weight_grid(config.weight_type, reduce_range)
        full = weight_grid(config.weight_type, False) if config.depthwise_full_range(reduce_range) else None
        _gptq.refine(pre, dst, _gptq.views(calibration, config.gptq_views),
                     _gptq.views(held_out, config.gptq_views, seed=1), reference.spec.input_names,
                     qmin=qmin, qmax=qmax, depthwise_grid=full)

    _ort_quant.quantize_static(
        fp32, dst, calibration, reference.spec.input_names,
        calibration_method=config.calibration_method, per_channel=config.per_channel,
        quant_format=config.quant_format, activation_type=config.activation_type, weight_type=config.weight_type,
        op_types=config.op_types, percentile=config.percentile, reduce_range=reduce_range, exclude=exclude,
        then=gptq if config.weight_rounding == "gptq" else None,
        depthwise_full_range=config.depthwise_full_range(reduce_range),
    )


def weight_grid(weight_type: str, reduce_range: bool) -> tuple[int, int]:
    """The integers ORT's static quantizer gives weights: s8 symmetric (-127..127), u8 asymmetric (0..255), and
    with ``reduce_range`` 7 bits (-64..64, 0..127)."""
    if weight_type == "QInt8":
        return (-64, 64) if reduce_range else (-127, 127)
    return (0, 127) if reduce_range else (0, 255)


def first_weighted_layers(model: onnx.ModelProto, n: int) -> list[str]:
    """Names of the first ``n`` Conv, Gemm and MatMul nodes whose weight is a constant, in graph order; a one-line
    error where the graph holds fewer (all of them in float would be no int8 model)."""
    weighted = [node.name for node, _ in _ort_quant.weighted_nodes(model, ("Conv", "Gemm", "MatMul"))]
    if n >= len(weighted):
        raise ConfigError(f"`fp32_first_layers` must leave a layer to quantize: the graph has {len(weighted)} "
                          f"weighted layers, got {n}")
    return weighted[:n]


def _with_first_layers(n: int, exclude: _ort_quant.Exclude | None) -> _ort_quant.Exclude:
    def rule(model: onnx.ModelProto) -> list[str]:
        return [*first_weighted_layers(model, n), *(exclude(model) if exclude is not None else [])]
    return rule


# --- half precision -------------------------------------------------------------------------------------------------

_HALF_DTYPES = {"fp16": (torch.float16, Precision.FP16), "bf16": (torch.bfloat16, Precision.BF16)}


@dataclasses.dataclass(frozen=True)
class HalfPrecisionConfig(TechniqueConfig):
    """Every float parameter and buffer cast to fp16 or bf16; integer inputs (token ids) are left as they are."""

    dtype: str = "bf16"
    technique = "quantization"

    def validate(self) -> None:
        super().validate()
        require_choice("dtype", self.dtype, tuple(_HALF_DTYPES))

    @property
    def output_kind(self) -> ArtifactKind:
        return ArtifactKind.TORCH_MODULE

    @property
    def precision(self) -> Precision:
        return _HALF_DTYPES[self.dtype][1]


@register_technique(HalfPrecisionConfig)
def half_precision(reference: Reference, config: HalfPrecisionConfig, ctx: Context) -> Artifact:
    """A copy of the reference in the half dtype; proof is the share of float parameters now in it."""
    dtype, precision = _HALF_DTYPES[config.dtype]
    module = copy.deepcopy(reference.module).to(dtype).eval()
    floats = [p for p in module.parameters() if p.is_floating_point()]
    share = sum(p.numel() for p in floats if p.dtype == dtype) / max(1, sum(p.numel() for p in floats))
    return Artifact(ArtifactKind.TORCH_MODULE, precision, key=artifact_key(reference, config, torch.__version__),
                    module=module, proof={"half_params_share": share})


# --- presets of the "quantization" suite -----------------------------------------------------------------------------

for _preset in (
    TorchDynamicInt8Config(name="torch_dynamic_int8"),
    HalfPrecisionConfig(name="bf16", dtype="bf16"),
    HalfPrecisionConfig(name="fp16", dtype="fp16"),  # only CUDA backends run fp16, so it has no CPU cases
    OrtDynamicInt8Config(name="ort_dynamic_int8_per_tensor", per_channel=False),
    OrtDynamicInt8Config(name="ort_dynamic_int8_per_channel", per_channel=True),
    # The same with SmoothQuant's activation smoothing at alpha 0.7 (the int8 search's pick on MiniLM): MiniLM's
    # mean cosine 0.9973 against 0.9923, every MatMul still in int8 (docs/search.md).
    OrtDynamicInt8Config(name="ort_dynamic_int8_smooth", per_channel=True, smooth_alpha=0.7),
    # Shows the trap: ConvInteger made a ResNet on 32x32 inputs ~4x slower than fp32 on AVX2 without VNNI.
    OrtDynamicInt8Config(name="ort_dynamic_int8_conv", per_channel=False, op_types=("Conv", "MatMul", "Gemm")),
    OrtStaticInt8Config(name="ort_static_int8_minmax", calibration_method="MinMax"),
    # Percentile rather than Entropy: Entropy through quantize_static equals MinMax (see OrtStaticInt8Config).
    OrtStaticInt8Config(name="ort_static_int8_percentile", calibration_method="Percentile"),
    # Every op ORT quantizes (the ReLU6 clips and residual adds too: with Conv alone each conv's output is
    # quantized over its range before the clip) and the first three layers in float: on EfficientNet-Lite0 top-1
    # agreement 0.835 against 0.48 for ort_static_int8_minmax (docs/usage.md).
    OrtStaticInt8Config(name="ort_static_int8_first3_fp32", op_types=None, fp32_first_layers=3),
    # The same graph with GPTQ's rounding and ranges at the 99.99th percentile (the residual stream's outliers set
    # MinMax's step): on EfficientNet-Lite0 top-1 agreement 0.955 against 0.84 (depthwise weights on 8 bits in both).
    OrtStaticInt8Config(name="ort_static_int8_gptq", op_types=None, fp32_first_layers=3, weight_rounding="gptq",
                        calibration_method="Percentile", percentile=99.99),
    # Quality first: five float first layers and GPTQ fitted on 6 crops of each calibration photograph. Its contract
    # is the 0.97 top-1 agreement EfficientNet-Lite0 is held to. Measured side by side on an AVX-512 VNNI runner
    # (8-bit weights): top-1 agreement 0.98 at 1.86x against ort_static_int8_gptq's 0.965 at 2.00x (docs/usage.md).
    OrtStaticInt8LargeConfig(name="ort_static_int8_gptq_f5", op_types=None, fp32_first_layers=5,
                             weight_rounding="gptq", calibration_method="Percentile", percentile=99.99, gptq_views=6,
                             min_quality_retention=0.97),
):
    register_preset(SUITE, _preset)
