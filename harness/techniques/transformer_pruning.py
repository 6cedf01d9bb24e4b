"""Transformer pruning: whole attention heads and feed-forward channels removed from every layer of a BERT-style
encoder, then a short embedding-distillation fine-tune to the fp32 teacher (the one of
:mod:`harness.techniques.embedding_distillation`) to recover.

Which ones go is ranked by importance: ``activation`` — a head's share of the attention output, an FFN channel's
mean |activation| times its output weights' norm, over corpus sentences — or ``magnitude`` — their weights' norms
alone. With ``allocation`` ``uniform`` each layer loses the same number of heads and FFN channels (one shape in
every layer); with ``global`` the same totals go wherever they matter least across the whole encoder, each unit's
activation importance measured against the norm of the pre-LayerNorm sum it is added into (its relative share of
that layer's signal), every layer keeping its most important head and channel. On all-MiniLM-L6-v2 the global plan
takes most from the first layers and spares the last (docs/pruning.md).

The slicing itself is Torch-Pruning's (``prune_linear_out_channels`` and ``prune_linear_in_channels`` on the layer
pairs). Before the fine-tune, each layer's two output projections are refit by least squares to reproduce the
unpruned layer's sums (:mod:`harness.techniques._layer_refit`, after Kwon et al. 2022). What is recorded is counted
from the pruned shapes.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import ClassVar

import torch
from torch import nn

from harness.artifact import Artifact, ArtifactKind, weights_digest
from harness.cache import make_key, source_hash
from harness.config import require_choice, require_range
from harness.core import Expectation
from harness.errors import ConfigError, TechniqueError
from harness.techniques import _layer_refit
from harness.techniques._embedding_finetune import (
    FINETUNE_SEED,
    EncoderFineTuneConfig,
    cached_finetune,
    corpus_splits,
    finetune_key,
    layer_list,
    trim,
)
from harness.techniques._layer_refit import recover
from harness.techniques.base import Context, ReportFigure, register_preset, register_technique
from harness.techniques.chain import ChainConfig
from harness.techniques.quantization import OrtDynamicInt8Config
from harness.training import reproducible
from model_zoo.reference import Reference
from model_zoo.traits import count_macs

IMPORTANCES = ("activation", "magnitude")
ALLOCATIONS = ("uniform", "global")
IMPORTANCE_SENTENCES = 128  # corpus sentences the activation importance is measured on (the fine-tune's first)

Plan = dict[int, tuple[tuple[int, ...], tuple[int, ...]]]  # layer index: (heads removed, FFN channels removed)


@dataclasses.dataclass(frozen=True)
class BertLayer:
    """The Linear layers of one BERT-style layer that head and FFN pruning cut, and its self-attention module."""

    attention: nn.Module  # holds num_attention_heads, attention_head_size, all_head_size
    query: nn.Linear
    key: nn.Linear
    value: nn.Linear
    attention_out: nn.Linear
    ffn_in: nn.Linear
    ffn_out: nn.Linear
    attention_norm: nn.Module  # the LayerNorm of attention_out's output plus the residual
    ffn_norm: nn.Module  # the LayerNorm of ffn_out's output plus the residual

    @property
    def heads(self) -> int:
        return self.query.out_features // self.head_size

    @property
    def head_size(self) -> int:
        return int(self.attention.attention_head_size)

    def head_channels(self, heads: tuple[int, ...]) -> list[int]:
        return [h * self.head_size + i for h in heads for i in range(self.head_size)]


def bert_layers(module: nn.Module) -> list[BertLayer]:
    """Every layer of the encoder as :class:`BertLayer` (HF BERT's layout: attention.self.query/key/value,
    attention.output.dense, intermediate.dense, output.dense)."""
    out = []
    for layer in layer_list(module)[2]:
        try:
            sa = layer.attention.self
            out.append(BertLayer(sa, sa.query, sa.key, sa.value, layer.attention.output.dense,
                                 layer.intermediate.dense, layer.output.dense, layer.attention.output.LayerNorm,
                                 layer.output.LayerNorm))
        except AttributeError as exc:
            raise TechniqueError(f"{type(layer).__name__} is not a BERT-style layer ({exc})") from None
    return out


def _lowest(scores: torch.Tensor, n: int) -> tuple[int, ...]:
    """Indices of the ``n`` lowest scores, ascending by index (ties broken by index: deterministic)."""
    order = sorted(range(len(scores)), key=lambda i: (float(scores[i]), i))
    return tuple(sorted(order[:n]))


def magnitude_scores(layer: BertLayer) -> tuple[torch.Tensor, torch.Tensor]:
    """Per head, the L2 norm of its query, key, value rows and output columns; per FFN channel, of its input row
    and output column."""
    with torch.no_grad():
        qkv = torch.cat([layer.query.weight, layer.key.weight, layer.value.weight], dim=1).pow(2).sum(1)
        per_channel = qkv + layer.attention_out.weight.pow(2).sum(0)
        heads = per_channel.view(layer.heads, layer.head_size).sum(1).sqrt()
        ffn = (layer.ffn_in.weight.pow(2).sum(1) + layer.ffn_out.weight.pow(2).sum(0)).sqrt()
    return heads, ffn


def activation_scores(module: nn.Module, layers: list[BertLayer], inputs: tuple[torch.Tensor, ...],
                      relative: bool = False) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per layer: each head's mean norm of its contribution to the attention output, each FFN channel's mean
    |activation| times its output column's norm, over the real tokens of ``inputs``. With ``relative``, each is
    divided by the mean norm of the pre-LayerNorm sum (projection output plus residual) it is added into, which
    makes units of different layers comparable."""
    mask = trim(inputs)[-1].bool()
    seen: dict[int, torch.Tensor] = {}

    def keep(key: int):  # noqa: ANN202 - a forward pre-hook
        return lambda _m, args: seen.__setitem__(key, args[0][mask])

    watched = [m for lay in layers for m in (lay.attention_out, lay.ffn_out, lay.attention_norm, lay.ffn_norm)]
    handles = [m.register_forward_pre_hook(keep(id(m))) for m in watched]
    try:
        with torch.inference_mode():
            module.eval()(*trim(inputs))
    finally:
        for h in handles:
            h.remove()
    out = []
    for lay in layers:
        ctx_heads = seen[id(lay.attention_out)].view(-1, lay.heads, lay.head_size)  # (tokens, heads, head size)
        w = lay.attention_out.weight.detach().view(-1, lay.heads, lay.head_size)  # (hidden, heads, head size)
        heads = torch.einsum("thd,ohd->tho", ctx_heads, w).norm(dim=2).mean(0)
        ffn = seen[id(lay.ffn_out)].abs().mean(0) * lay.ffn_out.weight.detach().norm(dim=0)
        if relative:
            heads = heads / seen[id(lay.attention_norm)].norm(dim=1).mean()
            ffn = ffn / seen[id(lay.ffn_norm)].norm(dim=1).mean()
        out.append((heads, ffn))
    return out


def check_allocation(importance: str, allocation: str) -> None:
    """A global allocation compares units of all layers by their share of the layer's signal: activations only."""
    if allocation == "global" and importance != "activation":
        raise ConfigError(f"`allocation` global ranks units of all layers by their share of the layer's signal, "
                          f"which needs `importance` activation; got {importance!r}")


def _lowest_across(scores: list[torch.Tensor], total: int, unit: str) -> list[tuple[int, ...]]:
    """Per layer, which of its units are among the ``total`` lowest scores of all layers together; a layer's
    highest-scoring unit is never taken, so no layer is emptied (ties broken by layer, then index)."""
    tops = [int(torch.argmax(s)) for s in scores]
    ranked = sorted((float(s[j]), i, j) for i, s in enumerate(scores) for j in range(len(s)) if j != tops[i])
    if total > len(ranked):
        raise ConfigError(f"the plan removes {total} {unit} where at most {len(ranked)} can go (each layer keeps one); "
                          "expected a lower ratio")
    taken: list[list[int]] = [[] for _ in scores]
    for _, i, j in ranked[:total]:
        taken[i].append(j)
    return [tuple(sorted(t)) for t in taken]


def plan_pruning(module: nn.Module, heads: int, channels: int, importance: str,
                 inputs: tuple[torch.Tensor, ...] | None = None, allocation: str = "uniform") -> Plan:
    """Which heads and FFN channels each layer loses: with ``uniform`` allocation ``heads`` heads and ``channels``
    channels of each layer, its least important ones; with ``global`` as many in all (``heads`` and ``channels``
    times the layers) wherever their relative activation importance is lowest."""
    layers = bert_layers(module)
    check_allocation(importance, allocation)
    if importance == "activation":
        if inputs is None:
            raise ConfigError("`importance` activation needs sentences to measure activations on")
        scores = activation_scores(module, layers, inputs, relative=allocation == "global")
    else:
        scores = [magnitude_scores(lay) for lay in layers]
    if allocation == "global":
        gone_heads = _lowest_across([h for h, _ in scores], heads * len(layers), "heads")
        gone_channels = _lowest_across([f for _, f in scores], channels * len(layers), "FFN channels")
        return {i: (gone_heads[i], gone_channels[i]) for i in range(len(layers))}
    return {i: (_lowest(h, heads), _lowest(f, channels)) for i, (h, f) in enumerate(scores)}


def apply_plan(module: nn.Module, plan: Plan) -> nn.Module:
    """``module`` with exactly the planned heads and FFN channels cut out (in place), through Torch-Pruning."""
    import torch_pruning as tp

    layers = bert_layers(module)
    for i, (heads, channels) in plan.items():
        lay = layers[i]
        if len(heads) >= lay.heads or len(channels) >= lay.ffn_in.out_features:
            raise ConfigError(f"layer {i}: the plan removes every head or every FFN channel")
        cut = lay.head_channels(heads)
        if cut:
            for linear in (lay.query, lay.key, lay.value):
                tp.prune_linear_out_channels(linear, cut)
            tp.prune_linear_in_channels(lay.attention_out, cut)
            lay.attention.num_attention_heads = lay.query.out_features // lay.head_size
            lay.attention.all_head_size = lay.query.out_features
        if channels:
            tp.prune_linear_out_channels(lay.ffn_in, list(channels))
            tp.prune_linear_in_channels(lay.ffn_out, list(channels))
    return module.eval()


def pruned_layer_map(module: nn.Module) -> tuple[int, ...]:
    """Each pruned layer is matched to the teacher's layer of the same index: pruning keeps every layer and the
    hidden size, so layer i's output is meant to stay the teacher's layer i output."""
    return tuple(range(len(bert_layers(module))))


def shape_counts(module: nn.Module) -> tuple[int, int]:
    """Heads and FFN channels the encoder has, summed over its layers, read from the Linear shapes."""
    layers = bert_layers(module)
    return sum(lay.heads for lay in layers), sum(lay.ffn_in.out_features for lay in layers)


@dataclasses.dataclass(frozen=True)
class TransformerPruningConfig(EncoderFineTuneConfig):
    """Remove ``head_ratio`` of the attention heads and ``ffn_ratio`` of the FFN channels (rounded to whole heads
    and channels per layer), ranked by ``importance`` and spread by ``allocation`` (every layer alike, or where they
    matter least across layers), refit the output projections on ``refit_sentences``
    sentences, then fine-tune to the teacher's embeddings.

    Contracts — proof (point): the shares of heads and FFN channels counted from the pruned shapes are the planned
    ones, the refit lowered the projections' error, and the fine-tune lowered the held-out embedding loss.
    Decisions on intervals: mean cosine to the fp32 embeddings of at least ``min_quality_retention``; faster than
    the reference (``min_speedup`` where claimed).
    """

    head_ratio: float = 0.33
    ffn_ratio: float = 0.3
    importance: str = "activation"
    allocation: str = "uniform"
    sentences: int = 16000  # with the defaults, ~7 min on two CPU threads, refit included (docs/pruning.md)
    lr: float = 2e-4
    refit_sentences: int = 4096  # the refit lifts the start from 0.78 to 0.92 test cosine (docs/pruning.md)
    min_epochs: ClassVar[int] = 0  # pruning without the fine-tune is a case too
    technique: ClassVar[str] = "transformer_pruning"
    report_section: ClassVar[str] = "pruning"
    report_figures: ClassVar[tuple[ReportFigure, ...]] = (
        ReportFigure("proof.heads_removed", "heads removed", "{:.0%}"),
        ReportFigure("proof.ffn_channels_removed", "FFN channels removed", "{:.0%}"),
    )

    def validate(self) -> None:
        super().validate()
        require_range("head_ratio", self.head_ratio, 0.0, 1.0, high_open=True)
        require_range("ffn_ratio", self.ffn_ratio, 0.0, 1.0, high_open=True)
        if self.head_ratio == 0 and self.ffn_ratio == 0:
            raise ConfigError("`head_ratio` and `ffn_ratio` are both 0: nothing would be pruned; expected one > 0")
        require_choice("importance", self.importance, IMPORTANCES)
        require_choice("allocation", self.allocation, ALLOCATIONS)
        check_allocation(self.importance, self.allocation)

    def counts(self, heads: int, channels: int) -> tuple[int, int]:
        """Heads and FFN channels each layer of ``heads`` heads and ``channels`` channels loses."""
        return round(self.head_ratio * heads), round(self.ffn_ratio * channels)

    def expectations(self) -> list[Expectation]:
        out = [*super().expectations()]
        for metric, ratio in (("proof.heads_removed", self.head_ratio), ("proof.ffn_channels_removed", self.ffn_ratio)):
            out.append(Expectation(f"{metric.split('.')[1]}_planned_low", metric, ">=", metric_floor(metric, ratio)))
            out.append(Expectation(f"{metric.split('.')[1]}_planned_high", metric, "<=", metric_ceiling(metric, ratio)))
        if self.epochs:
            out.append(Expectation("finetune_lowered_loss", "proof.loss_ratio", "<", 1.0))
        out.append(Expectation("faster_than_teacher", "speedup", ">", 1.0, decision="interval", unit="timing rounds"))
        if self.min_speedup:
            out.append(Expectation("speedup", "speedup", ">=", self.min_speedup, decision="interval",
                                   unit="timing rounds"))
        return out


# Rounding to whole heads (12 a layer: steps of 1/12) moves the share removed by up to half a step.
HEAD_STEP = 1 / 24


def metric_floor(metric: str, ratio: float) -> float:
    return max(ratio - HEAD_STEP, 0.0) if "heads" in metric else max(ratio - 0.005, 0.0)


def metric_ceiling(metric: str, ratio: float) -> float:
    return ratio + HEAD_STEP if "heads" in metric else ratio + 0.005


def pruned_structure(reference: Reference, config: TransformerPruningConfig) -> nn.Module:
    """The reference with the planned heads and channels removed, not yet fine-tuned (deterministic)."""
    module = copy.deepcopy(reference.module).eval()
    first = bert_layers(module)[0]
    heads, channels = config.counts(first.heads, first.ffn_in.out_features)
    inputs = None
    if config.importance == "activation":
        inputs = corpus_splits(reference.spec, reference.splits.test, IMPORTANCE_SENTENCES, 1).train.inputs
    with reproducible(FINETUNE_SEED):
        plan = plan_pruning(module, heads, channels, config.importance, inputs, config.allocation)
    return apply_plan(module, plan)


@register_technique(TransformerPruningConfig)
def apply_transformer_pruning(reference: Reference, config: TransformerPruningConfig, ctx: Context) -> Artifact:
    """The pruned encoder, fine-tuned to the reference's embeddings (or from the cache); its proof is counted from
    the shapes of the module returned."""
    teacher = reference.module
    label = f"{reference.spec.name}-{config.name} fine-tuning"
    key = finetune_key(reference, config, source_hash(_layer_refit))
    module, figures = cached_finetune(
        ctx, key, lambda: pruned_structure(reference, config),
        lambda pruned: recover(pruned, reference, config, label, pruned_layer_map(pruned)))
    ref_heads, ref_channels = shape_counts(teacher)
    heads, channels = shape_counts(module)
    example = reference.spec.example_inputs(1)
    ref_macs, macs = count_macs(teacher, example), count_macs(module, example)
    params = sum(p.numel() for p in module.parameters())
    proof = {**figures, "heads_removed": 1 - heads / ref_heads, "ffn_channels_removed": 1 - channels / ref_channels,
             "channels_removed": 1 - (heads * bert_layers(module)[0].head_size + channels)
             / (ref_heads * bert_layers(teacher)[0].head_size + ref_channels),
             "params_removed": 1 - params / sum(p.numel() for p in teacher.parameters()),
             "macs": macs, "macs_reference": ref_macs, "macs_ratio": ref_macs / macs}
    digest = weights_digest(module)
    return Artifact(ArtifactKind.TORCH_MODULE, config.precision, key=make_key(key, digest), module=module,
                    proof=proof, weights=digest if config.epochs or config.refit_sentences else "")


SUITE = "pruning"
HEADS_FFN_30 = TransformerPruningConfig(name="heads_ffn_30_finetuned", head_ratio=0.33, ffn_ratio=0.3,
                                        allocation="global")
register_preset(SUITE, HEADS_FFN_30)
# Then ORT dynamic int8 with per-channel weights; the chain promises the product of its steps' promises, 0.98.
register_preset(SUITE, ChainConfig(name="heads_ffn_30_finetuned.ort_dynamic_int8", min_quality_retention=0.98,
                                   steps=(HEADS_FFN_30, OrtDynamicInt8Config(name="ort_dynamic_int8_per_channel",
                                                                             per_channel=True))))
