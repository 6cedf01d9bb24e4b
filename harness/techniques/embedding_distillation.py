"""Embedding distillation: a sentence encoder made smaller learns its teacher's sentence embeddings again, by cosine
loss plus per-layer hidden-state matching, on a committed text corpus (:mod:`model_zoo.corpus`, minus the drift
suite's held-out pool). The fine-tune is
:mod:`harness.techniques._embedding_finetune`'s, shared with the head/FFN-pruned encoder.

The student keeps the teacher's embeddings and every other layer (``layers``), so it starts near its teacher and
needs only a short fine-tune. It applies by traits — an embedding model reading token ids, tagged ``transformer``,
whose spec declares its tokenizer (``ModelSpec.tokenizer``) — never by a model's name.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import ClassVar

from torch import nn

from harness.artifact import Artifact, ArtifactKind, weights_digest
from harness.cache import make_key, source_hash
from harness.core import Expectation
from harness.errors import ConfigError
from harness.techniques import _layer_refit
from harness.techniques._embedding_finetune import (
    EncoderFineTuneConfig,
    cached_finetune,
    finetune_key,
    layer_list,
)
from harness.techniques._layer_refit import recover
from harness.techniques.base import Context, ReportFigure, register_preset, register_technique
from harness.techniques.chain import ChainConfig
from harness.techniques.quantization import OrtDynamicInt8Config
from model_zoo.reference import Reference

# --- the layer-dropping student --------------------------------------------------------------------------------------

def drop_layers(teacher: nn.Module, keep: tuple[int, ...]) -> nn.Module:
    """A copy of ``teacher`` keeping only the layers ``keep`` (embeddings and everything else copied as they are)."""
    student = copy.deepcopy(teacher)
    parent, name, layers = layer_list(student)
    missing = [i for i in keep if i >= len(layers)]
    if missing:
        raise ConfigError(f"`layers` must be a subset of the teacher's layers 0-{len(layers) - 1}, got "
                          f"{list(keep)}")
    setattr(parent, name, nn.ModuleList(layers[i] for i in keep))
    config = getattr(parent, "config", None)  # the copy's own config, shared by its modules
    if config is not None and hasattr(config, "num_hidden_layers"):
        config.num_hidden_layers = len(keep)
    return student.eval()


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@dataclasses.dataclass(frozen=True)
class EmbeddingStudentConfig(EncoderFineTuneConfig):
    """A student keeping the teacher's ``layers`` (and its embeddings), fine-tuned to the teacher's sentence
    embeddings on ``sentences`` corpus sentences.

    Contracts — proof (point): the student has ``len(layers)`` layers, fewer than its teacher, and the fine-tune
    lowered the held-out embedding loss. Decisions on intervals: mean cosine to the teacher's embeddings of at least
    ``min_quality_retention`` (over the test sentences), and faster than the teacher (over the timing rounds;
    ``min_speedup`` where the config claims more).
    """

    layers: tuple[int, ...] = (1, 3, 5)
    sentences: int = 28000  # with the defaults, ~8 min on two CPU threads (docs/distillation.md)
    lr: float = 1e-3
    min_quality_retention: float = 0.97
    technique: ClassVar[str] = "embedding_distillation"
    report_section: ClassVar[str] = "distillation"
    report_figures: ClassVar[tuple[ReportFigure, ...]] = (
        ReportFigure("proof.layers", "layers", "{:.0f}"),
        ReportFigure("proof.loss_after", "held-out loss after", "{:.4f}"),
    )

    def validate(self) -> None:
        super().validate()
        keep = self.layers
        if (not isinstance(keep, tuple) or not keep or any(not isinstance(i, int) or isinstance(i, bool) or i < 0
                                                            for i in keep) or list(keep) != sorted(set(keep))):
            raise ConfigError(f"`layers` must be distinct layer indices >= 0 in increasing order, got {keep!r}")

    def expectations(self) -> list[Expectation]:
        out = [
            *super().expectations(),
            Expectation("student_layers_low", "proof.layers", ">=", len(self.layers)),
            Expectation("student_layers_high", "proof.layers", "<=", len(self.layers)),
            Expectation("fewer_layers_than_teacher", "proof.layers_removed", ">", 0.0),
            Expectation("finetune_lowered_loss", "proof.loss_ratio", "<", 1.0),
            Expectation("faster_than_teacher", "speedup", ">", 1.0, decision="interval", unit="timing rounds"),
        ]
        if self.min_speedup:
            out.append(Expectation("speedup", "speedup", ">=", self.min_speedup, decision="interval",
                                   unit="timing rounds"))
        return out


@register_technique(EmbeddingStudentConfig)
def apply_embedding_student(reference: Reference, config: EmbeddingStudentConfig, ctx: Context) -> Artifact:
    """The student, fine-tuned (or from the cache); its proof counts the layers of the module itself."""
    teacher = reference.module
    teacher_layers = len(layer_list(teacher)[2])
    drop_layers(teacher, config.layers)  # a ConfigError for layers the teacher lacks, before any training
    key = finetune_key(reference, config, source_hash(_layer_refit))
    label = f"{reference.spec.name}-{config.name} fine-tuning"
    module, figures = cached_finetune(ctx, key, lambda: drop_layers(teacher, config.layers),
                                      lambda student: recover(student, reference, config, label, config.layers))
    layers = len(layer_list(module)[2])
    proof = {**figures, "layers": float(layers), "teacher_layers": float(teacher_layers),
             "layers_removed": 1.0 - layers / teacher_layers, "params_share": _params(module) / _params(teacher)}
    digest = weights_digest(module)
    return Artifact(ArtifactKind.TORCH_MODULE, config.precision, key=make_key(key, digest), module=module,
                    proof=proof, weights=digest,
                    details={"layers_kept": list(config.layers), "layer_map": list(config.layers)})


SUITE = "distillation"
# Layers 1, 3, 5 rather than 0, 2, 4: keeping the last layer, whose output the pooling was trained on, starts the
# student at test cosine 0.58 instead of 0.38 and ends a 512-sentence fine-tune at 0.77 instead of 0.51.
STUDENT_3_OF_6 = EmbeddingStudentConfig(name="embedding_student_3of6", layers=(1, 3, 5))
register_preset(SUITE, STUDENT_3_OF_6)
# Then ORT dynamic int8 with per-channel weights, the int8 variant that keeps MiniLM's cosine (0.992 alone). The
# chain promises the product of its steps' promises: 0.97 x 0.99 ~ 0.96.
register_preset(SUITE, ChainConfig(name="embedding_student_3of6.ort_dynamic_int8", min_quality_retention=0.96,
                                   steps=(STUDENT_3_OF_6, OrtDynamicInt8Config(name="ort_dynamic_int8_per_channel",
                                                                               per_channel=True))))
