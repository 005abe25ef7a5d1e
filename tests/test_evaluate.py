"""Tests for seqgen.evaluate: the model-card quality report (generations beside corpus windows and a unigram sampler)."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys

import numpy as np
import pytest

from seqgen.bundle import load_bundle, write_quality
from seqgen.errors import SeqgenError
from seqgen.evaluate import COPY_LIMIT, LYRICS_LENGTH, MELODY_LENGTH, _unigram_draws, _with_primer_distance, evaluate_bundle, quality_checks
from seqgen.quality import histogram_distance, pitch_class_histogram, repetition_rate

MELODY = ["C4", "E4", "G4", "C5", "B-4", "G4", "F#4", "E4", "0.4.7", "D4", "C#4", "D4", "A4", "G4", "G4"]
LYRICS = "let dance for the rest of the night here\nwe dance until the morning light\n\nhold me near\n" * 12


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    """A tiny music and lyrics ``debug`` bundle (window 8, one epoch)."""
    from seqgen.corpus import Corpus
    from seqgen.train import TrainConfig, train

    root = tmp_path_factory.mktemp("evaluate-bundles")
    music = Corpus("toy", "music", "seed", 1, list(itertools.islice(itertools.cycle(MELODY), 600)))
    lyrics = Corpus("toy", "lyrics", "char", 1, list(LYRICS))
    for name, corpus in (("music", music), ("lyrics", lyrics)):
        train(corpus, root / name, TrainConfig(kind=corpus.kind, preset="debug", window=8, min_count=1, epochs=1))
    return {name: load_bundle(root / name) for name in ("music", "lyrics")}


@pytest.fixture(scope="module")
def music_quality(bundles):
    return evaluate_bundle(bundles["music"], generations=4, rng_seed=5)


def test_melody_evaluation_compares_three_sources(bundles, music_quality):
    bundle = bundles["music"]
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
    # The corpus stream is periodic (period 15), so any 100-token corpus window repeats exactly one G4 G4 per period.
    corpus_tokens = bundle.vocab.decode(bundle.corpus_ids)
    assert music_quality["summaries"]["corpus"]["repetition_rate"] == pytest.approx(repetition_rate(corpus_tokens[:MELODY_LENGTH]), abs=0.02)


def test_distance_to_the_primer_measures_keeping_its_key():
    report = {"tokens": 4}
    assert _with_primer_distance(report, ["C4", "E4", "G4", "C5"], ["C3", "0.4.7"])["primer_pitch_class_distance"] == 0
    assert _with_primer_distance(report, ["C#4", "D#4"], ["C4", "E4"])["primer_pitch_class_distance"] == 1
    assert _with_primer_distance(report, ["C4", "D4"], ["C4", "E4"])["primer_pitch_class_distance"] == pytest.approx(0.5)


def test_unigram_draws_follow_the_corpus_frequencies(bundles):
    bundle = bundles["music"]
    draws = np.concatenate(_unigram_draws(bundle.corpus_ids, len(bundle.vocab), 200, MELODY_LENGTH, np.random.default_rng(0)))
    expected = np.bincount(bundle.corpus_ids, minlength=len(bundle.vocab)) / len(bundle.corpus_ids)
    observed = np.bincount(draws, minlength=len(bundle.vocab)) / len(draws)
    assert np.abs(observed - expected).max() < 0.01
    histogram = bundle.stats["pitch_class_histogram"]
    assert histogram_distance(pitch_class_histogram(bundle.vocab.decode(draws)), histogram) < 0.02


def test_evaluation_is_reproducible(bundles, music_quality):
    again = evaluate_bundle(bundles["music"], generations=4, rng_seed=5)
    assert again["reports"] == music_quality["reports"]
    other = evaluate_bundle(bundles["music"], generations=4, rng_seed=6)
    assert other["reports"]["unigram"] != music_quality["reports"]["unigram"]


def test_lyrics_evaluation(bundles):
    quality = evaluate_bundle(bundles["lyrics"], generations=3, rng_seed=1)
    corpus = quality["summaries"]["corpus"]
    assert quality["length"] == LYRICS_LENGTH
    assert corpus["known_word_share"] > 0.8  # corpus windows: only words cut at the window's edges can be unknown
    assert quality["summaries"]["unigram"]["known_word_share"] < corpus["known_word_share"]
    # The corpus repeats its three short lines: 400-character windows see them several times.
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


def test_write_evaluation_puts_the_report_in_the_model_card(bundles, music_quality):
    bundle = bundles["music"]
    write_quality(bundle, music_quality)
    assert json.loads((bundle.folder / "quality.json").read_text())["summaries"] == music_quality["summaries"]
    card = (bundle.folder / "README.md").read_text()
    assert "## Quality" in card and "| generated | corpus windows | unigram sampler |" in card
    repetition = music_quality["summaries"]["generated"]["repetition_rate"]
    assert f"| repetition rate (same token twice in a row) | {repetition:.3f} |" in card
    assert card.count("✅ met") + card.count("❌ not met") == 3


def test_retraining_drops_a_stale_quality_report(bundles, tmp_path):
    from seqgen.corpus import Corpus
    from seqgen.train import TrainConfig, train

    corpus = Corpus("toy", "music", "seed", 1, list(itertools.islice(itertools.cycle(MELODY), 300)))
    config = TrainConfig(kind="music", preset="debug", window=8, min_count=1, epochs=1)
    train(corpus, tmp_path / "b", config)
    bundle = load_bundle(tmp_path / "b")
    write_quality(bundle, evaluate_bundle(bundle, generations=1))
    train(corpus, tmp_path / "b", config, resume=True)
    assert not (tmp_path / "b" / "quality.json").exists()
    assert "## Quality" not in (tmp_path / "b" / "README.md").read_text()


def test_bad_generation_count(bundles):
    with pytest.raises(SeqgenError, match="at least 1"):
        evaluate_bundle(bundles["music"], generations=0)


def test_cli_evaluate(bundles, tmp_path):
    import shutil

    folder = shutil.copytree(bundles["lyrics"].folder, tmp_path / "lyrics")
    command = [sys.executable, "-m", "seqgen", "evaluate", str(folder), "--generations", "2"]
    dry = subprocess.run([*command, "--dry-run", "--json"], capture_output=True, text=True, timeout=300)
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["generations"] == 2 and not (folder / "quality.json").exists()
    shown = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0, shown.stderr
    assert "share of words found in the corpus" in shown.stdout and (folder / "quality.json").exists()
    missing = subprocess.run([sys.executable, "-m", "seqgen", "evaluate", str(tmp_path / "nope")], capture_output=True, text=True, timeout=300)
    assert missing.returncode == 1 and "not found" in missing.stderr
