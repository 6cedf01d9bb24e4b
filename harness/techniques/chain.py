"""Chains: techniques applied one after the other (prune, fine-tune, then quantize), as one case.

A chain falls out of the technique API: each step's artifact becomes the next step's reference (its module, its
cache key, its weights digest), so every step caches, exports and calibrates exactly as it does alone. Only a
torch module can feed a further step; a chain whose step would receive an ONNX graph or a quantized torch module
is refused when the config is made, naming the step.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from harness.artifact import Artifact, ArtifactKind, Precision, weights_digest
from harness.core import Expectation
from harness.errors import ConfigError
from harness.techniques.base import Context, TechniqueConfig, apply, register_technique
from model_zoo.reference import Reference
from model_zoo.spec import ModelSpec
from model_zoo.traits import Traits


@dataclasses.dataclass(frozen=True)
class ChainConfig(TechniqueConfig):
    """``steps`` applied in order; the chain makes what its last step makes and promises what every step does."""

    steps: tuple[TechniqueConfig, ...] = ()
    technique: ClassVar[str] = "chain"

    def validate(self) -> None:
        super().validate()
        if len(self.steps) < 2 or not all(isinstance(s, TechniqueConfig) for s in self.steps):
            raise ConfigError(f"`steps` must hold at least two technique configs, got {len(self.steps)}")
        for i, step in enumerate(self.steps[:-1]):
            if step.output_kind is not ArtifactKind.TORCH_MODULE:
                nxt = self.steps[i + 1]
                raise ConfigError(f"`steps`: step {i + 2} ({nxt.name}) cannot take the {step.output_kind.value} "
                                  f"that step {i + 1} ({step.name}) makes; only a torch module feeds a further step")

    @property
    def output_kind(self) -> ArtifactKind:
        return self.steps[-1].output_kind

    @property
    def precision(self) -> Precision:
        return self.steps[-1].precision

    def runs_on(self, backend: str) -> bool:
        return self.steps[-1].runs_on(backend)

    def is_large(self) -> bool:
        """A chain with a large step is large."""
        return any(step.is_large() for step in self.steps)

    def not_applicable(self, spec: ModelSpec, traits: Traits) -> str | None:
        return next((r for r in (s.not_applicable(spec, traits) for s in self.steps) if r is not None), None)

    def expectations(self) -> list[Expectation]:
        """The chain's own quality contract, then each step's other contracts (each named once)."""
        out = {e.name: e for e in super().expectations()}
        for step in self.steps:
            for exp in step.expectations():
                if exp.metric != "quality.retention":
                    out.setdefault(exp.name, exp)
        return list(out.values())

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["steps"] = [s.to_dict() for s in self.steps]
        return out


@register_technique(ChainConfig)
def apply_chain(reference: Reference, config: ChainConfig, ctx: Context) -> Artifact:
    """Each step on the previous step's model; the proofs of every step are kept (a later step's win on a clash)."""
    current, proof, details, weights = reference, {}, {}, ""
    artifact: Artifact | None = None
    for step in config.steps:
        artifact = apply(current, step, ctx)
        proof.update(artifact.proof)
        details.update(artifact.details)
        weights = artifact.weights or weights
        if artifact.module is not None and step is not config.steps[-1]:
            current = dataclasses.replace(current, module=artifact.module, key=artifact.key,
                                          weights_digest=weights_digest(artifact.module))
    assert artifact is not None
    return dataclasses.replace(artifact, proof=proof, details=details, weights=weights)
