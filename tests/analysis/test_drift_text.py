import types

import numpy as np
import pytest
import torch
from torch import nn

from harness.analysis import drift_text
from harness.analysis.run import reference_predict
from harness.errors import ConfigError
from model_zoo.spec import Split, Splits

SENTENCES = ("a cat sat", "the dog ran far away today", "hello", "one two three four five")
LENGTH = 8


class WordTokenizer:
    """A Hugging Face-like tokenizer: one id per word, [CLS] first, right padding."""

    def __call__(self, text, padding, truncation, max_length, return_tensors):
        ids = torch.zeros(len(text), max_length, dtype=torch.int64)
        for row, sentence in enumerate(text):
            tokens = [1, *(2 + sum(map(ord, w)) % 50 for w in sentence.split())][:max_length]
            ids[row, :len(tokens)] = torch.tensor(tokens)
        return {"input_ids": ids, "attention_mask": (ids > 0).long()}


class MeanEncoder(nn.Module):
    """Embeds tokens, mixes them with attention over real tokens and mean-pools: outputs depend on the mask only."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(60, 16)
        self.attn = nn.MultiheadAttention(16, 2, batch_first=True)

    def forward(self, input_ids, attention_mask):
        x = self.embed(input_ids)
        x, _ = self.attn(x, x, x, key_padding_mask=attention_mask == 0)
        m = attention_mask.unsqueeze(-1).float()
        return nn.functional.normalize((x * m).sum(1) / m.sum(1), dim=1)


def _spec(tokenizer=WordTokenizer):
    return types.SimpleNamespace(name="toy", input_names=("input_ids", "attention_mask"), throughput_batch=5,
                                 build=MeanEncoder, tokenizer=tokenizer)


def _splits(sentences=SENTENCES):
    enc = WordTokenizer()(list(SENTENCES), True, True, LENGTH, "pt")
    test = Split((enc["input_ids"], enc["attention_mask"]))
    return Splits(test, test, test, extra={"sentences": sentences} if sentences is not None else {})


def test_the_reader_tokenizes_like_the_test_split_at_its_length():
    reader = drift_text.text_reader(_spec(), _splits())
    assert reader.length == LENGTH
    ids, mask = reader(["a cat"])
    assert ids.shape == (1, LENGTH) and mask.tolist() == [[1, 1, 1, 0, 0, 0, 0, 0]]


def test_a_model_without_test_sentences_is_refused_saying_what_was_expected():
    with pytest.raises(ConfigError, match=r"needs the test split's sentences as `Splits.extra\['sentences'\]` "
                                          r"\(4 texts\), got none$"):
        drift_text.text_reader(_spec(), _splits(sentences=None))
    with pytest.raises(ConfigError, match=r"\(4 texts\), got 2$"):
        drift_text.text_reader(_spec(), _splits(sentences=SENTENCES[:2]))


def test_a_model_without_a_tokenizer_is_refused_saying_where_one_is_expected():
    with pytest.raises(ConfigError, match=r"expected `ModelSpec\(tokenizer=...\)`; found none$"):
        drift_text.text_reader(_spec(tokenizer=None), _splits())


def test_a_tokenizer_that_does_not_make_the_test_inputs_is_refused():
    shuffled = (SENTENCES[1], SENTENCES[0], *SENTENCES[2:])
    with pytest.raises(ConfigError, match=r"does not make its test inputs from `extra\['sentences'\]`"):
        drift_text.text_reader(_spec(), _splits(sentences=shuffled))


def test_the_reference_cut_to_each_batchs_longest_sentence_embeds_as_at_full_length():
    module = MeanEncoder().eval()
    reference = types.SimpleNamespace(spec=_spec(), module=module)
    inputs = WordTokenizer()(list(SENTENCES) * 3, True, True, LENGTH, "pt")  # batches of 5 mix lengths
    inputs = (inputs["input_ids"], inputs["attention_mask"])
    cut = drift_text.embed_reference(reference, inputs)
    assert cut.shape == (12, 16)
    np.testing.assert_allclose(cut, reference_predict(reference, inputs), atol=1e-6)


def test_the_pool_is_the_corpus_held_out_tail():
    from model_zoo import corpus

    pool = drift_text.drift_pool()
    assert len(pool) == corpus.HELD_OUT == 600 and pool == corpus.sentences()[-600:]
    # the corpus's own held-out count, where it states one, is the same tail (what fine-tunes leave out)
