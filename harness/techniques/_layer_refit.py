"""Layer-wise least-squares refit of a pruned BERT-style encoder's output projections, before any fine-tune.

Removing heads or FFN channels takes their contribution out of the sums that the attention output projection and
the FFN output projection compute. Kwon et al., "A Fast Post-Training Pruning Framework for Transformers" (NeurIPS
2022), recover most of it without training by fitting the kept units' weights again, layer by layer, so each
layer's output reproduces the unpruned one's. Here the unit is the whole projection: layer by layer, first the
attention output then the FFN output, its weight and bias are solved in closed form (ridge least squares over the
real tokens of a set of sentences) so that, on the pruned model's *own* inputs to it (earlier layers already
refit, so their errors are corrected rather than compounded), ``dense(x) + residual`` — what the projection's
LayerNorm normalises — equals the teacher's. On all-MiniLM-L6-v2 pruned 33 % of heads and 30 % of FFN channels,
this alone lifts the test cosine to the unpruned embeddings from 0.781 to 0.921 (4,096 sentences; docs/pruning.md).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from harness.errors import TechniqueError
from harness.techniques._embedding_finetune import (
    FINETUNE_SEED,
    EncoderFineTuneConfig,
    corpus_splits,
    distil_embeddings,
)
from harness.techniques._encoder import layer_list, trim
from harness.training import reproducible
from model_zoo.reference import Reference

BATCH = 64
RIDGE = 1e-2  # the ridge term, as a share of the mean diagonal of XᵀX: keeps rarely active channels' weights small


class _Reached(Exception):
    """Raised by a hook to end a forward pass once the sub-module it watches has been given its inputs."""


def projections(module: nn.Module) -> list[nn.Module]:
    """Per layer, in order: the attention output block then the FFN output block (HF BERT's ``attention.output``
    and ``output``: ``LayerNorm(dropout(dense(x)) + residual)``)."""
    out = []
    for layer in layer_list(module)[2]:
        for name in ("attention.output", "output"):
            try:
                block = layer.get_submodule(name)
            except AttributeError:
                raise TechniqueError(f"{type(layer).__name__} has no `{name}` block (BERT-style layers only)") from None
            if not isinstance(getattr(block, "dense", None), nn.Linear):
                raise TechniqueError(f"{type(layer).__name__}.{name} has no `dense` Linear projection")
            out.append(block)
    return out


Call = tuple[tuple[object, ...], dict[str, object]]  # the positional and keyword arguments of one layer call


def _calls_into(model: nn.Module, layer: nn.Module, batches: list[tuple[torch.Tensor, ...]]) -> list[Call]:
    """For each batch, the arguments ``model``'s forward pass calls ``layer`` with (the pass ends there)."""
    seen: list[Call] = []

    def hook(_m: nn.Module, args: tuple[object, ...], kwargs: dict[str, object]) -> None:
        seen.append((args, kwargs))
        raise _Reached

    handle = layer.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        with torch.inference_mode():
            for inputs in batches:
                with contextlib.suppress(_Reached):
                    model(*inputs)
    finally:
        handle.remove()
    if len(seen) != len(batches):
        raise TechniqueError(f"{type(layer).__name__} did not run in the model's forward pass")
    return seen


def _advance(layer: nn.Module, calls: list[Call]) -> list[Call]:
    """The calls into the next layer: each call's hidden states replaced by ``layer``'s output on them (the
    encoder passes every layer the same mask and settings)."""
    out: list[Call] = []
    with torch.inference_mode():
        for args, kwargs in calls:
            y = layer(*args, **kwargs)
            y = y[0] if isinstance(y, tuple) else y
            out.append(((y, *args[1:]), kwargs) if args else ((), {**kwargs, "hidden_states": y}))
    return out


def _block_inputs(layer: nn.Module, block: nn.Module, calls: list[Call], masks: list[torch.Tensor]
                  ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """For each call of ``layer``, ``block``'s (input to ``dense``, residual) at the real tokens (``masks``); the
    layer's pass ends at the block."""
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    mask: list[torch.Tensor] = []

    def hook(_m: nn.Module, args: tuple[torch.Tensor, ...], kwargs: dict[str, torch.Tensor]) -> None:
        values = [*args, *(kwargs[k] for k in ("hidden_states", "input_tensor") if k in kwargs)]
        seen.append((values[0][mask[0]], values[1][mask[0]]))
        raise _Reached

    handle = block.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        with torch.inference_mode():
            for (args, kwargs), real in zip(calls, masks, strict=True):
                mask[:] = [real.bool()]
                seen.clear()
                with contextlib.suppress(_Reached):
                    layer(*args, **kwargs)
                if not seen:
                    raise TechniqueError(f"{type(block).__name__} did not run in its layer's forward pass")
                yield seen[0]
    finally:
        handle.remove()


def _solve(gram: torch.Tensor, cross: torch.Tensor, ridge: float) -> torch.Tensor:
    """[Wᵀ; b] (float64) minimising ‖[x 1]·[Wᵀ; b] − y‖² + ridge·mean(diag)·‖W‖², from the sums ``gram`` =
    Σ [x 1]ᵀ[x 1] and ``cross`` = Σ [x 1]ᵀ y (float64)."""
    damped = gram.clone()
    n = gram.shape[0] - 1
    damped[range(n), range(n)] += ridge * gram.diagonal()[:n].mean()
    return torch.linalg.solve(damped, cross)


def refit_projections(pruned: nn.Module, teacher: nn.Module, inputs: tuple[torch.Tensor, ...],
                      layer_map: tuple[int, ...], ridge: float = RIDGE) -> dict[str, float]:
    """Refit ``pruned``'s output projections in place (see the module docstring) on the token ``inputs``, its layer
    i against the teacher's layer ``layer_map[i]``; its figures: the mean over projections of the relative squared
    error of the pre-LayerNorm sum before and after."""
    order = torch.argsort(inputs[-1].sum(dim=1), stable=True)  # batches of similar length: less padding
    batches = [trim(tuple(t[order[i:i + BATCH]] for t in inputs)) for i in range(0, len(order), BATCH)]
    every, ours = projections(teacher), projections(pruned)
    if len(layer_map) != len(ours) // 2 or any(not 0 <= i < len(every) // 2 for i in layer_map):
        raise TechniqueError(f"`layer_map` {list(layer_map)} must name a teacher layer 0-{len(every) // 2 - 1} for "
                             f"each of the model's {len(ours) // 2} layers")
    teacher.eval()
    pruned.eval()
    masks = [b[-1] for b in batches]
    their_layers, our_layers = layer_list(teacher)[2], layer_list(pruned)[2]
    # Each layer is run from its cached input, not from the embeddings again: the teacher's mapped layers' inputs
    # once, the pruned model's layer by layer as it is refit (the same operations a whole forward pass does).
    theirs: dict[int, list[Call]] = {}
    calls = _calls_into(teacher, their_layers[0], batches)
    for j in range(max(layer_map) + 1):
        if j in layer_map:
            theirs[j] = calls
        if j < max(layer_map):
            calls = _advance(their_layers[j], calls)
    ours_calls = _calls_into(pruned, our_layers[0], batches)
    before, after = [], []
    for i, j in enumerate(layer_map):
        for part in (0, 1):
            t_block, p_block = every[2 * j + part], ours[2 * i + part]
            targets = [(t_block.dense(x) + r) for x, r in _block_inputs(their_layers[j], t_block, theirs[j], masks)]
            width = p_block.dense.in_features + 1
            gram = torch.zeros(width, width, dtype=torch.float64)
            cross = torch.zeros(width, p_block.dense.out_features, dtype=torch.float64)
            err = scale = squares = 0.0
            for (x, r), z in zip(_block_inputs(our_layers[i], p_block, ours_calls, masks), targets, strict=True):
                x1 = torch.cat([x, torch.ones(len(x), 1)], dim=1).double()
                y = (z - r).double()
                gram += x1.T @ x1
                cross += x1.T @ y
                squares += float(y.pow(2).sum())
                err += float((p_block.dense(x) + r - z).pow(2).sum())
                scale += float(z.pow(2).sum())
            solution = _solve(gram, cross, ridge)
            with torch.no_grad():
                p_block.dense.weight.copy_(solution[:-1].T)
                p_block.dense.bias.copy_(solution[-1])
            # ‖X1·S − Y‖² from the sums: tr(SᵀGS) − 2·tr(SᵀC) + ‖Y‖²
            fitted = float((solution * (gram @ solution)).sum() - 2 * (solution * cross).sum()) + squares
            before.append(err / max(scale, 1e-30))
            after.append(max(fitted, 0.0) / max(scale, 1e-30))
        if i + 1 < len(layer_map):
            ours_calls = _advance(our_layers[i], ours_calls)
    return {"refit_error_before": sum(before) / len(before), "refit_error_after": sum(after) / len(after)}


def recover(module: nn.Module, reference: Reference, config: EncoderFineTuneConfig, label: str,
            layer_map: tuple[int, ...]) -> tuple[nn.Module, dict[str, float]]:
    """A smaller encoder brought back toward ``reference``'s: its output projections refit on the first
    ``config.refit_sentences`` corpus sentences (none where 0), then fine-tuned for ``config.epochs`` (none where 0)
    by :func:`harness.techniques._embedding_finetune.distil_embeddings`; its figures, both steps'."""
    figures: dict[str, float] = {}
    if config.refit_sentences:
        inputs = corpus_splits(reference.spec, reference.splits.test, config.refit_sentences, 1).train.inputs
        with reproducible(FINETUNE_SEED):
            figures = refit_projections(module, reference.module, inputs, layer_map)
        before = figures["refit_error_before"]
        figures["refit_error_ratio"] = figures["refit_error_after"] / before if before > 0 else float("nan")
    if not config.epochs:
        return module, figures
    module, trained = distil_embeddings(module, reference.module, reference.spec, reference.splits.test,
                                        config.finetune, label, layer_map)
    return module, {**figures, **trained}
