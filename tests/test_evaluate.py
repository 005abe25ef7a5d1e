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
from seqgen.bundle import load_bundle, write_quality, write_sampling
from seqgen.errors import SeqgenError
from seqgen.evaluate import (COPY_LIMIT, IN_KEY_SHARE, LYRICS_LENGTH, MELODY_LENGTH, _unigram_draws, _with_primer_distance, best_row,
                             corpus_distance, evaluate_bundle, gap_closed, generalisation_gap, keeps_key, quality_checks, sweep_sampling)
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
    assert card.count("✅ met") + card.count("❌ not met") == len(music_quality["checks"])
    assert "### Musicality" in card and "Generalisation gap:" in card and "| validation split | `random`:" in card


def test_retraining_drops_a_stale_quality_report_and_recommendation(music_bundle, music_corpus, music_quality, tmp_path):
    from seqgen.train import train

    bundle = bundle_copy(music_bundle, tmp_path / "b")
    write_quality(bundle, music_quality)
    write_sampling(bundle, {"temperature": 0.5, "top_p": None}, sweep={})
    assert (tmp_path / "b" / "quality.json").exists() and (tmp_path / "b" / "sampling.json").exists()
    train(music_corpus, tmp_path / "b", debug_config("music"), resume=True)
    assert not (tmp_path / "b" / "quality.json").exists() and not (tmp_path / "b" / "sampling.json").exists()
    assert load_bundle(tmp_path / "b").default_sampling().temperature == 1.0  # measured on other weights: forgotten
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


# --- closeness, generalisation and the sampling sweep -------------------------------------------


@pytest.fixture(scope="module")
def timed_quality(timed_bundle):
    return evaluate_bundle(timed_bundle, generations=3, rng_seed=2)


def test_musicality_compares_generations_corpus_windows_and_unigram_draws(timed_bundle, timed_quality):
    closeness, reports = timed_quality["closeness"], timed_quality["reports"]
    assert list(closeness) == ["key_consistency", "pitch_range", "interval_overlap", "duration_overlap"]
    for source in ("generated", "corpus", "unigram"):
        assert closeness["key_consistency"][source] == pytest.approx(np.mean([report["key_consistency"] for report in reports[source]]))
        assert 0 <= closeness["interval_overlap"][source] <= 1 and 0 <= closeness["duration_overlap"][source] <= 1
    row = closeness["key_consistency"]
    assert row["gap_closed"] == gap_closed(row["generated"], row["corpus"], row["unigram"])
    # The toy corpus is a periodic tune: its own windows overlap its interval distribution far better than random draws.
    assert closeness["interval_overlap"]["corpus"] > closeness["interval_overlap"]["unigram"]
    assert timed_quality["sampling"] == {"temperature": 1.0, "top_k": None, "top_p": None, "repetition_penalty": 1.0, "max_copy": 0}
    assert timed_quality["recommended"] is False


def test_gap_closed_and_distance_to_the_corpus():
    assert gap_closed(0.9, 0.95, 0.8) == pytest.approx(2 / 3)
    assert gap_closed(0.95, 0.95, 0.8) == 1 and gap_closed(0.8, 0.95, 0.8) == 0
    assert gap_closed(1.0, 0.95, 0.8) == pytest.approx(4 / 3)  # beyond the corpus
    assert gap_closed(0.9, 0.95, 0.94) is None  # the unigram sampler is already within 5 % of the corpus
    table = {"key": {"generated": 0.9, "corpus": 0.95, "unigram": 0.8}, "range": {"generated": 20, "corpus": 28, "unigram": 36}}
    assert corpus_distance(table) == pytest.approx((1 / 3 + 1) / 2)
    # Without a gap a measure counts in units of 5 % of its corpus value.
    assert corpus_distance({"flat": {"generated": 0.9, "corpus": 1.0, "unigram": 1.0}}) == pytest.approx(2.0)


def test_the_key_consistency_check_needs_half_the_gap_closed():
    summaries = {"generated": {"repetition_rate": 0.1, "pitch_class_distance": 0.1, "copied_under_limit_share": 1.0},
                 "corpus": {"repetition_rate": 0.1}, "unigram": {"pitch_class_distance": 0.2}}
    closed = {"key_consistency": {"generated": 0.875, "corpus": 0.95, "unigram": 0.8, "gap_closed": 0.5}}
    checks = quality_checks("music", summaries, closed)
    assert checks[-1]["name"] == "share of the unigram-to-corpus key-consistency gap closed" and checks[-1]["passed"]
    closed["key_consistency"]["gap_closed"] = 0.49
    assert not quality_checks("music", summaries, closed)[-1]["passed"]
    assert len(quality_checks("music", summaries)) == 3  # no closeness measured: no key check


def test_the_generalisation_gap_uses_the_bundle_own_validation_windows(music_bundle, music_corpus):
    from conftest import debug_config
    from seqgen.train import prepare_data
    from seqgen.windows import gather_windows

    data = prepare_data(music_corpus, debug_config("music").resolved())
    gap = generalisation_gap(music_bundle, windows=10_000)
    assert gap["split"] == "random" and gap["validation_windows"] == len(data.splits.validation)
    inputs, targets = gather_windows(data.ids, data.starts[data.splits.validation], 8)
    probabilities = music_bundle.sampler.window_probabilities(inputs)[np.arange(len(targets)), targets]
    assert gap["validation_cross_entropy"] == pytest.approx(-np.mean(np.log(probabilities)))
    assert gap["gap"] == pytest.approx(gap["validation_cross_entropy"] - gap["train_cross_entropy"])


def test_best_row_prefers_eligible_settings_then_the_smallest_distance():
    rows = [{"eligible": True, "distance": 0.4}, {"eligible": False, "distance": 0.1},
            {"eligible": True, "distance": 0.2}, {"eligible": True, "distance": 0.2}]
    assert best_row(rows) == 2  # the looping (ineligible) row is closer but never recommended; ties keep grid order
    assert best_row([{"eligible": False, "distance": 0.3}, {"eligible": False, "distance": 0.2}]) == 1


def test_best_row_prefers_settings_that_keep_the_key_among_eligible_ones():
    rows = [{"eligible": True, "in_key": False, "distance": 0.1}, {"eligible": True, "in_key": True, "distance": 0.4},
            {"eligible": False, "in_key": True, "distance": 0.05}, {"eligible": True, "in_key": True, "distance": 0.3}]
    assert best_row(rows) == 3  # closer rows are off key or loop
    assert best_row([{"eligible": True, "in_key": False, "distance": 0.3}, {"eligible": True, "in_key": False, "distance": 0.2}]) == 1


def test_keeps_key_compares_the_key_gap_closed_with_the_in_key_share():
    def closeness(share):
        return {"key_consistency": {"generated": 0.9, "corpus": 0.92, "unigram": 0.82, "gap_closed": share}}

    assert keeps_key(closeness(IN_KEY_SHARE)) and keeps_key(closeness(1.2))
    assert not keeps_key(closeness(IN_KEY_SHARE - 0.01))
    assert keeps_key({"known_word_share": {"gap_closed": 0.1}})  # lyrics have no key


def test_the_sweep_picks_the_best_grid_point(timed_bundle):
    settings, sweep = sweep_sampling(timed_bundle, generations=2, rng_seed=1, temperatures=(0.3, 1.5), top_ps=(0.5, 1.0))
    rows = sweep["rows"]
    assert [(row["temperature"], row["top_p"]) for row in rows] == [(0.3, 0.5), (0.3, None), (1.5, 0.5), (1.5, None)]
    assert all(row["eligible"] == (row["failed"] == []) for row in rows)
    eligible = [row["distance"] for row in rows if row["eligible"]] or [row["distance"] for row in rows]
    assert rows[sweep["best"]]["distance"] == min(eligible) and sweep["best"] == best_row(rows)
    # Melodies are swept with the copy guard on: none replays COPY_LIMIT tokens of its corpus.
    assert settings == {"temperature": rows[sweep["best"]]["temperature"], "top_p": rows[sweep["best"]]["top_p"], "max_copy": COPY_LIMIT}
    for row in rows:
        assert row["distance"] == pytest.approx(corpus_distance(
            {name: {"generated": measure["generated"], **sweep["reference"][name]} for name, measure in row["measures"].items()}))
    # Generations differ only by their settings: a point of the grid measured alone gives the same figures.
    alone_settings, alone = sweep_sampling(timed_bundle, generations=2, rng_seed=1, temperatures=(1.5,), top_ps=(0.5,))
    assert alone["rows"][0] == rows[2] and alone["reference"] == sweep["reference"]
    with pytest.raises(SeqgenError, match="Temperature must be >= 0"):
        sweep_sampling(timed_bundle, generations=1, temperatures=(-1.0,))


def test_evaluate_sweep_stores_the_recommendation_and_the_card_shows_it(timed_bundle, tmp_path):
    from seqgen.cli import main

    folder = shutil.copytree(timed_bundle.folder, tmp_path / "timed")
    assert main(["evaluate", str(folder), "--sweep", "--generations", "2", "--temperatures", "0.5", "1.2", "--top-ps", "1"]) == 0
    bundle = load_bundle(folder)
    settings = bundle.recommended_sampling["settings"]
    assert settings["temperature"] in (0.5, 1.2) and settings["top_p"] is None
    quality = json.loads((folder / "quality.json").read_text())
    assert quality["recommended"] is True and quality["sampling"]["temperature"] == settings["temperature"]
    card = (folder / "README.md").read_text()
    assert "## Sampling sweep" in card and "**recommended**" in card and "### Musicality" in card
    assert (f"at temperature {settings['temperature']:g}, copying at most {COPY_LIMIT - 1} corpus tokens in a row "
            "(the recommended settings)") in card
    assert bundle.default_sampling().temperature == settings["temperature"]
    assert bundle.default_sampling().max_copy == COPY_LIMIT  # the CLI and the studio generate with the guard
    assert bundle.default_sampling(temperature=0.1).temperature == 0.1


def test_a_corrupt_recommendation_is_reported(music_bundle, tmp_path):
    bundle = bundle_copy(music_bundle, tmp_path / "bundle")
    write_sampling(bundle, {"temperature": 0.7, "top_p": None}, sweep={})
    assert load_bundle(bundle.folder).default_sampling().temperature == 0.7
    with pytest.raises(SeqgenError, match="top_p must be in"):
        write_sampling(bundle, {"temperature": 0.7, "top_p": 3}, sweep={})
    (bundle.folder / "sampling.json").write_text('{"settings": {"temperature": -2}}')
    with pytest.raises(SeqgenError, match="sampling.json holds no valid sampling settings.*--sweep"):
        load_bundle(bundle.folder)


def test_generation_without_settings_follows_the_recommendation(music_bundle, tmp_path):
    from seqgen.generate import generate_melody

    bundle = bundle_copy(music_bundle, tmp_path / "bundle")
    write_sampling(bundle, {"temperature": 0.4, "top_p": 0.9}, sweep={})
    output = generate_melody(bundle, tmp_path / "out", length=5, rng_seed=0, render_audio=False)
    assert (output.settings["temperature"], output.settings["top_p"]) == (0.4, 0.9)


def test_a_held_out_bundle_says_so_and_measures_its_gap(music_corpus, tmp_path):
    from conftest import debug_config
    from seqgen.train import train

    train(music_corpus, tmp_path / "held-out", debug_config("music", split="blocks"))
    bundle = load_bundle(tmp_path / "held-out")
    assert bundle.config["training"]["split"] == "blocks"
    card = (tmp_path / "held-out" / "README.md").read_text()
    assert "| validation split | `blocks`: held-out blocks" in card and "measures generalisation" in card
    gap = generalisation_gap(bundle)
    assert gap["split"] == "blocks" and gap["validation_windows"] == bundle.config["training"]["validation_windows"]


def test_evaluate_measures_the_musicality_of_an_events_bundle(events_bundle_dir):
    from seqgen.bundle import load_bundle
    from seqgen.card import quality_section
    from seqgen.evaluate import evaluate_bundle
    from seqgen.musicality import LABELS, table_lines

    quality = evaluate_bundle(load_bundle(events_bundle_dir), generations=2, rng_seed=3)
    table = quality["musicality"]
    assert list(table) == [name for name in LABELS if name != "ends_on_tonic"] and "closeness" in quality
    # The toy corpus is four-voice chords, a held bass under two of them: 4 to 5 notes at a whole onset.
    assert 3.0 <= table["polyphony"]["corpus"] <= 5.0
    assert all(row[source] is None or row[source] >= 0 for row in table.values() for source in ("generated", "corpus", "unigram"))
    # Events tokens are read from their notes in the melody reports too: every corpus window has a key.
    assert all(report["key_consistency"] is not None for report in quality["reports"]["corpus"])
    lines = table_lines(table)
    assert any(line.startswith(f"| {LABELS['polyphony']} | ") for line in lines)
    assert len([line for line in lines if line.startswith("| ")]) == len(LABELS)  # the header and each measure in the table
    # Whole pieces: written from the start token until the model ends them, beside the corpus's 12 pieces.
    pieces = quality["pieces"]
    assert pieces["generations"] == 2 and pieces["corpus_pieces"] == 12 and 0.0 <= pieces["ended_share"] <= 1.0
    assert pieces["mean_length"] <= pieces["cap"] and pieces["corpus_mean_length"] == 41  # tokens between start and end
    assert pieces["ends_on_tonic"]["corpus"] is not None
    assert "pieces the model ended itself within the length cap" in [check["name"] for check in quality["checks"]]
    card = "\n".join(quality_section(load_bundle(events_bundle_dir).config, quality))
    assert "Whole pieces: 2 written from the start token" in card and "notes sounding at each onset" in card
