"""Tests for seqgen.presets: the preset table is plain data, listed without TensorFlow."""

import json
import subprocess
import sys

import pytest

from conftest import REPO_ROOT, run_seqgen
from seqgen.errors import SeqgenError
from seqgen.presets import (
    KERAS_LEARNING_RATES, LOSSES, OPTIMIZERS, PRESETS, STUDY_LOSSES, STUDY_OPTIMIZERS, Preset, get_preset, preset_choices,
    preset_names,
)


def test_listing_presets_imports_no_tensorflow():
    code = ("import sys\nfrom seqgen.cli import main\nmain(['presets', '--json'])\n"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow was imported'")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    assert {(row["kind"], row["name"]) for row in listed} == set(PRESETS)


def test_presets_json_lists_every_field():
    result = run_seqgen("presets", "--json", "--kind", "music")
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert {"seed", "seed-dropout", "embed", "debug", "debug-last"} <= set(rows)
    assert rows["seed"] == {
        "name": "seed", "kind": "music", "description": get_preset("music", "seed").description,
        "input_mode": "scaled", "target_mode": "last", "loss": "categorical_crossentropy", "optimizer": "adamax",
        "learning_rate": 0.01, "batch_size": 256, "split": "random", "architecture": "seed_music", "options": {"dropout_rate": 0.0},
    }
    assert rows["seed-dropout"]["options"] == {"dropout_rate": 0.1}
    plain = run_seqgen("presets", "--kind", "lyrics")
    assert plain.returncode == 0 and plain.stdout.splitlines()[0].split()[:4] == ["lyrics", "seed", "scaled", "last"]


def test_study_grid_is_the_reference_one():
    assert STUDY_LOSSES == ("categorical_crossentropy", "mse", "mae")
    assert STUDY_OPTIMIZERS == ("adam", "sgd", "adadelta")
    assert set(STUDY_LOSSES) <= set(LOSSES) and set(STUDY_OPTIMIZERS) <= set(OPTIMIZERS)
    assert set(KERAS_LEARNING_RATES) == set(OPTIMIZERS)


def test_dropdown_choices_carry_the_descriptions():
    choices = preset_choices("lyrics")
    assert [name for _, name in choices] == preset_names("lyrics")
    assert all(label.startswith(f"{name}: ") and get_preset("lyrics", name).description in label for label, name in choices)


def test_registry_is_keyed_by_kind_and_name():
    for (kind, name), preset in PRESETS.items():
        assert (preset.kind, preset.name) == (kind, name)
        assert preset.description
    for kind in ("music", "lyrics"):
        names = preset_names(kind)
        assert {"seed", "embed", "debug", "debug-last"} <= set(names)
    assert "seed-dropout" in preset_names("music")
    assert "seed-dropout" not in preset_names("lyrics")


def test_preset_validates_its_fields():
    with pytest.raises(SeqgenError, match="loss must be one of"):
        Preset(
            name="broken",
            kind="music",
            description="",
            input_mode="ids",
            target_mode="sequence",
            loss="hinge",
            optimizer="adam",
            learning_rate=0.001,
            batch_size=8,
            split="blocks",
            architecture="embed",
        )
    with pytest.raises(SeqgenError, match="architecture must be one of"):
        Preset(name="broken", kind="music", description="", input_mode="ids", target_mode="sequence",
               loss="mse", optimizer="adam", learning_rate=0.001, batch_size=8, split="blocks", architecture="transformer")
    with pytest.raises(SeqgenError, match="split must be one of 'random', 'blocks'"):
        Preset(name="broken", kind="music", description="", input_mode="ids", target_mode="sequence",
               loss="mse", optimizer="adam", learning_rate=0.001, batch_size=8, split="halves", architecture="embed")


def test_improved_presets_hold_out_blocks_and_the_reference_keeps_its_random_split():
    assert {(kind, name): preset.split for (kind, name), preset in PRESETS.items() if not name.startswith("debug")} == {
        ("music", "seed"): "random", ("music", "seed-dropout"): "random", ("music", "embed"): "blocks",
        ("lyrics", "seed"): "random", ("lyrics", "embed"): "blocks"}


def test_unknown_preset_lists_valid_names():
    with pytest.raises(SeqgenError) as error:
        get_preset("music", "transformer")
    message = str(error.value)
    assert "transformer" in message
    for name in preset_names("music"):
        assert repr(name) in message
