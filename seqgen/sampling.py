"""Sampling rules: how one next-token distribution becomes a token.

:class:`SamplingOptions` holds the rules a request asks for (temperature,
top-k, top-p, repetition penalty) and is validated once, when it is made;
the CLI, the studio and :mod:`seqgen.generate` all build one.
:func:`draw` applies them to a batch of distributions with a caller's
``numpy.random.Generator``; :func:`sample_index` and :func:`sample_indices`
are the same rules as pure functions of plain arguments.  Greedy argmax at
temperature 0 is what the reference report did.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Iterable

import numpy as np

from seqgen.errors import SeqgenError

# Each kind's default temperature: melodies follow the model, verses are a little more conservative.
DEFAULT_TEMPERATURE = {"music": 1.0, "lyrics": 0.8}


def _is_number(value) -> bool:
    """True for int/float/NumPy scalars, False for bools and everything else."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


@dataclass(frozen=True)
class SamplingOptions:
    """How each next token is drawn; invalid values raise SeqgenError when the options are made.

    Attributes:
        temperature: Finite number >= 0; 0 is greedy argmax (the reference), 1 samples the
            model's distribution, above 1 flattens it.
        top_k: Keep only the k most likely tokens; None keeps all.
        top_p: Nucleus threshold in (0, 1]; None (or 1) keeps all.
        repetition_penalty: >= 1; divides the probability of recent tokens; 1 turns it off.
    """

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    repetition_penalty: float = 1.0

    def __post_init__(self):
        if not _is_number(self.temperature) or not math.isfinite(self.temperature) or self.temperature < 0:
            raise SeqgenError(
                f"Temperature must be >= 0 (0 means greedy argmax, as in the reference), got {self.temperature!r}."
            )
        top_k = self.top_k
        if top_k is not None and (isinstance(top_k, (bool, np.bool_)) or not isinstance(top_k, (int, np.integer)) or top_k < 1):
            raise SeqgenError(f"top_k must be an integer >= 1 (or None to keep every token), got {top_k!r}.")
        if self.top_p is not None and (not _is_number(self.top_p) or not 0 < self.top_p <= 1):  # NaN fails the comparison
            raise SeqgenError(f"top_p must be in (0, 1] (or None to turn nucleus sampling off), got {self.top_p!r}.")
        penalty = self.repetition_penalty
        if not _is_number(penalty) or not penalty >= 1 or not math.isfinite(penalty):
            raise SeqgenError(f"repetition_penalty must be a finite number >= 1 (1 turns it off), got {penalty!r}.")

    @classmethod
    def for_kind(cls, kind: str, **fields) -> "SamplingOptions":
        """The kind's defaults (see ``DEFAULT_TEMPERATURE``) with the caller's ``fields`` on top."""
        return replace(cls(temperature=DEFAULT_TEMPERATURE.get(kind, 1.0)), **fields)

    def to_json(self) -> dict:
        return asdict(self)


def _recent_mask(recent, shape: tuple[int, int]) -> np.ndarray:
    """Turns `recent` into a boolean mask of shape `(batch, V)`.

    Args:
        recent: A boolean array `(batch, V)`, or one sequence of token
            indices per row.
        shape: `(batch, V)`.
    """
    if isinstance(recent, np.ndarray) and recent.dtype == bool:
        if recent.shape != shape:
            raise SeqgenError(f"recent mask must have shape {shape}, got {recent.shape}.")
        return recent
    rows = list(recent)
    if len(rows) != shape[0]:
        raise SeqgenError(f"recent must hold one sequence of token indices per row ({shape[0]}), got {len(rows)}.")
    mask = np.zeros(shape, dtype=bool)
    for row, indices in enumerate(rows):
        indices = np.asarray(list(indices), dtype=np.int64)
        if indices.size:
            if indices.min() < 0 or indices.max() >= shape[1]:
                raise SeqgenError(f"recent holds a token index outside the vocabulary (0 … {shape[1] - 1}).")
            mask[row, indices] = True
    return mask


def draw(probs, options: SamplingOptions, rng: np.random.Generator, recent=None) -> np.ndarray:
    """Draws one token index per row of a batch of next-token distributions.

    The steps, in order (as in Hugging Face's logits processors):

    1. log-probabilities ``log p`` (zero probabilities become ``-inf``);
    2. repetition penalty (CTRL-style, Keskar et al. 2019): the probability
       of every token flagged in ``recent`` is divided by
       ``repetition_penalty`` before renormalising, i.e. ``log p -=
       log(repetition_penalty)``.  CTRL divides the *logit*; on
       log-probabilities (always <= 0) that would raise them, so the penalty
       is applied to the probability mass instead.  A token counts once
       however often it recurs;
    3. temperature 0: return the argmax (ties → lowest index, like
       ``numpy.argmax`` in the reference).  top-k/top-p never remove the
       argmax, so they do not matter here;
    4. otherwise divide by ``temperature`` (the penalty is thus raised to
       the power ``1 / temperature``), keep the ``top_k`` most likely tokens,
       then the smallest set of the most likely tokens whose probability
       reaches ``top_p`` (the most likely token is always kept);
    5. draw from the renormalised distribution with one ``rng.random()``
       per row (inverse CDF), so a seeded generator gives the same tokens.

    Args:
        probs: Next-token probabilities, shape `(batch, V)`; rows need not
            sum exactly to 1 (they are renormalised) but must be finite,
            non-negative and not all zero.
        options: The sampling rules (already validated).
        rng: The random generator to draw from.
        recent: Tokens to penalise: a boolean array `(batch, V)` or one
            sequence of indices per row; None penalises nothing.

    Returns:
        Token indices, shape `(batch,)`, dtype int64.

    Raises:
        SeqgenError: If `probs` is not a valid batch of distributions.
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] < 1 or probs.shape[0] < 1:
        raise SeqgenError(f"probs must have shape (batch, vocab_size), got {probs.shape}.")
    if not np.isfinite(probs).all() or (probs < 0).any() or not (probs.sum(axis=1) > 0).all():
        raise SeqgenError(
            "The model produced invalid probabilities (NaN, negative or all zero); its weights are likely broken. Retrain the model."
        )
    batch, vocab_size = probs.shape
    with np.errstate(divide="ignore"):
        logits = np.log(probs)
    if options.repetition_penalty != 1 and recent is not None:
        logits = np.where(_recent_mask(recent, probs.shape), logits - math.log(options.repetition_penalty), logits)
    if options.temperature == 0:
        return np.argmax(logits, axis=1).astype(np.int64)
    # Sort once (descending, stable so ties keep index order); filter in sorted space.
    order = np.argsort(-logits, axis=1, kind="stable")
    ranked = np.take_along_axis(logits, order, axis=1)
    # Shift by the best (finite: rows are not all zero) before dividing, so a
    # tiny temperature gives 0 and -inf, never -inf - -inf = NaN.
    with np.errstate(over="ignore"):
        ranked = (ranked - ranked[:, :1]) / options.temperature
    weights = np.exp(ranked)  # (batch, V), descending, first is 1
    if options.top_k is not None and options.top_k < vocab_size:
        weights[:, options.top_k:] = 0.0
    if options.top_p is not None and options.top_p < 1:
        cumulative = np.cumsum(weights, axis=1)
        before = cumulative - weights  # mass of the strictly more likely tokens
        weights = np.where(before < options.top_p * cumulative[:, -1:], weights, 0.0)
    # Weights are descending and every filter zeroes a suffix, so the kept
    # tokens are a prefix of the ranking: clamp the draw into it.
    cumulative = np.cumsum(weights, axis=1)
    draws = rng.random(batch) * cumulative[:, -1]
    kept = np.count_nonzero(weights, axis=1)
    positions = np.minimum((cumulative <= draws[:, None]).sum(axis=1), kept - 1)
    chosen = order[np.arange(batch), positions]
    return chosen.astype(np.int64)


def sample_indices(
    probs,
    temperature: float,
    rng: np.random.Generator,
    top_k: int | None = None,
    top_p: float | None = None,
    repetition_penalty: float = 1.0,
    recent=None,
) -> np.ndarray:
    """:func:`draw` with the options as plain arguments, validated: one token index per row of `probs`."""
    options = SamplingOptions(temperature, top_k, top_p, repetition_penalty)
    if not isinstance(rng, np.random.Generator):
        raise SeqgenError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), got {type(rng).__name__}.")
    return draw(probs, options, rng, recent)


def sample_index(
    probs,
    temperature: float,
    rng: np.random.Generator,
    top_k: int | None = None,
    top_p: float | None = None,
    repetition_penalty: float = 1.0,
    recent: Iterable[int] | None = None,
) -> int:
    """Draws one token index from one next-token distribution.

    See :func:`draw` for the exact steps; this is its one-row case
    and gives the same index for the same generator state.

    Args:
        probs: Probabilities, shape `(V,)`.
        temperature: >= 0; 0 is greedy argmax.
        rng: The random generator to draw from.
        top_k: Keep only the k most likely tokens; None keeps all.
        top_p: Nucleus threshold in (0, 1]; None keeps all.
        repetition_penalty: >= 1; divides the probability of each token in
            `recent` before renormalising.
        recent: Indices of recently generated tokens to penalise.

    Returns:
        The chosen index, an int in `[0, V)`.

    Raises:
        SeqgenError: If an option is out of range or `probs` is invalid.
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 1:
        raise SeqgenError(f"probs must have shape (vocab_size,), got {probs.shape}; use sample_indices for batches.")
    rows = None if recent is None else [list(recent)]
    return int(sample_indices(probs[None, :], temperature, rng, top_k, top_p, repetition_penalty, rows)[0])
