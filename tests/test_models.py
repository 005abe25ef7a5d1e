"""Tests for seqgen.models: presets, reference parameter counts, losses, optimizers."""

import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"

import math  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from seqgen.errors import SeqgenError  # noqa: E402
from seqgen.models import (  # noqa: E402
    OneHotRegressionLoss,
    build_model,
    describe_model,
    make_accuracy_metric,
    make_loss,
    make_optimizer,
)
from seqgen.presets import LAYER_NAMES, LOSSES, OPTIMIZERS, PRESETS, get_preset, preset_names  # noqa: E402

INPUT_NAMES = {"scaled_tokens", "token_ids"}


# --- reference architectures ------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "name", "vocab_size", "expected"),
    [
        ("music", "seed", 228, 1_964_516),
        ("music", "seed", 140, 1_941_900),
        ("music", "seed-dropout", 228, 1_964_516),
        ("music", "seed-dropout", 140, 1_941_900),
        ("lyrics", "seed", 51, 802_611),
    ],
)
def test_reference_parameter_counts(kind, name, vocab_size, expected):
    model = build_model(kind, name, vocab_size, window=40)
    assert model.count_params() == expected
    assert model.input_shape == (None, 40, 1)
    assert model.output_shape == (None, vocab_size)


def test_seed_dropout_places_two_dropouts_after_lstm_1_and_dense_1():
    model = build_model("music", "seed-dropout", 228)
    layer_names = [layer.name for layer in model.layers]
    assert layer_names == [
        "scaled_tokens",
        "lstm_1",
        "dropout_1",
        "lstm_2",
        "dense_1",
        "dropout_2",
        "output",
    ]
    dropouts = [
        layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)
    ]
    assert [layer.rate for layer in dropouts] == [0.1, 0.1]
    # Each dropout is wired to the layer before it, not just listed after it.
    assert model.get_layer("dropout_1").input is model.get_layer("lstm_1").output
    assert model.get_layer("dropout_2").input is model.get_layer("dense_1").output
    assert model.get_layer("lstm_2").input is model.get_layer("dropout_1").output


def test_music_seed_has_no_dropout_and_reference_layer_sizes():
    model = build_model("music", "seed", 140)
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in model.layers)
    assert model.get_layer("lstm_1").units == 512
    assert model.get_layer("lstm_1").return_sequences
    assert model.get_layer("lstm_2").units == 256
    assert model.get_layer("dense_1").units == 256
    assert model.get_layer("output").activation is keras.activations.softmax


def test_lyrics_seed_dropout_rates():
    model = build_model("lyrics", "seed", 51)
    rates = [
        layer.rate
        for layer in model.layers
        if isinstance(layer, keras.layers.Dropout)
    ]
    assert rates == [0.2, 0.2]


def test_reference_defaults():
    music = get_preset("music", "seed")
    assert (music.loss, music.optimizer, music.learning_rate, music.batch_size) == (
        "categorical_crossentropy",
        "adamax",
        0.01,
        256,
    )
    lyrics = get_preset("lyrics", "seed")
    assert (lyrics.loss, lyrics.optimizer, lyrics.learning_rate, lyrics.batch_size) == (
        "categorical_crossentropy",
        "adam",
        0.001,
        128,
    )


# --- every preset --------------------------------------------------------------


@pytest.mark.parametrize(("kind", "name"), sorted(PRESETS))
def test_preset_shapes_and_forward_pass(kind, name):
    preset = get_preset(kind, name)
    vocab_size, window, batch = 7, 5, 3
    model = build_model(kind, name, vocab_size, window=window)
    rng = np.random.default_rng(0)
    ids = rng.integers(0, vocab_size, size=(batch, window))
    if preset.input_mode == "scaled":
        assert model.input_shape == (None, window, 1)
        inputs = (ids / vocab_size).astype("float32")[..., None]
    else:
        assert model.input_shape == (None, window)
        inputs = ids.astype("int32")
    probabilities = np.asarray(model(inputs, training=False))
    if preset.target_mode == "last":
        assert model.output_shape == (None, vocab_size)
        assert probabilities.shape == (batch, vocab_size)
    else:
        assert model.output_shape == (None, window, vocab_size)
        assert probabilities.shape == (batch, window, vocab_size)
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize(("kind", "name"), sorted(PRESETS))
def test_preset_layer_names_are_stable(kind, name):
    model = build_model(kind, name, 9, window=4)
    names = [layer.name for layer in model.layers]
    assert set(names) - INPUT_NAMES <= set(LAYER_NAMES)
    assert "lstm_1" in names and "output" in names
    preset = get_preset(kind, name)
    assert ("embedding" in names) == (preset.input_mode == "ids")


@pytest.mark.parametrize("kind", ["music", "lyrics"])
def test_embed_preset_layers(kind):
    model = build_model(kind, "embed", 30, window=8)
    assert [layer.name for layer in model.layers] == [
        "token_ids",
        "embedding",
        "lstm_1",
        "dropout_1",
        "lstm_2",
        "dropout_2",
        "output",
    ]
    assert model.get_layer("lstm_1").return_sequences
    assert model.get_layer("lstm_2").return_sequences
    expected_dim = {"music": 64, "lyrics": 48}[kind]
    assert model.get_layer("embedding").output_dim == expected_dim
    preset = get_preset(kind, "embed")
    assert (preset.input_mode, preset.target_mode) == ("ids", "sequence")
    assert (preset.optimizer, preset.batch_size) == ("adam", 64)


# --- bad names and sizes ------------------------------------------------------------


def test_unknown_kind_lists_valid_kinds():
    with pytest.raises(SeqgenError, match="'music', 'lyrics'"):
        build_model("poetry", "seed", 10)
    with pytest.raises(SeqgenError, match="'music', 'lyrics'"):
        preset_names("poetry")


@pytest.mark.parametrize("vocab_size", [0, 1, -5, 2.5, True])
def test_build_model_rejects_bad_vocab_size(vocab_size):
    with pytest.raises(SeqgenError, match="vocab_size must be an integer >= 2"):
        build_model("music", "debug", vocab_size)


@pytest.mark.parametrize("window", [0, -1, 3.0])
def test_build_model_rejects_bad_window(window):
    with pytest.raises(SeqgenError, match="window must be an integer >= 1"):
        build_model("music", "debug", 5, window=window)


def test_unknown_loss_lists_valid_losses():
    with pytest.raises(SeqgenError) as error:
        make_loss("hinge", sparse_targets=True)
    for name in LOSSES:
        assert repr(name) in str(error.value)


def test_unknown_optimizer_lists_valid_optimizers():
    with pytest.raises(SeqgenError) as error:
        make_optimizer("rmsprop", 0.001)
    for name in OPTIMIZERS:
        assert repr(name) in str(error.value)


@pytest.mark.parametrize("learning_rate", [0, -0.1, math.nan, math.inf, "0.1", None])
def test_make_optimizer_rejects_bad_learning_rate(learning_rate):
    with pytest.raises(SeqgenError, match="learning_rate must be a positive finite"):
        make_optimizer("adam", learning_rate)


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("adam", keras.optimizers.Adam),
        ("sgd", keras.optimizers.SGD),
        ("adadelta", keras.optimizers.Adadelta),
        ("adamax", keras.optimizers.Adamax),
    ],
)
def test_make_optimizer_builds_fresh_instances(name, cls):
    first = make_optimizer(name, 0.05)
    second = make_optimizer(name, 0.05)
    assert type(first) is cls
    assert first is not second
    assert float(first.learning_rate) == pytest.approx(0.05)


# --- losses and metrics ---------------------------------------------------------


def _random_probabilities(shape, seed=0):
    logits = np.random.default_rng(seed).normal(size=shape).astype("float32")
    return np.asarray(keras.activations.softmax(logits))


@pytest.mark.parametrize(
    ("name", "reference"),
    [("mse", keras.losses.MeanSquaredError), ("mae", keras.losses.MeanAbsoluteError)],
)
@pytest.mark.parametrize("target_shape", [(6,), (6, 1), (3, 4)])
def test_regression_losses_take_integer_targets(name, reference, target_shape):
    vocab_size = 5
    rng = np.random.default_rng(1)
    targets = rng.integers(0, vocab_size, size=target_shape)
    # (6,) and (6, 1) targets go with (6, V) outputs; (3, 4) with (3, 4, V).
    steps_shape = target_shape[:1] if target_shape[-1] == 1 else target_shape
    pred_shape = (*steps_shape, vocab_size)
    probabilities = _random_probabilities(pred_shape)
    one_hot = np.eye(vocab_size, dtype="float32")[targets.reshape(steps_shape)]

    loss = make_loss(name, sparse_targets=True)
    assert isinstance(loss, OneHotRegressionLoss)
    got = float(loss(targets, probabilities))
    expected = float(reference()(one_hot, probabilities))
    assert got == pytest.approx(expected, rel=1e-6)
    assert got > 0


@pytest.mark.parametrize(
    ("name", "cls"),
    [("mse", keras.losses.MeanSquaredError), ("mae", keras.losses.MeanAbsoluteError)],
)
def test_regression_losses_with_one_hot_targets_are_plain_keras(name, cls):
    assert type(make_loss(name, sparse_targets=False)) is cls


def test_crossentropy_variant_follows_target_encoding():
    sparse = make_loss("categorical_crossentropy", sparse_targets=True)
    dense = make_loss("categorical_crossentropy", sparse_targets=False)
    assert isinstance(sparse, keras.losses.SparseCategoricalCrossentropy)
    assert isinstance(dense, keras.losses.CategoricalCrossentropy)
    targets = np.array([0, 3, 1, 2])
    probabilities = _random_probabilities((4, 4), seed=2)
    one_hot = np.eye(4, dtype="float32")[targets]
    assert float(sparse(targets, probabilities)) == pytest.approx(
        float(dense(one_hot, probabilities)), rel=1e-6
    )


def test_regression_loss_survives_keras_serialization():
    loss = make_loss("mae", sparse_targets=True)
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, OneHotRegressionLoss)
    assert restored.regression == "mae"


def test_accuracy_metric_on_sequence_targets():
    metric = make_accuracy_metric()
    assert metric.name == "accuracy"
    probabilities = np.zeros((1, 3, 4), dtype="float32")
    probabilities[0, [0, 1, 2], [1, 2, 3]] = 1.0  # predicts 1, 2, 3
    metric.update_state(np.array([[1, 2, 0]]), probabilities)
    assert float(metric.result()) == pytest.approx(2 / 3)


# --- training ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "loss_name"),
    [("debug", "categorical_crossentropy"), ("debug-last", "mse"), ("debug", "mae")],
)
def test_debug_presets_train_one_step(name, loss_name):
    keras.utils.set_random_seed(0)
    preset = get_preset("music", name)
    vocab_size, window, batch = 6, 5, 8
    model = build_model("music", name, vocab_size, window=window)
    rng = np.random.default_rng(0)
    ids = rng.integers(0, vocab_size, size=(batch, window + 1))
    if preset.input_mode == "scaled":
        inputs = (ids[:, :-1] / vocab_size).astype("float32")[..., None]
    else:
        inputs = ids[:, :-1].astype("int32")
    targets = ids[:, -1] if preset.target_mode == "last" else ids[:, 1:]

    model.compile(
        optimizer=make_optimizer(preset.optimizer, preset.learning_rate),
        loss=make_loss(loss_name, sparse_targets=True),
        metrics=[make_accuracy_metric()],
    )
    before = [weight.copy() for weight in model.get_weights()]
    history = model.fit(inputs, targets, batch_size=batch, epochs=1, verbose=0)
    assert math.isfinite(history.history["loss"][0])
    assert 0.0 <= history.history["accuracy"][0] <= 1.0
    changed = [not np.allclose(a, b) for a, b in zip(before, model.get_weights())]
    assert any(changed)


def test_describe_model_ends_with_total():
    text = describe_model(build_model("lyrics", "seed", 51))
    lines = text.splitlines()
    assert lines[-1] == "Total parameters: 802,611"
    assert "lstm_1" in text and "output" in text
