"""The fine-tuning corpus: WordNet's example sentences parsed from its data files, committed, mixed evenly with the
first corpus, never holding an evaluation sentence or the drift pool; a bad WordNet folder is a one-line error."""

from __future__ import annotations

import json

import pytest

from model_zoo import corpus

LICENCE_HEADER = "  1 This software and database is being provided to you, the LICENSEE, by\n"


def _dict_folder(tmp_path, noun_lines):
    for name in corpus.WORDNET_FILES:
        (tmp_path / name).write_text(LICENCE_HEADER, encoding="latin-1")
    (tmp_path / "data.noun").write_text(LICENCE_HEADER + "".join(noun_lines), encoding="latin-1")
    return tmp_path


def test_examples_are_the_quoted_sentences_of_the_glosses(tmp_path):
    evaluation = json.loads(corpus.SENTENCES_PATH.read_text(encoding="utf-8"))["evaluation"][0]
    folder = _dict_folder(tmp_path, [
        '00001 03 n 01 kayak 0 000 | a small canoe; "we kayaked down the river to the sea"\n',
        '00002 03 n 01 race 0 000 | a contest; "it was a race against the clock!"; "too short"\n',
        '00003 03 n 01 fee 0 000 | a payment; "the café charges a very high fee today"\n',  # not ASCII
        f'00004 03 n 01 cat 0 000 | a feline; "{evaluation}"\n',  # an evaluation sentence: never trained on
        '00005 03 n 01 gloss 0 000 | no example here, and "a short one"\n',
    ])
    found = corpus.wordnet_examples(folder)
    assert sorted(found) == ["It was a race against the clock!", "We kayaked down the river to the sea."]


def test_a_folder_without_wordnet_data_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "data.noun").write_text(LICENCE_HEADER, encoding="latin-1")
    committed = corpus.digest()
    with pytest.raises(SystemExit) as err:
        corpus.main(["--wordnet", str(tmp_path)])
    assert err.value.code == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert message.endswith(f"{tmp_path} lacks WordNet's data.verb, data.adj, data.adv; expected the dict folder "
                            "of Debian's wordnet-base (usr/share/wordnet)")
    assert corpus.digest() == committed  # the committed examples are left as they were


def test_the_committed_examples_hold_no_evaluation_sentence():
    held = json.loads(corpus.SENTENCES_PATH.read_text(encoding="utf-8"))
    kept = set(corpus.wordnet())
    assert len(kept) == len(corpus.wordnet()) > 20_000
    assert not kept & {s for part in ("calibration", "validation", "evaluation") for s in held[part]}


def test_fine_tunes_read_both_sources_evenly_and_never_the_drift_pool():
    mixed, wordnet, first = corpus.trainable(), corpus.wordnet(), corpus.sentences()[:-corpus.HELD_OUT]
    assert sorted(mixed) == sorted(wordnet + first)
    assert not set(mixed) & set(corpus.held_out())
    from_wordnet, from_first = set(wordnet), set(first)
    share = len(wordnet) / len(mixed)
    for start in range(0, len(mixed), 4000):  # every slice holds the two in their proportions
        part = mixed[start:start + 4000]
        assert abs(sum(s in from_wordnet for s in part) / len(part) - share) < 0.01
    assert [s for s in mixed if s in from_first] == list(first)  # each source keeps its own order


def test_the_digest_covers_both_files(monkeypatch, tmp_path):
    before = corpus.digest()
    changed = tmp_path / "wordnet_examples.txt"
    changed.write_text(corpus.WORDNET_PATH.read_text(encoding="utf-8") + "One more sentence here for the test.\n",
                       encoding="utf-8")
    monkeypatch.setattr(corpus, "WORDNET_PATH", changed)
    assert corpus.digest() != before
