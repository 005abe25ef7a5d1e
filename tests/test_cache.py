"""Tests for seqgen.cache: the content-hashed token cache and parallel cold parsing."""

import json
import shutil

import pytest
from conftest import simple_melody

from seqgen import cache as cache_module
from seqgen import music
from seqgen.cache import TokenCache, default_cache_dir, file_digest, tokenize_files
from seqgen.errors import SeqgenError


@pytest.fixture
def counting_tokenizer(monkeypatch):
    """Count the files the cache really parses (workers=1 runs in this process)."""
    calls = []

    def counted(path, tokenizer):
        calls.append((path.name, tokenizer))
        return music.tokenize_file(path, tokenizer)

    monkeypatch.setattr(cache_module, "tokenize_file", counted)
    return calls


@pytest.fixture
def three_files(midi_file):
    return [midi_file(f"piece{shift}.mid", simple_melody(shift)) for shift in (0, 2, 5)]


def cache_entries(folder):
    return sorted(path for path in folder.rglob("*.json"))


def test_default_cache_dir_is_the_test_session_folder(isolated_seqgen_env):
    assert default_cache_dir() == isolated_seqgen_env["cache"]
    assert TokenCache().folder == isolated_seqgen_env["cache"]


def test_second_call_hits_the_cache(tmp_path, three_files, counting_tokenizer):
    cache = TokenCache(tmp_path / "cache")
    first, skipped = tokenize_files(three_files, "seed", cache=cache, workers=1)
    assert skipped == []
    assert len(counting_tokenizer) == 3
    assert len(cache_entries(cache.folder)) == 3
    second, _ = tokenize_files(three_files, "seed", cache=cache, workers=1)
    assert second == first
    assert len(counting_tokenizer) == 3  # nothing parsed again
    assert first == [music.tokenize_file(path, "seed") for path in three_files]


def test_entries_are_per_tokenizer(tmp_path, three_files, counting_tokenizer):
    cache = TokenCache(tmp_path / "cache")
    seed, _ = tokenize_files(three_files[:1], "seed", cache=cache, workers=1)
    timed, _ = tokenize_files(three_files[:1], "timed", cache=cache, workers=1)
    assert seed != timed
    assert [call[1] for call in counting_tokenizer] == ["seed", "timed"]
    digest = file_digest(three_files[0])
    assert cache.get(digest, "seed") == seed[0]
    assert cache.get(digest, "timed") == timed[0]
    assert cache.entry_path(digest, "seed") != cache.entry_path(digest, "timed")


def test_key_follows_content_not_name(tmp_path, three_files, counting_tokenizer):
    cache = TokenCache(tmp_path / "cache")
    original = three_files[0]
    tokens, _ = tokenize_files([original], "seed", cache=cache, workers=1)
    # A copy under another name shares the entry.
    renamed = tmp_path / "elsewhere" / "renamed.mid"
    renamed.parent.mkdir()
    shutil.copy(original, renamed)
    assert tokenize_files([renamed], "seed", cache=cache, workers=1)[0] == tokens
    assert len(counting_tokenizer) == 1
    # Editing the file changes the key: it is parsed again and gives the new tokens.
    shutil.copy(three_files[1], original)
    edited, _ = tokenize_files([original], "seed", cache=cache, workers=1)
    assert len(counting_tokenizer) == 2
    assert edited != tokens
    assert edited == [music.tokenize_file(three_files[1], "seed")]
    assert len(cache_entries(cache.folder)) == 2


@pytest.mark.parametrize("garbage", [b"\x00\xff garbage \x13", b'{"tokens": [1, 2]}', b'["C4"]', b""])
def test_corrupt_entry_is_ignored_and_rebuilt(tmp_path, three_files, counting_tokenizer, garbage):
    cache = TokenCache(tmp_path / "cache")
    path = three_files[0]
    tokens, _ = tokenize_files([path], "seed", cache=cache, workers=1)
    entry = cache.entry_path(file_digest(path), "seed")
    entry.write_bytes(garbage)
    assert cache.get(file_digest(path), "seed") is None
    again, skipped = tokenize_files([path], "seed", cache=cache, workers=1)
    assert (again, skipped) == (tokens, [])
    assert len(counting_tokenizer) == 2  # parsed again ...
    assert json.loads(entry.read_text(encoding="utf-8")) == {"tokens": tokens[0]}  # ... and the entry rewritten


def test_unwritable_cache_does_not_stop_the_work(tmp_path, three_files):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    cache = TokenCache(blocker)
    tokens, skipped = tokenize_files(three_files[:2], "seed", cache=cache, workers=1)
    assert len(tokens) == 2 and skipped == []
    assert cache.get(file_digest(three_files[0]), "seed") is None


def test_two_workers_give_the_same_tokens(tmp_path, three_files):
    serial, _ = tokenize_files(three_files, "timed", cache=TokenCache(tmp_path / "one"), workers=1)
    parallel, _ = tokenize_files(three_files, "timed", cache=TokenCache(tmp_path / "two"), workers=2)
    assert parallel == serial
    assert len(cache_entries(tmp_path / "two")) == 3  # the parent process stored the workers' results


def test_failures_are_reported_in_order_with_reasons(tmp_path, three_files, midi_file):
    empty = tmp_path / "empty.mid"
    empty.write_bytes(b"")
    corrupt = tmp_path / "corrupt.mid"
    corrupt.write_bytes(b"not a midi file at all")
    silent = midi_file("silent.mid", [(None, 0, 4)])
    missing = tmp_path / "missing.mid"
    paths = [three_files[0], empty, corrupt, three_files[1], silent, missing]
    progress = []
    for workers in (1, 2):
        tokens, skipped = tokenize_files(paths, "seed", cache=TokenCache(tmp_path / f"cache{workers}"), workers=workers,
                                         progress=lambda done, total: progress.append((done, total)))
        assert tokens == [music.tokenize_file(three_files[0], "seed"), music.tokenize_file(three_files[1], "seed")]
        reasons = {item["file"]: item["reason"] for item in skipped}
        assert list(reasons) == [str(empty), str(corrupt), str(silent), str(missing)]
        assert reasons[str(empty)] == "empty.mid: the file is empty (0 bytes)."
        assert reasons[str(corrupt)].startswith("corrupt.mid: music21 could not read it as a score")
        assert reasons[str(silent)] == "silent.mid: no pitched notes or chords found."
        assert reasons[str(missing)].startswith("missing.mid: cannot read the file")
        assert progress[-1] == (6, 6)
        progress.clear()


def test_progress_counts_cached_files_first(tmp_path, three_files):
    cache = TokenCache(tmp_path / "cache")
    tokenize_files(three_files[:2], "seed", cache=cache, workers=1)
    progress = []
    tokenize_files(three_files, "seed", cache=cache, workers=1, progress=lambda done, total: progress.append((done, total)))
    assert progress == [(2, 3), (3, 3)]


def test_unknown_tokenizer(tmp_path, three_files):
    with pytest.raises(SeqgenError, match="Unknown tokenizer 'notes'"):
        tokenize_files(three_files, "notes", cache=TokenCache(tmp_path / "cache"))
