"""A text corpus for fine-tuning and distilling sentence encoders offline: ``model_zoo/data/corpus.txt``.

The MiniLM cases that train (head/FFN pruning with a recovery fine-tune, a layer-dropping student) need thousands
of English sentences, and nothing may be downloaded at run time. The corpus is generated once, offline, and
committed, so every machine reads the same bytes (the docstrings it draws on change between Python versions):

- prose from the Python standard library's docstrings and scikit-learn's bundled dataset descriptions
  (technical English), filtered to 6-30 words of plain ASCII text that starts with a capital and ends a sentence;
- everyday sentences from a small seeded grammar (subjects, verbs, objects, places, times), so the corpus is not
  only technical prose: the evaluation sentences in ``sentences.json`` are everyday English.

No sentence of ``sentences.json`` (calibration, validation or evaluation) is in it. Regenerate with
``python -m model_zoo.corpus --write`` and commit the file with the change that needed it.

A second committed file, ``model_zoo/data/wordnet_examples.txt``, holds the example sentences of WordNet 3.0's
glosses ("we kayaked down the river"; 29.6 k of 5-40 words): everyday English of every topic, the register of the
evaluation sentences, where the first corpus is technical prose and a 20-word grammar. Fine-tunes train on both
(:func:`trainable`); the drift pool stays the first corpus's last sentences. It is generated offline from Debian's
``wordnet-base`` package (``apt-get download wordnet-base``, ``dpkg-deb -x``) with ``python -m model_zoo.corpus
--wordnet DIR`` (DIR holding ``data.noun`` etc.); WordNet's licence is ``model_zoo/data/WORDNET_LICENSE``.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import importlib
import inspect
import json
import random
import re
import sys
from pathlib import Path

CORPUS_PATH = Path(__file__).parent / "data" / "corpus.txt"
SENTENCES_PATH = Path(__file__).parent / "data" / "sentences.json"
WORDNET_PATH = Path(__file__).parent / "data" / "wordnet_examples.txt"
WORDNET_FILES = ("data.noun", "data.verb", "data.adj", "data.adv")
GRAMMAR_SENTENCES = 2500
# The corpus's last HELD_OUT sentences are the drift suite's detector pool: nothing may train on them.
HELD_OUT = 600
SEED = 20261201

_SENTENCE = re.compile(r"[A-Z][A-Za-z0-9 ,.'()\-;:?!]+[.!?]")
_SKIP_MODULES = frozenset({"antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo", "pydoc_data"})


def _read(path: Path, how: str) -> tuple[str, ...]:
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: regenerate it with `python -m model_zoo.corpus {how}`")
    lines = tuple(line for line in path.read_text(encoding="utf-8").splitlines() if line)
    if not lines:
        raise ValueError(f"{path} holds no sentence: regenerate it with `python -m model_zoo.corpus {how}`")
    return lines


@functools.lru_cache(maxsize=1)
def sentences() -> tuple[str, ...]:
    """The committed corpus, one sentence per line, in file order."""
    return _read(CORPUS_PATH, "--write")


@functools.lru_cache(maxsize=1)
def wordnet() -> tuple[str, ...]:
    """WordNet 3.0's example sentences as committed, in file order (shuffled once, when generated)."""
    return _read(WORDNET_PATH, "--wordnet DIR")


@functools.lru_cache(maxsize=1)
def trainable() -> tuple[str, ...]:
    """The sentences a model may be trained or fine-tuned on: WordNet's examples and the corpus minus its last
    :data:`HELD_OUT`, interleaved evenly (every slice of it mixes the two in their proportions, 6 to 1)."""
    first, second = wordnet(), sentences()[:-HELD_OUT]
    # item k of a source of size m goes to position (k + 0.5) / m of the whole: a stable, seed-free interleave
    order = sorted([((k + 0.5) / len(first), 0, k) for k in range(len(first))]
                   + [((k + 0.5) / len(second), 1, k) for k in range(len(second))])
    return tuple(first[k] if src == 0 else second[k] for _, src, k in order)


def held_out() -> tuple[str, ...]:
    """The corpus's last :data:`HELD_OUT` sentences, never trained on (the drift detectors' pool)."""
    return sentences()[-HELD_OUT:]


def digest() -> str:
    """sha256 of the corpus files: part of the cache key of anything trained on them."""
    return hashlib.sha256(CORPUS_PATH.read_bytes() + b"\0" + WORDNET_PATH.read_bytes()).hexdigest()


def _shipped_sentences() -> set[str]:
    """Every sentence of ``sentences.json`` (calibration, validation, evaluation): never in a corpus."""
    held = json.loads(SENTENCES_PATH.read_text(encoding="utf-8"))
    return {s for part in ("calibration", "validation", "evaluation") for s in held[part]}


def _split(text: str) -> list[str]:
    return re.split(r"(?<=[.!?])\s+", re.sub(r"\s+", " ", text))


def _keep(sentence: str) -> bool:
    return 6 <= len(sentence.split()) <= 30 and _SENTENCE.fullmatch(sentence) is not None


def _docstrings() -> list[str]:
    texts: list[str] = []
    for name in sorted(sys.stdlib_module_names):
        if name.startswith("_") or name in _SKIP_MODULES:
            continue
        try:
            module = importlib.import_module(name)
        except Exception:  # a platform-specific module that does not import here adds nothing
            continue
        if module.__doc__:
            texts.append(module.__doc__)
        for _, obj in inspect.getmembers(module):
            doc = getattr(obj, "__doc__", None)
            if isinstance(doc, str) and getattr(obj, "__module__", None) == name:
                texts.append(doc)
    import sklearn

    descr = Path(sklearn.__file__).parent / "datasets" / "descr"
    texts.extend(p.read_text(encoding="utf-8") for p in sorted(descr.glob("*.rst")))
    return texts


_SUBJECTS = ("My sister", "The old farmer", "Our neighbour", "A young doctor", "The children", "The teacher",
             "My best friend", "The new manager", "A tired student", "The bus driver", "Her grandfather",
             "The small dog", "The chef", "Two tourists", "The nurse", "His cousin", "The pilot", "Everyone at work",
             "The librarian", "A local artist")
_VERBS = ("bought", "cooked", "painted", "cleaned", "repaired", "forgot", "found", "borrowed", "sold", "carried",
          "ordered", "lost", "wrapped", "photographed", "washed", "described", "hid", "shared", "delivered",
          "noticed")
_OBJECTS = ("a blue bicycle", "fresh bread", "the broken window", "an umbrella", "a birthday cake", "the garden fence",
            "a pile of letters", "some warm soup", "the kitchen table", "a new phone", "the old piano",
            "a basket of apples", "the red car", "a stack of books", "the winter coats", "a cup of tea",
            "the front door", "a paper map", "the concert tickets", "a wooden chair")
_PLACES = ("at the market", "in the kitchen", "near the river", "at the station", "in the park", "at the office",
           "by the lake", "at the hospital", "in the city centre", "at school", "on the beach", "in the village",
           "at the airport", "in the library", "at the museum")
_TIMES = ("this morning", "last night", "on Sunday", "after lunch", "before the storm", "yesterday",
          "during the holidays", "at dawn", "late in the evening", "every Friday")
_TEMPLATES = (
    "{s} {v} {o} {p} {t}.",
    "{t}, {s_l} {v} {o} {p}.",
    "{s} {v} {o} {t}, and then went home.",
    "Why {did} {s_l} leave {o} {p}?",
    "{s} said that nobody {v} {o} {p}.",
    "{s} {v} {o} because it was raining {t}.",
)


def _grammar(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out: list[str] = []
    for _ in range(n):
        subject = rng.choice(_SUBJECTS)
        text = rng.choice(_TEMPLATES).format(
            s=subject, s_l=subject[0].lower() + subject[1:], v=rng.choice(_VERBS), o=rng.choice(_OBJECTS),
            p=rng.choice(_PLACES), t=rng.choice(_TIMES), did="did")
        out.append(text[0].upper() + text[1:])
    return out


def generate(grammar_sentences: int = GRAMMAR_SENTENCES, seed: int = SEED) -> list[str]:
    """The corpus as :func:`sentences` reads it: unique sentences, shuffled with ``seed``, none of
    ``sentences.json``'s."""
    excluded = _shipped_sentences()
    prose = {s for text in _docstrings() for s in _split(text) if _keep(s)}
    every = sorted((prose | set(_grammar(grammar_sentences, seed))) - excluded)
    random.Random(seed).shuffle(every)
    return every


_QUOTED = re.compile(r'"([^"]+)"')


def wordnet_examples(folder: Path, seed: int = SEED) -> list[str]:
    """The example sentences quoted in the glosses of WordNet's ``data.*`` files under ``folder``: 5-40 words of
    ASCII, first letter capitalised, ended with a full stop where they had no end mark; unique, none of
    ``sentences.json``'s, shuffled with ``seed``."""
    missing = [name for name in WORDNET_FILES if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} lacks WordNet's {', '.join(missing)}; expected the dict folder of "
                                "Debian's wordnet-base (usr/share/wordnet)")
    excluded = _shipped_sentences()
    found: set[str] = set()
    for name in WORDNET_FILES:
        for line in (folder / name).read_text(encoding="latin-1").splitlines():
            if line.startswith("  ") or " | " not in line:  # the licence header, a line without a gloss
                continue
            for quote in _QUOTED.findall(line.split(" | ", 1)[1]):
                text = quote.strip().strip(";").strip()
                if not 5 <= len(text.split()) <= 40 or not text.isascii():
                    continue
                text = text[0].upper() + text[1:]
                found.add(text if text[-1] in ".!?" else text + ".")
    every = sorted(found - excluded)
    random.Random(seed).shuffle(every)
    return every


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model_zoo.corpus", description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"write {CORPUS_PATH.name} (else print a summary)")
    parser.add_argument("--wordnet", type=Path, metavar="DIR",
                        help=f"write {WORDNET_PATH.name} from WordNet's data.* files in DIR")
    args = parser.parse_args(argv)
    if args.wordnet is not None:
        try:
            examples = wordnet_examples(args.wordnet)
        except FileNotFoundError as exc:
            parser.error(str(exc))
        WORDNET_PATH.write_text("\n".join(examples) + "\n", encoding="utf-8")
        print(f"{len(examples)} sentences written to {WORDNET_PATH}")
        return 0
    corpus = generate()
    if args.write:
        CORPUS_PATH.write_text("\n".join(corpus) + "\n", encoding="utf-8")
    print(f"{len(corpus)} sentences{' written to ' + str(CORPUS_PATH) if args.write else ''}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
