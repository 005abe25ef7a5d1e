"""Inside the LSTM: each cell's hidden state token by token, and the cells that track a simple feature.

Karpathy, Johnson and Fei-Fei ("Visualizing and Understanding Recurrent
Networks", 2015) found single LSTM cells that count the position in a line or
switch on inside quotes.  :func:`activations` runs a sequence through the same
NumPy LSTM the sampler steps (:class:`seqgen.numpy_lstm.NumpyStack`, from a
zero state, as stateful generation does) and keeps one layer's hidden state
after every token; :func:`rank_cells` orders the layer's units by how
strongly (Pearson's r) they follow a feature of the tokens:

- lyrics: the position in the line, being inside a word, having just read a vowel;
- melodies: the pitch height and, for ``timed`` tokens, the position in the bar
  (4/4, counted from the first token).

:func:`from_recorded` does the same for the hidden states a generation
recorded (``record=`` in :meth:`seqgen.sample.Sampler.generate`), so the
studio gets them without running the network again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seqgen.errors import SeqgenError

# Every feature a cell may be ranked by, with the words the studio and the CLI show.
FEATURES = {
    "line_position": "position in the line",
    "in_word": "inside a word",
    "after_vowel": "after a vowel",
    "pitch_height": "pitch height",
    "bar_position": "position in the bar",
}
VOWELS = frozenset("aeiouAEIOU")
SIXTEENTHS_PER_BAR = 16  # 4/4 on the timed tokenizer's grid of sixteenths
MAX_TOKENS = 2000  # the longest sequence analysed at once
CELLS_PER_FEATURE = 5


@dataclass
class Activations:
    """One LSTM layer's hidden state after every token of a sequence.

    Attributes:
        layer: The layer's name ("lstm_1", "lstm_2").
        tokens: The sequence, `steps` tokens (unknown ones already dropped).
        values: Hidden states, `(steps, units)`, float32 in [-1, 1].
        cells: The units ranked by how strongly they track a feature (see :func:`rank_cells`).
        dropped: Tokens of the input the vocabulary lacks, with counts; they were skipped.
    """

    layer: str
    tokens: list[str]
    values: np.ndarray
    cells: list[dict]
    dropped: dict[str, int]

    @property
    def units(self) -> int:
        """The layer's width."""
        return int(self.values.shape[1])

    def summary(self) -> str:
        """The ranked cells as lines of text (the ``activations`` command without ``--json``)."""
        lines = [f"{self.layer}: {self.units} units over {len(self.tokens)} tokens; the cells that track a feature best:"]
        lines += [f"  unit {cell['unit']:>4}  r = {cell['correlation']:+.3f}  {cell['label']}" for cell in self.cells]
        return "\n".join(lines)

    def to_json(self) -> dict:
        """What ``python -m seqgen activations --json`` prints (values rounded to 1e-6)."""
        return {"layer": self.layer, "units": self.units, "tokens": self.tokens, "dropped": self.dropped,
                "activations": np.round(self.values.astype(np.float64), 6).tolist(), "cells": self.cells}


def features(kind: str, tokens: list[str], tokenizer: str | None = None) -> dict[str, np.ndarray]:
    """The simple features of each token that a cell might track, one float array `(steps,)` per feature.

    NaN marks a token a feature does not describe (a rest has no pitch).

    Args:
        kind: "lyrics" (characters) or "music".
        tokens: The sequence.
        tokenizer: For music, "seed", "timed" or "events" (seed tokens have no position in the bar).
    """
    if kind == "lyrics":
        line_position, column = [], 0
        for char in tokens:
            column = 0 if char == "\n" else column + 1
            line_position.append(column)
        return {
            "line_position": np.array(line_position, dtype=float),
            "in_word": np.array([char.isalnum() or char == "'" for char in tokens], dtype=float),
            "after_vowel": np.array([char in VOWELS for char in tokens], dtype=float),
        }
    onsets, _, pitches = timeline(tokens, tokenizer)
    found = {"pitch_height": np.array([np.mean(played) if played else np.nan for played in pitches])}
    if tokenizer == "timed":
        found["bar_position"] = (onsets * 4) % SIXTEENTHS_PER_BAR
    elif tokenizer == "events":
        found["bar_position"] = np.array(_event_times(tokens)[1]) * 4
    return found


def _event_times(tokens: list[str]) -> tuple[list[float], list[float]]:
    """Each events token's time (quarter notes from the first bar line) and its place in its bar, read as miditok
    reads them: a ``Bar_None`` closes the bar before it (a sequence that starts mid-bar is in bar one)."""
    onsets, in_bar = [], []
    bar_start, bar_length, position, open_bar = 0.0, 4.0, 0.0, False
    for token in tokens:
        kind, _, value = token.partition("_")
        if token == "Bar_None":
            if open_bar:
                bar_start += bar_length
            open_bar, position = True, 0.0
        elif kind == "TimeSig":
            numerator, _, denominator = value.partition("/")
            bar_length = int(numerator) * 4.0 / int(denominator)
        elif kind == "Position":
            open_bar, position = True, int(value) / 8.0  # 8 grid steps a beat
        onsets.append(bar_start + position)
        in_bar.append(position)
    return onsets, in_bar


def timeline(tokens: list[str], tokenizer: str) -> tuple[np.ndarray, np.ndarray, list[tuple[int, ...]]]:
    """Where each music token starts and how long it lasts (quarter notes, from the first token), and its MIDI pitches
    (none for a rest; for events, a pitch token holds its note, lasting as its duration token says, and the other
    tokens last no time)."""
    from seqgen.music import parse_timed_token, soundings

    if tokenizer == "events":
        from seqgen.events import duration_quarters

        following = [*tokens[1:], ""]
        durations = [duration_quarters(after) if token.startswith("Pitch_") and after.startswith("Duration_") else 0.0
                     for token, after in zip(tokens, following)]
        pitches = [(int(token[6:]),) if token.startswith("Pitch_") else () for token in tokens]
        return np.array(_event_times(tokens)[0]), np.array(durations), pitches
    durations = [parse_timed_token(token)[1] if tokenizer == "timed" else 1.0 for token in tokens]
    onsets = np.concatenate([[0.0], np.cumsum(durations)[:-1]]) if tokens else np.zeros(0)
    pitches = [played[0].midi if (played := soundings([token], tokenizer)) else () for token in tokens]
    return onsets, np.array(durations), pitches


def correlations(values: np.ndarray, feature: np.ndarray) -> np.ndarray:
    """Pearson's r of every unit `(steps, units)` with a feature `(steps,)`, over the tokens it describes; 0 where either is constant."""
    known = np.isfinite(feature)
    x, y = values[known].astype(np.float64), feature[known]
    if len(y) < 3 or np.ptp(y) == 0:
        return np.zeros(values.shape[1])
    x, y = x - x.mean(axis=0), y - y.mean()
    spread = np.sqrt((x * x).sum(axis=0) * (y * y).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(spread > 0, (x * y[:, None]).sum(axis=0) / spread, 0.0)


def rank_cells(values: np.ndarray, found: dict[str, np.ndarray], per_feature: int = CELLS_PER_FEATURE) -> list[dict]:
    """The `per_feature` units that follow each feature best, strongest first overall.

    Returns:
        ``{"unit", "feature", "label", "correlation"}`` dicts sorted by
        ``|correlation|`` (a negative r is a cell that falls as the feature rises).
    """
    cells = []
    for name, feature in found.items():
        r = correlations(values, feature)
        for unit in np.argsort(-np.abs(r), kind="stable")[:per_feature]:
            cells.append({"unit": int(unit), "feature": name, "label": FEATURES[name], "correlation": round(float(r[unit]), 4)})
    return sorted(cells, key=lambda cell: -abs(cell["correlation"]))


def from_recorded(bundle, tokens: list[str], hidden: np.ndarray, layer: str, dropped: dict | None = None) -> Activations:
    """:class:`Activations` of hidden states recorded while generating, `(len(tokens), units)`."""
    if len(hidden) != len(tokens):
        raise SeqgenError(f"{len(hidden)} recorded hidden states for {len(tokens)} tokens.")
    config = bundle.config
    found = features(config["kind"], tokens, config.get("tokenizer"))
    return Activations(layer, list(tokens), np.asarray(hidden, dtype=np.float32), rank_cells(hidden, found), dict(dropped or {}))


def activations(bundle, primer, layer: str | None = None) -> Activations:
    """Runs a sequence through the model from a zero state and keeps one LSTM layer's hidden states.

    Args:
        bundle: A loaded bundle.
        primer: Text (lyrics: characters, cleaned like the corpus; music:
            whitespace-separated tokens) or a list of tokens.
        layer: "lstm_1", "lstm_2", …; "top" (or None): the last one, which the prediction is read from.

    Raises:
        SeqgenError: If no token is in the vocabulary, the sequence is longer
            than ``MAX_TOKENS``, or the layer does not exist.
    """
    from seqgen.primers import encode_primer
    from seqgen.numpy_lstm import blas_limit

    sampler = bundle.sampler
    index = sampler.layer_index(layer or "top")
    ids, tokens, dropped = encode_primer(bundle, primer)
    if not ids:
        raise SeqgenError("Nothing to analyse: none of the tokens are in the model's vocabulary"
                          + (f" (dropped: {', '.join(repr(token) for token in list(dropped)[:10])})." if dropped else "."))
    if len(ids) > MAX_TOKENS:
        raise SeqgenError(f"Give at most {MAX_TOKENS} tokens to analyse at once, got {len(ids)}.")
    with blas_limit(sampler.blas_threads):  # as when generating: one BLAS thread is faster at this size
        outputs, _ = sampler.stack.hidden(np.asarray(ids)[None])
    return from_recorded(bundle, tokens, outputs[index][0], sampler.stack.layer_names[index], dropped)


def sequence(bundle, text: str | None = None, primer_file: str | None = None, rng_seed: int | None = None):
    """What the ``activations`` command analyses: the text (lyrics: characters; music: tokens), a score file,
    or (music only) a random seed window."""
    from pathlib import Path

    from seqgen.primers import melody_primer

    if bundle.config["kind"] == "lyrics":
        if primer_file is not None or text is None:
            raise SeqgenError("Give a lyrics model some text to read: --text \"a line or two\".")
        return text
    if text is not None:
        return text.split()
    return melody_primer(bundle, Path(primer_file) if primer_file else None, rng_seed)


def of_generation(bundle, output, variation: int = 0, layer: str = "top") -> tuple[Activations, int]:
    """The activations over what conditioned one variation of a generation and what it made.

    Uses the hidden states the generation recorded (``record=layer``) when it
    has them, else runs the network.

    Args:
        bundle: The bundle that made `output`.
        output: A :class:`seqgen.generate.MelodyOutput` or :class:`seqgen.generate.LyricsOutput`.
        variation: Which melody or text.
        layer: The recorded layer ("top" or a name).

    Returns:
        `(activations, primer_length)`: the primer's tokens come first.
    """
    from seqgen.generate import MelodyOutput

    if isinstance(output, MelodyOutput):
        primer, made = list(output.primer), output.melodies[variation].tokens
    else:  # the sampler conditioned on the seed's last `window` characters
        primer, made = list(output.seed)[-bundle.sampler.window:], list(output.texts[variation])
    tokens = primer + made
    if output.hidden is None:
        return activations(bundle, tokens, layer), len(primer)
    name = bundle.sampler.stack.layer_names[bundle.sampler.layer_index(layer)]
    return from_recorded(bundle, tokens, output.hidden[variation][:len(tokens)], name), len(primer)
