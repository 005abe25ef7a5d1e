"""Tests for seqgen.evaluate: the model-card quality report (generations beside corpus windows and a unigram sampler).

They use the session's shared debug bundles (tests/conftest.py); a test that
writes a report into a bundle works on a copy.
"""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest

from conftest import debug_config, run_seqgen
from seqgen.bundle import write_quality
from seqgen.errors import SeqgenError
from seqgen.evaluate import COPY_LIMIT, LYRICS_LENGTH, MELODY_LENGTH, _unigram_draws, _with_primer_distance, evaluate_bundle, quality_checks
from seqgen.quality import histogram_distance, pitch_class_histogram, repetition_rate


def bundle_copy(bundle, folder):
    """The shared bundle with its files copied to ``folder`` (the loaded model is reused, not reloaded)."""
    return dataclasses.replace(bundle, folder=shutil.copytree(bundle.folder, folder))


@pytest.fixture(scope="module")
def music_quality(music_bundle):
    return evaluate_bundle(music_bundle, generations=4, rng_seed=5)


def test_melody_evaluation_compares_three_sources(music_bundle, music_quality):
    bundle = music_bundle
    reports = music_quality["reports"]
    assert [len(reports[source]) for source in ("generated", "corpus", "unigram")] == [4, 4, 4]
    assert all(report["tokens"] == MELODY_LENGTH for source in reports.values() for report in source)
    # Corpus windows are copied by definition, so only generations and unigram draws get an n-gram figure.
    assert all(report["longest_copied_ngram"] is None for report in reports["corpus"])
    assert all(1 <= report["longest_copied_ngram"] <= MELODY_LENGTH for report in reports["generated"] + reports["unigram"])
    summary = music_quality["summaries"]["generated"]
    assert summary["repetition_rate"] == pytest.approx(np.mean([report["repetition_rate"] for report in reports["generated"]]))
    copied = [report["longest_copied_ngram"] for report in reports["generated"]]
    assert summary["longest_copied_ngram_max"] == max(copied)
    assert summary["copied_under_limit_share"] == pytest.approx(np.mean([length < COPY_LIMIT for length in copied]))
    assert all(0 <= report["primer_pitch_class_distance"] <= 1 for source in reports.values() for report in source)
    # Corpus windows are real 100-token stretches of the corpus: each one's repetition rate is one of
    # theirs (the corpus repeats G4 G4 once per 15 tokens, so none is 0).
    corpus_tokens = bundle.vocab.decode(bundle.corpus_ids)
    rates = {repetition_rate(corpus_tokens[start:start + MELODY_LENGTH]) for start in range(len(corpus_tokens) - MELODY_LENGTH + 1)}
    assert min(rates) > 0.05
    assert all(report["repetition_rate"] in rates for report in reports["corpus"])


def test_distance_to_the_primer_measures_keeping_its_key():
    report = {"tokens": 4}
    assert _with_primer_distance(report, ["C4", "E4", "G4", "C5"], ["C3", "0.4.7"])["primer_pitch_class_distance"] == 0
    assert _with_primer_distance(report, ["C#4", "D#4"], ["C4", "E4"])["primer_pitch_class_distance"] == 1
    assert _with_primer_distance(report, ["C4", "D4"], ["C4", "E4"])["primer_pitch_class_distance"] == pytest.approx(0.5)


def test_unigram_draws_follow_the_corpus_frequencies(music_bundle):
    bundle = music_bundle
    draws = np.concatenate(_unigram_draws(bundle.corpus_ids, len(bundle.vocab), 200, MELODY_LENGTH, np.random.default_rng(0)))
    expected = np.bincount(bundle.corpus_ids, minlength=len(bundle.vocab)) / len(bundle.corpus_ids)
    observed = np.bincount(draws, minlength=len(bundle.vocab)) / len(draws)
    assert np.abs(observed - expected).max() < 0.01
    histogram = bundle.stats["pitch_class_histogram"]
    assert histogram_distance(pitch_class_histogram(bundle.vocab.decode(draws)), histogram) < 0.02


def test_evaluation_is_reproducible(music_bundle, music_quality):
    again = evaluate_bundle(music_bundle, generations=4, rng_seed=5)
    assert again["reports"] == music_quality["reports"]
    other = evaluate_bundle(music_bundle, generations=4, rng_seed=6)
    assert other["reports"]["unigram"] != music_quality["reports"]["unigram"]


def test_lyrics_evaluation(lyrics_bundle):
    quality = evaluate_bundle(lyrics_bundle, generations=3, rng_seed=1)
    corpus = quality["summaries"]["corpus"]
    assert quality["length"] == LYRICS_LENGTH
    assert corpus["known_word_share"] > 0.8  # corpus windows: only words cut at the window's edges can be unknown
    assert quality["summaries"]["unigram"]["known_word_share"] < corpus["known_word_share"]
    # The corpus's first line comes twice in every 179 characters: a 400-character window sees it at least 4 times.
    assert corpus["max_line_repeats"] > 2 and corpus["within_line_repeat_limit_share"] == 0.0
    assert [check["name"] for check in quality["checks"]] == [
        "share of generated words found in the corpus", "completions where no line appears more than 2 times"]


def summaries(generated: dict, corpus: dict, unigram: dict) -> dict:
    return {"generated": generated, "corpus": corpus, "unigram": unigram}


def test_melody_quality_bar_boundaries():
    corpus, unigram = {"repetition_rate": 0.2}, {"pitch_class_distance": 0.15}
    met = quality_checks("music", summaries({"repetition_rate": 0.3, "pitch_class_distance": 0.149, "copied_under_limit_share": 0.9},
                                            corpus, unigram))
    assert [check["passed"] for check in met] == [True, True, True]
    missed = quality_checks("music", summaries({"repetition_rate": 0.31, "pitch_class_distance": 0.15, "copied_under_limit_share": 0.85},
                                               corpus, unigram))
    assert [check["passed"] for check in missed] == [False, False, False]
    assert "0.300" in met[0]["target"] and "0.150" in met[1]["target"]


def test_lyrics_quality_bar_boundaries():
    other = {"known_word_share": 1.0}
    met = quality_checks("lyrics", summaries({"known_word_share": 0.85, "within_line_repeat_limit_share": 1.0}, other, other))
    missed = quality_checks("lyrics", summaries({"known_word_share": 0.849, "within_line_repeat_limit_share": 0.95}, other, other))
    assert [check["passed"] for check in met] == [True, True]
    assert [check["passed"] for check in missed] == [False, False]


def test_write_evaluation_puts_the_report_in_the_model_card(music_bundle, music_quality, tmp_path):
    bundle = bundle_copy(music_bundle, tmp_path / "bundle")
    write_quality(bundle, music_quality)
    assert json.loads((bundle.folder / "quality.json").read_text())["summaries"] == music_quality["summaries"]
    card = (bundle.folder / "README.md").read_text()
    assert "## Quality" in card and "| generated | corpus windows | unigram sampler |" in card
    repetition = music_quality["summaries"]["generated"]["repetition_rate"]
    assert f"| repetition rate (same token twice in a row) | {repetition:.3f} |" in card
    assert card.count("✅ met") + card.count("❌ not met") == 3


def test_retraining_drops_a_stale_quality_report(music_bundle, music_corpus, music_quality, tmp_path):
    from seqgen.train import train

    bundle = bundle_copy(music_bundle, tmp_path / "b")
    write_quality(bundle, music_quality)
    assert (tmp_path / "b" / "quality.json").exists()
    train(music_corpus, tmp_path / "b", debug_config("music"), resume=True)
    assert not (tmp_path / "b" / "quality.json").exists()
    assert "## Quality" not in (tmp_path / "b" / "README.md").read_text()


def test_bad_generation_count(music_bundle):
    with pytest.raises(SeqgenError, match="at least 1"):
        evaluate_bundle(music_bundle, generations=0)


def test_cli_evaluate(lyrics_bundle_dir, tmp_path, capsys):
    from seqgen.cli import main

    folder = shutil.copytree(lyrics_bundle_dir, tmp_path / "lyrics")
    command = ["evaluate", str(folder), "--generations", "2"]
    # --dry-run in this process (TensorFlow is loaded already); the real run as a user runs it.
    assert main([*command, "--dry-run", "--json"]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert dry["generations"] == 2 and [check["name"] for check in dry["checks"]][0] == "share of generated words found in the corpus"
    assert not (folder / "quality.json").exists() and "## Quality" not in (folder / "README.md").read_text()
    shown = run_seqgen(*command)
    assert shown.returncode == 0, shown.stderr
    assert "share of words found in the corpus" in shown.stdout
    written = json.loads((folder / "quality.json").read_text())
    assert written["generations"] == 2 and len(written["reports"]["generated"]) == 2
    assert "## Quality" in (folder / "README.md").read_text()
    missing = run_seqgen("evaluate", tmp_path / "nope")
    assert missing.returncode == 1 and "not found" in missing.stderr
