"""The recurrent stack of a seqgen model as NumPy maths on its Keras weights.

The sampler steps this instead of calling Keras: one cell step is a handful
of small matrix-vector products (about 0.2 ms for the ``seed``
architecture), where ``model.predict`` costs tens of milliseconds of
per-call overhead.  Layers are read by the stable names of
``seqgen.presets.LAYER_NAMES``; from a zero state the maths equal the Keras
model's output (tests check it within 1e-5).  Nothing here imports
TensorFlow.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from seqgen.errors import SeqgenError
from seqgen.presets import LAYER_NAMES

# A few rows times a weight matrix (a class's generations stepped together) is 2-3x faster in column slices small
# enough (rows x inputs x columns <= SMALL_PRODUCT) for OpenBLAS to multiply them without first copying the weights
# into its own layout, which for 2-8 rows costs more than the arithmetic (bench/lockstep.py --products).
SLICE_COLUMNS = 128
SMALL_PRODUCT = 1_000_000
_BLAS_CONTROLLER = None
_BLAS_CONTROLLER_LOCK = threading.Lock()


def blas_limit(threads: int | None):
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


@dataclass(frozen=True)
class SavedLayer:
    """One layer of a saved model as plain data: its Keras class and config, and its weights in Keras's order.

    :func:`seqgen.bundle.read_layers` reads them from a bundle without
    TensorFlow; :func:`seqgen.models.saved_layers` takes them from a live model.
    """

    name: str
    class_name: str  # "LSTM", "Dense", "Embedding", "Dropout", "InputLayer"
    config: dict  # the layer's Keras config ("units", "activation", …)
    weights: list  # np.ndarray each, as ``layer.get_weights()`` lists them


def _activation_name(layer: SavedLayer, key: str = "activation") -> str:
    """A layer's activation name ("tanh", "softmax", …; "linear" when absent)."""
    activation = layer.config.get(key)
    return "linear" if activation is None else str(activation)


class _Weights:
    """A weight matrix, also kept in contiguous column slices for :meth:`times` of a few rows."""

    def __init__(self, matrix: np.ndarray):
        self.matrix = np.ascontiguousarray(matrix)
        self.slices = [(start, np.ascontiguousarray(self.matrix[:, start:start + SLICE_COLUMNS]))
                       for start in range(0, self.matrix.shape[1], SLICE_COLUMNS)]

    def times(self, x: np.ndarray) -> np.ndarray:
        """``x @ matrix``: one product for one row or many, slice by slice for a few (see ``SMALL_PRODUCT``)."""
        rows, (inputs, columns) = x.shape[0], self.matrix.shape
        if rows < 2 or rows * inputs * columns <= SMALL_PRODUCT or rows * inputs * SLICE_COLUMNS > SMALL_PRODUCT:
            return x @ self.matrix  # one row (a matrix-vector product), small enough already, or too many rows
        out = np.empty((rows, self.matrix.shape[1]), dtype=np.result_type(x, self.matrix))
        for start, part in self.slices:
            np.matmul(x, part, out=out[:, start:start + part.shape[1]])
        return out


@dataclass
class _LSTM:
    """One LSTM layer's weights, Keras gate order (i, f, c, o) along the last axis."""

    kernel: np.ndarray  # (input_dim, 4 · units)
    recurrent: _Weights  # (units, 4 · units)
    bias: np.ndarray  # (4 · units,)
    stacked: _Weights  # (input_dim + units, 4 · units): [kernel; recurrent] for one product per step
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
        saved: The layers of a seqgen preset model (:class:`SavedLayer`, in the model's order).
        input_mode: "ids" or "scaled".
        vocab_size: V.
        dtype: NumPy float type of the maths; float32 matches Keras.

    Raises:
        SeqgenError: If the model has a layer this engine cannot run.
    """

    def __init__(self, saved: Sequence[SavedLayer], input_mode: str, vocab_size: int, dtype=np.float32):
        self.dtype = np.dtype(dtype)
        self.input_mode = input_mode
        self.vocab_size = vocab_size
        layers = {layer.name: layer for layer in saved}
        for name, layer in layers.items():
            kind = layer.class_name
            if kind != "InputLayer" and name not in LAYER_NAMES:
                raise SeqgenError(f"The sampler cannot run layer {name!r} ({kind}); it knows seqgen's preset layers only.")
        if "lstm_1" not in layers or "output" not in layers:
            raise SeqgenError("The sampler needs layers 'lstm_1' and 'output'; this model is not a seqgen preset.")
        cast = lambda array: np.asarray(array, dtype=self.dtype)  # noqa: E731
        self.embedding = None
        if input_mode == "ids":
            if "embedding" not in layers:
                raise SeqgenError("An 'ids' model needs an 'embedding' layer.")
            self.embedding = cast(layers["embedding"].weights[0])  # (V, embedding_dim)
        elif input_mode != "scaled":
            raise SeqgenError(f"Unknown input_mode {input_mode!r}; expected 'scaled' or 'ids'.")
        self.lstms: list[_LSTM] = []
        self.layer_names = [name for name in ("lstm_1", "lstm_2") if name in layers]  # one per entry of `lstms`
        for name in self.layer_names:
            layer = layers[name]
            if _activation_name(layer) != "tanh" or _activation_name(layer, "recurrent_activation") != "sigmoid":
                raise SeqgenError(f"Layer {name!r}: the sampler supports tanh/sigmoid LSTMs only.")
            if layer.config.get("go_backwards", False):
                raise SeqgenError(f"Layer {name!r}: backward LSTMs are not supported by the sampler.")
            weights = layer.weights
            kernel, recurrent = cast(weights[0]), cast(weights[1])
            units = recurrent.shape[0]
            bias = cast(weights[2]) if len(weights) > 2 else np.zeros(4 * units, dtype=self.dtype)
            self.lstms.append(_LSTM(kernel, _Weights(recurrent), bias, _Weights(np.concatenate([kernel, recurrent])), units))
        # The first layer's input part for every token at once: a step looks its row up instead of multiplying.
        first = self.lstms[0]
        self.first_inputs = self._inputs(np.arange(vocab_size)) @ first.kernel + first.bias  # (V, 4 · units)
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
            weights = layer.weights
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

    def hidden(self, ids: np.ndarray, state: State | None = None) -> tuple[list[np.ndarray], State]:
        """Feeds whole sequences, layer by layer, keeping every LSTM layer's hidden state after every step.

        Each layer's input projection is one matrix product over all steps;
        only the recurrent part loops.  From `state=None` (zeros) this is
        exactly what the Keras model computes for a window.

        Args:
            ids: Token ids, shape `(batch, steps)`, steps >= 1.
            state: Starting state; None starts from zeros.

        Returns:
            `(outputs, state)`: one array `(batch, steps, units)` per LSTM
            layer (in `layer_names` order; tanh outputs, so in [-1, 1]) and the
            state after the last step.
        """
        ids = np.asarray(ids, dtype=np.int64)
        batch, steps = ids.shape
        x = self._inputs(ids)  # (batch, steps, input_dim)
        final: list[tuple[np.ndarray, np.ndarray]] = []
        outputs: list[np.ndarray] = []
        for number, lstm in enumerate(self.lstms):
            projected = (x.reshape(batch * steps, -1) @ lstm.kernel + lstm.bias).reshape(batch, steps, -1)
            if state is None:
                h = np.zeros((batch, lstm.units), self.dtype)
                c = np.zeros((batch, lstm.units), self.dtype)
                fresh = True
            else:
                h, c = state.layers[number]
                fresh = False
            sequence = np.empty((batch, steps, lstm.units), self.dtype)
            for step in range(steps):
                z = projected[:, step] if fresh and step == 0 else projected[:, step] + lstm.recurrent.times(h)
                h, c = self._cell(z, c, lstm.units)
                sequence[:, step] = h
            final.append((h, c))
            outputs.append(sequence)
            x = sequence
        return outputs, State(final)

    def predict(self, state: State) -> np.ndarray:
        """Next-token probabilities `(batch, V)` from a state (its top LSTM layer's output)."""
        return self._head(state.layers[-1][0])

    def run(self, ids: np.ndarray, state: State | None = None) -> tuple[np.ndarray, State]:
        """Feeds whole sequences (see :meth:`hidden`) and predicts the next token.

        Returns:
            `(probs, state)`: next-token probabilities after the last step,
            `(batch, V)`, and the state after it.
        """
        _, state = self.hidden(ids, state)
        return self.predict(state), state

    def step(self, ids: np.ndarray, state: State) -> np.ndarray:
        """Feeds one token per row and updates `state` in place.

        Args:
            ids: Token ids, shape `(batch,)`.
            state: The batch's state; replaced by the state after this token.

        Returns:
            Next-token probabilities, shape `(batch, V)`.
        """
        x = None
        for number, lstm in enumerate(self.lstms):
            h, c = state.layers[number]
            if number == 0:
                z = self.first_inputs[np.asarray(ids, dtype=np.int64)] + lstm.recurrent.times(h)
            else:
                z = lstm.stacked.times(np.concatenate([x, h], axis=1)) + lstm.bias
            h, c = self._cell(z, c, lstm.units)
            state.layers[number] = (h, c)
            x = h
        return self._head(x)
