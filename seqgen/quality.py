"""Quality reports for generated melodies and lyrics, and the corpus statistics they compare against.

Melodies: repetition rate (share of consecutive identical tokens),
distinct-token ratio, pitch-class histogram distance to the training corpus
(total variation: half the L1 distance, 0 = same, 1 = disjoint), the
longest n-gram copied verbatim from the training stream, key consistency
(the share of sounding pitch classes inside the best-fitting major or
harmonic-minor scale) and pitch range.  Melodic intervals and durations are
compared as distributions over many passages with :func:`overlapping_area`.
Seed and timed tokens are read as strings; events tokens through their notes
(:func:`event_notes`).  Key finding works on 12 pitch-class weights
(:func:`scale_fit`, :func:`best_key`), whatever they were counted from:
:mod:`seqgen.musicality` finds keys with it too.

Lyrics: the share of generated words found in the training vocabulary,
distinct-2 (distinct word bigrams / all bigrams), repeated lines and the
invented (out-of-corpus) words.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache
from typing import Sequence

import numpy as np

from seqgen.music import EVENT_KINDS

WORD = re.compile(r"[a-z0-9']+")
STEPS_PER_QUARTER = 8  # where notes are read: 32nd notes, the events tokenizer's finest position


@lru_cache(maxsize=4096)
def token_pitches(token: str) -> tuple[int, ...]:
    """MIDI numbers sounding in one seed or timed token, as written to MIDI (empty for a rest).

    Seed chords hold pitch classes only; they sound in octave 4 (60 + pitch
    class), as :mod:`seqgen.music` writes them.
    """
    from music21 import pitch

    head = token.rpartition("_")[0] if "_" in token else token
    if not head or head == "R":
        return ()
    parts = head.split(".")
    if all(part.isdigit() for part in parts):  # seed chord: normal order of pitch classes
        return tuple(60 + int(part) % 12 for part in parts)
    try:
        return tuple(pitch.Pitch(part).midi for part in parts)
    except Exception:
        return ()


def token_pitch_classes(token: str) -> tuple[int, ...]:
    """Pitch classes sounding in one seed or timed token (empty for a rest)."""
    return tuple(number % 12 for number in token_pitches(token))


def token_steps(token: str) -> int | None:
    """A timed token's sixteenths to the next event (``C4_4`` → 4); None for seed tokens."""
    steps = token.rpartition("_")[2]
    return int(steps) if "_" in token and steps.isdigit() else None


def event_notes(tokens: Sequence[str]) -> np.ndarray | None:
    """The notes of events tokens, ``(num_notes, 3)`` rows of start, duration, pitch; None for seed or timed tokens.

    Events tokens (``Bar_None``, ``Pitch_60`` …) never look like seed or
    timed ones (``C4``, ``0.4.7``, ``C4_4``), so the first token tells them apart.
    """
    if len(tokens) == 0 or not str(tokens[0]).startswith(EVENT_KINDS):
        return None
    from seqgen.events import decode

    return np.array([(note.start, note.duration, note.pitch) for note in decode(list(tokens)).notes], dtype=float).reshape(-1, 3)


def pitch_class_counts(tokens: Sequence[str]) -> np.ndarray:
    """How often each of the 12 pitch classes sounds in ``tokens`` (a chord counts each of its pitches, an events
    piece each of its notes)."""
    notes = event_notes(tokens)
    if notes is not None:
        return np.bincount(notes[:, 2].astype(int) % 12, minlength=12).astype(float)
    counts = np.zeros(12)
    for token in tokens:
        for pitch_class in token_pitch_classes(token):
            counts[pitch_class] += 1
    return counts


def pitch_class_histogram(tokens: Sequence[str]) -> list[float]:
    """Normalised 12-bin histogram of the pitch classes in ``tokens``."""
    counts = pitch_class_counts(tokens)
    total = counts.sum()
    return (counts / total).tolist() if total else counts.tolist()


MAJOR = (0, 2, 4, 5, 7, 9, 11)
HARMONIC_MINOR = (0, 2, 3, 5, 7, 8, 11)
# One row per scale: 12 major then 12 harmonic-minor scales, 1 where the pitch class belongs to it.
SCALES = np.array([[float((pitch_class - tonic) % 12 in steps) for pitch_class in range(12)]
                   for steps in (MAJOR, HARMONIC_MINOR) for tonic in range(12)])


# Krumhansl & Kessler's (1982) probe-tone ratings of the pitch classes above a major and a minor tonic.
MAJOR_PROFILE = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)
MINOR_PROFILE = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)
# One row per key, in the order of SCALES: the profile turned so that its first rating falls on the tonic.
KEY_PROFILES = np.array([np.roll(profile, tonic) for profile in (MAJOR_PROFILE, MINOR_PROFILE) for tonic in range(12)])
MODES = ("major", "minor")


def scale_fit(weights: Sequence[float]) -> float | None:
    """Share of 12 pitch-class ``weights`` inside the best-fitting major or harmonic-minor scale; None when all are 0."""
    weights = np.asarray(weights, dtype=float)
    total = weights.sum()
    return float((SCALES @ weights).max() / total) if total else None


def best_key(weights: Sequence[float]) -> tuple[int, str] | None:
    """The Krumhansl-Schmuckler key of 12 pitch-class ``weights``: ``(tonic pitch class, "major" or "minor")``.

    The key whose Krumhansl-Kessler profile correlates best (Pearson) with
    the weights (Krumhansl 1990, ch. 4; the weights are usually durations).
    None when the weights are all equal: no key stands out.
    """
    weights = np.asarray(weights, dtype=float)
    if np.ptp(weights) == 0:
        return None
    centred = KEY_PROFILES - KEY_PROFILES.mean(axis=1, keepdims=True)
    correlations = centred @ (weights - weights.mean()) / np.linalg.norm(centred, axis=1)  # the weights' norm is shared
    best = int(np.argmax(correlations))
    return best % 12, MODES[best // 12]


def key_consistency(tokens: Sequence[str]) -> float | None:
    """Share of the sounding pitch classes that lie in the best-fitting major or harmonic-minor scale.

    1.0 for a passage in one key; a chromatic run scores 7/12.  None when nothing sounds.
    """
    return scale_fit(pitch_class_counts(tokens))


def pitch_range(tokens: Sequence[str]) -> int | None:
    """Semitones between the lowest and the highest sounding pitch; None when nothing sounds."""
    notes = event_notes(tokens)
    if notes is not None:
        pitches = notes[:, 2].astype(int).tolist()
    else:
        pitches = [number for token in tokens for number in token_pitches(token)]
    return max(pitches) - min(pitches) if pitches else None


def melodic_intervals(tokens: Sequence[str]) -> list[int]:
    """Semitone steps between the top pitches of consecutive sounding events (rests skipped; events: onsets)."""
    notes = event_notes(tokens)
    if notes is None:
        tops = [max(pitches) for pitches in map(token_pitches, tokens) if pitches]
    elif len(notes):
        notes = notes[np.lexsort((notes[:, 2], notes[:, 0]))]
        first_of_onset = np.flatnonzero(np.r_[True, np.diff(notes[:, 0]) > 0])
        tops = np.maximum.reduceat(notes[:, 2], first_of_onset).astype(int).tolist()
    else:
        tops = []
    return [later - earlier for earlier, later in zip(tops, tops[1:])]


def durations(tokens: Sequence[str]) -> list[int]:
    """Timed tokens' sixteenths to the next event, rests included; events notes' own lengths in 32nd notes (the
    events grid); empty for seed tokens."""
    notes = event_notes(tokens)
    if notes is not None:
        return np.rint(notes[:, 1] * STEPS_PER_QUARTER).astype(int).tolist()
    return [steps for steps in map(token_steps, tokens) if steps is not None]


def overlapping_area(first: Sequence[int], second: Sequence[int]) -> float | None:
    """Overlapping area of two distributions of an integer feature (Yang & Lerch 2018): 1 = same, 0 = disjoint.

    The features (intervals, durations) are integers, so each distribution is
    its histogram on unit bins and the area is the sum of the smaller share
    per value; a KDE would only smooth the same histograms.  None when either
    side is empty.
    """
    if len(first) == 0 or len(second) == 0:
        return None
    first, second = np.asarray(first, dtype=np.int64), np.asarray(second, dtype=np.int64)
    low = min(first.min(), second.min())
    size = max(first.max(), second.max()) - low + 1
    shares = [np.bincount(values - low, minlength=size) / len(values) for values in (first, second)]
    return float(np.minimum(*shares).sum())


def histogram_distance(first: Sequence[float], second: Sequence[float]) -> float:
    """Total variation distance between two normalised histograms."""
    return float(0.5 * np.abs(np.asarray(first) - np.asarray(second)).sum())


def repetition_rate(tokens: Sequence[str]) -> float:
    """Share of tokens identical to the one before them."""
    if len(tokens) < 2:
        return 0.0
    return sum(1 for previous, current in zip(tokens, tokens[1:]) if previous == current) / (len(tokens) - 1)


def distinct_ratio(tokens: Sequence[str]) -> float:
    return len(set(tokens)) / len(tokens) if tokens else 0.0


def longest_copied_ngram(generated_ids: Sequence[int], corpus_ids: np.ndarray) -> int:
    """Length of the longest run of ``generated_ids`` that appears verbatim in ``corpus_ids``.

    From each generated position, the corpus positions holding its token are
    found in a sorted index and narrowed one token at a time while they still
    match; positions that cannot beat the best run so far are skipped.
    """
    generated = np.asarray(generated_ids, dtype=np.int64)
    corpus = np.asarray(corpus_ids, dtype=np.int64)
    if len(generated) == 0 or len(corpus) == 0:
        return 0
    order = np.argsort(corpus, kind="stable")
    ordered = corpus[order]
    best = 0
    for start in range(len(generated)):
        if len(generated) - start <= best:
            break
        candidates = order[np.searchsorted(ordered, generated[start]):np.searchsorted(ordered, generated[start], "right")]
        length = 1 if len(candidates) else 0
        while len(candidates) and start + length < len(generated):
            candidates = candidates[candidates + length < len(corpus)]
            candidates = candidates[corpus[candidates + length] == generated[start + length]]
            length += bool(len(candidates))
        best = max(best, length)
    return best


def melody_report(tokens: Sequence[str], ids: Sequence[int], corpus_histogram: Sequence[float] | None, corpus_ids: np.ndarray | None) -> dict:
    """Quality report of one generated melody against its training corpus."""
    report = {
        "tokens": len(tokens),
        "repetition_rate": repetition_rate(tokens),
        "distinct_ratio": distinct_ratio(tokens),
        "key_consistency": key_consistency(tokens),
        "pitch_range": pitch_range(tokens),
        "pitch_class_distance": None,
        "longest_copied_ngram": None,
    }
    if corpus_histogram is not None:
        report["pitch_class_distance"] = histogram_distance(pitch_class_histogram(tokens), corpus_histogram)
    if corpus_ids is not None:
        report["longest_copied_ngram"] = longest_copied_ngram(ids, corpus_ids)
    return report


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def lyrics_report(text: str, corpus_words: set[str] | None) -> dict:
    """Quality report of a generated text against the training word vocabulary, with its invented words (sorted)."""
    generated = words(text)
    bigrams = list(zip(generated, generated[1:]))
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    line_counts = Counter(lines)
    return {
        "words": len(generated),
        "known_word_share": (sum(1 for word in generated if word in corpus_words) / len(generated)) if corpus_words is not None and generated else None,
        "distinct_2": len(set(bigrams)) / len(bigrams) if bigrams else 0.0,
        "repeated_lines": sum(count - 1 for count in line_counts.values() if count > 1),
        "max_line_repeats": max(line_counts.values(), default=0),
        "invented_words": sorted({word for word in generated if word not in corpus_words}) if corpus_words is not None else [],
    }
