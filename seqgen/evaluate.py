"""Measure a bundle for its model card: generations beside the corpus and a unigram sampler.

`evaluate_bundle` generates with the bundle's default sampling (its
recommended settings once a sweep chose them, else the kind's defaults):
melodies from random seed-split windows, lyrics from the default seed line.
It computes the quality report of each generation, and the same report for
random windows of the training corpus and for draws of a unigram sampler
(tokens drawn independently from the corpus frequencies).  Melodies also get
their pitch-class distance to their primer: a melody that keeps its primer's
key scores low, whatever the corpus's overall key mix.

Corpus windows are the ceiling and the unigram sampler the floor: for each
closeness measure (music: key consistency, pitch range, and the overlapping
area of the melodic-interval and duration distributions with the whole
corpus's; lyrics: known-word share and distinct-2) the report gives the
share of the unigram-to-corpus gap the generations close.  It also measures
the generalisation gap on the bundle's own training and validation windows.
Melodies also get a ``musicality`` section: the measures of
:mod:`seqgen.musicality` (polyphony, pitch-class entropy, groove, empty
beats, endings), read from the notes of every source's passages, with the
share of the gap closed.  Its passages are windows, not whole pieces: "ends
on the tonic" says how often a passage's last onset has the tonic in the bass.

`sweep_sampling` generates at every temperature × top-p pair of a small grid
and recommends the pair closest to the corpus among those that do not loop
or replay the corpus, preferring (music) those that keep the key.  :mod:`seqgen.bundle` stores both results.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from seqgen.bundle import Bundle
from seqgen.errors import SeqgenError
from seqgen.generate import ends_pieces
from seqgen.musicality import LABELS as MUSICALITY_LABELS
from seqgen.musicality import musicality_of
from seqgen.quality import (durations, histogram_distance, lyrics_report, melodic_intervals, melody_report, overlapping_area,
                            pitch_class_histogram)
from seqgen.sampling import SamplingOptions
from seqgen.windows import gather_windows, make_splits, window_starts

GENERATIONS = 20
MELODY_LENGTH = 100  # the reference's 100 notes
EVENTS_LENGTH = 200  # events tokens: about two notes a token's worth fewer, so a passage of comparable music
ENDED_TARGET = 0.9  # whole pieces: the share the model must end itself within the length cap
TONIC_MARGIN = 0.10  # whole pieces: ending on the tonic as often as the corpus's pieces, within 10 points
LYRICS_LENGTH = 400
COPY_LIMIT = 16  # a copied n-gram this long or longer is replay, not composition
REPETITION_MARGIN = 0.10
KNOWN_WORDS_TARGET = 0.85
MAX_LINE_REPEATS = 2
KEY_GAP_TARGET = 0.5  # share of the unigram-to-corpus key-consistency gap a melody model must close
# A sweep prefers settings that keep the key: notes out of key are what a listener hears first, and the other
# measures trade against it (a lower temperature stays in key but narrows the range), so "closest to the corpus"
# alone would buy range with wrong notes.
IN_KEY_SHARE = 0.95
MIN_GAP = 0.05  # a unigram sampler within 5 % of the corpus windows leaves no gap to measure
GAP_WINDOWS = 400  # training and validation windows the generalisation gap is measured on
INVENTED_EXAMPLES = 12
SWEEP_GRID = {"music": ((0.7, 0.8, 0.9, 1.0), (0.9, 0.95, 1.0)), "lyrics": ((0.5, 0.6, 0.7, 0.8), (0.9, 0.95, 1.0))}

SOURCES = ("generated", "corpus", "unigram")


def _mean(reports: list[dict], key: str) -> float | None:
    values = [report[key] for report in reports if report.get(key) is not None]
    return float(np.mean(values)) if values else None


def _summary(reports: list[dict]) -> dict:
    """Per-metric means over the reports, plus extremes that the checks need."""
    keys = [key for key in reports[0] if any(isinstance(report[key], (int, float)) for report in reports)]
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


# --- generations and references: (reports, passages) per source ---------------------------------


def melody_length(bundle: Bundle) -> int:
    """The length of the passages a music bundle is judged on: 100 seed or timed tokens, 200 events tokens."""
    return EVENTS_LENGTH if bundle.config.get("tokenizer") == "events" else MELODY_LENGTH


def _generated(bundle: Bundle, generations: int, rng_seed: int, sampling: SamplingOptions) -> tuple[list[dict], list]:
    """Quality reports and tokens (music) or texts (lyrics) of ``generations`` generations with ``sampling``."""
    from seqgen.generate import DEFAULT_SEED_LINE, complete_lyrics, describe_melodies, generate_melody

    if bundle.config["kind"] == "lyrics":
        outputs = [complete_lyrics(bundle, DEFAULT_SEED_LINE, length=LYRICS_LENGTH, rng_seed=rng_seed + number, sampling=sampling)
                   for number in range(generations)]
        return [output.quality[0] for output in outputs], [output.texts[0] for output in outputs]
    reports, passages = [], []
    with tempfile.TemporaryDirectory(prefix="seqgen-evaluate-") as folder:
        for number in range(generations):
            output = generate_melody(bundle, Path(folder) / str(number), length=melody_length(bundle), rng_seed=rng_seed + number,
                                     sampling=sampling, render_audio=False)
            describe_melodies(bundle, output, engrave=False)
            melody = output.melodies[0]
            reports.append(_with_primer_distance(melody.quality, melody.tokens, output.primer))
            passages.append(melody.tokens)
    return reports, passages


def _references(bundle: Bundle, generations: int, rng_seed: int) -> dict[str, tuple[list[dict], list]]:
    """Reports and passages of random corpus windows and unigram draws."""
    corpus_ids, vocab = bundle.corpus_ids, bundle.vocab
    rng = np.random.default_rng(rng_seed)
    if bundle.config["kind"] == "lyrics":
        corpus_words = set(bundle.stats.get("words", [])) or None
        texts = {"corpus": ["".join(vocab.decode(ids)) for ids in _corpus_windows(corpus_ids, generations, LYRICS_LENGTH, rng)],
                 "unigram": ["".join(vocab.decode(ids)) for ids in _unigram_draws(corpus_ids, len(vocab), generations, LYRICS_LENGTH, rng)]}
        return {source: ([lyrics_report(text, corpus_words) for text in found], found) for source, found in texts.items()}
    histogram, window = bundle.stats.get("pitch_class_histogram"), bundle.config["window"]
    # Corpus windows of primer + continuation: the continuation is what the corpus itself "generates" after a primer.
    length = melody_length(bundle)
    spans = _corpus_windows(corpus_ids, generations, window + length, rng)
    primers = [vocab.decode(span[:window]) for span in spans]
    draws = _unigram_draws(corpus_ids, len(vocab), generations, length, rng)

    def measured(all_ids, copies: bool):
        passages = [vocab.decode(ids) for ids in all_ids]
        # A corpus window is trivially copied from the corpus: its n-gram figure would say nothing.
        reports = [_with_primer_distance(melody_report(tokens, ids, histogram, corpus_ids if copies else None), tokens, primer)
                   for tokens, ids, primer in zip(passages, all_ids, primers)]
        return reports, passages

    return {"corpus": measured([span[window:] for span in spans], copies=False), "unigram": measured(draws, copies=True)}


# --- closeness to the corpus -----------------------------------------------------------------


def gap_closed(generated: float, corpus: float, unigram: float) -> float | None:
    """Share of the unigram-to-corpus gap that ``generated`` closes (1 = like the corpus); None without a gap."""
    gap = corpus - unigram
    return (generated - unigram) / gap if abs(gap) >= MIN_GAP * abs(corpus) and gap else None


def corpus_distance(closeness: dict) -> float:
    """Mean distance of the generations to the corpus windows, each measure in units of its unigram-to-corpus gap.

    0 is the corpus itself and 1 is as far as the unigram sampler; a measure
    without a gap counts in units of ``MIN_GAP`` of its corpus value.
    """
    distances = [abs(row["generated"] - row["corpus"]) / max(abs(row["corpus"] - row["unigram"]), MIN_GAP * abs(row["corpus"]), 1e-12)
                 for row in closeness.values()]
    return float(np.mean(distances)) if distances else float("inf")


def _corpus_features(bundle: Bundle) -> dict[str, list[int]]:
    """Melodic intervals and durations of the whole training corpus, the distributions generations are compared with."""
    tokens = bundle.vocab.decode(bundle.corpus_ids)
    return {"intervals": melodic_intervals(tokens), "durations": durations(tokens)}


def _measures(kind: str, summary: dict, passages: list, features: dict | None) -> dict[str, float | None]:
    """One source's closeness measures: report means, and (music) overlaps of pooled features with the corpus's."""
    if kind == "lyrics":
        return {"known_word_share": summary.get("known_word_share"), "distinct_2": summary.get("distinct_2")}
    intervals = [step for tokens in passages for step in melodic_intervals(tokens)]
    lengths = [steps for tokens in passages for steps in durations(tokens)]
    return {"key_consistency": summary.get("key_consistency"), "pitch_range": summary.get("pitch_range"),
            "interval_overlap": overlapping_area(intervals, features["intervals"]),
            "duration_overlap": overlapping_area(lengths, features["durations"])}


def closeness_table(measures: dict[str, dict]) -> dict[str, dict]:
    """``{measure: {generated, corpus, unigram, gap_closed}}`` from each source's measures (measures with a gap left out)."""
    table = {}
    for name in measures["generated"]:
        values = {source: measures[source][name] for source in SOURCES}
        if None not in values.values():
            table[name] = {**values, "gap_closed": gap_closed(values["generated"], values["corpus"], values["unigram"])}
    return table


def musicality_table(tokenizer: str, passages: dict[str, list]) -> dict[str, dict]:
    """``{measure: {generated, corpus, unigram, gap_closed}}``: each musicality measure's mean over each source's
    passages (token lists), None where no passage defines it (:func:`seqgen.musicality.musicality`)."""
    measured = {source: [musicality_of(tokens, tokenizer) for tokens in passages[source]] for source in SOURCES}
    table = {}
    for name in MUSICALITY_LABELS:
        if name == "ends_on_tonic":  # a passage's last note says nothing of endings: whole_pieces measures them
            continue
        values = {source: _mean(measured[source], name) for source in SOURCES}
        closed = gap_closed(values["generated"], values["corpus"], values["unigram"]) if None not in values.values() else None
        table[name] = {**values, "gap_closed": closed}
    return table


def corpus_pieces(bundle: Bundle) -> list[list[str]]:
    """The whole pieces of a bundle's training corpus (between each start token and its end token), as tokens."""
    from seqgen.events import piece_spans

    ids = np.asarray(bundle.corpus_ids)
    return [bundle.vocab.decode(ids[start + 1:end]) for start, end in piece_spans(bundle.vocab, ids)]


def whole_pieces(bundle: Bundle, generations: int, rng_seed: int, sampling: SamplingOptions) -> dict:
    """``generations`` pieces written from the start token until the model ends them (``until_end``, at most the
    bundle's cap): how many it ended, how long they are, how often they end on the tonic, beside the corpus's pieces."""
    from seqgen.generate import generate_melody, piece_length_cap
    from seqgen.musicality import ends_on_tonic, notes_of

    tokenizer, ended, lengths, tonic = bundle.config["tokenizer"], [], [], []
    with tempfile.TemporaryDirectory(prefix="seqgen-pieces-") as folder:
        for number in range(generations):
            output = generate_melody(bundle, Path(folder) / str(number), until_end=True, rng_seed=rng_seed + number,
                                     sampling=sampling, render_audio=False)
            melody = output.melodies[0]
            ended.append(bool(melody.ended))
            lengths.append(len(melody.tokens))
            if melody.ended:
                tonic.append(ends_on_tonic(notes_of(melody.tokens, tokenizer)))
    pieces = corpus_pieces(bundle)
    corpus = [ends_on_tonic(notes_of(piece, tokenizer)) for piece in pieces]

    def share(values) -> float | None:
        known = [value for value in values if value is not None]
        return float(np.mean(known)) if known else None

    return {"generations": generations, "cap": piece_length_cap(bundle), "ended_share": float(np.mean(ended)),
            "mean_length": float(np.mean(lengths)), "corpus_pieces": len(corpus),
            "corpus_mean_length": float(np.mean([len(piece) for piece in pieces])),
            "ends_on_tonic": {"generated": share(tonic), "corpus": share(corpus)}}


def piece_checks(pieces: dict) -> list[dict]:
    """The whole-piece bar: the model ends nine pieces in ten itself, and on the tonic about as often as the corpus."""
    tonic = pieces["ends_on_tonic"]
    checks = [_check("pieces the model ended itself within the length cap", f"≥ {ENDED_TARGET:.0%}", pieces["ended_share"],
                     pieces["ended_share"] >= ENDED_TARGET)]
    if tonic["generated"] is not None and tonic["corpus"] is not None:
        checks.append(_check("share of ended pieces ending on the tonic", f"within {TONIC_MARGIN * 100:.0f} points of the corpus's "
                             f"{tonic['corpus']:.3f}", tonic["generated"], abs(tonic["generated"] - tonic["corpus"]) <= TONIC_MARGIN))
    return checks


# --- the quality bar -------------------------------------------------------------------------


def _check(name: str, target: str, value: float | None, passed: bool) -> dict:
    return {"name": name, "target": target, "value": value, "passed": bool(passed)}


def guard_checks(kind: str, summaries: dict[str, dict]) -> dict[str, dict]:
    """The checks against degenerate decoding, by what failing means: a sweep recommends only settings that pass."""
    generated, corpus = summaries["generated"], summaries["corpus"]
    if kind == "music":
        repetition_limit = corpus["repetition_rate"] + REPETITION_MARGIN
        return {
            "repeats tokens": _check("repetition rate", f"≤ corpus + {REPETITION_MARGIN:.2f} = {repetition_limit:.3f}",
                                     generated["repetition_rate"], generated["repetition_rate"] <= repetition_limit),
            "replays the corpus": _check(f"generations whose longest copied n-gram is under {COPY_LIMIT} tokens", "≥ 90 %",
                                         generated["copied_under_limit_share"], generated["copied_under_limit_share"] >= 0.9),
        }
    return {"repeats lines": _check(f"completions where no line appears more than {MAX_LINE_REPEATS} times", "100 %",
                                    generated["within_line_repeat_limit_share"], generated["within_line_repeat_limit_share"] == 1.0)}


def quality_checks(kind: str, summaries: dict[str, dict], closeness: dict | None = None) -> list[dict]:
    """The model-card quality bar, measured on the summaries (and closeness table) of `evaluate_bundle`."""
    generated, unigram = summaries["generated"], summaries["unigram"]
    guards = list(guard_checks(kind, summaries).values())
    if kind == "lyrics":
        return [_check("share of generated words found in the corpus", f"≥ {KNOWN_WORDS_TARGET:.0%}",
                       generated["known_word_share"], generated["known_word_share"] >= KNOWN_WORDS_TARGET), *guards]
    checks = [guards[0],
              _check("pitch-class distance to the corpus", f"< unigram sampler's {unigram['pitch_class_distance']:.3f}",
                     generated["pitch_class_distance"], generated["pitch_class_distance"] < unigram["pitch_class_distance"]),
              guards[1]]
    key = (closeness or {}).get("key_consistency")
    if key is not None and key["gap_closed"] is not None:
        checks.append(_check("share of the unigram-to-corpus key-consistency gap closed", f"≥ {KEY_GAP_TARGET * 100:.0f} %",
                             key["gap_closed"], key["gap_closed"] >= KEY_GAP_TARGET))
    return checks


# --- generalisation --------------------------------------------------------------------------


def generalisation_gap(bundle: Bundle, windows: int = GAP_WINDOWS, rng_seed: int = 0) -> dict | None:
    """Next-token cross-entropy after a full window on the bundle's own training and validation windows.

    The split is rebuilt from the bundle's config exactly as training made it;
    the model runs without dropout, so both figures are comparable.  None when
    the bundle was trained without validation windows.
    """
    training, window, ids = bundle.config["training"], bundle.config["window"], bundle.corpus_ids
    split, seed = training.get("split", "random"), training.get("seed", 42)
    starts = window_starts(len(ids), window, training.get("max_windows"), seed, training.get("stride", 1))
    splits = make_splits(split, starts, len(ids), window, training.get("seed_fraction", 0.2), training.get("validation_fraction", 0.1), seed)
    if not len(splits.validation):
        return None
    rng = np.random.default_rng(rng_seed)
    result = {"split": split}
    for name, part in (("train", splits.train), ("validation", splits.validation)):
        inputs, targets = gather_windows(ids, starts[rng.choice(part, size=min(windows, len(part)), replace=False)], window)
        probabilities = bundle.sampler.window_probabilities(inputs)[np.arange(len(targets)), targets]
        result[f"{name}_windows"] = len(targets)
        result[f"{name}_cross_entropy"] = float(-np.mean(np.log(np.maximum(probabilities, 1e-12))))
    result["gap"] = result["validation_cross_entropy"] - result["train_cross_entropy"]
    return result


# --- evaluation and sweep --------------------------------------------------------------------


def _check_bundle(bundle: Bundle, generations: int) -> None:
    if generations < 1:
        raise SeqgenError(f"Generations must be at least 1 (got {generations}).")
    if bundle.corpus_ids is None or not bundle.stats:
        raise SeqgenError(f"Bundle {bundle.folder.name} has no corpus statistics (a bundle from an older seqgen): retrain it to evaluate it.")


def _measured(bundle: Bundle, generated: tuple[list[dict], list], references: dict, features: dict | None) -> tuple[dict, dict]:
    """``(summaries, closeness table)`` of generations beside the references."""
    kind = bundle.config["kind"]
    found = {"generated": generated, **references}
    summaries = {source: _summary(found[source][0]) for source in SOURCES}
    measures = {source: _measures(kind, summaries[source], found[source][1], features) for source in SOURCES}
    return summaries, closeness_table(measures)


def evaluate_bundle(bundle: Bundle, generations: int = GENERATIONS, rng_seed: int = 0) -> dict:
    """Quality of `generations` generations at the bundle's default sampling, beside corpus windows and unigram draws.

    Returns a JSON-ready dict: the settings, each source's mean report
    (``summaries``), the ``closeness`` table, (music) the ``musicality``
    table (:func:`musicality_table`), the quality bar's ``checks``,
    the ``generalisation`` gap, (lyrics) common ``invented_words`` and every
    report (``reports``).
    """
    _check_bundle(bundle, generations)
    kind, sampling = bundle.config["kind"], bundle.default_sampling()
    started = time.perf_counter()
    references = _references(bundle, generations, rng_seed)
    generated = _generated(bundle, generations, rng_seed, sampling)
    summaries, closeness = _measured(bundle, generated, references, _corpus_features(bundle) if kind == "music" else None)
    quality = {
        "kind": kind,
        "generations": generations,
        "length": melody_length(bundle) if kind == "music" else LYRICS_LENGTH,
        "rng_seed": rng_seed,
        "sampling": sampling.to_json(),
        "recommended": bool(bundle.recommended_sampling),
        "summaries": summaries,
        "closeness": closeness,
        "checks": quality_checks(kind, summaries, closeness),
        "generalisation": generalisation_gap(bundle, rng_seed=rng_seed),
        "reports": {"generated": generated[0], **{source: found[0] for source, found in references.items()}},
    }
    if kind == "music":
        passages = {"generated": generated[1], **{source: found[1] for source, found in references.items()}}
        quality["musicality"] = musicality_table(bundle.config["tokenizer"], passages)
    if ends_pieces(bundle):
        quality["pieces"] = whole_pieces(bundle, generations, rng_seed, sampling)
        quality["checks"] += piece_checks(quality["pieces"])
    if kind == "lyrics":
        invented = Counter(word for report in generated[0] for word in report["invented_words"])
        quality["invented_words"] = [word for word, _ in invented.most_common(INVENTED_EXAMPLES)]
    quality["seconds"] = time.perf_counter() - started
    return quality


def keeps_key(closeness: dict) -> bool:
    """Whether generations close at least ``IN_KEY_SHARE`` of the key-consistency gap (True without a key measure)."""
    key = closeness.get("key_consistency")
    return key is None or key["gap_closed"] is None or key["gap_closed"] >= IN_KEY_SHARE


def best_row(rows: list[dict]) -> int:
    """Index of the recommended grid point: eligible first, then keeping the key, then the smallest distance to the
    corpus, then grid order."""
    return min(range(len(rows)), key=lambda index: (not rows[index]["eligible"], not rows[index].get("in_key", True),
                                                    rows[index]["distance"], index))


def sweep_sampling(bundle: Bundle, generations: int = GENERATIONS, rng_seed: int = 0,
                   temperatures: tuple[float, ...] | None = None, top_ps: tuple[float, ...] | None = None) -> tuple[dict, dict]:
    """Generate at every temperature × top-p pair and recommend the pair closest to the corpus.

    Every pair uses the same primers and generator seeds, so the pairs differ
    only in their settings.  A pair is eligible when it passes
    :func:`guard_checks`; the recommendation is :func:`best_row` (eligible
    pairs that keep the key, :func:`keeps_key`, first).

    Returns:
        ``(settings, sweep)``: the recommended ``temperature`` and ``top_p``
        (None: off), and the measured grid (``rows``, ``best``, ``reference``).
    """
    _check_bundle(bundle, generations)
    kind = bundle.config["kind"]
    temperatures, top_ps = temperatures or SWEEP_GRID[kind][0], top_ps or SWEEP_GRID[kind][1]
    # Melodies are sampled with the copy guard: none copies COPY_LIMIT tokens of the corpus, so a low temperature is
    # judged on what it composes, not ruled out for what it replays.
    guard = {"max_copy": COPY_LIMIT} if kind == "music" else {}
    grid = [SamplingOptions.for_kind(kind, temperature=temperature, top_p=None if top_p == 1 else top_p, **guard)
            for temperature in temperatures for top_p in top_ps]  # bad values fail before any generation
    started = time.perf_counter()
    references = _references(bundle, generations, rng_seed)
    features = _corpus_features(bundle) if kind == "music" else None
    rows = []
    for sampling in grid:
        summaries, closeness = _measured(bundle, _generated(bundle, generations, rng_seed, sampling), references, features)
        failed = [failure for failure, check in guard_checks(kind, summaries).items() if not check["passed"]]
        rows.append({"temperature": sampling.temperature, "top_p": sampling.top_p,
                     "measures": {name: {"generated": row["generated"], "gap_closed": row["gap_closed"]} for name, row in closeness.items()},
                     "distance": corpus_distance(closeness), "failed": failed, "eligible": not failed,
                     "in_key": keeps_key(closeness)})
    best = best_row(rows)
    reference = {name: {"corpus": row["corpus"], "unigram": row["unigram"]} for name, row in closeness.items()}
    sweep = {"generations": generations, "rng_seed": rng_seed, "rows": rows, "best": best, "reference": reference,
             "seconds": time.perf_counter() - started, **({"in_key_share": IN_KEY_SHARE} if kind == "music" else {})}
    return {"temperature": rows[best]["temperature"], "top_p": rows[best]["top_p"], **guard}, sweep
