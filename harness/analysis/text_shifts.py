"""Text shifts for token models, three severities each: character typos and word dropout, on sentences.

A token model's shift acts on what a user types, not on token ids: the moved sentences are tokenized again by
the model's own tokenizer (:mod:`harness.analysis.drift_text`). Pure Python and NumPy; every shift is a function
of the sentences, the severity and a seeded generator, so a run always makes the same shifted sentences. Both keep
every sentence in order (no resampling), so a shifted sentence is paired with its clean one by position.
"""

from __future__ import annotations

import dataclasses
import string
from collections.abc import Callable, Sequence

import numpy as np

from harness.analysis.shifts import SEVERITIES
from harness.errors import ConfigError

KIND = "tokens"  # model_zoo.spec.InputKind.TOKENS
TYPO_SHARE = (0.1, 0.25, 0.5)  # share of the words (of two letters or more) given one typo, per severity
DROPOUT_SHARE = (0.1, 0.25, 0.4)  # share of the words dropped, per severity (one word is always kept)
EDITS = ("swap", "drop", "insert", "substitute")

TextShiftFn = Callable[[Sequence[str], int, np.random.Generator], list[str]]


@dataclasses.dataclass(frozen=True)
class TextShift:
    """One named shift of sentences; ``fn(sentences, severity, rng)`` returns as many sentences, in order."""

    name: str
    fn: TextShiftFn
    describe: str
    kind: str = KIND
    resamples: bool = False  # like shifts.Shift: text shifts move every sentence and draw none

    def __call__(self, sentences: Sequence[str], severity: int, rng: np.random.Generator) -> list[str]:
        if severity not in SEVERITIES:
            raise ConfigError(f"`severity` of shift {self.name!r} must be one of {SEVERITIES}, got {severity!r}")
        if isinstance(sentences, str) or len(sentences) == 0:
            got = "one string" if isinstance(sentences, str) else "an empty list"
            raise ConfigError(f"shift {self.name!r} needs a non-empty list of sentences, got {got}")
        bad = next((s for s in sentences if not isinstance(s, str)), None)
        if bad is not None:
            raise ConfigError(f"shift {self.name!r} needs sentences as str, got a {type(bad).__name__}")
        return self.fn(sentences, severity, rng)


def _count(share: float, n: int, rng: np.random.Generator) -> int:
    """``share * n`` rounded up or down at random (by its fraction): the stated share on average over sentences,
    also where one sentence holds too few words for it."""
    exact = share * n
    return int(exact) + int(rng.random() < exact - int(exact))


def _letters(word: str) -> list[int]:
    return [i for i, c in enumerate(word) if c.isalpha()]


def _other_letter(c: str, rng: np.random.Generator) -> str:
    pool = string.ascii_lowercase.replace(c.lower(), "")
    new = pool[int(rng.integers(len(pool)))]
    return new.upper() if c.isupper() else new


def typo(word: str, rng: np.random.Generator) -> str:
    """One keyboard slip in ``word`` (two letters or more): two neighbouring letters swapped, a letter dropped,
    a letter inserted or one replaced by another; the word always changes (a swap of equal letters substitutes)."""
    at = _letters(word)
    edit = EDITS[int(rng.integers(len(EDITS)))]
    i = at[int(rng.integers(len(at)))]
    if edit == "swap":
        pairs = [j for j in at if j + 1 < len(word) and word[j + 1].isalpha() and word[j] != word[j + 1]]
        if pairs:
            j = pairs[int(rng.integers(len(pairs)))]
            return word[:j] + word[j + 1] + word[j] + word[j + 2:]
        edit = "substitute"
    if edit == "drop":
        return word[:i] + word[i + 1:]
    if edit == "insert":
        return word[:i] + _other_letter(word[i], rng).lower() + word[i:]
    return word[:i] + _other_letter(word[i], rng) + word[i + 1:]


def typos(sentences: Sequence[str], severity: int, rng: np.random.Generator) -> list[str]:
    """In each sentence, the severity's share of its words of two letters or more (10 / 25 / 50 %) get one typo;
    the words stay where they were (none is added or removed)."""
    share = TYPO_SHARE[severity - 1]
    out = []
    for sentence in sentences:
        words = sentence.split()
        eligible = [i for i, w in enumerate(words) if len(_letters(w)) >= 2]
        k = _count(share, len(eligible), rng)
        for i in sorted(rng.choice(eligible, size=k, replace=False).tolist()) if k else ():
            words[i] = typo(words[i], rng)
        out.append(" ".join(words))
    return out


def word_dropout(sentences: Sequence[str], severity: int, rng: np.random.Generator) -> list[str]:
    """From each sentence, the severity's share of its words (10 / 25 / 40 %) dropped, the rest kept in order;
    at least one word is always kept."""
    share = DROPOUT_SHARE[severity - 1]
    out = []
    for sentence in sentences:
        words = sentence.split()
        k = min(_count(share, len(words), rng), max(len(words) - 1, 0))
        dropped = set(rng.choice(len(words), size=k, replace=False).tolist()) if k else set()
        out.append(" ".join(w for i, w in enumerate(words) if i not in dropped))
    return out


TEXT_SHIFTS: tuple[TextShift, ...] = (
    TextShift("typos", typos, "one letter swapped, dropped, inserted or replaced in 10 / 25 / 50 % of the words"),
    TextShift("word_dropout", word_dropout, "10 / 25 / 40 % of the words dropped (one always kept)"),
)
