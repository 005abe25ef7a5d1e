"""Model cards: a bundle's ``README.md``, written from its config, history, measured quality and sampling sweep.

Rendering only; :mod:`seqgen.bundle` decides when the card is written.
"""

from __future__ import annotations

import math
from pathlib import Path


QUALITY_ROWS = {  # quality report summary key → model-card label
    "music": {
        "repetition_rate": "repetition rate (same token twice in a row)",
        "distinct_ratio": "distinct tokens / tokens",
        "pitch_class_distance": "pitch-class distance to the corpus (0 = same, 1 = disjoint)",
        "primer_pitch_class_distance": "pitch-class distance to its primer (keeps the key: low)",
        "longest_copied_ngram": "longest n-gram copied from the corpus (mean)",
        "longest_copied_ngram_max": "longest n-gram copied from the corpus (max)",
        "copied_under_limit_share": "share with no copied n-gram of 16 or more",
    },
    "lyrics": {
        "words": "words",
        "known_word_share": "share of words found in the corpus",
        "distinct_2": "distinct word bigrams / bigrams",
        "repeated_lines": "repeated lines",
        "max_line_repeats": "most times one line appears",
        "within_line_repeat_limit_share": "share where no line appears more than twice",
    },
}
CLOSENESS_ROWS = {  # closeness measure → model-card label
    "key_consistency": "key consistency (share of pitch classes in the best-fitting major or harmonic-minor scale)",
    "pitch_range": "pitch range (semitones)",
    "interval_overlap": "melodic intervals: overlapping area with the corpus's distribution",
    "duration_overlap": "durations: overlapping area with the corpus's distribution",
    "known_word_share": "share of words found in the corpus",
    "distinct_2": "distinct word bigrams / bigrams",
}
SWEEP_COLUMNS = {  # closeness measure → sweep table column
    "key_consistency": "key consistency", "pitch_range": "pitch range", "interval_overlap": "interval overlap",
    "duration_overlap": "duration overlap", "known_word_share": "known words", "distinct_2": "distinct-2",
}
SPLITS = {
    "random": "random windows (the reference's); they overlap training windows",
    "blocks": "held-out blocks of the corpus, a one-window gap from training: no shared token",
}


def _number(value, digits=4) -> str:
    return "n/a" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.{digits}f}"


def _share(value) -> str:
    return "n/a" if value is None else f"{round(value * 100)} %"  # round() turns -0.4 into 0, not "-0"


def _digits(measure: str) -> int:
    return 1 if measure == "pitch_range" else 3  # semitones, or shares and areas


def describe_sampling(sampling: dict) -> str:
    """``temperature 0.9, top-p 0.95`` (top-k and the repetition penalty only when set)."""
    parts = [f"temperature {sampling['temperature']:g}"]
    if sampling.get("top_p") is not None:
        parts.append(f"top-p {sampling['top_p']:g}")
    if sampling.get("top_k") is not None:
        parts.append(f"top-k {sampling['top_k']}")
    if sampling.get("repetition_penalty", 1) != 1:
        parts.append(f"repetition penalty {sampling['repetition_penalty']:g}")
    if sampling.get("max_copy"):
        parts.append(f"copying at most {sampling['max_copy'] - 1} corpus tokens in a row")
    return ", ".join(parts)


def _closeness_lines(kind: str, closeness: dict) -> list[str]:
    lines = [
        "",
        "### Musicality" if kind == "music" else "### Closeness to the corpus",
        "",
        "Gap closed: (generated − unigram) / (corpus windows − unigram). 100 % is like the corpus, 0 % like the unigram "
        "sampler, over 100 % beyond the corpus (for key consistency: more in key than the corpus itself); n/a where the "
        "unigram sampler is within 5 % of the corpus windows."
        + (" Overlapping areas (Yang & Lerch 2018) compare all the passages' intervals or durations, pooled, with the whole "
           "training corpus's (1 = the same distribution)." if kind == "music" else ""),
        "",
        "| | generated | corpus windows | unigram sampler | gap closed |",
        "|---|---|---|---|---|",
    ]
    for name, row in closeness.items():
        values = " | ".join(_number(row[source], _digits(name)) for source in ("generated", "corpus", "unigram"))
        lines.append(f"| {CLOSENESS_ROWS[name]} | {values} | {_share(row['gap_closed'])} |")
    return lines


def _generalisation_lines(gap: dict) -> list[str]:
    honest = ("Validation windows come from held-out blocks that share no token with training, so this measures "
              "generalisation." if gap["split"] == "blocks" else
              "With the random split validation windows overlap training windows, so this gap understates how the model "
              "does on unseen material.")
    return ["", f"Generalisation gap: next-token cross-entropy {gap['train_cross_entropy']:.3f} on {gap['train_windows']} "
                f"training windows and {gap['validation_cross_entropy']:.3f} on {gap['validation_windows']} validation "
                f"windows of its `{gap['split']}` split, a gap of {gap['gap']:+.3f} nats. {honest}"]


def sweep_section(kind: str, sampling: dict) -> list[str]:
    """The sampling sweep that chose the recommended settings."""
    sweep, settings = sampling["sweep"], sampling["settings"]
    names, best = list(sweep["reference"]), sweep["rows"][sweep["best"]]
    lines = [
        "",
        "## Sampling sweep",
        "",
        f"`seqgen evaluate --sweep` made {sweep['generations']} generations at each temperature × top-p pair, with the same "
        "primers and seeds" + (f", each with the copy guard (no {settings['max_copy']} tokens in a row from the corpus)"
                               if settings.get("max_copy") else "") + ". Distance: the mean over the measures of |generated − corpus windows| in units of the "
        "unigram-to-corpus gap (0 = like the corpus, 1 = as far as the unigram sampler). Eligible: "
        + ("no more repetition than the corpus + 0.10 and no replayed corpus (the first and third checks of the quality bar)."
           if kind == "music" else "no line more than twice in every completion.")
        + (f" In key: closes at least {sweep['in_key_share'] * 100:.0f} % of the key-consistency gap; eligible pairs in key come first."
           if "in_key_share" in sweep else "")
        + f" Recommended: **{describe_sampling(settings)}**, the eligible pair closest to the corpus"
        + (" among those in key" if "in_key_share" in sweep and best.get("in_key", True) and any(not row.get("in_key", True) for row in sweep["rows"])
           else "")
        + f"; the CLI and the studio use it unless you set your own. The sweep took {sweep['seconds']:.0f} s.",
        "",
        "| temperature | top-p | " + " | ".join(f"{SWEEP_COLUMNS[name]} (gap closed)" for name in names) + " | distance | eligible |",
        "|---|---|" + "---|" * (len(names) + 2),
        "| corpus windows | | " + " | ".join(_number(sweep["reference"][name]["corpus"], _digits(name)) for name in names) + " | 0 | |",
        "| unigram sampler | | " + " | ".join(_number(sweep["reference"][name]["unigram"], _digits(name)) for name in names) + " | | |",
    ]
    for index, row in enumerate(sweep["rows"]):
        measures = " | ".join(f"{_number(row['measures'][name]['generated'], _digits(name))} ({_share(row['measures'][name]['gap_closed'])})"
                              if name in row["measures"] else "n/a" for name in names)
        mark = " **recommended**" if index == sweep["best"] else ""
        top_p = "off" if row["top_p"] is None else f"{row['top_p']:g}"
        eligible = ("yes" if row.get("in_key", True) else "yes, off key") if row["eligible"] else f"no: {', '.join(row['failed'])}"
        lines.append(f"| {row['temperature']:g} | {top_p} | {measures} | {_number(row['distance'], 3)} | {eligible}{mark} |")
    return lines


def quality_section(config: dict, quality: dict, sampling: dict | None = None) -> list[str]:
    """The model card's quality lines: generations beside corpus windows and a unigram sampler, then the sweep."""
    summaries, kind = quality["summaries"], quality["kind"]
    unit = "tokens" if kind == "music" else "characters"
    settings = (f"{describe_sampling(quality['sampling'])} "
                f"({'the recommended settings' if quality.get('recommended') else 'the default settings'})")
    lines = [
        "",
        "## Quality",
        "",
        f"{quality['generations']} generations of {quality['length']} {unit} at {settings}, "
        + ("each primed with a random window of the seed split" if kind == "music" else "from the default seed line")
        + f", beside {quality['generations']} random windows of the training corpus and {quality['generations']} draws "
        "of a unigram sampler (tokens drawn independently with the corpus frequencies). Means unless stated.",
        "",
    ]
    if kind == "music":
        lines += [
            f"A corpus window's primer is the {config['window']} tokens before it; a unigram draw is compared with the same "
            f"primers. Over {quality['length']} tokens the unigram sampler, which draws from exactly the corpus's pitch-class mix, is hard "
            "to beat on distance to the corpus; real corpus windows stay in one key, so they usually score worse there. "
            "The distance to the primer shows whether a melody keeps its primer's key.",
            "",
        ]
    lines += [
        "| | generated | corpus windows | unigram sampler |",
        "|---|---|---|---|",
    ]
    for key, label in QUALITY_ROWS[kind].items():
        if key in summaries["generated"]:
            lines.append(f"| {label} | " + " | ".join(_number(summaries[source].get(key), 3) for source in ("generated", "corpus", "unigram")) + " |")
    if quality.get("closeness"):
        lines += _closeness_lines(kind, quality["closeness"])
    if quality.get("musicality"):
        from seqgen.musicality import table_lines

        lines += table_lines(quality["musicality"])
    if quality.get("pieces"):
        pieces, tonic = quality["pieces"], quality["pieces"]["ends_on_tonic"]
        lines += ["", f"Whole pieces: {pieces['generations']} written from the start token until the model ended them "
                  f"(at most {pieces['cap']:,} tokens): {pieces['ended_share']:.0%} ended by themselves, "
                  f"{pieces['mean_length']:.0f} tokens on average (the corpus's {pieces['corpus_pieces']} pieces: "
                  f"{pieces['corpus_mean_length']:.0f}); {_number(tonic['generated'], 3)} of the ended ones end on the "
                  f"tonic (the corpus's pieces: {_number(tonic['corpus'], 3)})."]
    if quality.get("invented_words"):
        lines += ["", "Invented words (not in the corpus), most frequent first: " + ", ".join(quality["invented_words"]) + "."]
    if quality.get("generalisation"):
        lines += _generalisation_lines(quality["generalisation"])
    lines += ["", "Quality bar:", ""]
    for check in quality["checks"]:
        mark = "✅ met" if check["passed"] else "❌ not met"
        lines.append(f"- {check['name']}: {_number(check['value'], 3)} (target {check['target']}) {mark}")
    if sampling and sampling.get("sweep"):
        lines += sweep_section(kind, sampling)
    return lines


# The shipped models the studio's Play tab opens with; the melody model's card says why (docs/models.md: the figures).
STUDIO_DEFAULTS = {"music": "bach-chorales", "lyrics": "songs-poems-embed"}
DEFAULT_REASONS = {
    "bach-chorales": "Of the shipped melody models it writes the music closest to its corpus as it sounds: four-part "
                     "chorales in which every voice holds its notes (notes sounding at each onset, below; `bach-timed`'s "
                     "timed tokens cut a note whenever another voice moves, so its melodies sound about 1.2 notes at each "
                     "onset where the chorales sound 4.3), in key, as whole pieces that it ends itself.",
}
UNITS = {"music": "note", "lyrics": "character"}
# What a model at each standing writes, in words a student can check by listening or reading.
EXPECT = {
    "music": ("notes drawn by their frequency, with no tune", "melodies that wander with little sense of key",
              "melodies in the style of its corpus"),
    "lyrics": ("letter soup", "mostly letter soup with a few real words", "mostly real words"),
}


def baseline_ratio(config: dict) -> float | None:
    """The best epoch's next-token cross-entropy over the unigram baseline's (1: no better than token counts)."""
    best = config.get("best") or {}
    entropy, baseline = best.get("val_cross_entropy", best.get("val_loss")), best.get("unigram_val_loss")
    if not all(isinstance(value, (int, float)) and math.isfinite(value) for value in (entropy, baseline)) or baseline <= 0:
        return None
    return entropy / baseline


def standing(config: dict) -> int | None:
    """0: still at the unigram baseline; 1: a little below it; 2: well below it (None: not measured yet)."""
    ratio = baseline_ratio(config)
    if ratio is None:
        return None
    return 0 if ratio >= 0.98 else 1 if ratio >= 0.8 else 2


STANDINGS = ("still at the unigram baseline", "a little below the unigram baseline", "well below the unigram baseline")


# What the reference report's own run of its architecture reached (docs: ../shared/GUIDE.md), beside a seed bundle's.
REPORT_RUNS = {"music": ("200 epochs", "the report trained this architecture for 200 epochs (Adamax at 0.01, batch 256)"),
               "lyrics": ("about 50 % accuracy", "the report's run of this architecture reached about 50 % validation accuracy, "
                                                  "with little gain after about 10 epochs")}


def report_run(config: dict, epochs: int) -> str | None:
    """For a reference-architecture bundle, the sentence on what the report's run reached beside this one; else None."""
    if not config.get("preset", "").startswith("seed") or config.get("kind") not in REPORT_RUNS:
        return None
    accuracy = (config.get("best") or {}).get("val_accuracy")
    return (f"Reference architecture: {REPORT_RUNS[config['kind']][1]}; this bundle trained {epochs} "
            f"epoch{'' if epochs == 1 else 's'}" + (f" and reached {accuracy * 100:.1f} % validation accuracy." if accuracy is not None else "."))


TOKENIZER_WORDS = {"timed": ", with rhythm", "events": ", every voice, whole pieces", "seed": ", pitches only"}


def model_label(name: str, config: dict, epochs: int) -> str:
    """A dropdown label that says what the model is: ``mozart-seed — reference architecture, pitches only, 8 epochs, still at
    the unigram baseline (the report: 200 epochs)``."""
    level, preset = standing(config), config.get("preset", "?")
    if preset == "embed" and level == 2:
        what = "recommended"
    elif preset.startswith("seed"):
        what = "reference architecture"
    else:
        what = f"{preset} preset"
    if config.get("kind") == "music":
        what += TOKENIZER_WORDS.get(config.get("tokenizer"), ", pitches only")
    trained = f"{epochs} epoch{'' if epochs == 1 else 's'}"
    report = f" (the report: {REPORT_RUNS[config['kind']][0]})" if report_run(config, epochs) else ""
    return f"{name} — {what}, {trained}, {STANDINGS[level] if level is not None else 'not measured yet'}{report}"


def plain_summary(config: dict) -> str:
    """One plain sentence on what the model learned, written from its own validation metrics."""
    level, unit = standing(config), UNITS.get(config.get("kind"), "token")
    if level is None:
        return "No epoch has finished yet, so there is nothing to say about what this model learned."
    best = config["best"]
    numbers = (f"its next-{unit} cross-entropy {_number(best.get('val_cross_entropy', best.get('val_loss')), 2)} against "
               f"the unigram baseline {_number(best.get('unigram_val_loss'), 2)}")
    expect = EXPECT.get(config.get("kind"), ("noise", "weak output", "good output"))[level]
    if level == 0:
        return f"In plain words: this model learned only how often each {unit} occurs, not which {unit} follows which ({numbers}), so expect {expect}."
    if level == 1:
        return f"In plain words: this model learned a little about which {unit} follows which ({numbers}), so expect {expect}."
    return f"In plain words: this model learned which {unit} tends to follow which ({numbers}), so expect {expect}."


def developer_section(config: dict, quality: dict | None) -> list[str]:
    """The card's last section: how to use the bundle from the command line and from Python."""
    name = config.get("name", "BUNDLE")
    lines = ["", "## For developers", "", "```bash", f"python -m seqgen generate {name}   # a shipped model's name, or this folder"]
    if quality is not None:
        lines.append(f"python -m seqgen evaluate {name}   # the quality section above (took {quality['seconds']:.0f} s)")
    return lines + ["```", "", "```python", "from seqgen.bundle import load_bundle", "", 'bundle = load_bundle("path/to/this/folder")',
                    "print(bundle.sampler.generate(bundle.seeds[0], 50, temperature=0.8).tokens[0])", "```"]


def cut_short(history: list[dict]) -> str | None:
    """``stopped during epoch 3 after 40 of 120 batches (…)`` when the last epoch was cut short, else None."""
    last = history[-1] if history else {}
    if not last.get("stopped") or last.get("batches_done", 0) >= last.get("batches", 0):
        return None
    why = f" ({last['stop_reason']})" if last.get("stop_reason") else " (stopped by the user)"
    return f"stopped during epoch {last['epoch']} after {last['batches_done']} of {last['batches']} batches{why}"


def model_card(config: dict, history: list[dict], quality: dict | None = None, sampling: dict | None = None) -> str:
    """A short README.md describing the bundle, with its measured quality and sampling sweep once evaluated."""
    best = config["best"]
    corpus = config["corpus"]
    training = config["training"]
    split = training.get("split", "random")  # bundles older than the setting used the random split

    seconds = sum(record.get("seconds", 0.0) for record in history)
    stopped = cut_short(history)
    lines = [
        f"# {config.get('name', Path('.').name)}",
        "",
        " ".join(filter(None, [plain_summary(config), report_run(config, len(history))])),
        "",
        *([f"**The studio's Play tab opens with this model.** {DEFAULT_REASONS[config['name']]}", ""]
          if config.get("name") in DEFAULT_REASONS else []),
        f"A seqgen {config['kind']} model: preset `{config['preset']}`, tokenizer `{config['tokenizer']}`, "
        f"window {config['window']}, vocabulary {config['vocab_size']}, {config['parameters']:,} parameters.",
        "",
        "| | |",
        "|---|---|",
        f"| corpus | {corpus.get('name')} ({corpus.get('items')} items, {corpus.get('tokens'):,} tokens after filtering) |",
        f"| filter | {corpus.get('filter')}, min-count {corpus.get('min_count')} |",
        f"| training | {training['loss']}, {training['optimizer']} at {training['learning_rate']}, batch {training['batch_size']} |",
        f"| windows | {training.get('train_windows'):,} train, {training.get('validation_windows'):,} validation, {training.get('seed_windows'):,} seed"
        + (f", starting every {training['stride']} tokens" if training.get("stride", 1) > 1 else "") + " |",
        f"| validation split | `{split}`: {SPLITS[split]} |",
        f"| epochs | {len(history)}{f', {stopped}' if stopped else ''} |",
        f"| training wall time | {seconds:.0f} s |",
        f"| best epoch | {best.get('epoch')} |",
        f"| validation loss | {_number(best.get('val_loss'))} |",
        f"| validation accuracy | {_number(best.get('val_accuracy'))} |",
        f"| validation cross-entropy, next token after a full window | {_number(best.get('val_cross_entropy'))} |",
        f"| validation perplexity (same) | {_number(best.get('val_perplexity'), 2)} |",
        f"| unigram baseline cross-entropy | {_number(best.get('unigram_val_loss'))} |",
        "",
        "The unigram baseline is the cross-entropy of always predicting the training-set token frequencies: "
        "a model whose next-token cross-entropy is below it has learned more than token counts. "
        "(For presets trained on every position, the validation loss averages all positions, including "
        "those with little context, so compare the next-token cross-entropy.) "
        + ("Validation windows are a random share of all windows, as in the reference, so most overlap training windows: "
           "the validation loss measures fit more than generalisation"
           + (" (the longest copied n-gram shows whether generations replay the corpus)." if config["kind"] == "music" else ".")
           if split == "random" else
           "Validation windows come from held-out blocks of the corpus and share no token with training windows: "
           "the validation loss measures generalisation."),
    ]
    if quality is not None:
        lines += quality_section(config, quality, sampling)
    lines += developer_section(config, quality)
    return "\n".join(lines) + "\n"
