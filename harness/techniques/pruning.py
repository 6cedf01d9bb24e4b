"""Pruning: unstructured magnitude pruning (per layer or global, ``torch.nn.utils.prune``) and structured channel
pruning (Torch-Pruning's dependency graph), each optionally fine-tuned through the harness's training loop.

What is recorded is what happened, never what the config asked for: sparsity counted from the final weights,
channels and parameters removed counted from the final shapes, MACs of both models counted by Torch-Pruning, and
the serialized size of the artifact compressed (where unstructured sparsity pays: a download, not dense latency).
"""

from __future__ import annotations

import copy
import dataclasses
import io
import zlib
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn
from torch.nn.utils import prune

from harness.artifact import Artifact, ArtifactKind, weights_digest
from harness.cache import make_key, source_hash
from harness.config import require_choice, require_int, require_range
from harness.core import Expectation
from harness.errors import ConfigError, TechniqueError
from harness.techniques.base import Context, TechniqueConfig, register_preset, register_technique
from harness.techniques.chain import ChainConfig
from harness.techniques.quantization import OrtStaticInt8Config
from harness.training import fit, reproducible
from model_zoo.reference import Reference
from model_zoo.spec import TrainRecipe

METHODS = ("l1_unstructured", "global_unstructured", "structured")
IMPORTANCES = ("magnitude", "l1", "taylor")
PRUNABLE = (nn.Linear, nn.Conv2d)
FINETUNE_SEED = 0


def prunable_layers(module: nn.Module) -> list[tuple[str, nn.Module]]:
    """The Linear and Conv2d layers whose weights pruning acts on, by name."""
    return [(name, m) for name, m in module.named_modules() if isinstance(m, PRUNABLE)]


def sparsity(module: nn.Module) -> tuple[float, dict[str, float]]:
    """Share of exact zeros in the prunable layers' weights, overall and per layer, counted from the weights."""
    zeros = total = 0
    per_layer: dict[str, float] = {}
    for name, layer in prunable_layers(module):
        w = layer.weight.detach()
        z = int((w == 0).sum())
        per_layer[name] = z / w.numel()
        zeros, total = zeros + z, total + w.numel()
    return (zeros / total if total else 0.0), per_layer


def channels(module: nn.Module) -> int:
    """Output channels (Conv2d) and features (Linear) summed over the prunable layers but the last (the output
    layer keeps its classes): what structured pruning cuts."""
    layers = prunable_layers(module)[:-1]
    return sum(m.out_channels if isinstance(m, nn.Conv2d) else m.out_features for _, m in layers)


def compressed_bytes(module: nn.Module) -> int:
    """The serialized state_dict compressed with zlib (default level): what a download would cost."""
    buf = io.BytesIO()
    torch.save(module.state_dict(), buf)
    return len(zlib.compress(buf.getvalue()))


def macs(module: nn.Module, example: tuple[torch.Tensor, ...]) -> float:
    """Multiply-accumulates of one forward pass at batch 1, counted by Torch-Pruning."""
    import torch_pruning as tp

    with torch.no_grad():
        count, _ = tp.utils.count_ops_and_params(module, example[0] if len(example) == 1 else example)
    return float(count)


@dataclasses.dataclass(frozen=True)
class PruningConfig(TechniqueConfig):
    """Prune ``sparsity`` of the weights (unstructured) or of the channels (structured), then fine-tune.

    Contract: the measured sparsity (or share of channels removed) is within ``sparsity_tolerance`` of the target,
    and the quality contract (``min_quality_retention``) as for every technique.
    """

    sparsity: float = 0.5
    method: str = "l1_unstructured"
    importance: str = "magnitude"  # structured only: magnitude (L2), l1, taylor (first-order, from a batch's loss)
    finetune_epochs: int = 0
    finetune_lr: float = 1e-3
    sparsity_tolerance: float = 0.01
    min_speedup: float = 0.0  # a speed claim: batch-1 speedup, interleaved with the reference (0: none)
    backends: tuple[str, ...] = ()  # backends it runs on (empty: every backend that takes a torch module)
    # Which models by the work of a call (model_zoo.traits.HEAVY_MACS): "heavy" ones where compute sets the
    # latency (speed claims), "light" ones where a call's fixed overhead does, or "any".
    weight: str = "any"
    technique: ClassVar[str] = "pruning"
    report_section: ClassVar[str] = "pruning"

    def validate(self) -> None:
        super().validate()
        require_range("sparsity", self.sparsity, 0.0, 1.0, high_open=True)
        require_choice("method", self.method, METHODS)
        require_choice("importance", self.importance, IMPORTANCES)
        require_int("finetune_epochs", self.finetune_epochs, 0)
        require_range("finetune_lr", self.finetune_lr, 0.0, 1.0, low_open=True)
        require_range("min_speedup", self.min_speedup, 0.0, 100.0)
        require_choice("weight", self.weight, ("any", "heavy", "light"))
        if self.min_speedup and not self.structured:
            raise ConfigError("`min_speedup` needs method 'structured': dense kernels do not skip zeros")
        if self.importance == "taylor" and not self.structured:
            raise ConfigError("`importance` 'taylor' ranks channels for method 'structured'; unstructured pruning "
                              "ranks weights by magnitude")

    @property
    def output_kind(self) -> ArtifactKind:
        return ArtifactKind.TORCH_MODULE

    @property
    def structured(self) -> bool:
        return self.method == "structured"

    def runs_on(self, backend: str) -> bool:
        return not self.backends or backend in self.backends

    def requirements(self) -> tuple[str, ...]:
        out = ["trainable", "labels"] if self.finetune_epochs else []
        if self.importance == "taylor" and "labels" not in out:
            out.append("labels")  # Taylor importance is the gradient of a labelled batch's loss
        if self.weight != "any":
            out.append(self.weight)
        return tuple(out)

    def expectations(self) -> list[Expectation]:
        metric = "proof.channels_removed" if self.structured else "proof.sparsity"
        out = [
            *super().expectations(),
            Expectation("sparsity_at_target_low", metric, ">=", self.sparsity - self.sparsity_tolerance),
            Expectation("sparsity_at_target_high", metric, "<=", self.sparsity + self.sparsity_tolerance),
        ]
        if self.min_speedup:
            out.append(Expectation("speedup", "speedup", ">=", self.min_speedup, decision="interval",
                                   unit="timing rounds"))
        return out


def _unstructured(module: nn.Module, config: PruningConfig) -> list[tuple[nn.Module, str]]:
    params = [(m, "weight") for _, m in prunable_layers(module)]
    if config.method == "global_unstructured":
        prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=config.sparsity)
    else:
        for m, name in params:
            prune.l1_unstructured(m, name, amount=config.sparsity)
    return params


def _importance(config: PruningConfig) -> object:
    import torch_pruning as tp

    if config.importance == "taylor":
        return tp.importance.TaylorImportance()
    return tp.importance.MagnitudeImportance(p=1 if config.importance == "l1" else 2)


def _structured(module: nn.Module, config: PruningConfig, reference: Reference) -> None:
    """Remove ``sparsity`` of the channels of every prunable layer but the classifier, through the dependency
    graph, so the layers that consume them shrink too (residual additions included)."""
    import torch_pruning as tp

    example = reference.spec.example_inputs(2)
    last = prunable_layers(module)[-1][1]  # the output layer keeps its classes
    pruner = tp.pruner.MetaPruner(module, example[0] if len(example) == 1 else example,
                                  importance=_importance(config), pruning_ratio=config.sparsity,
                                  ignored_layers=[last])
    if config.importance == "taylor":
        batch = reference.calibration_inputs()
        targets = reference.splits.train.targets
        if targets is None:
            raise ConfigError("`importance` taylor needs a labelled training split; use magnitude or l1")
        module.train()
        loss = nn.functional.cross_entropy(module(*batch), torch.as_tensor(targets[: len(batch[0])]))
        loss.backward()
    pruner.step()
    module.zero_grad(set_to_none=True)
    module.eval()


def _prune(reference: Reference, config: PruningConfig) -> tuple[nn.Module, list[tuple[nn.Module, str]]]:
    """A pruned copy of the reference; unstructured pruning returns its masked parameters (masks still on)."""
    module = copy.deepcopy(reference.module).eval()
    if not prunable_layers(module):
        raise TechniqueError(f"{reference.spec.name} has no prunable layers (Linear or Conv2d); nothing to prune")
    with reproducible(FINETUNE_SEED):
        if config.structured:
            before = {n: (m.out_channels if isinstance(m, nn.Conv2d) else m.out_features)
                      for n, m in prunable_layers(module)}
            _structured(module, config, reference)
            emptied = [n for n, m in prunable_layers(module) if before.get(n) and
                       (m.out_channels if isinstance(m, nn.Conv2d) else m.out_features) == 0]
            if emptied:
                raise ConfigError(f"`sparsity` {config.sparsity} removes every channel of {', '.join(emptied)}")
            return module, []
        return module, _unstructured(module, config)


def _finetune(module: nn.Module, reference: Reference, config: PruningConfig) -> nn.Module:
    recipe = reference.spec.recipe
    assert recipe is not None
    tuned = TrainRecipe(epochs=config.finetune_epochs, lr=config.finetune_lr, batch_size=recipe.batch_size,
                        weight_decay=recipe.weight_decay, seed=FINETUNE_SEED)
    # torch.nn.utils.prune keeps each mask applied in a forward pre-hook: the optimizer moves ``weight_orig``,
    # the model always computes with ``weight_orig * mask``, so pruned weights stay zero while fine-tuning.
    tuned_module, _ = fit(module, tuned, reference.splits, label=f"{reference.spec.name}-{config.name} fine-tuning")
    return tuned_module


def _key(reference: Reference, config: PruningConfig) -> str:
    fields = {k: v for k, v in config.to_dict().items() if k not in ("name", "min_quality_retention",
                                                                      "sparsity_tolerance", "weight")}
    return make_key("pruned", reference.key, fields, source_hash(_prune), torch.__version__)


def pruned_module(reference: Reference, config: PruningConfig, ctx: Context) -> nn.Module:
    """The pruned (and fine-tuned) model with plain weights; fine-tuned weights come from the cache when they can.

    The structure is made again every time (pruning is deterministic and takes milliseconds); the cache holds the
    fine-tuned state, which must fit that structure exactly or it is rebuilt."""
    module, masked = _prune(reference, config)
    if config.finetune_epochs:
        path = ctx.cache.path("pruned", _key(reference, config), ".pt")
        loaded: list[nn.Module] = []

        def create(tmp: Path) -> None:
            tuned = _finetune(module, reference, config)
            for m, name in masked:  # the masks become permanent: plain weights with zeros
                prune.remove(m, name)
            torch.save(tuned.state_dict(), tmp)

        def validate(candidate: Path) -> None:
            target, target_masked = _prune(reference, config)
            for m, name in target_masked:
                prune.remove(m, name)
            target.load_state_dict(torch.load(candidate, map_location="cpu", weights_only=True), strict=True)
            loaded[:] = [target.eval()]

        ctx.cache.get_or_create(path, create, validate)
        return loaded[-1]
    for m, name in masked:
        prune.remove(m, name)  # the mask becomes permanent: plain weights with zeros
    return module


REFERENCE_FIGURES_MEMO = "pruning reference figures"  # the run's memo store (ctx.memos) of MACs and sizes


def _reference_figures(reference: Reference, ctx: Context) -> tuple[float, float]:
    """The reference's MACs and compressed size, once per reference and run (every pruning case needs them)."""
    memo = ctx.memos.store(REFERENCE_FIGURES_MEMO)
    key = f"{reference.key}:{reference.weights_digest}"
    if key not in memo:
        example = reference.spec.example_inputs(1)
        memo[key] = (macs(reference.module, example), float(compressed_bytes(reference.module)))
    figures: tuple[float, float] = memo[key]
    return figures


@register_technique(PruningConfig)
def apply_pruning(reference: Reference, config: PruningConfig, ctx: Context) -> Artifact:
    module = pruned_module(reference, config, ctx)
    example = reference.spec.example_inputs(1)
    measured, per_layer = sparsity(module)
    ref_params = sum(p.numel() for p in reference.module.parameters())
    params = sum(p.numel() for p in module.parameters())
    ref_macs, ref_compressed = _reference_figures(reference, ctx)
    pruned_macs = macs(module, example)
    proof = {
        "sparsity": measured,
        "channels_removed": 1.0 - channels(module) / max(channels(reference.module), 1),
        "params_removed": 1.0 - params / ref_params,
        "macs": pruned_macs,
        "macs_reference": ref_macs,
        "macs_ratio": ref_macs / pruned_macs if pruned_macs else float("nan"),
        "compressed_bytes": float(compressed_bytes(module)),
        "compressed_bytes_reference": ref_compressed,
    }
    digest = weights_digest(module)
    return Artifact(ArtifactKind.TORCH_MODULE, config.precision, key=make_key(_key(reference, config), digest),
                    module=module, proof=proof, weights=digest if config.finetune_epochs else "",
                    details={"sparsity_per_layer": per_layer})


SUITE = "pruning"
_EAGER, _DENSE = ("torch_eager",), ("torch_eager", "onnxruntime")
# The sweep shows quality against measured sparsity; dense kernels run zeros as fast as any weight, so it is timed
# on torch eager, and global pruning on ONNX Runtime too, for heavy models, to show that no dense speedup appears.
# Without fine-tuning a sweep point describes and promises no quality (min_quality_retention 0): over five training
# seeds of digits_resnet, 30 % L1 kept 0.89-0.99 of its reference's accuracy; the baseline still gates its quality.
_SWEEP = {"min_quality_retention": 0.0}
for _s in (0.3, 0.5, 0.7, 0.9):
    register_preset(SUITE, PruningConfig(name=f"l1_unstructured_{int(_s * 100)}", sparsity=_s, backends=_EAGER,
                                         **_SWEEP))
register_preset(SUITE, PruningConfig(name="global_unstructured_70", sparsity=0.7, method="global_unstructured",
                                     backends=_EAGER, **_SWEEP))
register_preset(SUITE, PruningConfig(name="global_unstructured_70_ort", sparsity=0.7, method="global_unstructured",
                                     weight="heavy", backends=("onnxruntime",), **_SWEEP))
# Without fine-tuning only on torch eager: its shapes, and so its speed, are the fine-tuned model's.
register_preset(SUITE, PruningConfig(name="structured_50", sparsity=0.5, method="structured", backends=_EAGER,
                                     **_SWEEP))
# The speed claim is made where compute sets the latency, on every backend (the ResNet measured 1.8-3.2x at batch
# 1, interleaved); on light models a call's fixed overhead dominates and halving the channels measured 1.0-1.6x,
# so they make no claim.
register_preset(SUITE, PruningConfig(name="structured_50_finetuned", sparsity=0.5, method="structured",
                                     finetune_epochs=3, min_speedup=1.4, weight="heavy"))
register_preset(SUITE, PruningConfig(name="structured_50_finetuned_small", sparsity=0.5, method="structured",
                                     finetune_epochs=3, weight="light", backends=_DENSE))

# Prune, fine-tune, then quantize; the quantization suite's ort_static_int8_minmax case is the same step alone.
register_preset(SUITE, ChainConfig(name="structured_50_finetuned.ort_static_int8", steps=(
    PruningConfig(name="structured_50_finetuned", sparsity=0.5, method="structured", finetune_epochs=3,
                  weight="heavy"),
    OrtStaticInt8Config(name="ort_static_int8_minmax", calibration_method="MinMax"),
)))
