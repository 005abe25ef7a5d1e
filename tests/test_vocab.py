"""Tests for seqgen.vocab: the rare-token filters and the token <-> index vocabulary."""

import json
import random
from collections import Counter

import pytest

from seqgen.errors import SeqgenError
from seqgen.vocab import FILTERS, Vocab, apply_filter, filter_exact, filter_reference, rare_tokens


def reference_loop(tokens, rare):
    """The reference notebook's loop, literally: it removes items from the list it iterates over."""
    corpus = list(tokens)
    for element in corpus:
        if element in rare:
            corpus.remove(element)
    return corpus


# --- the reference filter ----------------------------------------------------------


def test_reference_filter_hand_worked_example_keeps_a_rare_token():
    # Walk: i=0 'a' kept; i=1 'x' rare -> remove first 'x' (index 1), list shifts and the
    # second 'x' moves to index 1, so i=2 looks at 'b': the second 'x' is never seen.
    tokens = ["a", "x", "x", "b", "y", "c"]
    rare = {"x", "y"}
    assert reference_loop(tokens, rare) == ["a", "x", "b", "c"]
    assert filter_reference(tokens, rare) == ["a", "x", "b", "c"]
    assert filter_exact(tokens, rare) == ["a", "b", "c"]


def test_reference_filter_removes_an_earlier_skipped_occurrence():
    # 'x' at index 2 is skipped (after removing 'y'); the next rare 'x' met by the
    # iterator removes the *first* 'x' still present, i.e. the skipped one.
    tokens = ["y", "x", "a", "x", "b"]
    rare = {"x", "y"}
    expected = reference_loop(tokens, rare)
    assert filter_reference(tokens, rare) == expected
    assert expected == ["a", "x", "b"]


@pytest.mark.parametrize(
    "tokens",
    [
        [],
        ["r"],
        ["r", "r"],
        ["r", "r", "r", "r", "r"],
        ["a", "b", "c"],
        ["r", "a", "r", "a", "r"],
        ["a", "r", "s", "r", "s", "a"],
        ["r", "s", "t", "r", "s", "t", "a"],
    ],
)
def test_reference_filter_small_lists(tokens):
    rare = {"r", "s", "t"}
    assert filter_reference(tokens, rare) == reference_loop(tokens, rare)


def test_reference_filter_matches_the_literal_loop_on_random_corpora():
    generator = random.Random(20240611)
    survivors = 0
    for case in range(400):
        alphabet = [f"t{index}" for index in range(generator.randint(1, 12))]
        length = generator.randint(0, 60)
        # Skewed frequencies so that some tokens are rare and some are common.
        weights = [generator.random() ** 3 for _ in alphabet]
        tokens = generator.choices(alphabet, weights=weights, k=length)
        min_count = generator.randint(1, 6)
        rare = rare_tokens(Counter(tokens), min_count)
        expected = reference_loop(tokens, rare)
        assert filter_reference(tokens, rare) == expected, (case, tokens, sorted(rare))
        survivors += sum(1 for token in expected if token in rare)
        assert filter_exact(tokens, rare) == [token for token in tokens if token not in rare]
    assert survivors > 0  # the cases exercise the "rare tokens survive" behaviour


def test_reference_filter_matches_the_loop_on_a_corpus_sized_stream():
    # Zipf-like frequencies over 300 tokens, like a composer's notes and chords.
    generator = random.Random(7)
    tokens = generator.choices([f"n{index}" for index in range(300)], weights=[1 / (1 + i) ** 1.5 for i in range(300)], k=20_000)
    rare = rare_tokens(Counter(tokens), 40)
    kept = filter_reference(tokens, rare)
    assert kept == reference_loop(tokens, rare)
    assert sum(1 for token in kept if token in rare) > 0


# --- apply_filter ------------------------------------------------------------------------


def test_apply_filter_exact_removes_every_rare_token():
    tokens = ["a", "a", "a", "b", "b", "c", "d", "c"]
    kept, rare = apply_filter(tokens, 3, "exact")
    assert rare == {"b", "c", "d"}
    assert kept == ["a", "a", "a"]


def test_apply_filter_reference_mode_uses_the_loop():
    tokens = ["a", "x", "x", "b", "y", "c"] + ["a", "b", "c"] * 2
    kept, rare = apply_filter(tokens, 3, "reference")
    assert rare == {"x", "y"}
    assert kept == reference_loop(tokens, rare)
    assert "x" in kept


def test_apply_filter_min_count_one_keeps_everything():
    tokens = ["a", "b", "c"]
    for mode in FILTERS:
        assert apply_filter(tokens, 1, mode) == (tokens, set())


def test_apply_filter_bad_arguments():
    with pytest.raises(SeqgenError, match=r"Unknown filter 'fast'.*exact, reference"):
        apply_filter(["a"], 2, "fast")
    with pytest.raises(SeqgenError, match=r"min-count must be at least 1 \(got 0\)"):
        apply_filter(["a"], 0, "exact")


# --- Vocab ---------------------------------------------------------------------------------


def test_vocab_is_sorted_and_round_trips():
    tokens = ["G4", "C4", "0.4.7", "C4", "B-3", "G4"]
    vocab = Vocab.from_tokens(tokens)
    assert vocab.tokens == ("0.4.7", "B-3", "C4", "G4")
    assert len(vocab) == 4
    assert "C4" in vocab and "D4" not in vocab
    ids = vocab.encode(tokens)
    assert ids == [3, 2, 0, 2, 1, 3]
    assert vocab.decode(ids) == tokens


def test_vocab_order_does_not_depend_on_corpus_order():
    tokens = list("the quick brown fox")
    assert Vocab.from_tokens(tokens) == Vocab.from_tokens(reversed(tokens))


def test_vocab_json_save_and_load(tmp_path):
    vocab = Vocab.from_tokens(["é", " ", "\n", "a", "C#4_2", "R_4"])
    path = tmp_path / "vocab.json"
    vocab.save(path)
    assert json.loads(path.read_text(encoding="utf-8")) == {"tokens": list(vocab.tokens)}
    assert Vocab.load(path) == vocab
    assert Vocab.from_json(vocab.to_json()) == vocab


def test_vocab_unknown_token_is_named():
    vocab = Vocab.from_tokens(["a", "b"])
    with pytest.raises(SeqgenError, match=r"Token 'zz' is not in the vocabulary \(2 tokens\)"):
        vocab.encode(["a", "zz", "b"])


def test_vocab_rejects_duplicates():
    with pytest.raises(SeqgenError, match="same token twice"):
        Vocab(("a", "b", "a"))


def test_vocab_load_corrupt_json(tmp_path):
    path = tmp_path / "vocab.json"
    path.write_text('{"tokens": ["a", ', encoding="utf-8")
    with pytest.raises(SeqgenError, match="not a readable vocabulary JSON file"):
        Vocab.load(path)
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(SeqgenError, match="not a readable vocabulary JSON file"):
        Vocab.load(path)


@pytest.mark.parametrize("content", ['["a", "b"]', '{"tokens": "ab"}', '{"tokens": [1, 2]}', '{"words": ["a"]}'])
def test_vocab_load_wrong_shape(tmp_path, content):
    path = tmp_path / "vocab.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(SeqgenError, match=r"A vocabulary must be stored as \{'tokens': \[list of strings\]\}"):
        Vocab.load(path)


def test_vocab_load_missing_file(tmp_path):
    with pytest.raises(SeqgenError, match="vocabulary file not found"):
        Vocab.load(tmp_path / "nope.json")
