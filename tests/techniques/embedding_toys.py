"""A tiny BERT sentence encoder (2 layers, hidden 32) with a word-hashing tokenizer: what the embedding
distillation and transformer pruning tests prune and fine-tune in seconds, instead of the real MiniLM."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from harness.metrics.quality import EmbeddingFidelity
from model_zoo.reference import Reference
from model_zoo.spec import InputKind, ModelSpec, Split, Splits, Task

VOCAB, LENGTH = 97, 16


# A fine-tune short enough for a unit test: 128 corpus sentences, two epochs, no refit before it (tests of the
# refit ask for one).
FAST = {"sentences": 128, "val_sentences": 16, "batch_size": 16, "lr": 1e-3, "epochs": 2, "refit_sentences": 0}


class HashTokenizer:
    """Words hashed into a small vocabulary (the sum of their characters' codes), [CLS]=1 first, padded with 0."""

    def __call__(self, text: list[str], **kwargs: object) -> dict[str, torch.Tensor]:
        length = int(kwargs.get("max_length", LENGTH))  # type: ignore[call-overload]
        ids = torch.zeros(len(text), length, dtype=torch.int64)
        mask = torch.zeros_like(ids)
        for row, sentence in enumerate(text):
            tokens = [1, *[2 + sum(map(ord, w)) % (VOCAB - 2) for w in sentence.split()][: length - 1]]
            ids[row, : len(tokens)] = torch.tensor(tokens)
            mask[row, : len(tokens)] = 1
        return {"input_ids": ids, "attention_mask": mask}


class TinyBertBuilder:
    """A seeded 2-layer BERT (hidden 32, 4 heads of 8, FFN 64) with MiniLM's mean pooling, and its tokenizer."""

    def __call__(self) -> nn.Module:
        from transformers import BertConfig, BertModel

        from model_zoo.minilm import MiniLMEncoder

        torch.manual_seed(0)
        config = BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                            intermediate_size=64, max_position_embeddings=LENGTH, attn_implementation="eager",
                            initializer_range=0.5)
        return MiniLMEncoder(BertModel(config, add_pooling_layer=False)).eval()

    def tokenizer(self) -> HashTokenizer:
        return HashTokenizer()


def tiny_bert_reference() -> Reference:
    """The tiny BERT as the zoo would hand it to a technique: an embedding model reading tokens, tagged
    ``transformer``; its test split is 8 sentences of the corpus's kind."""
    build = TinyBertBuilder()
    sentences = [f"The teacher found {w} at the market this morning." for w in
                 ("bread", "a map", "apples", "the chair", "tea", "books", "a coat", "the piano")]
    enc = HashTokenizer()(sentences, max_length=LENGTH)
    test = Split((enc["input_ids"], enc["attention_mask"]))
    spec = ModelSpec(name="tiny_bert", task=Task.EMBEDDING, build=build, data=lambda: Splits(test, test, test),
                     example_inputs=lambda n: tuple(t[np.arange(n) % 8] for t in test.inputs),
                     quality=EmbeddingFidelity(), recipe=None, input_names=("input_ids", "attention_mask"),
                     tags=frozenset({"transformer"}), input_kind=InputKind.TOKENS, tokenizer=build.tokenizer)
    return Reference(spec=spec, module=build(), key="tiny-bert", splits=Splits(test, test, test))
