"""Model architectures, loss and optimizer registries for seqgen.

One registry, `PRESETS`, maps `(kind, name)` to a `Preset`: an architecture
builder plus the training defaults that go with it. The CLI and the UI both
list and build models from it, so a new preset appears everywhere at once.

Presets:

| kind   | name           | input  | target   | what it is                          |
|--------|----------------|--------|----------|-------------------------------------|
| music  | `seed`         | scaled | last     | the reference report's melody LSTM  |
| music  | `seed-dropout` | scaled | last     | the same with its two Dropout(0.1)  |
| music  | `embed`        | ids    | sequence | our default: embedding, 2×LSTM(256) |
| music  | `debug`        | ids    | sequence | a few hundred weights, for tests    |
| music  | `debug-last`   | scaled | last     | the reference input path, for tests |
| lyrics | `seed`         | scaled | last     | the reference report's lyrics LSTM  |
| lyrics | `embed`        | ids    | sequence | our default: embedding, 2×LSTM(256) |
| lyrics | `debug`        | ids    | sequence | a few hundred weights, for tests    |
| lyrics | `debug-last`   | scaled | last     | the reference input path, for tests |

Every layer has a stable explicit name ("embedding", "lstm_1", "lstm_2",
"dropout_1", "dropout_2", "dense_1", "output") so that the step-by-step
sampler can rebuild the same recurrent stack with stateful layers and copy
the weights across by layer name.

The trainer always feeds integer targets, shape `(batch,)` for "last" presets
and `(batch, window)` for "sequence" presets; `make_loss(name,
sparse_targets=True)` returns the loss that matches, whatever its name.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import keras
import tensorflow as tf

from seqgen.errors import SeqgenError

KINDS = ("music", "lyrics")
INPUT_MODES = ("scaled", "ids")
TARGET_MODES = ("last", "sequence")
LOSSES = ("categorical_crossentropy", "mse", "mae")
OPTIMIZERS = ("adam", "sgd", "adadelta", "adamax")

# Layer names shared by every preset and by the sampler that copies weights.
LAYER_NAMES = (
    "embedding",
    "lstm_1",
    "dropout_1",
    "lstm_2",
    "dropout_2",
    "dense_1",
    "output",
)


def _choices(values) -> str:
    """Formats valid choices for an error message: `'a', 'b', 'c'`."""
    return ", ".join(repr(value) for value in values)


@dataclass(frozen=True)
class Preset:
    """A named architecture plus the training defaults that suit it.

    Attributes:
        name: Preset name, unique within its kind (e.g. "seed", "embed").
        kind: "music" or "lyrics".
        description: One line shown in the CLI listing and the UI dropdown.
        input_mode: "scaled" (float index / vocab size, shape
            `(window, 1)`) or "ids" (integer token ids, shape `(window,)`).
        target_mode: "last" (predict the token after the window, output
            `(batch, vocab_size)`) or "sequence" (predict the next token at
            every position, output `(batch, window, vocab_size)`).
        loss: Default loss name, one of `LOSSES`.
        optimizer: Default optimizer name, one of `OPTIMIZERS`.
        learning_rate: Default learning rate for that optimizer.
        batch_size: Default number of windows per training step.
        build: `build(vocab_size, window) -> keras.Model`, an uncompiled model.
    """

    name: str  # why: the key users type in the CLI and pick in the UI
    kind: str  # why: music and lyrics presets share names ("seed", "embed")
    description: str  # why: one registry feeds CLI help and UI dropdown labels
    input_mode: str  # why: the windowing code must shape inputs to match
    target_mode: str  # why: the windowing code must shape targets to match
    loss: str  # why: the report's study varies it; this is the default
    optimizer: str  # why: as above; Adamax for the reference, Adam for ours
    learning_rate: float  # why: defaults differ per optimizer and preset
    batch_size: int  # why: big batches for the reference, small for 2 CPUs
    # why: a plain callable keeps presets declarative and cheap to list;
    # excluded from equality/repr because partials compare by identity.
    build: Callable[[int, int], keras.Model] = field(repr=False, compare=False)

    def __post_init__(self):
        """Validates the preset's fields so a typo fails at import time."""
        checks = (
            ("kind", self.kind, KINDS),
            ("input_mode", self.input_mode, INPUT_MODES),
            ("target_mode", self.target_mode, TARGET_MODES),
            ("loss", self.loss, LOSSES),
            ("optimizer", self.optimizer, OPTIMIZERS),
        )
        for field_name, value, valid in checks:
            if value not in valid:
                raise SeqgenError(
                    f"Preset {self.name!r}: {field_name} must be one of "
                    f"{_choices(valid)}, got {value!r}."
                )
        if not self.learning_rate > 0:
            raise SeqgenError(
                f"Preset {self.name!r}: learning_rate must be > 0, "
                f"got {self.learning_rate!r}."
            )
        if self.batch_size < 1:
            raise SeqgenError(
                f"Preset {self.name!r}: batch_size must be >= 1, "
                f"got {self.batch_size!r}."
            )


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


# ---------------------------------------------------------------------------
# The registry.
# ---------------------------------------------------------------------------


def _debug_presets(kind: str) -> list[Preset]:
    """The two tiny presets, identical for both kinds, for tests and smoke runs."""
    return [
        Preset(
            name="debug",
            kind=kind,
            description="Tiny embedding + LSTM(8), for tests and smoke runs.",
            input_mode="ids",
            target_mode="sequence",
            loss="categorical_crossentropy",
            optimizer="adam",
            learning_rate=0.01,
            batch_size=16,
            build=partial(build_debug, name=f"{kind}_debug"),
        ),
        Preset(
            name="debug-last",
            kind=kind,
            description="Tiny LSTM(8) on the reference scaled input, for tests.",
            input_mode="scaled",
            target_mode="last",
            loss="categorical_crossentropy",
            optimizer="adam",
            learning_rate=0.01,
            batch_size=16,
            build=partial(build_debug_last, name=f"{kind}_debug_last"),
        ),
    ]


_ALL_PRESETS = [
    Preset(
        name="seed",
        kind="music",
        description=(
            "Reference: LSTM(512) → LSTM(256) → Dense(256) → softmax on index/V "
            "input, Adamax 0.01, batch 256."
        ),
        input_mode="scaled",
        target_mode="last",
        loss="categorical_crossentropy",
        optimizer="adamax",
        learning_rate=0.01,
        batch_size=256,
        build=partial(build_seed_music, dropout_rate=0.0, name="music_seed"),
    ),
    Preset(
        name="seed-dropout",
        kind="music",
        description="Reference with Dropout(0.1) after LSTM(512) and Dense(256).",
        input_mode="scaled",
        target_mode="last",
        loss="categorical_crossentropy",
        optimizer="adamax",
        learning_rate=0.01,
        batch_size=256,
        build=partial(build_seed_music, dropout_rate=0.1, name="music_seed_dropout"),
    ),
    Preset(
        name="embed",
        kind="music",
        description=(
            "Recommended: Embedding(64) → 2×LSTM(256) predicting every next "
            "token, Adam 0.003, batch 64."
        ),
        input_mode="ids",
        target_mode="sequence",
        loss="categorical_crossentropy",
        optimizer="adam",
        # why 0.003: a little above Adam's 0.001 default; small LSTMs with
        # per-step targets tolerate it and converge in fewer CPU epochs.
        learning_rate=0.003,
        # why 64: per-step targets already give 40 signals per window, so
        # smaller batches mean more updates per epoch at little CPU cost.
        batch_size=64,
        # why these sizes: two LSTM(256) over a 64-wide embedding (~0.93 M
        # parameters with V = 228) cost about half the reference's
        # LSTM(512) → LSTM(256) per step, so an epoch of ~60 k windows takes
        # minutes on 2 CPU cores; 64 dimensions are plenty for a few hundred
        # pitch/chord tokens.
        build=partial(
            build_embed,
            embedding_dim=64,
            units=256,
            dropout_rate=0.1,
            name="music_embed",
        ),
    ),
    *_debug_presets("music"),
    Preset(
        name="seed",
        kind="lyrics",
        description=(
            "Reference: LSTM(256) → Dropout(0.2) → LSTM(256) → Dropout(0.2) → "
            "softmax on index/V input, Adam 0.001, batch 128."
        ),
        input_mode="scaled",
        target_mode="last",
        loss="categorical_crossentropy",
        optimizer="adam",
        learning_rate=0.001,
        batch_size=128,
        build=partial(build_seed_lyrics, dropout_rate=0.2, name="lyrics_seed"),
    ),
    Preset(
        name="embed",
        kind="lyrics",
        description=(
            "Recommended: Embedding(48) → 2×LSTM(256) predicting every next "
            "character, Adam 0.003, batch 64."
        ),
        input_mode="ids",
        target_mode="sequence",
        loss="categorical_crossentropy",
        optimizer="adam",
        learning_rate=0.003,  # why: as for music; see the music "embed" preset
        batch_size=64,  # why: as for music; see the music "embed" preset
        # why 48: ~50 characters need fewer dimensions than ~200 music tokens.
        build=partial(
            build_embed,
            embedding_dim=48,
            units=256,
            dropout_rate=0.1,
            name="lyrics_embed",
        ),
    ),
    *_debug_presets("lyrics"),
]

PRESETS: dict[tuple[str, str], Preset] = {
    (preset.kind, preset.name): preset for preset in _ALL_PRESETS
}


def _check_kind(kind: str) -> None:
    """Raises SeqgenError unless `kind` is one of `KINDS`."""
    if kind not in KINDS:
        raise SeqgenError(f"Unknown kind {kind!r}; valid kinds: {_choices(KINDS)}.")


def preset_names(kind: str) -> list[str]:
    """Lists the preset names for one kind, in registry order.

    Args:
        kind: "music" or "lyrics".

    Returns:
        Names such as `["seed", "seed-dropout", "embed", "debug", "debug-last"]`.

    Raises:
        SeqgenError: If `kind` is unknown.
    """
    _check_kind(kind)
    return [name for preset_kind, name in PRESETS if preset_kind == kind]


def get_preset(kind: str, name: str) -> Preset:
    """Looks up a preset.

    Args:
        kind: "music" or "lyrics".
        name: Preset name, e.g. "seed".

    Returns:
        The registered `Preset`.

    Raises:
        SeqgenError: If `kind` or `name` is unknown; the message lists the
            valid choices.
    """
    _check_kind(kind)
    try:
        return PRESETS[(kind, name)]
    except KeyError:
        raise SeqgenError(
            f"Unknown {kind} preset {name!r}; valid presets: "
            f"{_choices(preset_names(kind))}."
        ) from None


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
    return preset.build(vocab_size, window)


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
            f"Unknown optimizer {name!r}; valid optimizers: {_choices(OPTIMIZERS)}."
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
        raise SeqgenError(f"Unknown loss {name!r}; valid losses: {_choices(LOSSES)}.")
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
