"""Stateful step-by-step sampler: a loaded bundle + a primer → new tokens.

Two pieces, kept apart as in nanoGPT's ``sample.py``:

- :func:`sample_index` / :func:`sample_indices` turn one (or a batch of)
  next-token distributions into token indices: greedy argmax at temperature
  0 (what the reference report did), otherwise temperature, top-k, top-p
  (nucleus) and a repetition penalty, drawing from a caller-supplied
  ``numpy.random.Generator``.  They are pure functions of their arguments.
- :class:`Sampler` runs the model.  Two modes:

  ``window``
      The reference computation: every step feeds exactly the last
      ``window`` tokens to the network from a zero state and reads the
      prediction after the last one, so its probabilities equal
      ``model.predict(window)`` (to float32 rounding).  It costs ``window``
      cell steps per token.  Default for "last" presets, which were trained
      on exactly that.
  ``stateful``
      Carries the LSTM state (h, c) from step to step, so each new token
      costs one cell step per layer.  After priming with ``window`` tokens
      its probabilities equal the model's output at the last position;
      after that the state holds more history than the model saw in
      training.  Default for "sequence" presets, which learned a prediction
      at every position from a zero state.  On "last" presets (the
      reference ``seed`` models, trained only on fixed windows from a zero
      state) it is an approximation: the first token is exact, later ones
      are conditioned on an ever longer history.

Both modes run the recurrent stack in NumPy from the Keras weights, read
from the layers by their stable names ("embedding", "lstm_1", "lstm_2",
"dense_1", "output"; dropout is the identity at inference).  Window mode can
also run the Keras model itself (``engine="keras"``: a ``tf.function`` around
``model(x, training=False)``), the ground truth the NumPy engine is tested
against.  Neither calls ``model.predict`` per token, which costs tens of
milliseconds of per-call overhead.

Nothing here imports TensorFlow unless ``engine="keras"`` is used.

One cell step is a handful of small matrix-vector products (about 0.2 ms
for the ``seed`` architecture).  At that size OpenBLAS's worker threads cost
more than they save, and on a busy machine their spin-waits can make a step
ten times slower, so generation limits BLAS to one thread while it runs
(``Sampler(blas_threads=1)``, through ``threadpoolctl`` when it is
installed; None leaves the setting alone).  The limit is process-wide for
the duration of the call.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import numpy as np

from seqgen.errors import SeqgenError

MODES = ("window", "stateful")
ENGINES = ("numpy", "keras")
MAX_LENGTH = 2000  # default cap on generated tokens; SEQGEN_MAX_LENGTH overrides it
MAX_VARIATIONS = 16  # continuations generated side by side in one batch
MAX_LENGTH_ENV = "SEQGEN_MAX_LENGTH"

TokenCallback = Callable[[int, int, str], None]


# ---------------------------------------------------------------------------
# Sampling one token from a distribution.
# ---------------------------------------------------------------------------


def _is_number(value) -> bool:
    """True for int/float/NumPy scalars, False for bools and everything else."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def check_sampling_options(
    temperature: float,
    top_k: int | None = None,
    top_p: float | None = None,
    repetition_penalty: float = 1.0,
) -> None:
    """Validates sampling options; raises SeqgenError with an actionable message.

    Args:
        temperature: Finite number >= 0; 0 means greedy argmax.
        top_k: None, or an integer >= 1.
        top_p: None, or a number in (0, 1].
        repetition_penalty: Finite number >= 1; 1 turns the penalty off.

    Raises:
        SeqgenError: If any option is out of range or NaN.
    """
    if not _is_number(temperature) or not math.isfinite(temperature) or temperature < 0:
        raise SeqgenError(
            f"Temperature must be >= 0 (0 means greedy argmax, as in the reference), got {temperature!r}."
        )
    if top_k is not None and (
        isinstance(top_k, (bool, np.bool_)) or not isinstance(top_k, (int, np.integer)) or top_k < 1
    ):
        raise SeqgenError(f"top_k must be an integer >= 1 (or None to keep every token), got {top_k!r}.")
    if top_p is not None and (not _is_number(top_p) or not 0 < top_p <= 1):  # NaN fails the comparison
        raise SeqgenError(f"top_p must be in (0, 1] (or None to turn nucleus sampling off), got {top_p!r}.")
    if not _is_number(repetition_penalty) or not repetition_penalty >= 1 or not math.isfinite(repetition_penalty):
        raise SeqgenError(
            f"repetition_penalty must be a finite number >= 1 (1 turns it off), got {repetition_penalty!r}."
        )


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


def sample_indices(
    probs,
    temperature: float,
    rng: np.random.Generator,
    top_k: int | None = None,
    top_p: float | None = None,
    repetition_penalty: float = 1.0,
    recent=None,
) -> np.ndarray:
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
        temperature: >= 0; 0 is greedy, 1 samples the model's distribution,
            above 1 flattens it.
        rng: The random generator to draw from.
        top_k: Keep only the k most likely tokens; None keeps all.  Values
            above V keep all.
        top_p: Nucleus threshold in (0, 1]; None or 1 keeps all.
        repetition_penalty: >= 1; 1 turns the penalty off.
        recent: Tokens to penalise: a boolean array `(batch, V)` or one
            sequence of indices per row; None penalises nothing.

    Returns:
        Token indices, shape `(batch,)`, dtype int64.

    Raises:
        SeqgenError: If an option is out of range or `probs` is not a valid
            batch of distributions.
    """
    check_sampling_options(temperature, top_k, top_p, repetition_penalty)
    if not isinstance(rng, np.random.Generator):
        raise SeqgenError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), got {type(rng).__name__}.")
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
    if repetition_penalty != 1 and recent is not None:
        logits = np.where(_recent_mask(recent, probs.shape), logits - math.log(repetition_penalty), logits)
    if temperature == 0:
        return np.argmax(logits, axis=1).astype(np.int64)
    # Sort once (descending, stable so ties keep index order); filter in sorted space.
    order = np.argsort(-logits, axis=1, kind="stable")
    ranked = np.take_along_axis(logits, order, axis=1)
    # Shift by the best (finite: rows are not all zero) before dividing, so a
    # tiny temperature gives 0 and -inf, never -inf - -inf = NaN.
    with np.errstate(over="ignore"):
        ranked = (ranked - ranked[:, :1]) / temperature
    weights = np.exp(ranked)  # (batch, V), descending, first is 1
    if top_k is not None and top_k < vocab_size:
        weights[:, top_k:] = 0.0
    if top_p is not None and top_p < 1:
        cumulative = np.cumsum(weights, axis=1)
        before = cumulative - weights  # mass of the strictly more likely tokens
        weights = np.where(before < top_p * cumulative[:, -1:], weights, 0.0)
    # Weights are descending and every filter zeroes a suffix, so the kept
    # tokens are a prefix of the ranking: clamp the draw into it.
    cumulative = np.cumsum(weights, axis=1)
    draws = rng.random(batch) * cumulative[:, -1]
    kept = np.count_nonzero(weights, axis=1)
    positions = np.minimum((cumulative <= draws[:, None]).sum(axis=1), kept - 1)
    chosen = order[np.arange(batch), positions]
    return chosen.astype(np.int64)


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

    See :func:`sample_indices` for the exact steps; this is its one-row case
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


# ---------------------------------------------------------------------------
# The recurrent stack in NumPy.
# ---------------------------------------------------------------------------


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function without overflow warnings: 0.5 · tanh(x / 2) + 0.5."""
    return 0.5 * np.tanh(0.5 * x) + 0.5


def _softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, shifted by the maximum like tf.nn.softmax."""
    shifted = np.exp(x - x.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


_ACTIVATIONS = {
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, 0),
    "tanh": np.tanh,
    "sigmoid": _sigmoid,
    "softmax": _softmax,
}


def _activation_name(layer) -> str:
    """A Keras layer's activation name ("tanh", "softmax", …; "linear" when absent)."""
    activation = getattr(layer, "activation", None)
    return "linear" if activation is None else getattr(activation, "__name__", repr(activation))


@dataclass
class _LSTM:
    """One LSTM layer's weights, Keras gate order (i, f, c, o) along the last axis."""

    kernel: np.ndarray  # (input_dim, 4 · units)
    recurrent: np.ndarray  # (units, 4 · units)
    bias: np.ndarray  # (4 · units,)
    stacked: np.ndarray  # (input_dim + units, 4 · units): [kernel; recurrent] for one matmul per step
    units: int


@dataclass
class State:
    """The recurrent state of a batch: one `(h, c)` pair per LSTM layer.

    Attributes:
        layers: `[(h, c), …]`, each array of shape `(batch, units)`.
    """

    layers: list[tuple[np.ndarray, np.ndarray]]

    @property
    def batch(self) -> int:
        """Rows in the state (variations)."""
        return self.layers[0][0].shape[0]

    def tile(self, batch: int) -> "State":
        """A copy of a one-row state repeated `batch` times."""
        return State([(np.repeat(h, batch, axis=0), np.repeat(c, batch, axis=0)) for h, c in self.layers])


class NumpyStack:
    """The model's recurrent stack as NumPy maths on its Keras weights.

    Layers are read by their stable names: an optional "embedding" (ids
    presets) or the scaled input (index / V, scaled presets), "lstm_1",
    an optional "lstm_2", an optional "dense_1" and the softmax "output".
    Dropout layers are the identity at inference and are skipped.

    Args:
        model: A seqgen preset model (built by `seqgen.models.build_model`).
        input_mode: "ids" or "scaled".
        vocab_size: V.
        dtype: NumPy float type of the maths; float32 matches Keras.

    Raises:
        SeqgenError: If the model has a layer this engine cannot run.
    """

    def __init__(self, model, input_mode: str, vocab_size: int, dtype=np.float32):
        self.dtype = np.dtype(dtype)
        self.input_mode = input_mode
        self.vocab_size = vocab_size
        layers = {layer.name: layer for layer in model.layers}
        known = {"embedding", "lstm_1", "lstm_2", "dropout_1", "dropout_2", "dense_1", "output"}
        for name, layer in layers.items():
            kind = type(layer).__name__
            if kind != "InputLayer" and name not in known:
                raise SeqgenError(f"The sampler cannot run layer {name!r} ({kind}); it knows seqgen's preset layers only.")
        if "lstm_1" not in layers or "output" not in layers:
            raise SeqgenError("The sampler needs layers 'lstm_1' and 'output'; this model is not a seqgen preset.")
        cast = lambda array: np.asarray(array, dtype=self.dtype)  # noqa: E731
        self.embedding = None
        if input_mode == "ids":
            if "embedding" not in layers:
                raise SeqgenError("An 'ids' model needs an 'embedding' layer.")
            self.embedding = cast(layers["embedding"].get_weights()[0])  # (V, embedding_dim)
        elif input_mode != "scaled":
            raise SeqgenError(f"Unknown input_mode {input_mode!r}; expected 'scaled' or 'ids'.")
        self.lstms: list[_LSTM] = []
        for name in ("lstm_1", "lstm_2"):
            if name not in layers:
                continue
            layer = layers[name]
            if _activation_name(layer) != "tanh" or getattr(layer.recurrent_activation, "__name__", "") != "sigmoid":
                raise SeqgenError(f"Layer {name!r}: the sampler supports tanh/sigmoid LSTMs only.")
            if getattr(layer, "go_backwards", False):
                raise SeqgenError(f"Layer {name!r}: backward LSTMs are not supported by the sampler.")
            weights = layer.get_weights()
            kernel, recurrent = cast(weights[0]), cast(weights[1])
            units = recurrent.shape[0]
            bias = cast(weights[2]) if len(weights) > 2 else np.zeros(4 * units, dtype=self.dtype)
            self.lstms.append(_LSTM(kernel, recurrent, bias, np.ascontiguousarray(np.concatenate([kernel, recurrent])), units))
        self.dense: list[tuple[np.ndarray, np.ndarray | None, Callable]] = []
        for name in ("dense_1", "output"):
            if name not in layers:
                continue
            layer = layers[name]
            activation = _activation_name(layer)
            if activation not in _ACTIVATIONS:
                raise SeqgenError(f"Layer {name!r}: activation {activation!r} is not supported by the sampler.")
            if name == "output" and activation != "softmax":
                raise SeqgenError("The 'output' layer must be a softmax.")
            weights = layer.get_weights()
            self.dense.append((cast(weights[0]), cast(weights[1]) if len(weights) > 1 else None, _ACTIVATIONS[activation]))
        if self.dense[-1][0].shape[1] != vocab_size:
            raise SeqgenError(
                f"The model predicts {self.dense[-1][0].shape[1]} tokens but the vocabulary holds {vocab_size}."
            )

    def zero_state(self, batch: int) -> State:
        """An all-zero state for `batch` rows (how Keras starts every window)."""
        return State([(np.zeros((batch, lstm.units), self.dtype), np.zeros((batch, lstm.units), self.dtype)) for lstm in self.lstms])

    def _inputs(self, ids: np.ndarray) -> np.ndarray:
        """Network inputs for token ids `(...)` → `(..., input_dim)`."""
        if self.embedding is not None:
            return self.embedding[ids]
        # As the trainer: float32(index) / V, one feature.
        return (ids.astype(np.float32) / np.float32(self.vocab_size)).astype(self.dtype)[..., None]

    def _head(self, h: np.ndarray) -> np.ndarray:
        """Dense layers and softmax on the top LSTM's output `(batch, units)` → `(batch, V)`."""
        for kernel, bias, activation in self.dense:
            h = h @ kernel
            if bias is not None:
                h = h + bias
            h = activation(h)
        return h

    @staticmethod
    def _cell(z: np.ndarray, c: np.ndarray, units: int) -> tuple[np.ndarray, np.ndarray]:
        """One LSTM update from pre-activations `z` `(batch, 4u)` and cell `c` `(batch, u)`."""
        gates = _sigmoid(z)
        c = gates[:, units:2 * units] * c + gates[:, :units] * np.tanh(z[:, 2 * units:3 * units])
        return gates[:, 3 * units:] * np.tanh(c), c

    def run(self, ids: np.ndarray, state: State | None = None) -> tuple[np.ndarray, State]:
        """Feeds whole sequences, layer by layer, and predicts the next token.

        Each layer's input projection is one matrix product over all steps;
        only the recurrent part loops.  From `state=None` (zeros) this is
        exactly what the Keras model computes for a window.

        Args:
            ids: Token ids, shape `(batch, steps)`, steps >= 1.
            state: Starting state; None starts from zeros.

        Returns:
            `(probs, state)`: next-token probabilities after the last step,
            `(batch, V)`, and the state after it.
        """
        ids = np.asarray(ids, dtype=np.int64)
        batch, steps = ids.shape
        x = self._inputs(ids)  # (batch, steps, input_dim)
        final: list[tuple[np.ndarray, np.ndarray]] = []
        for number, lstm in enumerate(self.lstms):
            projected = (x.reshape(batch * steps, -1) @ lstm.kernel + lstm.bias).reshape(batch, steps, -1)
            if state is None:
                h = np.zeros((batch, lstm.units), self.dtype)
                c = np.zeros((batch, lstm.units), self.dtype)
                fresh = True
            else:
                h, c = state.layers[number]
                fresh = False
            keep_sequence = number + 1 < len(self.lstms)
            outputs = np.empty((batch, steps, lstm.units), self.dtype) if keep_sequence else None
            for step in range(steps):
                z = projected[:, step] if fresh and step == 0 else projected[:, step] + h @ lstm.recurrent
                h, c = self._cell(z, c, lstm.units)
                if keep_sequence:
                    outputs[:, step] = h
            final.append((h, c))
            x = outputs
        return self._head(final[-1][0]), State(final)

    def step(self, ids: np.ndarray, state: State) -> np.ndarray:
        """Feeds one token per row and updates `state` in place.

        Args:
            ids: Token ids, shape `(batch,)`.
            state: The batch's state; replaced by the state after this token.

        Returns:
            Next-token probabilities, shape `(batch, V)`.
        """
        x = self._inputs(np.asarray(ids, dtype=np.int64))  # (batch, input_dim)
        for number, lstm in enumerate(self.lstms):
            h, c = state.layers[number]
            z = np.concatenate([x, h], axis=1) @ lstm.stacked + lstm.bias
            h, c = self._cell(z, c, lstm.units)
            state.layers[number] = (h, c)
            x = h
        return self._head(x)


# ---------------------------------------------------------------------------
# Primers.
# ---------------------------------------------------------------------------


def random_seed_window(bundle, rng: np.random.Generator | int | None = None) -> list[str]:
    """Picks one of the bundle's seed-split windows, as the reference did.

    Args:
        bundle: A loaded bundle (uses `bundle.seeds`, a list of token windows).
        rng: A generator, or a seed for a new one (None: unpredictable).

    Returns:
        A copy of one seed window, a list of `window` tokens.

    Raises:
        SeqgenError: If the bundle holds no seed windows.
    """
    seeds = getattr(bundle, "seeds", None) or []
    if not seeds:
        folder = getattr(bundle, "folder", None)
        where = f"Bundle {folder}" if folder else "This bundle"
        raise SeqgenError(f"{where} holds no seed windows (seeds.json is missing or empty); type a primer instead.")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    return list(seeds[int(rng.integers(len(seeds)))])


def text_primer(bundle, text: str) -> tuple[list[str], dict[str, int]]:
    """Turns typed text into primer tokens for a bundle.

    Lyrics bundles are character level: the text is cleaned like the
    training corpus (typographic look-alikes → ASCII, accents folded,
    lower-cased when `config["lowercase"]` is true), then every character
    the vocabulary lacks is dropped and reported.  Music bundles split the
    text on whitespace ("C4 E4 G4 4.7.11").

    Args:
        bundle: A loaded bundle (uses `config` and `vocab`).
        text: What the user typed.

    Returns:
        `(tokens, dropped)`: the in-vocabulary tokens in order, and the
        dropped characters (or tokens) with their counts, in order of first
        appearance.
    """
    if not isinstance(text, str):
        raise SeqgenError(f"The primer text must be a string, got {type(text).__name__}.")
    vocab = bundle.vocab
    dropped: Counter[str] = Counter()
    if bundle.config.get("kind") == "lyrics":
        from seqgen.lyrics import clean_text

        lowercase = bool(bundle.config.get("lowercase", False))
        cleaned = clean_text(text, keep_case=not lowercase)
        # Characters cleaning removed, in the order they appear in the text.
        removed = cleaned.removed_chars
        for char in (text.lower() if lowercase else text):
            if char in removed and char not in dropped:
                dropped[char] = removed[char]
        candidates: Sequence[str] = cleaned.text
    else:
        candidates = text.split()
    tokens = []
    for token in candidates:
        if token in vocab:
            tokens.append(token)
        else:
            dropped[token] += 1
    return tokens, dict(dropped)


# ---------------------------------------------------------------------------
# The generation loop.
# ---------------------------------------------------------------------------


@dataclass
class GenerationResult:
    """What :meth:`Sampler.generate` made.

    Attributes:
        tokens: Generated tokens only, one list per variation,
            `variations × length`.
        ids: The same as vocabulary indices.
        primer: The primer tokens that conditioned generation: the
            in-vocabulary tokens, the last `window` of them.
        dropped: Primer tokens (or characters) not in the vocabulary, with
            counts; they were skipped.
        timings: Milliseconds: "prime_ms" (building the first prediction),
            "total_ms" (the whole call), "per_token_ms" (per generation step,
            all variations together).
        mode: "window" or "stateful".
    """

    tokens: list[list[str]]
    ids: list[list[int]]
    primer: list[str]
    dropped: dict[str, int]
    timings: dict[str, float]
    mode: str
    settings: dict = field(default_factory=dict)


_BLAS_CONTROLLER = None
_BLAS_CONTROLLER_LOCK = threading.Lock()


def _blas_limit(threads: int | None):
    """A context manager limiting BLAS threads, or a no-op without threadpoolctl."""
    global _BLAS_CONTROLLER
    if threads is None:
        return contextlib.nullcontext()
    with _BLAS_CONTROLLER_LOCK:
        if _BLAS_CONTROLLER is None:
            try:
                from threadpoolctl import ThreadpoolController
            except ImportError:  # optional: generation works, only slower on a busy machine
                _BLAS_CONTROLLER = False
            else:
                # Built once: scanning the loaded libraries takes milliseconds.
                _BLAS_CONTROLLER = ThreadpoolController()
    if _BLAS_CONTROLLER is False:
        return contextlib.nullcontext()
    return _BLAS_CONTROLLER.limit(limits=threads, user_api="blas")


def _max_length_from_env() -> int:
    raw = os.environ.get(MAX_LENGTH_ENV)
    if raw is None or raw.strip() == "":
        return MAX_LENGTH
    try:
        value = int(raw)
    except ValueError:
        raise SeqgenError(f"{MAX_LENGTH_ENV} must be a positive integer, got {raw!r}.") from None
    if value < 1:
        raise SeqgenError(f"{MAX_LENGTH_ENV} must be a positive integer, got {raw!r}.")
    return value


class Sampler:
    """Generates continuations from a loaded bundle, token by token.

    Args:
        bundle: A loaded bundle, or any object with `config` (window,
            vocab_size, input_mode, target_mode, kind, lowercase), `vocab`
            (a `seqgen.vocab.Vocab`), `model` (the Keras model) and
            optionally `seeds`.
        mode: Default mode, "window" or "stateful"; None picks "stateful"
            for "sequence" presets and "window" for "last" presets.
        engine: How window mode runs the network: "numpy" (default, the
            same maths as stateful mode from a zero state) or "keras" (a
            `tf.function` around the Keras model itself).
        max_length: Cap on `length`; None reads `SEQGEN_MAX_LENGTH`, else
            `MAX_LENGTH` (2000).
        dtype: Float type of the NumPy maths; float32 matches Keras.
        blas_threads: BLAS threads while generating (see the module
            docstring); None leaves the process setting alone.

    Raises:
        SeqgenError: If an option is invalid or the model does not fit the
            vocabulary.
    """

    def __init__(
        self,
        bundle,
        mode: str | None = None,
        engine: str = "numpy",
        max_length: int | None = None,
        dtype=np.float32,
        blas_threads: int | None = 1,
    ):
        config = bundle.config
        self.bundle = bundle
        self.config = config
        self.vocab = bundle.vocab
        self.model = bundle.model
        self.window = int(config["window"])
        self.vocab_size = len(self.vocab)
        self.input_mode = config["input_mode"]
        self.target_mode = config["target_mode"]
        if self.target_mode not in ("last", "sequence"):
            raise SeqgenError(f"Unknown target_mode {self.target_mode!r}; expected 'last' or 'sequence'.")
        self.default_mode = "stateful" if self.target_mode == "sequence" else "window"
        self.mode = self._check_mode(mode) if mode is not None else self.default_mode
        if engine not in ENGINES:
            raise SeqgenError(f"Unknown engine {engine!r}; choose one of: {', '.join(ENGINES)}.")
        self.engine = engine
        if max_length is None:
            max_length = _max_length_from_env()
        if isinstance(max_length, bool) or not isinstance(max_length, (int, np.integer)) or max_length < 1:
            raise SeqgenError(f"max_length must be a positive integer, got {max_length!r}.")
        self.max_length = int(max_length)
        if blas_threads is not None and (isinstance(blas_threads, bool) or not isinstance(blas_threads, int) or blas_threads < 1):
            raise SeqgenError(f"blas_threads must be a positive integer or None, got {blas_threads!r}.")
        self.blas_threads = blas_threads
        self.stack = NumpyStack(self.model, self.input_mode, self.vocab_size, dtype=dtype)
        self._keras_function = None
        self._lock = threading.Lock()

    # -- building blocks -------------------------------------------------

    @staticmethod
    def _check_mode(mode: str) -> str:
        if mode not in MODES:
            raise SeqgenError(f"Unknown generation mode {mode!r}; choose one of: {', '.join(MODES)}.")
        return mode

    def _keras_window(self):
        """The `tf.function` that runs the Keras model on windows (built once)."""
        with self._lock:
            if self._keras_function is None:
                import tensorflow as tf

                model, sequence = self.model, self.target_mode == "sequence"
                if self.input_mode == "scaled":
                    spec = tf.TensorSpec([None, self.window, 1], tf.float32)
                else:
                    spec = tf.TensorSpec([None, self.window], tf.int32)

                @tf.function(input_signature=[spec])
                def predict_last(inputs):
                    outputs = model(inputs, training=False)
                    return outputs[:, -1, :] if sequence else outputs

                self._keras_function = predict_last
            return self._keras_function

    def window_probabilities(self, windows, engine: str | None = None) -> np.ndarray:
        """Next-token probabilities for full windows, each from a zero state.

        Equals `model.predict(windows)` (its last position for "sequence"
        presets) to float32 rounding.

        Args:
            windows: Token ids, shape `(batch, window)`.
            engine: "numpy" or "keras"; None uses the sampler's engine.

        Returns:
            Probabilities, shape `(batch, V)`, float64.
        """
        windows = np.asarray(windows, dtype=np.int64)
        if windows.ndim != 2 or windows.shape[1] != self.window:
            raise SeqgenError(f"windows must have shape (batch, {self.window}), got {windows.shape}.")
        engine = engine or self.engine
        if engine == "numpy":
            probs, _ = self.stack.run(windows)
        elif engine == "keras":
            if self.input_mode == "scaled":
                inputs = (windows.astype(np.float32) / np.float32(self.vocab_size))[..., None]
            else:
                inputs = windows.astype(np.int32)
            probs = self._keras_window()(inputs).numpy()
        else:
            raise SeqgenError(f"Unknown engine {engine!r}; choose one of: {', '.join(ENGINES)}.")
        return np.asarray(probs, dtype=np.float64)

    def prime(self, ids: Sequence[int], batch: int = 1) -> tuple[State, np.ndarray]:
        """Runs a primer through the cells from a zero state (stateful mode).

        Args:
            ids: Primer token ids, length >= 1.
            batch: Rows of the returned state (one per variation).

        Returns:
            `(state, probs)`: the state after the primer, `batch` rows, and the
            next-token probabilities, `(batch, V)`, float64.
        """
        ids = np.asarray(ids, dtype=np.int64).reshape(1, -1)
        if ids.shape[1] == 0:
            raise SeqgenError("The seed is empty: give at least one token the model knows.")
        probs, state = self.stack.run(ids)
        return state.tile(batch), np.repeat(np.asarray(probs, dtype=np.float64), batch, axis=0)

    def step(self, state: State, ids: Sequence[int]) -> np.ndarray:
        """Feeds one token per row to a stateful batch; updates `state` in place.

        Args:
            state: From :meth:`prime` or a previous step.
            ids: One token id per row, shape `(batch,)`.

        Returns:
            Next-token probabilities, `(batch, V)`, float64.
        """
        return np.asarray(self.stack.step(np.asarray(ids, dtype=np.int64), state), dtype=np.float64)

    def encode_primer(self, primer) -> tuple[list[int], list[str], dict[str, int]]:
        """Maps a primer to vocabulary ids, dropping (and reporting) unknown tokens.

        Args:
            primer: A list of tokens, or a string: characters for lyrics
                (cleaned and lower-cased like the corpus, see
                :func:`text_primer`), whitespace-separated tokens for music.

        Returns:
            `(ids, tokens, dropped)`: ids and tokens of the in-vocabulary
            primer, and the dropped tokens with counts.
        """
        if isinstance(primer, str):
            tokens, dropped = text_primer(self.bundle, primer)
        else:
            if primer is None:
                primer = []
            lowercase = self.config.get("kind") == "lyrics" and bool(self.config.get("lowercase", False))
            tokens, counts = [], Counter()
            for item in primer:
                token = item if isinstance(item, str) else str(item)
                if lowercase and token not in self.vocab:
                    token = token.lower()
                if token in self.vocab:
                    tokens.append(token)
                else:
                    counts[item if isinstance(item, str) else token] += 1  # reported as given
            dropped = dict(counts)
        return self.vocab.encode(tokens), tokens, dropped

    # -- the loop ---------------------------------------------------------

    def generate(
        self,
        primer_tokens,
        length: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        repetition_penalty: float = 1.0,
        variations: int = 1,
        rng_seed: int | None = None,
        on_token: TokenCallback | None = None,
        mode: str | None = None,
    ) -> GenerationResult:
        """Generates `length` new tokens after a primer, `variations` at once.

        The last `window` in-vocabulary primer tokens condition generation.
        In window mode a shorter primer is padded on the left with copies of
        its first token (a real token the model has seen, rather than index
        0, which is an arbitrary token; the padding is never penalised or
        returned).  In stateful mode a short primer needs no padding: the
        state starts at zero, as every training window did.

        The repetition penalty applies to the tokens among the last `window`
        tokens of each variation's context (primer and generated).

        Args:
            primer_tokens: A list of tokens or a string (see
                :meth:`encode_primer`).  Unknown tokens are dropped and
                reported in `GenerationResult.dropped`.
            length: New tokens per variation, 1 … `max_length`.
            temperature: >= 0; 0 is greedy argmax (the reference).
            top_k: Keep only the k most likely tokens; None keeps all.
            top_p: Nucleus threshold in (0, 1]; None keeps all.
            repetition_penalty: >= 1; see :func:`sample_indices`.
            variations: Continuations generated side by side in one batch,
                1 … `MAX_VARIATIONS`.
            rng_seed: Seed of the sampling generator; the same seed gives
                the same tokens.  None draws fresh entropy.
            on_token: `on_token(variation, step, token)` after every token,
                for streaming; an exception it raises stops generation.
            mode: "window" or "stateful"; None uses the sampler's mode.

        Returns:
            A `GenerationResult`.

        Raises:
            SeqgenError: On an empty seed (after dropping unknown tokens),
                a length or option out of range, or an unknown mode.
        """
        started = time.perf_counter()
        check_sampling_options(temperature, top_k, top_p, repetition_penalty)
        if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or not 1 <= length <= self.max_length:
            raise SeqgenError(
                f"length must be between 1 and {self.max_length} tokens, got {length!r}"
                f" (raise the cap with {MAX_LENGTH_ENV} or Sampler(max_length=...))."
            )
        if isinstance(variations, bool) or not isinstance(variations, (int, np.integer)) or not 1 <= variations <= MAX_VARIATIONS:
            raise SeqgenError(f"variations must be between 1 and {MAX_VARIATIONS}, got {variations!r}.")
        mode = self._check_mode(mode) if mode is not None else self.mode
        length, batch, window = int(length), int(variations), self.window
        ids, tokens, dropped = self.encode_primer(primer_tokens)
        if not ids:
            detail = f" (dropped as unknown: {', '.join(repr(token) for token in list(dropped)[:10])})" if dropped else ""
            raise SeqgenError(
                f"The seed is empty: none of its tokens are in the model's vocabulary{detail}. "
                "Use tokens the model knows, or pick a random seed window."
            )
        ids, tokens = ids[-window:], tokens[-window:]
        rng = np.random.default_rng(rng_seed)

        # history[:, :window] holds the (left-padded) primer; generated tokens follow.
        pad = window - len(ids)
        history = np.empty((batch, window + length), dtype=np.int64)
        history[:, :pad] = ids[0]
        history[:, pad:window] = ids
        rows = np.arange(batch)
        penalise = repetition_penalty != 1

        with _blas_limit(self.blas_threads):
            if mode == "stateful":
                state, probs = self.prime(ids, batch)
            else:
                state, probs = None, self.window_probabilities(history[:, :window])
            primed = time.perf_counter()
            for step in range(length):
                end = window + step  # history[:, :end] is the context so far
                recent = None
                if penalise:
                    recent = np.zeros((batch, self.vocab_size), dtype=bool)
                    start = max(pad, end - window)
                    recent[rows[:, None], history[:, start:end]] = True
                chosen = sample_indices(probs, temperature, rng, top_k, top_p, repetition_penalty, recent)
                history[:, end] = chosen
                if on_token is not None:
                    for variation, index in enumerate(chosen):
                        on_token(variation, step, self.vocab.tokens[index])
                if step + 1 < length:  # no prediction is needed after the last token
                    if mode == "stateful":
                        probs = self.step(state, chosen)
                    else:
                        probs = self.window_probabilities(history[:, end + 1 - window:end + 1])
        finished = time.perf_counter()
        generated = history[:, window:]
        return GenerationResult(
            tokens=[self.vocab.decode(row) for row in generated],
            ids=generated.tolist(),
            primer=tokens,
            dropped=dropped,
            timings={
                "prime_ms": (primed - started) * 1000,
                "total_ms": (finished - started) * 1000,
                "per_token_ms": (finished - primed) * 1000 / length,
            },
            mode=mode,
            settings={
                "temperature": temperature, "top_k": top_k, "top_p": top_p, "repetition_penalty": repetition_penalty,
                "variations": batch, "rng_seed": rng_seed, "engine": self.engine if mode == "window" else "numpy",
            },
        )
