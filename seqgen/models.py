"""Keras models for the presets of :mod:`seqgen.presets`, and the loss and optimizer registries.

Each builder returns an uncompiled Functional model whose layers carry the
stable names of ``seqgen.presets.LAYER_NAMES`` ("embedding", "lstm_1",
"dropout_1", "lstm_2", "dropout_2", "dense_1", "output"), so that the
step-by-step sampler can run the same recurrent stack from the weights.

The trainer always feeds integer targets, shape `(batch,)` for "last" presets
and `(batch, window)` for "sequence" presets; `make_loss(name,
sparse_targets=True)` returns the loss that matches, whatever its name.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from seqgen.errors import SeqgenError
from seqgen.numpy_lstm import SavedLayer
from seqgen.presets import LOSSES, OPTIMIZERS, choices, get_preset

# ---------------------------------------------------------------------------
# Architecture builders. Each returns an uncompiled Functional model.
# ---------------------------------------------------------------------------


def _scaled_input(window: int) -> keras.KerasTensor:
    """The reference input: one float feature per step, index / vocab size."""
    return keras.Input(shape=(window, 1), dtype="float32", name="scaled_tokens")


def _ids_input(window: int) -> keras.KerasTensor:
    """Integer token ids, one per step, for presets with an embedding."""
    return keras.Input(shape=(window,), dtype="int32", name="token_ids")


def _output(vocab_size: int) -> keras.layers.Dense:
    """Softmax over the vocabulary; applied per step on 3-D inputs."""
    return keras.layers.Dense(vocab_size, activation="softmax", name="output")


def build_seed_music(
    vocab_size: int, window: int, dropout_rate: float = 0.0, name: str = "music_seed"
) -> keras.Model:
    """The reference melody model.

    `LSTM(512, return_sequences) → LSTM(256) → Dense(256) → Dense(V, softmax)`,
    with `Dropout(dropout_rate)` after the first LSTM and after `Dense(256)`
    when `dropout_rate > 0` (the report's "with dropout" variant uses 0.1).
    Dropout adds no weights: 1,964,516 parameters for V = 228.

    Args:
        vocab_size: Number of distinct tokens V.
        window: Number of input steps.
        dropout_rate: Rate of both dropout layers; 0 leaves them out.
        name: Model name.

    Returns:
        A model mapping `(batch, window, 1)` floats to `(batch, V)` probabilities.
    """
    inputs = _scaled_input(window)
    x = keras.layers.LSTM(512, return_sequences=True, name="lstm_1")(inputs)
    if dropout_rate > 0:
        x = keras.layers.Dropout(dropout_rate, name="dropout_1")(x)
    x = keras.layers.LSTM(256, name="lstm_2")(x)
    # The reference Dense(256) has no activation (linear); kept as is.
    x = keras.layers.Dense(256, name="dense_1")(x)
    if dropout_rate > 0:
        x = keras.layers.Dropout(dropout_rate, name="dropout_2")(x)
    outputs = _output(vocab_size)(x)
    return keras.Model(inputs, outputs, name=name)


def build_seed_lyrics(
    vocab_size: int, window: int, dropout_rate: float = 0.2, name: str = "lyrics_seed"
) -> keras.Model:
    """The reference character model.

    `LSTM(256, return_sequences) → Dropout → LSTM(256) → Dropout →
    Dense(V, softmax)`: 802,611 parameters for V = 51.

    Args:
        vocab_size: Number of distinct characters V.
        window: Number of input steps.
        dropout_rate: Rate of both dropout layers.
        name: Model name.

    Returns:
        A model mapping `(batch, window, 1)` floats to `(batch, V)` probabilities.
    """
    inputs = _scaled_input(window)
    x = keras.layers.LSTM(256, return_sequences=True, name="lstm_1")(inputs)
    x = keras.layers.Dropout(dropout_rate, name="dropout_1")(x)
    x = keras.layers.LSTM(256, name="lstm_2")(x)
    x = keras.layers.Dropout(dropout_rate, name="dropout_2")(x)
    outputs = _output(vocab_size)(x)
    return keras.Model(inputs, outputs, name=name)


def build_embed(
    vocab_size: int,
    window: int,
    embedding_dim: int = 64,
    units: int = 256,
    dropout_rate: float = 0.1,
    name: str = "embed",
) -> keras.Model:
    """Our default: token embedding and two LSTMs predicting every next token.

    `Embedding(V, embedding_dim) → LSTM(units, return_sequences) → Dropout →
    LSTM(units, return_sequences) → Dropout → Dense(V, softmax)` per step.

    Compared with the reference, the embedding lets the model tell tokens
    apart (index / V puts neighbouring ids a hair apart on one float axis),
    and predicting at every position gives `window` training signals per
    window instead of one. Both LSTMs return sequences so that the sampler
    can run the same stack one step at a time with carried state.

    Args:
        vocab_size: Number of distinct tokens V.
        window: Number of input steps.
        embedding_dim: Size of each token vector.
        units: Units in each LSTM.
        dropout_rate: Rate of both dropout layers.
        name: Model name.

    Returns:
        A model mapping `(batch, window)` integer ids to
        `(batch, window, V)` probabilities.
    """
    inputs = _ids_input(window)
    x = keras.layers.Embedding(vocab_size, embedding_dim, name="embedding")(inputs)
    x = keras.layers.LSTM(units, return_sequences=True, name="lstm_1")(x)
    x = keras.layers.Dropout(dropout_rate, name="dropout_1")(x)
    x = keras.layers.LSTM(units, return_sequences=True, name="lstm_2")(x)
    x = keras.layers.Dropout(dropout_rate, name="dropout_2")(x)
    outputs = _output(vocab_size)(x)
    return keras.Model(inputs, outputs, name=name)


def build_debug(vocab_size: int, window: int, name: str = "debug") -> keras.Model:
    """A tiny ids/sequence model: `Embedding(V, 8) → LSTM(8) → Dense(V)`.

    Args:
        vocab_size: Number of distinct tokens V.
        window: Number of input steps.
        name: Model name.

    Returns:
        A model mapping `(batch, window)` integer ids to
        `(batch, window, V)` probabilities.
    """
    inputs = _ids_input(window)
    x = keras.layers.Embedding(vocab_size, 8, name="embedding")(inputs)
    x = keras.layers.LSTM(8, return_sequences=True, name="lstm_1")(x)
    outputs = _output(vocab_size)(x)
    return keras.Model(inputs, outputs, name=name)


def build_debug_last(
    vocab_size: int, window: int, name: str = "debug_last"
) -> keras.Model:
    """A tiny scaled/last model: `LSTM(8) → Dense(V)`, the reference input path.

    Args:
        vocab_size: Number of distinct tokens V.
        window: Number of input steps.
        name: Model name.

    Returns:
        A model mapping `(batch, window, 1)` floats to `(batch, V)` probabilities.
    """
    inputs = _scaled_input(window)
    x = keras.layers.LSTM(8, name="lstm_1")(inputs)
    outputs = _output(vocab_size)(x)
    return keras.Model(inputs, outputs, name=name)


BUILDERS = {
    "seed_music": build_seed_music,
    "seed_lyrics": build_seed_lyrics,
    "embed": build_embed,
    "debug": build_debug,
    "debug_last": build_debug_last,
}


def build_model(kind: str, name: str, vocab_size: int, window: int = 40) -> keras.Model:
    """Builds a preset's uncompiled model.

    Args:
        kind: "music" or "lyrics".
        name: Preset name.
        vocab_size: Number of distinct tokens, at least 2.
        window: Number of input steps, at least 1.

    Returns:
        An uncompiled `keras.Model`; see the preset's `input_mode` and
        `target_mode` for its input and output shapes.

    Raises:
        SeqgenError: If the preset is unknown or a size is out of range.
    """
    preset = get_preset(kind, name)
    if (
        isinstance(vocab_size, bool)
        or not isinstance(vocab_size, int)
        or vocab_size < 2
    ):
        raise SeqgenError(
            f"vocab_size must be an integer >= 2, got {vocab_size!r}; "
            "a corpus needs at least two distinct tokens to learn from."
        )
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise SeqgenError(f"window must be an integer >= 1, got {window!r}.")
    return BUILDERS[preset.architecture](vocab_size, window, name=preset.model_name, **preset.options)


def saved_layers(model: keras.Model) -> list[SavedLayer]:
    """A live model's layers as the plain data the NumPy sampler runs (what a saved bundle holds)."""
    return [SavedLayer(layer.name, type(layer).__name__, layer.get_config(), layer.get_weights()) for layer in model.layers]


# ---------------------------------------------------------------------------
# Optimizers, losses and metrics.
# ---------------------------------------------------------------------------

_OPTIMIZER_CLASSES = {
    "adam": keras.optimizers.Adam,
    "sgd": keras.optimizers.SGD,
    "adadelta": keras.optimizers.Adadelta,
    "adamax": keras.optimizers.Adamax,
}


def make_optimizer(name: str, learning_rate: float) -> keras.optimizers.Optimizer:
    """Creates a fresh optimizer by name.

    Args:
        name: One of `OPTIMIZERS`.
        learning_rate: Step size, a finite number > 0.

    Returns:
        A new `keras.optimizers.Optimizer` (never shared between models).

    Raises:
        SeqgenError: If the name is unknown or the learning rate is not a
            positive finite number.
    """
    if name not in _OPTIMIZER_CLASSES:
        raise SeqgenError(
            f"Unknown optimizer {name!r}; valid optimizers: {choices(OPTIMIZERS)}."
        )
    if (
        isinstance(learning_rate, bool)
        or not isinstance(learning_rate, (int, float))
        or not math.isfinite(learning_rate)
        or learning_rate <= 0
    ):
        raise SeqgenError(
            f"learning_rate must be a positive finite number, got {learning_rate!r}."
        )
    return _OPTIMIZER_CLASSES[name](learning_rate=float(learning_rate))


@keras.saving.register_keras_serializable(package="seqgen")
class OneHotRegressionLoss(keras.losses.Loss):
    """MSE or MAE between one-hot integer targets and softmax outputs.

    The reference study compares cross-entropy with MSE and MAE. Those two
    need one-hot targets; this loss takes integer targets and one-hots only
    the batch at hand (never the whole corpus, which would cost
    `num_windows × V` floats), so the trainer can always feed integers.

    MSE and MAE are weak objectives for choosing one token among V: on a
    softmax output their gradient vanishes as the wrong class's probability
    nears 1 (no log to amplify confident mistakes), MSE spreads most of its
    penalty over the V − 1 classes that are already near 0, and MAE's
    gradient has a constant size that ignores how wrong the prediction is,
    so it tends to stall on the most frequent token. They are kept so the
    report's study can be reproduced; the defaults use cross-entropy.

    Args:
        regression: "mse" or "mae".
        name: Loss name shown in logs.
        reduction: Keras reduction.
    """

    def __init__(self, regression: str = "mse", name: str | None = None, **kwargs):
        if regression not in ("mse", "mae"):
            raise SeqgenError(
                f"regression must be 'mse' or 'mae', got {regression!r}."
            )
        super().__init__(name=name or f"one_hot_{regression}", **kwargs)
        self.regression = regression

    def call(self, y_true, y_pred):
        """Computes the per-sample (or per-step) loss.

        Args:
            y_true: Integer targets, `(batch,)` or `(batch, window)`; a
                trailing axis of size 1 is also accepted.
            y_pred: Probabilities, `(batch, V)` or `(batch, window, V)`.

        Returns:
            Losses of shape `y_pred.shape[:-1]`.
        """
        y_true = tf.convert_to_tensor(y_true)
        y_pred = tf.convert_to_tensor(y_pred)
        if y_true.shape.rank == y_pred.shape.rank:
            # Keras sometimes hands targets as (batch, 1) / (batch, window, 1).
            y_true = tf.squeeze(y_true, axis=-1)
        indices = tf.cast(y_true, "int32")
        one_hot = tf.one_hot(indices, depth=tf.shape(y_pred)[-1], dtype=y_pred.dtype)
        if self.regression == "mse":
            return keras.losses.mean_squared_error(one_hot, y_pred)
        return keras.losses.mean_absolute_error(one_hot, y_pred)

    def get_config(self):
        """Returns the config needed to rebuild the loss from a saved model."""
        config = super().get_config()
        config["regression"] = self.regression
        return config


def make_loss(name: str, sparse_targets: bool = True):
    """Creates the loss for a name, matched to how targets are encoded.

    Loss names stay uniform across presets ("categorical_crossentropy",
    "mse", "mae"); the target encoding picks the variant:

    - categorical_crossentropy: `SparseCategoricalCrossentropy` for integer
      targets, `CategoricalCrossentropy` for one-hot targets;
    - mse / mae: for integer targets, a `OneHotRegressionLoss` that one-hots
      each batch inside the loss; for one-hot targets, the plain Keras loss.
      See `OneHotRegressionLoss` for why these are weak objectives.

    Args:
        name: One of `LOSSES`.
        sparse_targets: True when targets are integer token ids (what the
            seqgen trainer feeds), False when they are one-hot.

    Returns:
        A `keras.losses.Loss`.

    Raises:
        SeqgenError: If the name is unknown.
    """
    if name not in LOSSES:
        raise SeqgenError(f"Unknown loss {name!r}; valid losses: {choices(LOSSES)}.")
    if name == "categorical_crossentropy":
        if sparse_targets:
            return keras.losses.SparseCategoricalCrossentropy(name=name)
        return keras.losses.CategoricalCrossentropy(name=name)
    if sparse_targets:
        return OneHotRegressionLoss(regression=name, name=name)
    if name == "mse":
        return keras.losses.MeanSquaredError(name=name)
    return keras.losses.MeanAbsoluteError(name=name)


def make_accuracy_metric() -> keras.metrics.Metric:
    """Returns next-token accuracy on integer targets, named "accuracy".

    Works for both target modes: `(batch,)` against `(batch, V)` and
    `(batch, window)` against `(batch, window, V)`.
    """
    return keras.metrics.SparseCategoricalAccuracy(name="accuracy")


def last_step_cross_entropy(y_true, y_pred):
    """Cross-entropy of the prediction after the full window, comparable across presets."""
    if len(y_pred.shape) == 3:
        y_true, y_pred = y_true[:, -1], y_pred[:, -1, :]
    return keras.losses.sparse_categorical_crossentropy(y_true, y_pred)


def make_last_step_metric() -> keras.metrics.Metric:
    """Next-token cross-entropy after a full window, named "last_ce" (the model card's perplexity comes from it)."""
    return keras.metrics.MeanMetricWrapper(last_step_cross_entropy, name="last_ce")


def describe_model(model: keras.Model) -> str:
    """Returns the Keras summary text with a plain parameter total at the end.

    Args:
        model: A built Keras model.

    Returns:
        The text of `model.summary()`, then a last line such as
        "Total parameters: 1,964,516".
    """
    chunks: list[str] = []

    def collect(text, *args, **kwargs):
        chunks.append(str(text))

    model.summary(print_fn=collect)
    summary = "\n".join(chunk.rstrip("\n") for chunk in chunks)
    return f"{summary}\nTotal parameters: {model.count_params():,}"
