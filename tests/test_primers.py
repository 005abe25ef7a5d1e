"""Tests for seqgen.primers: seed windows, typed text, score files and token lists turned into known tokens."""

from types import SimpleNamespace

import numpy as np
import pytest

from seqgen.errors import SeqgenError
from seqgen.primers import encode_primer, melody_primer, random_seed_window, text_primer
from seqgen.vocab import Vocab

SEEDS = [["C4", "E4", "G4"], ["D4", "F4", "A4"], ["E4", "G4", "B4"]]


def music_bundle():
    tokens = sorted({token for seed in SEEDS for token in seed} | {"4.7.11"})
    return SimpleNamespace(folder="music", seeds=[list(seed) for seed in SEEDS], vocab=Vocab(tuple(tokens)),
                           config={"kind": "music", "tokenizer": "seed"})


@pytest.fixture
def lyrics_bundle():
    characters = sorted(set("abcdefghijklmnopqrstuvwy '\n,."))  # no "z"
    return SimpleNamespace(folder="lyrics", seeds=[], vocab=Vocab(tuple(characters)), config={"kind": "lyrics", "lowercase": True})


def test_random_seed_window_comes_from_the_bundle():
    bundle = music_bundle()
    first = random_seed_window(bundle, np.random.default_rng(5))
    assert first in SEEDS
    assert random_seed_window(bundle, 5) == first  # an int seeds a new generator
    assert {tuple(random_seed_window(bundle, seed)) for seed in range(30)} == {tuple(seed) for seed in SEEDS}
    first.append("changed")  # a copy: the bundle's seeds are untouched
    assert bundle.seeds == SEEDS
    with pytest.raises(SeqgenError, match="Bundle somewhere holds no seed windows"):
        random_seed_window(SimpleNamespace(folder="somewhere", seeds=[]), 0)


def test_text_primer_lowercases_and_reports_dropped_characters(lyrics_bundle):
    tokens, dropped = text_primer(lyrics_bundle, "Let\u2019s Dance \u20ac zz!")
    assert "".join(tokens) == "let's dance  "
    assert dropped == {"\u20ac": 1, "z": 2, "!": 1}


def test_encode_primer_drops_unknown_tokens_and_counts_them(lyrics_bundle):
    bundle = music_bundle()
    ids, tokens, dropped = encode_primer(bundle, ["C4", "XX", "G4", "XX", 7])
    assert tokens == ["C4", "G4"] and ids == bundle.vocab.encode(["C4", "G4"])
    assert dropped == {"XX": 2, "7": 1}
    assert encode_primer(bundle, "C4 Q9 4.7.11")[1:] == (["C4", "4.7.11"], {"Q9": 1})
    # A lower-case lyrics model lower-cases a character list too.
    assert encode_primer(lyrics_bundle, ["H", "I", "Z"])[1:] == (["h", "i"], {"Z": 1})


def test_melody_primer_from_nothing_text_tokens_or_a_file(tmp_path, midi_file):
    bundle = music_bundle()
    assert melody_primer(bundle, None, 0) == random_seed_window(bundle, 0)
    assert melody_primer(bundle, "C4 E4", 0) == ["C4", "E4"]
    assert melody_primer(bundle, ("C4", "G4"), 0) == ["C4", "G4"]
    path = midi_file("primer.mid", [("C4", 0, 1), ("E4", 1, 1), (["C4", "E4", "G4"], 2, 1)])
    assert melody_primer(bundle, path, 0) == ["C4", "E4", "0.4.7"]
    assert melody_primer(bundle, str(path), 0) == ["C4", "E4", "0.4.7"]  # a score file's name is a file, not a token
    with pytest.raises(SeqgenError, match="missing.mid not found"):
        melody_primer(bundle, tmp_path / "missing.mid", 0)


def test_an_events_primer_file_goes_on_instead_of_ending(midi_file):
    """A score file read with the events tokenizer ends its piece (bar line, end token); as a primer, the piece goes on."""
    bundle = SimpleNamespace(config={"tokenizer": "events"}, seeds=[])
    path = midi_file("primer.mid", [("C4", 0, 1), ("E4", 1, 1), (["C4", "E4", "G4"], 2, 2)])
    primer = melody_primer(bundle, path, 0)
    assert primer[:2] == ["BOS_None", "Bar_None"] and primer[-2:] == ["Pitch_67", "Duration_2.0.8"]
