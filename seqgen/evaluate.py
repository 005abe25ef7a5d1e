"""Measure a bundle for its model card: generations beside the corpus and a unigram sampler.

`evaluate_bundle` generates with the default settings of
:func:`seqgen.generate.generate_melody` / :func:`~seqgen.generate.complete_lyrics`
(melodies from random seed-split windows, lyrics from the default seed
line), computes the quality report of each generation, and the same report
for random windows of the training corpus and for draws of a unigram sampler
(tokens drawn independently from the corpus frequencies).  Melodies also get
their pitch-class distance to their primer: a melody that keeps its primer's
key scores low, whatever the corpus's overall key mix.  The averages and
the quality bar's checks go into the bundle (:func:`seqgen.bundle.write_quality`) and its model card.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from seqgen.bundle import Bundle
from seqgen.errors import SeqgenError
from seqgen.quality import histogram_distance, lyrics_report, melody_report, pitch_class_histogram

GENERATIONS = 20
MELODY_LENGTH = 100  # the reference's 100 notes
LYRICS_LENGTH = 400
COPY_LIMIT = 16  # a copied n-gram this long or longer is replay, not composition
REPETITION_MARGIN = 0.10
KNOWN_WORDS_TARGET = 0.85
MAX_LINE_REPEATS = 2

SOURCES = ("generated", "corpus", "unigram")


def _mean(reports: list[dict], key: str) -> float | None:
    values = [report[key] for report in reports if report.get(key) is not None]
    return float(np.mean(values)) if values else None


def _summary(reports: list[dict]) -> dict:
    """Per-metric means over the reports, plus extremes that the checks need."""
    keys = [key for key in reports[0] if isinstance(reports[0][key], (int, float))]
    summary = {key: _mean(reports, key) for key in keys}
    if reports[0].get("longest_copied_ngram") is not None:
        copied = [report["longest_copied_ngram"] for report in reports]
        summary["longest_copied_ngram_max"] = int(max(copied))
        summary["copied_under_limit_share"] = float(np.mean([length < COPY_LIMIT for length in copied]))
    if "max_line_repeats" in reports[0]:
        summary["within_line_repeat_limit_share"] = float(np.mean([report["max_line_repeats"] <= MAX_LINE_REPEATS for report in reports]))
    return summary


def _corpus_windows(corpus_ids: np.ndarray, count: int, length: int, rng: np.random.Generator) -> list[np.ndarray]:
    if len(corpus_ids) <= length:
        raise SeqgenError(f"The bundle's corpus ({len(corpus_ids)} tokens) is too short for {length}-token windows.")
    starts = rng.integers(0, len(corpus_ids) - length, size=count)
    return [corpus_ids[start:start + length] for start in starts]


def _unigram_draws(corpus_ids: np.ndarray, vocab_size: int, count: int, length: int, rng: np.random.Generator) -> list[np.ndarray]:
    frequencies = np.bincount(corpus_ids, minlength=vocab_size) / len(corpus_ids)
    return [rng.choice(vocab_size, size=length, p=frequencies) for _ in range(count)]


def _with_primer_distance(report: dict, tokens: list[str], primer: list[str]) -> dict:
    """Add how far the melody's pitch classes are from its primer's: does it keep the primer's key?"""
    distance = histogram_distance(pitch_class_histogram(tokens), pitch_class_histogram(primer))
    return {**report, "primer_pitch_class_distance": distance}


def _melody_reports(bundle: Bundle, generations: int, rng_seed: int) -> dict[str, list[dict]]:
    from seqgen.generate import describe_melodies, generate_melody

    histogram = bundle.stats.get("pitch_class_histogram")
    corpus_ids, window = bundle.corpus_ids, bundle.config["window"]
    generated = []
    with tempfile.TemporaryDirectory(prefix="seqgen-evaluate-") as folder:
        for number in range(generations):
            output = generate_melody(bundle, Path(folder) / str(number), length=MELODY_LENGTH, rng_seed=rng_seed + number,
                                     render_audio=False)
            describe_melodies(bundle, output, engrave=False)
            melody = output.melodies[0]
            generated.append(_with_primer_distance(melody.quality, melody.tokens, output.primer))
    rng = np.random.default_rng(rng_seed)
    # Corpus windows of primer + continuation: the continuation is what the corpus itself "generates" after a primer.
    spans = _corpus_windows(corpus_ids, generations, window + MELODY_LENGTH, rng)
    primers = [bundle.vocab.decode(span[:window]) for span in spans]

    def report(ids, primer, copies: bool):
        tokens = bundle.vocab.decode(ids)
        return _with_primer_distance(melody_report(tokens, ids, histogram, corpus_ids if copies else None), tokens, primer)

    draws = _unigram_draws(corpus_ids, len(bundle.vocab), generations, MELODY_LENGTH, rng)
    return {
        "generated": generated,
        # A corpus window is trivially copied from the corpus: its n-gram figure would say nothing.
        "corpus": [report(span[window:], primer, copies=False) for span, primer in zip(spans, primers)],
        "unigram": [report(ids, primer, copies=True) for ids, primer in zip(draws, primers)],
    }


def _lyrics_reports(bundle: Bundle, generations: int, rng_seed: int) -> dict[str, list[dict]]:
    from seqgen.generate import DEFAULT_SEED_LINE, complete_lyrics

    corpus_words = set(bundle.stats.get("words", [])) or None
    generated = [complete_lyrics(bundle, DEFAULT_SEED_LINE, length=LYRICS_LENGTH, rng_seed=rng_seed + number).quality[0]
                 for number in range(generations)]
    rng = np.random.default_rng(rng_seed)

    def report(ids):
        return lyrics_report("".join(bundle.vocab.decode(ids)), corpus_words)

    return {
        "generated": generated,
        "corpus": [report(ids) for ids in _corpus_windows(bundle.corpus_ids, generations, LYRICS_LENGTH, rng)],
        "unigram": [report(ids) for ids in _unigram_draws(bundle.corpus_ids, len(bundle.vocab), generations, LYRICS_LENGTH, rng)],
    }


def _check(name: str, target: str, value: float | None, passed: bool) -> dict:
    return {"name": name, "target": target, "value": value, "passed": bool(passed)}


def quality_checks(kind: str, summaries: dict[str, dict]) -> list[dict]:
    """The model-card quality bar, measured on the summaries of `evaluate_bundle`."""
    generated, corpus, unigram = (summaries[source] for source in SOURCES)
    if kind == "music":
        repetition_limit = corpus["repetition_rate"] + REPETITION_MARGIN
        return [
            _check("repetition rate", f"≤ corpus + {REPETITION_MARGIN:.2f} = {repetition_limit:.3f}",
                   generated["repetition_rate"], generated["repetition_rate"] <= repetition_limit),
            _check("pitch-class distance to the corpus", f"< unigram sampler's {unigram['pitch_class_distance']:.3f}",
                   generated["pitch_class_distance"], generated["pitch_class_distance"] < unigram["pitch_class_distance"]),
            _check(f"generations whose longest copied n-gram is under {COPY_LIMIT} tokens", "≥ 90 %",
                   generated["copied_under_limit_share"], generated["copied_under_limit_share"] >= 0.9),
        ]
    return [
        _check("share of generated words found in the corpus", f"≥ {KNOWN_WORDS_TARGET:.0%}",
               generated["known_word_share"], generated["known_word_share"] >= KNOWN_WORDS_TARGET),
        _check(f"completions where no line appears more than {MAX_LINE_REPEATS} times", "100 %",
               generated["within_line_repeat_limit_share"], generated["within_line_repeat_limit_share"] == 1.0),
    ]


def evaluate_bundle(bundle: Bundle, generations: int = GENERATIONS, rng_seed: int = 0) -> dict:
    """Quality of `generations` default generations, beside corpus windows and unigram draws.

    Returns a JSON-ready dict: the settings, each source's mean report
    (``summaries``), every report (``reports``) and the quality bar's
    ``checks``.
    """
    if generations < 1:
        raise SeqgenError(f"Generations must be at least 1 (got {generations}).")
    if bundle.corpus_ids is None or not bundle.stats:
        raise SeqgenError(f"Bundle {bundle.folder.name} has no corpus statistics (a bundle from an older seqgen): retrain it to evaluate it.")
    kind = bundle.config["kind"]
    started = time.perf_counter()
    reports = (_melody_reports if kind == "music" else _lyrics_reports)(bundle, generations, rng_seed)
    summaries = {source: _summary(reports[source]) for source in SOURCES}
    return {
        "kind": kind,
        "generations": generations,
        "length": MELODY_LENGTH if kind == "music" else LYRICS_LENGTH,
        "rng_seed": rng_seed,
        "summaries": summaries,
        "checks": quality_checks(kind, summaries),
        "reports": reports,
        "seconds": time.perf_counter() - started,
    }
