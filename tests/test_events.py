"""Note events: miditok REMI tokens from MIDI (symusic) and from music21 scores, back to the same notes."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import symusic

from seqgen import events, music
from seqgen.cache import TokenCache, file_digest, tokenize_files
from seqgen.errors import SeqgenError
from seqgen.sources import resolve

GRID = 8  # positions a quarter note
LONGEST = 12.0  # beats: a longer note is cut to this length


def grid_notes(piece) -> Counter:
    """(start, duration, pitch) of every non-drum note of a symusic Score in quarters (the longest cut to 12 beats),
    when all lie on the grid; empty otherwise."""
    per_quarter = piece.ticks_per_quarter
    found = Counter()
    for track in piece.tracks:
        if track.is_drum:
            continue
        for note in track.notes:
            start, duration = note.time / per_quarter, note.duration / per_quarter
            if (start * GRID) % 1 or (duration * GRID) % 1 or duration > 4 and (duration * 4) % 1:
                return Counter()  # off the grid (a triplet): rounded when read, so not exact
            found[start, min(duration, LONGEST), note.pitch] += 1
    return found


def decoded(tokens) -> Counter:
    return Counter((note.start, note.duration, note.pitch) for note in events.decode(tokens).notes)


@pytest.mark.parametrize("corpus, files", [("bach", 12), ("oneills", 1), ("essen", 1), ("joplin", 1)])
def test_built_in_pieces_round_trip_exactly_on_the_grid(corpus, files):
    with resolve(corpus) as source:
        paths = sorted(source.files, key=lambda path: path.stat().st_size)[:files]
        exact = 0
        for path in paths:
            for piece in events.read_pieces(path):
                notes = grid_notes(piece)
                tokens = events.encode_piece(piece)
                assert tokens[0] == events.START and tokens[-2:] == [events.BAR, events.END]
                if notes:
                    assert decoded(tokens) == notes, path.name
                    exact += 1
        assert exact >= 1


def user_midi(path: Path) -> Path:
    """Two piano hands and a drum track: a held bass note under a moving melody, a chord, 3/4 time."""
    score = symusic.Score(480)
    score.time_signatures.append(symusic.TimeSignature(0, 3, 4))
    right = symusic.Track(name="right hand", program=0)
    for start, pitch in enumerate((72, 74, 76, 77, 79, 77)):
        right.notes.append(symusic.Note(start * 480, 480, pitch, 80))
    left = symusic.Track(name="left hand", program=0)
    left.notes.append(symusic.Note(0, 3 * 480, 48, 70))  # held for the whole first bar
    for pitch in (43, 50, 55):
        left.notes.append(symusic.Note(3 * 480, 3 * 480, pitch, 70))  # a chord held through bar 2
    drums = symusic.Track(name="drums", program=0, is_drum=True)
    drums.notes.append(symusic.Note(0, 240, 36, 100))
    score.tracks.extend([right, left, drums])
    score.dump_midi(str(path))
    return path


def test_a_multi_track_midi_keeps_every_voice_and_every_held_note(tmp_path):
    path = user_midi(tmp_path / "hands.mid")
    tokens = events.tokenize_file(path)
    assert "TimeSig_3/4" in tokens and tokens.count(events.BAR) == 3  # two bars, then the closing bar line
    expected = Counter({(float(start), 1.0, pitch): 1 for start, pitch in enumerate((72, 74, 76, 77, 79, 77))})
    expected.update({(0.0, 3.0, 48): 1, (3.0, 3.0, 43): 1, (3.0, 3.0, 50): 1, (3.0, 3.0, 55): 1})
    assert decoded(tokens) == expected  # the drum track is left out
    assert events.decode(tokens).length == 6.0
    # Held notes stay held in the melody's MIDI file, read back by symusic.
    midi = music.write_midi(tokens, tmp_path / "back.mid", "events")
    back = symusic.Score(str(midi))
    lengths = {note.pitch: note.duration / back.ticks_per_quarter for note in back.tracks[0].notes}
    assert lengths[48] == 3.0 and lengths[72] == 1.0
    assert back.end() == 6 * back.ticks_per_quarter and back.time_signatures[0].numerator == 3  # two whole bars of 3/4


def test_a_pickup_bar_starts_on_its_beat():
    with resolve("bach") as source:
        path = next(path for path in source.files if path.stem == "bwv66.6")
    tokens = events.tokenize_file(path)
    assert tokens[:4] == [events.START, events.BAR, "TimeSig_4/4", "Position_24"]  # the pickup is beat 4
    assert events.decode(tokens).length % 4 == 0


def test_the_default_min_count_keeps_every_events_token():
    from seqgen.corpus import Corpus, explore

    corpus = Corpus("hands", "music", "events", 1, ["Bar_None", "Position_0", "Pitch_60", "Duration_1.0.8"] * 3)
    report = explore(corpus, window=4).report
    assert report["min_count"] == 1 and report["tokens_after_filter"] == 12


def test_readable_tokens():
    shown = [music.display_token(token) for token in
             ("BOS_None", "Bar_None", "TimeSig_3/4", "Position_0", "Position_12", "Pitch_61", "Pitch_70",
              "Duration_1.0.8", "Duration_1.4.8", "Duration_0.4.8", "Duration_2.0.8", "EOS_None")]
    assert shown == ["start", "bar", "3/4", "beat 1", "beat 2½", "C♯4", "B♭4", "♩", "♩.", "♪", "𝅗𝅥", "end"]


def test_bad_tokens_and_files_are_named(tmp_path):
    with pytest.raises(SeqgenError, match=r"'C4' \(token 2\) is not an events token"):
        events.decode(["Bar_None", "C4"])
    with pytest.raises(SeqgenError, match="is not an events token"):
        music.soundings(["Pitch_60", "Duration_9.9.9"], "events")
    empty = tmp_path / "empty.mid"
    empty.write_bytes(b"")
    with pytest.raises(SeqgenError, match="empty.mid: the file is empty"):
        events.tokenize_file(empty)
    junk = tmp_path / "junk.mid"
    junk.write_bytes(b"not a midi file at all")
    with pytest.raises(SeqgenError, match="junk.mid: not a readable MIDI file"):
        events.tokenize_file(junk)


def test_the_cache_key_holds_the_tokenizer_configuration(tmp_path, monkeypatch):
    path = user_midi(tmp_path / "hands.mid")
    cache = TokenCache(tmp_path / "cache")
    streams, skipped = tokenize_files([path], "events", cache=cache, workers=1)
    assert not skipped and streams[0] == events.tokenize_file(path)
    folders = [folder.name for folder in (tmp_path / "cache" / "tokens").iterdir()]
    assert folders == [f"events-v{events.VERSION}-{events.config_digest()}"]
    assert events.config_digest() in music.cache_tag("events")
    # Another configuration reads nothing from that entry.
    monkeypatch.setattr(events, "config_digest", lambda: "00000000")
    assert cache.get(file_digest(path), "events") is None


def test_the_grammar_follows_remi_order():
    tokens = ["BOS_None", "EOS_None", "Bar_None", "TimeSig_4/4", "Position_0", "Position_8", "Pitch_60", "Pitch_64", "Pitch_67",
              "Duration_1.0.8", "Duration_2.0.8"]
    grammar = events.Grammar(tokens)

    def allowed_after(*sequence):
        state = grammar.state_after([tokens.index(token) for token in sequence])
        return {token for token, ok in zip(tokens, grammar.allowed(state)) if ok}

    assert allowed_after() == set(tokens)  # nothing known yet: anything
    assert allowed_after("BOS_None") == {"Bar_None"}
    assert allowed_after("Bar_None") == {"TimeSig_4/4", "Position_0", "Position_8", "Bar_None", "EOS_None"}
    assert "EOS_None" not in allowed_after("BOS_None", "Bar_None")  # a piece does not end before its first note
    assert "EOS_None" in allowed_after("BOS_None", "Bar_None", "Position_0", "Pitch_60", "Duration_1.0.8", "Bar_None")
    assert allowed_after("Bar_None", "Position_8") == {"Pitch_60", "Pitch_64", "Pitch_67"}
    assert allowed_after("Position_8", "Pitch_64") == {"Duration_1.0.8", "Duration_2.0.8"}
    # After a note: a higher pitch or one unison at this position, a later position, or the next bar (no end mid-bar).
    assert allowed_after("Bar_None", "Position_0", "Pitch_64", "Duration_1.0.8") == {"Pitch_64", "Pitch_67", "Position_8", "Bar_None"}
    twice = ("Position_0", "Pitch_64", "Duration_1.0.8", "Pitch_64", "Duration_1.0.8")
    assert allowed_after(*twice) == {"Pitch_67", "Position_8", "Bar_None"}  # no third E4 at one onset
    assert allowed_after("EOS_None") == {"BOS_None"}


def test_the_corpus_keeps_the_grammar_but_for_rare_triple_unisons():
    """The built-in chorales, tokenized, break the grammar only where three voices or more share a note."""
    with resolve("bach") as source:
        tokens = [token for path in source.files[:40] for token in events.tokenize_file(path)]
    vocabulary = sorted(set(tokens))
    grammar = events.Grammar(vocabulary)
    state, broken = events.GrammarState(), []
    for token in tokens:
        index = vocabulary.index(token)
        if not grammar.allowed(state)[index]:
            broken.append((state, token))
        state = grammar.advance(state, index)
    assert all(token.startswith("Pitch_") and state.same_pitch >= events.MAX_UNISON for state, token in broken)
    assert len(broken) < 0.01 * len(tokens)


def test_no_piece_ends_sooner_than_the_corpus_shortest():
    from seqgen.vocab import Vocab

    vocab = Vocab(("BOS_None", "EOS_None", "Bar_None", "Position_0", "Position_8", "Pitch_60", "Duration_1.0.8"))
    two_notes = ["BOS_None", "Bar_None", "Position_0", "Pitch_60", "Duration_1.0.8", "Position_8", "Pitch_60", "Duration_1.0.8",
                 "Bar_None", "EOS_None"]
    corpus = vocab.encode(two_notes * 3)
    assert events.piece_lengths(vocab, corpus).tolist() == [8, 8, 8] and events.shortest_piece(vocab, None) == 0
    grammar = events.Grammar(vocab.tokens, events.shortest_piece(vocab, corpus))
    end = vocab.encode(["EOS_None"])[0]

    def may_end(sequence) -> bool:
        return bool(grammar.allowed(grammar.state_after(vocab.encode(sequence)))[end])

    assert not may_end(["BOS_None", "Bar_None", "Position_0", "Pitch_60", "Duration_1.0.8", "Bar_None"])  # 5 tokens: too short
    assert may_end(two_notes[:-1])  # 8 tokens since the start, after a bar line
    assert may_end(two_notes[1:-1])  # a primer without its start: its length is unknown, so it may end
