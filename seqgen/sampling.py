"""Sampling rules: how one next-token distribution becomes a token.

:class:`SamplingOptions` holds the rules a request asks for (temperature,
top-k, top-p, repetition penalty) and is validated once, when it is made;
the CLI, the studio and :mod:`seqgen.generate` all build one.
:func:`rank` applies them to a batch of distributions (a :class:`Ranked`
batch, which also explains itself with :meth:`Ranked.explain`) and :func:`draw`
picks one token per row from it with a caller's ``numpy.random.Generator``;
:func:`sample_index` and :func:`sample_indices` are the same rules as pure
functions of plain arguments.  Greedy argmax at temperature 0 is what the
reference report did.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from collections.abc import Iterable, Sequence

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
        max_copy: 0 (off) or n >= 2: never draw a token that would make the last
            n generated tokens a passage of the training corpus, so a generation
            copies at most n - 1 tokens in a row (see :mod:`seqgen.lockstep`).
    """

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    repetition_penalty: float = 1.0
    max_copy: int = 0

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
        copy = self.max_copy
        if isinstance(copy, (bool, np.bool_)) or not isinstance(copy, (int, np.integer)) or copy < 0 or copy == 1:
            raise SeqgenError(f"max_copy must be 0 (off) or a whole number of tokens >= 2, got {copy!r}.")

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


@dataclass(frozen=True)
class Ranked:
    """A batch of next-token distributions after the sampling rules, each row sorted from the most likely token down.

    Made by :func:`rank`; :meth:`draw` picks from it and :meth:`top` shows
    it, so an explanation shows exactly the distribution a token was drawn from.

    Attributes:
        order: Token ids, `(batch, V)`, most likely first (ties: lowest id first).
        logits: Log-probabilities after the repetition penalty, in that order, `(batch, V)`.
        weights: Unnormalised weights after temperature, top-k and top-p, in that
            order, `(batch, V)`; filtered tokens weigh 0, and the kept ones are a prefix.
        greedy: Temperature 0: the first token of each row is taken.
    """

    order: np.ndarray
    logits: np.ndarray
    weights: np.ndarray
    greedy: bool

    def pick(self, rng: np.random.Generator) -> np.ndarray:
        """One place in each row's ranking, `(batch,)`: 0 when greedy, else an inverse-CDF draw
        with one ``rng.random()`` per row (none when greedy)."""
        return self.places(None if self.greedy else rng.random(self.order.shape[0]))

    def places(self, uniforms: np.ndarray | None) -> np.ndarray:
        """:meth:`pick` with its uniform draws in [0, 1) given, one per row (None when greedy): rows of several
        generations drawn at once, each row's draw from its own generator."""
        if self.greedy:
            return np.zeros(self.order.shape[0], dtype=np.int64)
        cumulative = np.cumsum(self.weights, axis=1)
        draws = uniforms * cumulative[:, -1]
        # The kept tokens are a prefix of the ranking: clamp the draw into it.
        kept = (self.weights > 0).sum(axis=1)
        return np.minimum((cumulative <= draws[:, None]).sum(axis=1), kept - 1)

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        """One token id per row, `(batch,)` int64: the token at :meth:`pick`'s place."""
        return self.order[np.arange(self.order.shape[0]), self.pick(rng)].astype(np.int64)

    def top(self, k: int, places: np.ndarray | None = None) -> "Candidates":
        """The `k` most likely tokens of each row and, given :meth:`pick`'s places, the drawn ones (see :class:`Candidates`)."""
        return _top(self.order, self.logits, self.weights, k, places)

    def explain(self, k: int, names: Sequence[str], places: np.ndarray | None = None) -> list[dict]:
        """:meth:`top` as one dict per row (see :meth:`Candidates.to_dicts`)."""
        return self.top(k, places).to_dicts(names)


@dataclass
class Candidates:
    """The most likely tokens of ranked distributions, as arrays with the same leading shape `(...)`.

    Attributes:
        ids: Token ids, `(..., k)`, most likely first.
        before: Their probabilities after the repetition penalty, before temperature, top-k and top-p, `(..., k)`.
        after: Their probabilities after all the rules (0 for a filtered token), `(..., k)`.
        chosen: The drawn ids, `(...)`, or None.
        ranks: The drawn tokens' places in the ranking (1 = most likely), `(...)`, or None.
        probabilities: The probabilities they were drawn with, `(...)`, or None.
    """

    ids: np.ndarray
    before: np.ndarray
    after: np.ndarray
    chosen: np.ndarray | None = None
    ranks: np.ndarray | None = None
    probabilities: np.ndarray | None = None

    @classmethod
    def of_steps(cls, rankings: list[Ranked], places: list[np.ndarray], k: int) -> "Candidates":
        """Consecutive steps of a batch at once: `rankings` and `places` of shape `(batch,)` → `(batch, len(rankings))`."""
        stacked = [np.stack([getattr(ranked, name) for ranked in rankings], axis=1) for name in ("order", "logits", "weights")]
        return _top(*stacked, k, np.stack(places, axis=1))

    @classmethod
    def concat(cls, parts: list["Candidates"]) -> "Candidates":
        """Runs of steps one after the other: parts of shape `(batch, n_i)` → `(batch, sum n_i)`."""
        fields = {}
        for name in ("ids", "before", "after", "chosen", "ranks", "probabilities"):
            values = [getattr(part, name) for part in parts]
            fields[name] = None if values[0] is None else np.concatenate(values, axis=1)
        return cls(**fields)

    def row(self, index: int | slice) -> "Candidates":
        """The candidates of one row (one variation), or of a slice of rows."""
        return Candidates(*(None if value is None else value[index] for value in (self.ids, self.before, self.after,
                                                                                 self.chosen, self.ranks, self.probabilities)))

    def to_dicts(self, names: Sequence[str]) -> list[dict]:
        """One dict per entry of a one-dimensional leading shape `(n,)`.

        Each holds ``candidates``: ``[token, probability]`` pairs the token was
        drawn with, most likely first, filtered tokens left out (so with
        ``top_k <= k`` they sum to 1); ``before_temperature``: the same tokens
        with their probability after the repetition penalty and before
        temperature, top-k and top-p; and when the drawn tokens are known,
        first, ``chosen`` (the token), ``rank`` and ``probability``.
        """
        rows = []
        chosen = None if self.chosen is None else zip(self.chosen.tolist(), self.ranks.tolist(), self.probabilities.tolist())
        for ids, before, after in zip(self.ids.tolist(), self.before.tolist(), self.after.tolist()):
            explained = {}
            if chosen is not None:
                token, rank, probability = next(chosen)
                explained.update(chosen=names[token], rank=rank, probability=probability)
            explained["candidates"] = [[names[token], p] for token, p in zip(ids, after) if p > 0]
            explained["before_temperature"] = [[names[token], p] for token, p in zip(ids, before)]
            rows.append(explained)
        return rows


class Steps(Sequence):
    """One variation's explained steps: a read-only sequence of dicts (see :meth:`Candidates.to_dicts`), each made
    when it is read, from :class:`Candidates` arrays of shape `(steps, k)`.

    Kept as arrays, a verse's 400 steps are a few objects instead of five thousand small lists: a result travels
    between processes in a quick pickle, and a server that keeps many results (a class's sessions) has little for
    the garbage collector to walk.
    """

    def __init__(self, candidates: Candidates, names: Sequence[str]):
        self.candidates, self.names = candidates, names

    def __len__(self) -> int:
        return len(self.candidates.ids)

    def __getitem__(self, index: int | slice):
        """One step's dict, or a slice of the steps as Steps."""
        if isinstance(index, slice):
            return Steps(self.candidates.row(index), self.names)
        number = range(len(self))[index]  # IndexError past the end, as a list
        return self.candidates.row(slice(number, number + 1)).to_dicts(self.names)[0]

    def __iter__(self):
        return iter(self.candidates.to_dicts(self.names))

    def __eq__(self, other) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    def __repr__(self) -> str:
        return f"Steps({len(self)} steps, {self.candidates.ids.shape[-1]} candidates each)"


def _top(order: np.ndarray, logits: np.ndarray, weights: np.ndarray, k: int, places: np.ndarray | None) -> Candidates:
    """:meth:`Ranked.top` on rankings of any leading shape: arrays `(..., V)`, places `(...)`."""
    totals = weights.sum(axis=-1)
    before = np.exp(logits - logits[..., :1])
    candidates = Candidates(order[..., :k], before[..., :k] / before.sum(axis=-1, keepdims=True), weights[..., :k] / totals[..., None])
    if places is not None:
        at = places[..., None]
        candidates.chosen = np.take_along_axis(order, at, axis=-1)[..., 0]
        candidates.ranks = places + 1
        candidates.probabilities = np.take_along_axis(weights, at, axis=-1)[..., 0] / totals
    return candidates


def rank(probs, options: SamplingOptions, recent=None, blocked: np.ndarray | None = None) -> Ranked:
    """Applies the sampling rules to a batch of next-token distributions.

    The steps, in order (as in Hugging Face's logits processors):

    1. log-probabilities ``log p`` (zero probabilities become ``-inf``);
    2. repetition penalty (CTRL-style, Keskar et al. 2019): the probability
       of every token flagged in ``recent`` is divided by
       ``repetition_penalty`` before renormalising, i.e. ``log p -=
       log(repetition_penalty)``.  CTRL divides the *logit*; on
       log-probabilities (always <= 0) that would raise them, so the penalty
       is applied to the probability mass instead.  A token counts once
       however often it recurs;
    3. the copy guard: tokens flagged in ``blocked`` (they would extend a copy
       of the training corpus to ``max_copy`` tokens) get probability 0;
    4. sort from the most likely token down (stable: ties keep index order);
    5. temperature 0: all the weight on the first token (the argmax, ties →
       lowest index, like ``numpy.argmax`` in the reference);
    6. otherwise divide by ``temperature`` (the penalty is thus raised to
       the power ``1 / temperature``), keep the ``top_k`` most likely tokens,
       then the smallest set of the most likely tokens whose probability
       reaches ``top_p`` (the most likely token is always kept).

    Args:
        probs: Next-token probabilities, shape `(batch, V)`; rows need not
            sum exactly to 1 (they are renormalised) but must be finite,
            non-negative and not all zero.
        options: The sampling rules (already validated).
        recent: Tokens to penalise: a boolean array `(batch, V)` or one
            sequence of indices per row; None penalises nothing.
        blocked: Tokens the copy guard rules out, a boolean array `(batch, V)`; None rules out nothing.

    Returns:
        The :class:`Ranked` distributions.

    Raises:
        SeqgenError: If `probs` is not a valid batch of distributions.
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] < 1 or probs.shape[0] < 1:
        raise SeqgenError(f"probs must have shape (batch, vocab_size), got {probs.shape}.")
    totals = probs.sum(axis=1)  # NaN or inf anywhere in a row makes its total so
    if not (probs.min() >= 0 and np.isfinite(totals).all() and totals.min() > 0):
        raise SeqgenError(
            "The model produced invalid probabilities (NaN, negative or all zero); its weights are likely broken. Retrain the model."
        )
    vocab_size = probs.shape[1]
    with np.errstate(divide="ignore", over="ignore"):  # log(0) = -inf; a tiny temperature overflows to -inf
        logits = np.log(probs)
        if options.repetition_penalty != 1 and recent is not None:
            logits = np.where(_recent_mask(recent, probs.shape), logits - math.log(options.repetition_penalty), logits)
        if blocked is not None:  # the copy guard; a row it would leave with no possible token keeps every token
            guarded = np.where(blocked, -np.inf, logits)
            logits = np.where(np.isfinite(guarded).any(axis=1, keepdims=True), guarded, logits)
        order = np.argsort(-logits, axis=1, kind="stable")
        ranked = logits[np.arange(len(logits))[:, None], order]
        if options.temperature == 0:
            weights = np.zeros_like(ranked)
            weights[:, 0] = 1.0
            return Ranked(order, ranked, weights, greedy=True)
        # Shift by the best (finite: rows are not all zero) before dividing, so a
        # tiny temperature gives 0 and -inf, never -inf - -inf = NaN.
        scaled = (ranked - ranked[:, :1]) / options.temperature
    weights = np.exp(scaled)  # (batch, V), descending, first is 1
    if options.top_k is not None and options.top_k < vocab_size:
        weights[:, options.top_k:] = 0.0
    if options.top_p is not None and options.top_p < 1:
        cumulative = np.cumsum(weights, axis=1)
        before = cumulative - weights  # mass of the strictly more likely tokens
        weights = np.where(before < options.top_p * cumulative[:, -1:], weights, 0.0)
    return Ranked(order, ranked, weights, greedy=False)


def draw(probs, options: SamplingOptions, rng: np.random.Generator, recent=None) -> np.ndarray:
    """Draws one token index per row of a batch of next-token distributions: :func:`rank`, then :meth:`Ranked.draw`.

    Args:
        probs: Next-token probabilities, shape `(batch, V)` (see :func:`rank`).
        options: The sampling rules (already validated).
        rng: The random generator to draw from; a seeded generator gives the same tokens.
        recent: Tokens to penalise (see :func:`rank`).

    Returns:
        Token indices, shape `(batch,)`, dtype int64.
    """
    return rank(probs, options, recent).draw(rng)


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
