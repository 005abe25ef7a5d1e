"""The generation loop: a loaded bundle + a primer → new tokens, one step at a time.

:class:`Sampler` runs a model in one of two modes:

``window``
    The reference computation: every step feeds exactly the last ``window``
    tokens from a zero state and reads the prediction after the last one, so
    its probabilities equal ``model.predict(window)`` (to float32 rounding).
    It costs ``window`` cell steps per token.  Default for "last" presets,
    which were trained on exactly that.
``stateful``
    Carries the LSTM state (h, c) from step to step, so each new token costs
    one cell step per layer.  After priming with ``window`` tokens its
    probabilities equal the model's output at the last position.  Default
    for "sequence" presets, which learned a prediction at every position
    from a zero state.  On "last" presets it is an approximation: the first
    token is exact, later ones see an ever longer history.

Both modes step :class:`seqgen.numpy_lstm.NumpyStack`; window mode can also
run the Keras model itself (``engine="keras"``, a ``tf.function``), the
ground truth the NumPy engine is tested against.  The rules that turn each
distribution into a token live in :mod:`seqgen.sampling`, primers in
:mod:`seqgen.primers`.  A loaded bundle keeps one sampler
(``bundle.sampler``), so the weights are unpacked once, not per request.

At this size OpenBLAS's worker threads cost more than they save, and on a
busy machine their spin-waits can make a step ten times slower, so
generation limits BLAS to one thread while it runs (``blas_threads=1``,
through ``threadpoolctl``; None leaves the setting alone).  The limit is
process-wide for the duration of the call.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from seqgen.errors import SeqgenError
from seqgen.numpy_lstm import NumpyStack, State, blas_limit
from seqgen.primers import encode_primer
from seqgen.lockstep import Run, drive
from seqgen.sampling import Candidates, SamplingOptions, Steps

MODES = ("window", "stateful")
ENGINES = ("numpy", "keras")
MAX_LENGTH = 2000  # default cap on generated tokens; SEQGEN_MAX_LENGTH overrides it
MAX_VARIATIONS = 16  # continuations generated side by side in one batch
MAX_LENGTH_ENV = "SEQGEN_MAX_LENGTH"

TokenCallback = Callable[[int, int, str], None]


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
        sampling: The sampling rules used.
        steps: With `explain=K`: per variation, one dict per new token (see
            :meth:`seqgen.sampling.Ranked.explain`), as a :class:`seqgen.sampling.Steps`
            sequence; else None.
        hidden: With `record` in stateful mode: per variation, the recorded
            LSTM layer's hidden state after every primer and generated token,
            `(variations, len(primer) + length, units)`; else None.
        ended: With `stop_token`: per variation, whether it drew the stop
            token (its tokens end just before it); else None.
    """

    tokens: list[list[str]]
    ids: list[list[int]]
    primer: list[str]
    dropped: dict[str, int]
    timings: dict[str, float]
    mode: str
    sampling: SamplingOptions
    steps: list[Steps] | None = None
    hidden: np.ndarray | None = None
    ended: list[bool] | None = None


def max_length_cap() -> int:
    """The most tokens one generation may ask for: ``$SEQGEN_MAX_LENGTH``, else ``MAX_LENGTH``."""
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
            max_length = max_length_cap()
        if isinstance(max_length, bool) or not isinstance(max_length, (int, np.integer)) or max_length < 1:
            raise SeqgenError(f"max_length must be a positive integer, got {max_length!r}.")
        self.max_length = int(max_length)
        if blas_threads is not None and (isinstance(blas_threads, bool) or not isinstance(blas_threads, int) or blas_threads < 1):
            raise SeqgenError(f"blas_threads must be a positive integer or None, got {blas_threads!r}.")
        self.blas_threads = blas_threads
        self.stack = NumpyStack(bundle.layers, self.input_mode, self.vocab_size, dtype=dtype)
        self.grammar = None  # events tokens come in REMI's order: tokens out of it get no chance (seqgen.events.Grammar)
        if config.get("tokenizer") == "events":
            from seqgen.events import Grammar, shortest_piece

            self.grammar = Grammar(self.vocab.tokens, shortest_piece(self.vocab, getattr(bundle, "corpus_ids", None)))
        self._keras_function = None
        self._continuations: dict[int, dict[bytes, np.ndarray]] = {}
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

                model, sequence = self.bundle.model, self.target_mode == "sequence"
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
        state, probs, _ = self._prime(ids, batch)
        return state, probs

    def _prime(self, ids: Sequence[int], batch: int) -> tuple[State, np.ndarray, list[np.ndarray]]:
        """:meth:`prime`, also giving every layer's hidden states over the primer, `(len(ids), units)` each."""
        ids = np.asarray(ids, dtype=np.int64).reshape(1, -1)
        if ids.shape[1] == 0:
            raise SeqgenError("The seed is empty: give at least one token the model knows.")
        outputs, state = self.stack.hidden(ids)
        probs = np.asarray(self.stack.predict(state), dtype=np.float64)
        return state.tile(batch), np.repeat(probs, batch, axis=0), [output[0] for output in outputs]

    def step(self, state: State, ids: Sequence[int]) -> np.ndarray:
        """Feeds one token per row to a stateful batch; updates `state` in place.

        Args:
            state: From :meth:`prime` or a previous step.
            ids: One token id per row, shape `(batch,)`.

        Returns:
            Next-token probabilities, `(batch, V)`, float64.
        """
        return np.asarray(self.stack.step(np.asarray(ids, dtype=np.int64), state), dtype=np.float64)

    def corpus_continuations(self, context: int) -> dict[bytes, np.ndarray]:
        """For the copy guard: every ``context``-token passage of the training corpus (int64 ids, as bytes) → the ids
        that follow it there.  Built once per length."""
        with self._lock:
            if context not in self._continuations:
                ids = getattr(self.bundle, "corpus_ids", None)
                if ids is None:
                    raise SeqgenError("This model carries no training corpus, so the copy guard (max_copy) cannot run: set it to 0.")
                passages = np.lib.stride_tricks.sliding_window_view(np.asarray(ids, dtype=np.int64), context + 1)
                following: dict[bytes, set] = {}
                for passage in passages:
                    following.setdefault(passage[:-1].tobytes(), set()).add(int(passage[-1]))
                self._continuations[context] = {key: np.fromiter(values, dtype=np.int64) for key, values in following.items()}
            return self._continuations[context]

    def layer_index(self, name: str) -> int:
        """The position of LSTM layer `name` ("lstm_1", …; "top": the last) in the stack; SeqgenError naming the layers otherwise."""
        if name == "top":
            return len(self.stack.lstms) - 1
        if name not in self.stack.layer_names:
            raise SeqgenError(f"This model has no LSTM layer {name!r}; it has {', '.join(self.stack.layer_names)}.")
        return self.stack.layer_names.index(name)

    # -- the loop ---------------------------------------------------------

    def generate(
        self,
        primer_tokens,
        length: int,
        sampling: SamplingOptions | None = None,
        variations: int = 1,
        rng_seed: int | None = None,
        on_token: TokenCallback | None = None,
        mode: str | None = None,
        explain: int | None = None,
        record: str | None = None,
        stop_token: str | None = None,
        **sampling_fields,
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
                :func:`seqgen.primers.encode_primer`).  Unknown tokens are
                dropped and reported in `GenerationResult.dropped`.
            length: New tokens per variation, 1 … `max_length`.
            sampling: The sampling rules; None uses the bundle's recommended
                settings (:meth:`seqgen.bundle.Bundle.default_sampling`), or the
                kind's defaults for a bundle without them.
            variations: Continuations generated side by side in one batch,
                1 … `MAX_VARIATIONS`.
            rng_seed: Seed of the sampling generator; the same seed gives
                the same tokens.  None draws fresh entropy.
            on_token: `on_token(variation, step, token)` after every token,
                for streaming; an exception it raises stops generation.
            mode: "window" or "stateful"; None uses the sampler's mode.
            explain: Keep the `explain` most likely candidates of every step,
                as drawn from (`GenerationResult.steps`).
            record: An LSTM layer's name ("lstm_1", …, "top") whose hidden state to
                keep after every token (`GenerationResult.hidden`); stateful
                mode only (window mode restarts from zeros every step, so it
                records nothing).
            stop_token: A token (such as a piece's end) that ends a variation
                when drawn: its tokens stop just before it, and generation
                stops once every variation has ended or `length` is reached.
            **sampling_fields: Instead of `sampling`, its fields
                (`temperature=0`, `top_k=5`, …) over those defaults.

        Returns:
            A `GenerationResult`.

        Raises:
            SeqgenError: On an empty seed (after dropping unknown tokens),
                a length or option out of range, or an unknown mode.
        """
        started = time.perf_counter()
        if sampling is None:  # a loaded Bundle's recommended settings, else the kind's defaults
            defaults = getattr(self.bundle, "default_sampling", None)
            sampling = defaults(**sampling_fields) if defaults else SamplingOptions.for_kind(self.config.get("kind"), **sampling_fields)
        elif sampling_fields:
            raise SeqgenError(f"Give the sampling options or their fields ({', '.join(sampling_fields)}), not both.")
        if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or not 1 <= length <= self.max_length:
            unit = "characters" if self.config.get("kind") == "lyrics" else "tokens"
            raise SeqgenError(f"{{--length}} must be between 1 and {self.max_length} {unit} (got {length!r}); {MAX_LENGTH_ENV} sets the cap.")
        if isinstance(variations, bool) or not isinstance(variations, (int, np.integer)) or not 1 <= variations <= MAX_VARIATIONS:
            raise SeqgenError(f"variations must be between 1 and {MAX_VARIATIONS}, got {variations!r}.")
        mode = self._check_mode(mode) if mode is not None else self.mode
        if explain is not None and (isinstance(explain, bool) or not isinstance(explain, (int, np.integer)) or explain < 1):
            raise SeqgenError(f"explain must be a positive number of candidates, got {explain!r}.")
        layer = self.layer_index(record) if record is not None and mode == "stateful" else None
        length, batch, window = int(length), int(variations), self.window
        ids, tokens, dropped = encode_primer(self.bundle, primer_tokens)
        if not ids:
            detail = f" (dropped as unknown: {', '.join(repr(token) for token in list(dropped)[:10])})" if dropped else ""
            joiner = "" if self.config.get("kind") == "lyrics" else " "
            known = joiner.join((getattr(self.bundle, "seeds", None) or [self.vocab.tokens])[0][:5])
            raise SeqgenError(
                f"The primer is empty: none of its tokens is in the model's vocabulary{detail}. "
                f"Use tokens the model knows (such as {known}), or start from a random seed window."
            )
        ids, tokens = ids[-window:], tokens[-window:]
        rng = np.random.default_rng(rng_seed)
        stop_id = None
        if stop_token is not None:
            if stop_token not in self.vocab:
                raise SeqgenError(f"This model never learned the token {stop_token!r}, so it cannot stop on it.")
            stop_id = self.vocab.encode([stop_token])[0]

        run = Run(self, ids, length, batch, sampling, rng, mode, explain, layer, on_token, stop_id)
        with blas_limit(self.blas_threads):
            if mode == "stateful":
                run.state, run.probs, primer_hidden = self._prime(ids, batch)
            else:
                run.probs = self.window_probabilities(run.window_ids())
            if layer is not None:
                run.hidden = np.empty((batch, len(ids) + length, self.stack.lstms[layer].units), self.stack.dtype)
                run.hidden[:, :len(ids)] = primer_hidden[layer]
            primed = time.perf_counter()
            drive(run)
        # A row that drew the stop token ends just before it; the others run to the last step taken.
        kept = [int(at) if at >= 0 else run.step for at in run.ended_at]
        steps = None
        if explain is not None:
            joined = Candidates.concat(run.explained)
            steps = [Steps(joined.row(variation), self.vocab.tokens)[:kept[variation]] for variation in range(batch)]
        finished = time.perf_counter()
        generated = [row[:count] for row, count in zip(run.generated.tolist(), kept)]
        return GenerationResult(
            tokens=[self.vocab.decode(row) for row in generated],
            ids=generated,
            primer=tokens,
            dropped=dropped,
            timings={
                "prime_ms": (primed - started) * 1000,
                "total_ms": (finished - started) * 1000,
                "per_token_ms": (finished - primed) * 1000 / max(1, run.step),
            },
            mode=mode,
            sampling=sampling,
            steps=steps,
            hidden=run.hidden,
            ended=None if stop_id is None else [at >= 0 for at in run.ended_at.tolist()],
        )
