import numpy as np
import pytest

from harness.analysis.shifts import SEVERITIES, seed_of
from harness.analysis.text_shifts import DROPOUT_SHARE, TEXT_SHIFTS, TYPO_SHARE, typo, typos, word_dropout
from harness.errors import ConfigError

WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "near", "river", "banks", "after",
         "dinner", "time", "again", "today", "with", "seven", "happy", "friends"]
# 400 sentences of 6-20 words, every word of two letters or more but "a"
SENTENCES = [" ".join(np.random.default_rng(i).choice(WORDS, size=6 + i % 15)) for i in range(400)]


def _rng(name, severity):
    return np.random.default_rng(seed_of(name, severity))


def _changed_share(clean, moved):
    changed = total = 0
    for a, b in zip(clean, moved, strict=True):
        wa, wb = a.split(), b.split()
        assert len(wa) == len(wb)  # a typo never adds or removes a word
        eligible = [(x, y) for x, y in zip(wa, wb, strict=True) if sum(c.isalpha() for c in x) >= 2]
        changed += sum(x != y for x, y in eligible)
        total += len(eligible)
    return changed / total


@pytest.mark.parametrize("severity", SEVERITIES)
def test_typos_change_the_stated_share_of_words(severity):
    moved = typos(SENTENCES, severity, _rng("typos", severity))
    assert _changed_share(SENTENCES, moved) == pytest.approx(TYPO_SHARE[severity - 1], abs=0.02)


@pytest.mark.parametrize("severity", SEVERITIES)
def test_word_dropout_drops_the_stated_share_of_words(severity):
    moved = word_dropout(SENTENCES, severity, _rng("word_dropout", severity))
    kept = sum(len(s.split()) for s in moved) / sum(len(s.split()) for s in SENTENCES)
    assert 1 - kept == pytest.approx(DROPOUT_SHARE[severity - 1], abs=0.02)
    for clean, out in zip(SENTENCES, moved, strict=True):  # what is kept is kept in order
        it = iter(clean.split())
        assert all(word in it for word in out.split())


@pytest.mark.parametrize("shift", TEXT_SHIFTS, ids=lambda s: s.name)
def test_a_text_shift_is_the_same_for_the_same_seed_and_another_for_another(shift):
    first = shift(SENTENCES, 2, _rng(shift.name, 2))
    assert first == shift(SENTENCES, 2, _rng(shift.name, 2))
    assert first != shift(SENTENCES, 2, np.random.default_rng(12345))
    assert len(first) == len(SENTENCES)


@pytest.mark.parametrize("shift", TEXT_SHIFTS, ids=lambda s: s.name)
def test_a_text_shift_grows_with_severity(shift):
    moved = [shift(SENTENCES, s, _rng(shift.name, s)) for s in SEVERITIES]
    changed = [sum(a != b for a, b in zip(SENTENCES, m, strict=True)) for m in moved]
    words = [sum(len(x) for x in m) for m in moved]  # characters left: dropout shortens, typos barely move it
    assert changed[0] > 0 and changed == sorted(changed)
    if shift.name == "word_dropout":
        assert words == sorted(words, reverse=True)


def test_word_dropout_keeps_at_least_one_word():
    short = ["Hello.", "Two words", "Three small words"]
    for severity in SEVERITIES:
        for seed in range(30):
            out = word_dropout(short * 5, severity, np.random.default_rng(seed))
            assert all(len(s.split()) >= 1 for s in out)
    assert word_dropout(["Hello."], 3, np.random.default_rng(0)) == ["Hello."]


def test_a_typo_always_changes_the_word_and_touches_only_letters():
    rng = np.random.default_rng(0)
    for word in ("book", "aa", "Zoo.", "it's", "x1y2z3"):
        for _ in range(200):
            out = typo(word, rng)
            assert out != word
            assert [c for c in out if not c.isalpha()] == [c for c in word if not c.isalpha()]


def test_typos_leave_one_letter_words_alone():
    assert typos(["a I a I"], 3, np.random.default_rng(0)) == ["a I a I"]


@pytest.mark.parametrize("shift", TEXT_SHIFTS, ids=lambda s: s.name)
def test_a_severity_out_of_range_is_refused_naming_it(shift):
    with pytest.raises(ConfigError, match=rf"`severity` of shift '{shift.name}' must be one of \(1, 2, 3\), got 4$"):
        shift(SENTENCES, 4, np.random.default_rng(0))


@pytest.mark.parametrize("shift", TEXT_SHIFTS, ids=lambda s: s.name)
@pytest.mark.parametrize(("bad", "said"), [([], "an empty list"), ("one sentence", "one string")])
def test_no_sentences_are_refused_naming_what_was_expected(shift, bad, said):
    with pytest.raises(ConfigError, match=f"shift '{shift.name}' needs a non-empty list of sentences, got {said}$"):
        shift(bad, 1, np.random.default_rng(0))


def test_a_sentence_that_is_not_text_is_refused():
    with pytest.raises(ConfigError, match=r"needs sentences as str, got a int$"):
        TEXT_SHIFTS[0](["fine", 3], 1, np.random.default_rng(0))
