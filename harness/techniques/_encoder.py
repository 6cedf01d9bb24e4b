"""What the techniques that work on a BERT-style sentence encoder share about its shape: the stack of transformer
layers, and token inputs cut to the batch's longest sentence."""

from __future__ import annotations

from torch import nn

from harness.errors import TechniqueError
from model_zoo.spec import Inputs


def trim(inputs: Inputs) -> Inputs:
    """Token inputs cut after the batch's longest sentence (the attention mask is the last input): the padding a
    fixed-length tokenization adds changes no masked mean, only the time spent on it."""
    longest = max(int(inputs[-1].sum(dim=1).max()), 1)
    return tuple(t[:, :longest] for t in inputs)


def layer_list(module: nn.Module) -> tuple[nn.Module, str, nn.ModuleList]:
    """The encoder's stack of transformer layers: the first ModuleList whose members hold an ``attention``
    (BERT-style), with its parent and attribute name so it can be replaced."""
    for parent in module.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.ModuleList) and len(child) and all(hasattr(m, "attention") for m in child):
                return parent, name, child
    raise TechniqueError(f"{type(module).__name__} holds no stack of transformer layers (a ModuleList of layers "
                         "with `attention`)")
