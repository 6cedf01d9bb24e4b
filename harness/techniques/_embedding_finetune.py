"""The one fine-tune of a smaller sentence encoder against its teacher: cosine to the teacher's sentence embeddings
plus per-layer hidden-state matching, on the committed text corpus (:mod:`model_zoo.corpus`, never its held-out
pool), run through the harness's own training loop (:func:`harness.training.fit`) with a hook that supplies the
loss. Both smaller MiniLM encoders use it: the layer-dropping student (:mod:`harness.techniques.
embedding_distillation`) and the head/FFN-pruned encoder (:mod:`harness.techniques.transformer_pruning`).
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn

from harness import training as training_loop
from harness.artifact import ArtifactKind
from harness.cache import make_key, source_hash
from harness.config import require_int, require_range
from harness.core import Expectation
from harness.errors import CacheError, ConfigError, TechniqueError
from harness.techniques._encoder import layer_list, trim
from harness.techniques.base import Context, TechniqueConfig
from harness.training import Hook, fit, reproducible
from model_zoo import corpus
from model_zoo.datasets import Tokenizer
from model_zoo.reference import Reference
from model_zoo.spec import InputKind, Inputs, ModelSpec, Split, Splits, Task, TrainRecipe
from model_zoo.traits import Traits

logger = logging.getLogger(__name__)

TRANSFORMER = "transformer"  # the ModelSpec tag of a BERT-style encoder (a ModuleList of layers with attention)
EMBED_BATCH = 128
FINETUNE_SEED = 0
NAMESPACE = "embedding_distilled"
# Settings that change no weights: left out of cache keys, so a changed contract does not retrain.
CONTRACT_FIELDS = ("name", "min_quality_retention", "min_speedup", "backends")


# --- the corpus ------------------------------------------------------------------------------------------------------

def text_tokenizer(spec: ModelSpec) -> Tokenizer | None:
    """The tokenizer the model's spec declares (``ModelSpec.tokenizer``), or None where it declares none."""
    return spec.tokenizer() if callable(spec.tokenizer) else None


def text_model_missing(spec: ModelSpec, traits: Traits) -> str | None:
    """Why a technique that fine-tunes a sentence encoder on text does not apply to ``spec``, or None."""
    if traits.task is not Task.EMBEDDING or traits.input_kind is not InputKind.TOKENS:
        return "needs a sentence-embedding model reading token ids"
    if TRANSFORMER not in spec.tags:
        return f"needs a transformer encoder (ModelSpec tag {TRANSFORMER!r})"
    if not callable(spec.tokenizer):
        return "needs its tokenizer to read the text corpus (ModelSpec(tokenizer=...))"
    return None


def corpus_splits(spec: ModelSpec, test: Split, sentences: int, val_sentences: int) -> Splits:
    """The first ``sentences`` of the corpus's trainable sentences (:func:`model_zoo.corpus.trainable`: never the
    drift suite's held-out pool) to train on, their last ``val_sentences`` to measure the loss on (the corpus is
    shuffled once, when generated), tokenized at the model's own input length; ``test`` is the model's."""
    texts = corpus.trainable()
    if sentences + val_sentences > len(texts):
        raise ConfigError(f"`sentences` + `val_sentences` must be at most the corpus's {len(texts):,} trainable "
                          f"sentences (the drift suite's {corpus.HELD_OUT} are held out), got "
                          f"{sentences + val_sentences:,}")
    tokenizer = text_tokenizer(spec)
    if tokenizer is None:
        raise ConfigError(f"model {spec.name!r} declares no tokenizer; expected ModelSpec(tokenizer=...)")
    length = int(spec.example_inputs(1)[0].shape[1])

    def tokenize(part: tuple[str, ...]) -> Split:
        enc = tokenizer(list(part), padding="max_length", truncation=True, max_length=length, return_tensors="pt")
        return Split((torch.as_tensor(enc["input_ids"], dtype=torch.int64),
                      torch.as_tensor(enc["attention_mask"], dtype=torch.int64)))

    return Splits(tokenize(texts[:sentences]), tokenize(texts[len(texts) - val_sentences:]), test)


def embed(module: nn.Module, split: Split, batch_size: int = EMBED_BATCH) -> torch.Tensor:
    """The module's embeddings of every item of ``split``, in order, computed in batches of similar length."""
    order = torch.argsort(split.inputs[-1].sum(dim=1), stable=True)
    out = torch.empty(0)
    was_training = module.training
    module.eval()
    with torch.inference_mode():
        for start in range(0, len(split), batch_size):
            idx = order[start:start + batch_size]
            emb = module(*trim(tuple(t[idx] for t in split.inputs)))
            if out.numel() == 0:
                out = torch.empty(len(split), *emb.shape[1:], dtype=emb.dtype)
            out[idx] = emb
    module.train(was_training)
    return out


def cosine_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean (1 − cosine) between embeddings. On unit-length embeddings MSE is 2(1 − cosine)/dim, so it would be
    the same objective at another scale: cosine alone is used."""
    return (1 - nn.functional.cosine_similarity(student, teacher, dim=1)).mean()


# --- the one fine-tune -----------------------------------------------------------------------------------------------

class LayerTap:
    """Forward hooks keeping the outputs of the chosen transformer layers of a module at its last call, so a loss
    can read them beside the pooled embedding the module returns."""

    def __init__(self, module: nn.Module, layers: tuple[int, ...]) -> None:
        stack = layer_list(module)[2]
        self.outputs: list[torch.Tensor | None] = [None] * len(layers)
        self._handles = [stack[i].register_forward_hook(self._keeper(pos)) for pos, i in enumerate(layers)]

    def _keeper(self, pos: int) -> Callable[..., None]:
        def keep(_module: nn.Module, _args: object, out: torch.Tensor | tuple[torch.Tensor, ...]) -> None:
            self.outputs[pos] = out[0] if isinstance(out, tuple) else out
        return keep

    def real_tokens(self, mask: torch.Tensor) -> torch.Tensor:
        """The kept outputs at the real tokens of ``mask``, row after row: (tokens, layers, hidden)."""
        if any(o is None for o in self.outputs):
            raise TechniqueError("a tapped layer did not run in the module's forward pass")
        return torch.stack([o for o in self.outputs if o is not None], dim=2)[mask.bool()]

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


@dataclasses.dataclass(frozen=True)
class TeacherTargets:
    """The teacher's figures for every item of a split, computed once: its embeddings and the outputs of its matched
    layers at the real tokens only, packed item after item in fp16 (MiniLM, 4,000 sentences: 70 k tokens, 6 layers
    in 0.3 GB); ``scale`` is each layer's mean square, the unit of the hidden-state loss."""

    embeddings: torch.Tensor  # (items, dim)
    hidden: torch.Tensor  # (tokens, layers, hidden), float16
    offsets: torch.Tensor  # (items,) first packed row of each item
    lengths: torch.Tensor  # (items,) real tokens of each item
    scale: torch.Tensor  # (layers,)

    def hidden_of(self, idx: torch.Tensor) -> torch.Tensor:
        """The packed layer outputs of items ``idx``, in that order, as float32: (tokens, layers, hidden)."""
        rows = [self.hidden[o:o + n] for o, n in zip(self.offsets[idx].tolist(), self.lengths[idx].tolist(),
                                                       strict=True)]
        return torch.cat(rows).float()


def teacher_targets(teacher: nn.Module, split: Split, layer_map: tuple[int, ...],
                    batch_size: int = EMBED_BATCH) -> TeacherTargets:
    """The teacher's embeddings of ``split`` and the outputs of its layers ``layer_map`` at the real tokens."""
    mask = split.inputs[-1].bool()
    lengths = mask.sum(dim=1)
    offsets = torch.cumsum(lengths, 0) - lengths
    order = torch.argsort(lengths, stable=True)
    tap = LayerTap(teacher, layer_map)
    embeddings = hidden = torch.empty(0)
    squares = torch.zeros(len(layer_map), dtype=torch.float64)
    teacher.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(split), batch_size):
                idx = order[start:start + batch_size]
                inputs = trim(tuple(t[idx] for t in split.inputs))
                emb = teacher(*inputs)
                layers = tap.real_tokens(inputs[-1])
                if hidden.numel() == 0:
                    embeddings = torch.empty(len(split), *emb.shape[1:])
                    hidden = torch.empty(int(lengths.sum()), len(layer_map), layers.shape[-1], dtype=torch.float16)
                embeddings[idx] = emb
                squares += layers.double().pow(2).mean(dim=2).sum(dim=0)
                row = 0
                for i, n in zip(idx.tolist(), lengths[idx].tolist(), strict=True):
                    hidden[int(offsets[i]):int(offsets[i]) + n] = layers[row:row + n]
                    row += n
    finally:
        tap.remove()
    scale = (squares / max(int(lengths.sum()), 1)).float().clamp(min=1e-12)
    return TeacherTargets(embeddings, hidden, offsets, lengths, scale)


def hidden_loss(student: torch.Tensor, teacher: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Per layer, the mean squared error between student and teacher layer outputs (tokens, layers, hidden) over
    real tokens, in units of the teacher layer's mean square (so layers of any scale weigh alike): (layers,)."""
    return (student - teacher).pow(2).mean(dim=(0, 2)) / scale


def layer_hidden_loss(student: nn.Module, teacher: nn.Module, split: Split, layer_map: tuple[int, ...]
                      ) -> torch.Tensor:
    """Per student layer, :func:`hidden_loss` of its output against the teacher layer ``layer_map`` maps it to,
    over the real tokens of ``split``: (layers,)."""
    targets = teacher_targets(teacher, split, layer_map)
    tap = LayerTap(student, tuple(range(len(layer_map))))
    total = torch.zeros(len(layer_map))
    try:
        with torch.inference_mode():
            order = torch.arange(len(split))
            for start in range(0, len(split), EMBED_BATCH):
                idx = order[start:start + EMBED_BATCH]
                inputs = trim(tuple(t[idx] for t in split.inputs))
                student.eval()(*inputs)
                tokens = tap.real_tokens(inputs[-1])
                total += hidden_loss(tokens, targets.hidden_of(idx), targets.scale) * len(tokens)
    finally:
        tap.remove()
    return total / max(int(targets.lengths.sum()), 1)


def check_layer_map(student: nn.Module, teacher: nn.Module, layer_map: tuple[int, ...]) -> None:
    """A ConfigError unless ``layer_map`` names one teacher layer per student layer, distinct and increasing."""
    ours, theirs = len(layer_list(student)[2]), len(layer_list(teacher)[2])
    if (len(layer_map) != ours or any(not isinstance(i, int) or not 0 <= i < theirs for i in layer_map)
            or list(layer_map) != sorted(set(layer_map))):
        raise ConfigError(f"`layer_map` must name one teacher layer 0-{theirs - 1} for each of the student's {ours} "
                          f"layers, in increasing order, got {list(layer_map)}")


def lr_factor(step: int, total: int, warmup: float) -> float:
    """Share of the peak learning rate at ``step`` (from 0) of ``total``: linear warm-up over the first ``warmup``
    of the steps, then linear decay to 0 at the end."""
    ramp = max(round(warmup * total), 0)
    if step < ramp:
        return (step + 1) / ramp
    return max(total - step, 0) / max(total - ramp, 1)


class EmbeddingDistill(Hook):
    """The loss: cosine to the teacher's embedding of the same sentence, plus ``hidden_weight`` times the mean over
    layers of :func:`hidden_loss` between each student layer's output and its teacher layer's (both computed once
    for the split). Batches are cut to their longest sentence; dropout is off (a fixed target gains nothing from
    noise); the learning rate warms up and decays linearly; training runs on ``threads`` threads. The proof it
    acted: the losses on held-out corpus sentences before and after, and the hidden term's share of the loss."""

    name = "embedding_distillation"

    def __init__(self, train: TeacherTargets, val: Split, val_targets: TeacherTargets, settings: FineTune,
                 total_steps: int) -> None:
        self.train_targets, self.val, self.val_targets = train, val, val_targets
        self.settings, self.total_steps = settings, total_steps
        self._idx: torch.Tensor | None = None
        self._tap: LayerTap | None = None
        self._optimizer: torch.optim.Optimizer | None = None
        self._threads = torch.get_num_threads()
        self._step = 0
        self._terms = [0.0, 0.0]  # embedding and hidden terms, summed over steps
        self.before = self.after = self.hidden_before = self.hidden_after = float("nan")

    def _val_losses(self, model: nn.Module) -> tuple[float, float]:
        """Held-out (cosine loss, mean hidden loss)."""
        assert self._tap is not None
        emb_loss, hid, order = 0.0, torch.zeros(len(self.val_targets.scale)), torch.arange(len(self.val))
        was_training = model.training
        model.eval()
        with torch.inference_mode():
            for start in range(0, len(self.val), EMBED_BATCH):
                idx = order[start:start + EMBED_BATCH]
                inputs = trim(tuple(t[idx] for t in self.val.inputs))
                emb = model(*inputs)
                emb_loss += float(cosine_loss(emb, self.val_targets.embeddings[idx])) * len(idx)
                tokens = self._tap.real_tokens(inputs[-1])
                hid += hidden_loss(tokens, self.val_targets.hidden_of(idx), self.val_targets.scale) * len(tokens)
        model.train(was_training)
        return emb_loss / len(self.val), float(hid.mean()) / max(int(self.val_targets.lengths.sum()), 1)

    def setup(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[nn.Module, torch.optim.Optimizer]:
        torch.set_num_threads(self.settings.threads)
        for m in model.modules():
            if isinstance(m, nn.Dropout):
                m.p = 0.0
        self._tap = LayerTap(model, tuple(range(len(self.train_targets.scale))))
        self._optimizer = optimizer
        self.before, self.hidden_before = self._val_losses(model)
        return model, optimizer

    def indices(self, idx: torch.Tensor) -> None:
        self._idx = idx

    def batch(self, inputs: Inputs, targets: torch.Tensor | None) -> tuple[Inputs, torch.Tensor | None]:
        return trim(inputs), targets

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor | None, inputs: Inputs,
             loss: torch.Tensor | None) -> torch.Tensor:
        assert self._idx is not None and self._tap is not None
        emb_term = cosine_loss(outputs, self.train_targets.embeddings[self._idx])
        if not self.settings.hidden_weight:
            self._terms[0] += float(emb_term.detach())
            return emb_term
        hid_term = self.settings.hidden_weight * hidden_loss(
            self._tap.real_tokens(inputs[-1]), self.train_targets.hidden_of(self._idx), self.train_targets.scale).mean()
        self._terms[0] += float(emb_term.detach())
        self._terms[1] += float(hid_term.detach())
        return emb_term + hid_term

    def after_backward(self, model: nn.Module) -> None:
        assert self._optimizer is not None
        for group in self._optimizer.param_groups:
            group["lr"] = self.settings.lr * lr_factor(self._step, self.total_steps, self.settings.warmup)
        self._step += 1

    def finish(self, model: nn.Module) -> nn.Module:
        self.after, self.hidden_after = self._val_losses(model)
        if self._tap is not None:
            self._tap.remove()
        torch.set_num_threads(self._threads)
        return model

    def figures(self) -> dict[str, float]:
        total = sum(self._terms)
        return {"loss_before": self.before, "loss_after": self.after, "heldout_cosine": 1.0 - self.after,
                "hidden_loss_before": self.hidden_before, "hidden_loss_after": self.hidden_after,
                "hidden_share": self._terms[1] / total if total > 0 else 0.0}


@dataclasses.dataclass(frozen=True)
class FineTune:
    """How long and how hard the fine-tune trains: ``sentences`` corpus sentences for ``epochs`` epochs, the peak
    ``lr`` reached after ``warmup`` of the steps, the hidden-state term weighted ``hidden_weight``, on ``threads``
    threads."""

    sentences: int
    val_sentences: int
    epochs: int
    lr: float
    batch_size: int
    hidden_weight: float = 0.0
    warmup: float = 0.0
    threads: int = 1

    def recipe(self) -> TrainRecipe:
        return TrainRecipe(epochs=self.epochs, lr=self.lr, batch_size=self.batch_size, seed=FINETUNE_SEED)


@dataclasses.dataclass(frozen=True)
class EncoderFineTuneConfig(TechniqueConfig):
    """What every technique that fine-tunes a smaller encoder against its teacher shares: the fine-tune's settings
    (:class:`FineTune`), the least-squares refit before it (``refit_sentences``; :mod:`harness.techniques.
    _layer_refit`), a speed it may claim (``min_speedup``), the backends it runs on, and where it applies
    (transformer sentence encoders reading token ids, by traits). Its cases are large (``pytest -m large``)."""

    sentences: int = 4000
    val_sentences: int = 256
    epochs: int = 1
    lr: float = 5e-4
    batch_size: int = 16
    hidden_weight: float = 1.0  # weight of the per-layer hidden-state term beside the embedding cosine
    warmup: float = 0.1  # share of the steps the learning rate warms up over, before decaying linearly to 0
    threads: int = 2  # training threads (a key field: float sums differ by thread count)
    refit_sentences: int = 0  # corpus sentences a least-squares refit before training solves on; 0: none
    min_speedup: float = 0.0
    backends: tuple[str, ...] = ()  # backends it runs on (empty: every backend that takes a torch module)
    large: ClassVar[bool] = True  # a fine-tune of a pretrained encoder: its cases run under `pytest -m large`
    min_epochs: ClassVar[int] = 1  # 0 where the technique means something without a fine-tune (pruning)

    def validate(self) -> None:
        super().validate()
        require_int("sentences", self.sentences, 1)
        require_int("val_sentences", self.val_sentences, 1)
        require_int("epochs", self.epochs, self.min_epochs)
        require_int("batch_size", self.batch_size, 1)
        require_range("lr", self.lr, 0.0, 1.0, low_open=True)
        require_range("hidden_weight", self.hidden_weight, 0.0, 100.0)
        require_range("warmup", self.warmup, 0.0, 1.0, high_open=True)
        require_int("threads", self.threads, 1)
        require_int("refit_sentences", self.refit_sentences, 0)
        require_range("min_speedup", self.min_speedup, 0.0, 100.0)

    def expectations(self) -> list[Expectation]:
        out = super().expectations()
        if self.refit_sentences:
            out.append(Expectation("refit_lowered_error", "proof.refit_error_ratio", "<", 1.0))
        return out

    @property
    def output_kind(self) -> ArtifactKind:
        return ArtifactKind.TORCH_MODULE

    @property
    def finetune(self) -> FineTune:
        return FineTune(self.sentences, self.val_sentences, self.epochs, self.lr, self.batch_size,
                        self.hidden_weight, self.warmup, self.threads)

    def runs_on(self, backend: str) -> bool:
        return not self.backends or backend in self.backends

    def not_applicable(self, spec: ModelSpec, traits: Traits) -> str | None:
        return text_model_missing(spec, traits) or super().not_applicable(spec, traits)


def distil_embeddings(student: nn.Module, teacher: nn.Module, spec: ModelSpec, test: Split, settings: FineTune,
                      label: str, layer_map: tuple[int, ...]) -> tuple[nn.Module, dict[str, float]]:
    """Fine-tune ``student`` (in place) toward ``teacher``'s embeddings and, student layer i against teacher layer
    ``layer_map[i]``, its layer outputs, on the corpus; its figures: the held-out losses before and after, steps,
    and the wall time, teacher targets included."""
    check_layer_map(student, teacher, layer_map)
    started = time.perf_counter()
    splits = corpus_splits(spec, test, settings.sentences, settings.val_sentences)
    with reproducible(FINETUNE_SEED, settings.threads):
        train, val = teacher_targets(teacher, splits.train, layer_map), teacher_targets(teacher, splits.val, layer_map)
    targets_wall = time.perf_counter() - started
    total_steps = -(-len(splits.train) // settings.batch_size) * settings.epochs
    hook = EmbeddingDistill(train, splits.val, val, settings, total_steps)
    student.requires_grad_(True)  # a copy of a reference a backend may have frozen: every weight is fine-tuned
    module, stats = fit(student, settings.recipe(), splits, [hook], label=label)
    if stats.diverged:
        raise TechniqueError(f"{label}: the fine-tune diverged (loss not finite)")
    wall = time.perf_counter() - started
    logger.info("%s: fine-tuned in %.1f s (%d steps, %.1f s training, %.1f s teacher targets); held-out cosine loss "
                "%.4f -> %.4f, hidden loss %.4f -> %.4f", label, wall, stats.steps, stats.wall_s, targets_wall,
                hook.before, hook.after, hook.hidden_before, hook.hidden_after)
    return module, {**stats.figures, "finetune_steps": float(stats.steps), "finetune_wall_s": wall,
                    "finetune_train_s": stats.wall_s,
                    "loss_ratio": hook.after / hook.before if hook.before > 0 else float("nan")}


def finetune_key(reference: Reference, config: TechniqueConfig, *parts: object) -> str:
    """Everything that changes the fine-tuned weights: the reference and its weights, the settings, the corpus, the
    code of this module, of the training loop and of the technique's module, the torch version."""
    fields = {k: v for k, v in config.to_dict().items() if k not in CONTRACT_FIELDS}
    return make_key(NAMESPACE, reference.key, reference.weights_digest, fields, corpus.digest(),
                    source_hash(sys.modules[__name__]), source_hash(training_loop),
                    source_hash(sys.modules[type(config).__module__]), torch.__version__, *parts)


def cached_finetune(ctx: Context, key: str, structure: Callable[[], nn.Module],
                    finetune: Callable[[nn.Module], tuple[nn.Module, dict[str, float]]]
                    ) -> tuple[nn.Module, dict[str, float]]:
    """The fine-tuned module and its figures, from the cache or trained now. The structure is made again each time
    (cheap and deterministic); the cache holds the weights, which must fit it exactly, and the figures."""
    loaded: list[tuple[nn.Module, dict[str, float]]] = []

    def create(tmp: Path) -> None:
        module, figures = finetune(structure())
        torch.save({"state_dict": module.state_dict(), "figures": figures}, tmp)

    def validate(candidate: Path) -> None:
        saved = torch.load(candidate, map_location="cpu", weights_only=True)
        if not isinstance(saved, dict) or not isinstance(saved.get("figures"), dict):
            raise CacheError(f"{candidate} holds no fine-tuned encoder")
        target = structure()
        target.load_state_dict(saved["state_dict"], strict=True)
        loaded[:] = [(target.eval(), {k: float(v) for k, v in saved["figures"].items()})]

    ctx.cache.get_or_create(ctx.cache.path(NAMESPACE, key, ".pt"), create, validate)
    return loaded[-1]
