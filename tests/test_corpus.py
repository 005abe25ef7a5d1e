"""Tests for seqgen.corpus: loading corpora into one token stream and the exploration report."""

import zipfile
from collections import Counter

import pytest
from conftest import MULTITRACK_TIMED, SLOW_PRIMITIVES, primitive_midi_files, simple_melody

from seqgen import music
from seqgen.cache import TokenCache
from seqgen.corpus import Corpus, explore, load_corpus
from seqgen.errors import SeqgenError
from seqgen.vocab import filter_reference


def music_corpus(tokens, name="toy"):
    return Corpus(name, "music", "seed", 1, list(tokens))


# --- real-world MIDI folder --------------------------------------------------------------


@pytest.mark.parametrize("tokenizer", ["seed", "timed"])
def test_real_world_midi_folder_explores(real_world_midi_folder, tokenizer, tmp_path):
    cache = TokenCache(tmp_path / "cache")
    corpus = load_corpus(real_world_midi_folder, tokenizer=tokenizer, cache=cache, workers=2)
    files = sorted(real_world_midi_folder.glob("*.mid"))
    assert len(files) == len(primitive_midi_files()) - len(SLOW_PRIMITIVES) + 1 == 21
    assert corpus.kind == "music" and corpus.tokenizer == tokenizer
    assert corpus.items == len(files) and corpus.skipped == []
    assert len(corpus.tokens) > 1000
    if tokenizer == "timed":
        for token in set(corpus.tokens):
            music.parse_timed_token(token)  # every token is well formed
        # Files are read in sorted order: the multi-track file (tempo changes, drums) comes first.
        assert corpus.tokens[:len(MULTITRACK_TIMED)] == MULTITRACK_TIMED
    result = explore(corpus, min_count=5, window=40)
    report = result.report
    assert report["items"] == len(files)
    assert report["tokens_total"] == len(corpus.tokens)
    assert report["sequences"] == report["tokens_after_filter"] - 40 > 0
    assert report["rare_tokens"] == sum(1 for count in Counter(corpus.tokens).values() if count < 5)


# --- folders with bad files -------------------------------------------------------------------


def test_bad_scores_in_a_folder_are_skipped_with_reasons(tmp_path, midi_file):
    folder = tmp_path / "mixed"
    good = [midi_file(f"mixed/good{shift}.mid", simple_melody(shift)) for shift in (0, 3)]
    (folder / "empty.mid").write_bytes(b"")
    (folder / "corrupt.mid").write_bytes(b"MThd this is not really a MIDI file")
    (folder / "broken.musicxml").write_text("<score-partwise><part>", encoding="utf-8")
    (folder / "readme.md").write_text("not a score")
    corpus = load_corpus(folder, cache=TokenCache(tmp_path / "cache"), workers=1)
    assert corpus.items == 2
    assert corpus.tokens == music.tokenize_file(good[0], "seed") + music.tokenize_file(good[1], "seed")
    reasons = {item["file"].rsplit("/", 1)[-1]: item["reason"] for item in corpus.skipped}
    assert set(reasons) == {"empty.mid", "corrupt.mid", "broken.musicxml"}
    assert "empty (0 bytes)" in reasons["empty.mid"]
    assert "could not read it as a score" in reasons["corrupt.mid"]
    assert reasons["broken.musicxml"].startswith("broken.musicxml:")
    assert explore(corpus, min_count=1, window=4).report["skipped"] == corpus.skipped


def test_bad_scores_in_a_zip_are_named_relative_to_the_zip(tmp_path, midi_file):
    good = midi_file("good.mid", simple_melody())
    archive = tmp_path / "upload.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.write(good, "songs/good.mid")
        bundle.writestr("songs/empty.mid", b"")
        bundle.writestr("../escape.mid", good.read_bytes())
    corpus = load_corpus(archive, cache=TokenCache(tmp_path / "cache"), workers=1)
    assert corpus.items == 1
    skipped = {item["file"]: item["reason"] for item in corpus.skipped}
    assert set(skipped) == {"../escape.mid", "songs/empty.mid"}
    assert "empty (0 bytes)" in skipped["songs/empty.mid"]


def test_every_file_failing_is_a_clear_error(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "a.mid").write_bytes(b"")
    (folder / "b.mid").write_bytes(b"garbage")
    with pytest.raises(SeqgenError) as error:
        load_corpus(folder, cache=TokenCache(tmp_path / "cache"), workers=1)
    message = str(error.value)
    assert "Corpus 'broken': none of its 2 score files could be read" in message
    assert "a.mid: the file is empty" in message and "b.mid" in message


def test_load_corpus_unknown_tokenizer(tmp_path, midi_file):
    path = midi_file("one.mid", simple_melody())
    with pytest.raises(SeqgenError, match="Unknown tokenizer 'abc'"):
        load_corpus(path, tokenizer="abc")


# --- lyrics ------------------------------------------------------------------------------------


SCRAPED = (
    "artist,lyrics\n"
    "A,\"Caf\u00e9 \u201cnights\u201d \U0001F319\nDon\u2019t stop, BABY\"\n"
    "B,\"Second song\nwith two lines\"\n"
)


def test_lyrics_csv_explores_with_a_charset_report(tmp_path):
    path = tmp_path / "scraped.csv"
    path.write_text(SCRAPED, encoding="utf-8")
    corpus = load_corpus(path)
    assert (corpus.kind, corpus.tokenizer, corpus.items) == ("lyrics", "char", 2)
    text = "cafe \"nights\" \ndon't stop, baby\n\nsecond song\nwith two lines"
    assert "".join(corpus.tokens) == text
    report = explore(corpus).report
    assert report["min_count"] == 1 and report["rare_tokens"] == 0
    assert report["tokens_total"] == len(text)
    assert report["sequences"] == len(text) - 40
    assert "\U0001F319" in report["charset_raw"] and "\u201c" in report["charset_raw"] and "B" in report["charset_raw"]
    assert report["charset_clean"] == sorted(set(text))
    assert report["removed_chars"] == {"\U0001F319": 1}
    assert report["mapped_chars"]["\u2019"] == "'" and report["mapped_chars"]["\u00e9"] == "e"


def test_lyrics_keep_case(tmp_path):
    path = tmp_path / "scraped.csv"
    path.write_text(SCRAPED, encoding="utf-8")
    corpus = load_corpus(path, keep_case=True)
    assert "BABY" in "".join(corpus.tokens) and "Cafe" in "".join(corpus.tokens)
    assert {"B", "C", "D"} <= set(explore(corpus).report["charset_clean"])


def test_lyrics_latin1_warning_reaches_the_report(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("Lyrics\n\"ch\u00e8re amie\"\n".encode("latin-1"))
    report = explore(load_corpus(path), window=3).report
    assert len(report["warnings"]) == 1 and "latin.csv" in report["warnings"][0]
    assert report["removed_chars"] == {"\ufffd": 1}


def test_lyrics_text_column(tmp_path):
    path = tmp_path / "kaggle.csv"
    path.write_text("Artist Name,Song Name,Lyrics\nX,Hey Jude,la la la\n", encoding="utf-8")
    assert "".join(load_corpus(path, text_column="Song Name").tokens) == "hey jude"


def test_lyrics_nothing_left_after_cleaning(tmp_path):
    path = tmp_path / "emoji.txt"
    path.write_text("\U0001F600\U0001F600\u2665", encoding="utf-8")
    with pytest.raises(SeqgenError, match="Corpus 'emoji': no text is left after cleaning"):
        load_corpus(path)


def test_songs_poems_loads():
    corpus = load_corpus("songs-poems")
    assert corpus.items > 500
    assert len(corpus.charset.charset_clean) <= 51
    assert len(corpus.tokens) > 100_000


# --- explore -------------------------------------------------------------------------------------


def test_explore_counts_like_the_reference():
    tokens = ["a"] * 5 + ["b"] * 4 + ["x", "y", "x"] + ["a", "b"] * 3
    corpus = music_corpus(tokens)
    exact = explore(corpus, min_count=3, window=4).report
    assert exact["tokens_total"] == len(tokens) and exact["vocab_size"] == 4
    assert exact["rare_tokens"] == 2
    assert exact["tokens_after_filter"] == len(tokens) - 3 and exact["vocab_after_filter"] == 2
    assert exact["rare_left"] == 0
    assert exact["sequences"] == exact["tokens_after_filter"] - 4
    assert exact["first_tokens"] == tokens[:50]
    assert exact["top_tokens"][0] == ["a", 8]
    reference = explore(corpus, min_count=3, window=4, filter_mode="reference")
    kept = filter_reference(tokens, {"x", "y"})
    assert reference.kept_tokens == kept
    assert reference.report["tokens_after_filter"] == len(kept)
    assert reference.report["rare_left"] == len({"x", "y"} & set(kept))


def test_explore_first_tokens_are_the_first_fifty():
    tokens = [f"t{index % 7}" for index in range(120)]
    report = explore(music_corpus(tokens), min_count=1).report
    assert report["first_tokens"] == tokens[:50]
    assert report["sequences"] == 80


def test_explore_default_min_count_is_100_for_music():
    tokens = ["a"] * 100 + ["b"] * 99
    report = explore(music_corpus(tokens)).report
    assert report["min_count"] == 100 and report["rare_tokens"] == 1 and report["tokens_after_filter"] == 100


def test_explore_everything_filtered_names_the_threshold():
    with pytest.raises(SeqgenError) as error:
        explore(music_corpus(["a", "b", "a"]), min_count=1000)
    message = str(error.value)
    assert "min-count 1000 removed every token of corpus 'toy'" in message
    assert "'a' occurs only 2 times" in message and "Lower --min-count to 2" in message


def test_explore_window_longer_than_the_corpus_warns():
    report = explore(music_corpus(["a", "b"] * 10), min_count=1, window=40).report
    assert report["sequences"] == 0
    assert any("window (40) is not shorter than the filtered corpus (20 tokens)" in warning for warning in report["warnings"])


def test_explore_bad_arguments():
    corpus = music_corpus(["a"] * 50)
    with pytest.raises(SeqgenError, match="Unknown filter 'loose'"):
        explore(corpus, filter_mode="loose")
    with pytest.raises(SeqgenError, match=r"window must be at least 1 token \(got 0\)"):
        explore(corpus, window=0)
    with pytest.raises(SeqgenError, match="min-count must be at least 1"):
        explore(corpus, min_count=0)


def test_chopin_builtin(tmp_path):
    corpus = load_corpus("chopin", cache=TokenCache(tmp_path / "cache"), workers=1)
    assert corpus.items == 1 and corpus.skipped == []
    assert corpus.tokens == music.tokenize_file(corpus_file("chopin"), "seed")
    result = explore(corpus, min_count=5)
    assert result.report["rare_tokens"] == sum(1 for count in Counter(corpus.tokens).values() if count < 5)
    assert result.counts == Counter(corpus.tokens)


def corpus_file(name):
    from seqgen.sources import resolve

    return resolve(name).files[0]
