"""The preset table: every named model, as plain data (no TensorFlow).

One table feeds the CLI (``python -m seqgen presets``), the studio's
dropdowns, the trainer's defaults, the bundle checks and the sampler's layer
contract; :mod:`seqgen.models` turns a preset into a Keras model.

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
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from seqgen.errors import SeqgenError
from seqgen.windows import SPLITS

KINDS = ("music", "lyrics")
INPUT_MODES = ("scaled", "ids")  # index / V as one float (the reference), or token ids into an embedding
TARGET_MODES = ("last", "sequence")  # predict after the window (the reference), or at every position
LOSSES = ("categorical_crossentropy", "mse", "mae")
OPTIMIZERS = ("adam", "sgd", "adadelta", "adamax")
ARCHITECTURES = ("seed_music", "seed_lyrics", "embed", "debug", "debug_last")  # builders in seqgen.models

# Every layer of every preset has one of these names: the sampler rebuilds the
# recurrent stack from them ("dropout_*" are the identity at inference).
LAYER_NAMES = ("embedding", "lstm_1", "dropout_1", "lstm_2", "dropout_2", "dense_1", "output")

# The reference's loss × optimizer study.
STUDY_LOSSES = ("categorical_crossentropy", "mse", "mae")
STUDY_OPTIMIZERS = ("adam", "sgd", "adadelta")
# Keras 3's default learning rate of each optimizer: the study starts each from it, as the reference did.
KERAS_LEARNING_RATES = {"adam": 0.001, "sgd": 0.01, "adadelta": 0.001, "adamax": 0.001}


def choices(values) -> str:
    """Valid choices for an error message: ``'a', 'b', 'c'``."""
    return ", ".join(repr(value) for value in values)


@dataclass(frozen=True)
class Preset:
    """A named architecture plus the training defaults that suit it."""

    name: str  # the key users type in the CLI and pick in the UI
    kind: str  # music and lyrics presets share names ("seed", "embed")
    description: str  # one line for the CLI listing and the UI dropdown
    input_mode: str  # the windows are shaped to match: (window, 1) floats or (window,) ids
    target_mode: str  # (batch,) targets after the window, or (batch, window) at every step
    loss: str  # the study varies it; this is the default
    optimizer: str  # Adamax for the reference, Adam for ours
    learning_rate: float  # defaults differ per optimizer and preset
    batch_size: int  # big batches for the reference, small for 2 CPUs
    split: str  # validation split (seqgen.windows.SPLITS): the reference's "random", or held-out "blocks"
    architecture: str  # the builder in seqgen.models
    options: dict = field(default_factory=dict)  # the builder's keyword arguments (sizes, dropout)

    def __post_init__(self):
        checks = (("kind", self.kind, KINDS), ("input_mode", self.input_mode, INPUT_MODES),
                  ("target_mode", self.target_mode, TARGET_MODES), ("loss", self.loss, LOSSES),
                  ("optimizer", self.optimizer, OPTIMIZERS), ("architecture", self.architecture, ARCHITECTURES),
                  ("split", self.split, SPLITS))
        for field_name, value, valid in checks:
            if value not in valid:
                raise SeqgenError(f"Preset {self.name!r}: {field_name} must be one of {choices(valid)}, got {value!r}.")
        if not self.learning_rate > 0:
            raise SeqgenError(f"Preset {self.name!r}: learning_rate must be > 0, got {self.learning_rate!r}.")
        if self.batch_size < 1:
            raise SeqgenError(f"Preset {self.name!r}: batch_size must be >= 1, got {self.batch_size!r}.")

    @property
    def model_name(self) -> str:
        """The Keras model's name, e.g. ``music_seed_dropout``."""
        return f"{self.kind}_{self.name.replace('-', '_')}"

    def to_json(self) -> dict:
        return asdict(self)


def _debug_presets(kind: str) -> list[Preset]:
    """The two tiny presets, identical for both kinds, for tests and smoke runs."""
    # The random split: tests count every window into one of the three sets.
    common = dict(kind=kind, loss="categorical_crossentropy", optimizer="adam", learning_rate=0.01, batch_size=16, split="random")
    return [
        Preset(name="debug", description="Tiny embedding + LSTM(8), for tests and smoke runs.",
               input_mode="ids", target_mode="sequence", architecture="debug", **common),
        Preset(name="debug-last", description="Tiny LSTM(8) on the reference scaled input, for tests.",
               input_mode="scaled", target_mode="last", architecture="debug_last", **common),
    ]


_TABLE = [
    Preset(
        name="seed", kind="music",
        description="Reference: LSTM(512) → LSTM(256) → Dense(256) → softmax on index/V input, Adamax 0.01, batch 256.",
        input_mode="scaled", target_mode="last", loss="categorical_crossentropy", optimizer="adamax",
        learning_rate=0.01, batch_size=256, split="random", architecture="seed_music", options={"dropout_rate": 0.0},
    ),
    Preset(
        name="seed-dropout", kind="music",
        description="Reference with Dropout(0.1) after LSTM(512) and Dense(256).",
        input_mode="scaled", target_mode="last", loss="categorical_crossentropy", optimizer="adamax",
        learning_rate=0.01, batch_size=256, split="random", architecture="seed_music", options={"dropout_rate": 0.1},
    ),
    Preset(
        name="embed", kind="music",
        description="Recommended: Embedding(64) → 2×LSTM(256) predicting every next token, Adam 0.003, batch 64.",
        input_mode="ids", target_mode="sequence", loss="categorical_crossentropy", optimizer="adam",
        # 0.003: a little above Adam's 0.001 default; small LSTMs with per-step targets tolerate it and
        # converge in fewer CPU epochs.  Batch 64: per-step targets already give 40 signals per window, so
        # smaller batches mean more updates per epoch at little CPU cost.
        learning_rate=0.003, batch_size=64, architecture="embed",
        # Held out: validation measures generalisation, so early stopping and the best epoch mean something.
        split="blocks",
        # Two LSTM(256) over a 64-wide embedding (~0.93 M parameters with V = 228) cost about half the
        # reference's LSTM(512) → LSTM(256) per step; 64 dimensions are plenty for a few hundred tokens.
        options={"embedding_dim": 64, "units": 256, "dropout_rate": 0.1},
    ),
    *_debug_presets("music"),
    Preset(
        name="seed", kind="lyrics",
        description="Reference: LSTM(256) → Dropout(0.2) → LSTM(256) → Dropout(0.2) → softmax on index/V input, "
                    "Adam 0.001, batch 128.",
        input_mode="scaled", target_mode="last", loss="categorical_crossentropy", optimizer="adam",
        learning_rate=0.001, batch_size=128, split="random", architecture="seed_lyrics", options={"dropout_rate": 0.2},
    ),
    Preset(
        name="embed", kind="lyrics",
        description="Recommended: Embedding(48) → 2×LSTM(256) predicting every next character, Adam 0.003, batch 64.",
        input_mode="ids", target_mode="sequence", loss="categorical_crossentropy", optimizer="adam",
        learning_rate=0.003, batch_size=64, split="blocks", architecture="embed",
        # 48: ~50 characters need fewer dimensions than ~200 music tokens.
        options={"embedding_dim": 48, "units": 256, "dropout_rate": 0.1},
    ),
    *_debug_presets("lyrics"),
]

PRESETS: dict[tuple[str, str], Preset] = {(preset.kind, preset.name): preset for preset in _TABLE}


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise SeqgenError(f"Unknown kind {kind!r}; valid kinds: {choices(KINDS)}.")


def preset_names(kind: str) -> list[str]:
    """The preset names of one kind, in table order."""
    check_kind(kind)
    return [name for preset_kind, name in PRESETS if preset_kind == kind]


def get_preset(kind: str, name: str) -> Preset:
    """A preset by kind and name; SeqgenError lists the valid names."""
    check_kind(kind)
    try:
        return PRESETS[(kind, name)]
    except KeyError:
        raise SeqgenError(f"Unknown {kind} preset {name!r}; valid presets: {choices(preset_names(kind))}.") from None


def preset_choices(kind: str) -> list[tuple[str, str]]:
    """``(label, name)`` pairs for a dropdown: ``"embed: Recommended: …"``."""
    return [(f"{name}: {get_preset(kind, name).description}", name) for name in preset_names(kind)]
