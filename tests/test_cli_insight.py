"""The JSON contracts of ``generate --explain`` and ``activations`` on every shipped model, run as a user would.

Each shipped model gets one ``generate --explain 5 --top-k 5 --variations 2``
and one ``activations`` command, side by side in a module fixture (each
starts a Python that imports TensorFlow); the error messages come from the
same entry point in this process, on the shared debug bundles.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import build_part, build_score, run_seqgen, simple_melody, write_score_midi
from seqgen.bundle import read_config, scan_bundles
from seqgen.cli import main

CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"
SHIPPED = [entry.label for entry in scan_bundles(CHECKPOINTS, "shipped")]
EXPLAIN, LENGTH = 5, 12
VERSE = "let dance for the rest of the night here\nwe dance until the morning light\nhold me near and hold me tight\n"
FEATURES = {"lyrics": {"line_position", "in_word", "after_vowel"}, "seed": {"pitch_height"}, "timed": {"pitch_height", "bar_position"},
            "events": {"pitch_height", "bar_position"}}


def kind_of(name: str) -> str:
    """"lyrics", or the music model's tokenizer."""
    config = read_config(CHECKPOINTS / name)
    return "lyrics" if config["kind"] == "lyrics" else config["tokenizer"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Both commands on every shipped model, by (command, name): the parsed JSON, or the failed process."""
    folder = tmp_path_factory.mktemp("cli-insight")
    events = simple_melody() + [(pitches, offset + 8, length) for pitches, offset, length in simple_melody(5)]
    primer = write_score_midi(build_score(build_part(events)), folder / "primer.mid")
    commands = {}
    for name in SHIPPED:
        commands["generate", name] = ("generate", name, "--explain", EXPLAIN, "--top-k", EXPLAIN, "--variations", 2,
                                      "--length", LENGTH, "--rng-seed", 3, "--json")
        source = {"lyrics": ("--text", VERSE), "timed": ("--primer", primer), "events": ("--primer", primer),
                  "seed": ("--rng-seed", 5)}[kind_of(name)]
        commands["activations", name] = ("activations", name, *source, "--json")
    with ThreadPoolExecutor(2) as pool:
        results = dict(zip(commands, pool.map(lambda args: run_seqgen(*args, cwd=folder), commands.values())))
    return {key: json.loads(result.stdout) if result.returncode == 0 else result for key, result in results.items()}


def parsed(runs, key) -> dict:
    result = runs[key]
    assert isinstance(result, dict), f"rc={result.returncode}\n{result.stderr[-3000:]}"
    return result


@pytest.mark.parametrize("name", SHIPPED)
def test_generate_explains_every_step_of_every_variation(runs, name):
    output = parsed(runs, ("generate", name))
    generated = output["text"] if kind_of(name) == "lyrics" else output["tokens"]
    assert len(output["steps"]) == len(generated) == 2
    for steps, tokens in zip(output["steps"], generated):
        assert [step["chosen"] for step in steps] == list(tokens) and len(steps) == LENGTH
        for step in steps:
            probabilities = [p for _, p in step["candidates"]]
            assert 1 <= len(probabilities) <= EXPLAIN and probabilities == sorted(probabilities, reverse=True)
            assert sum(probabilities) == pytest.approx(1.0)  # --top-k K: every token that could be drawn is listed
            assert step["chosen"] in dict(step["candidates"]) and 1 <= step["rank"] <= EXPLAIN
            assert dict(step["candidates"])[step["chosen"]] == step["probability"]
            assert len(step["before_temperature"]) == EXPLAIN


@pytest.mark.parametrize("name", SHIPPED)
def test_activations_give_one_row_per_token_and_ranked_cells(runs, name):
    output = parsed(runs, ("activations", name))
    assert output["layer"] == "lstm_2" and output["units"] == 256
    if kind_of(name) == "lyrics":
        assert "".join(output["tokens"]) == VERSE and output["dropped"] == {}
    assert len(output["activations"]) == len(output["tokens"]) > 8
    assert all(len(row) == 256 and max(map(abs, row)) <= 1 for row in output["activations"])
    cells = output["cells"]
    assert {cell["feature"] for cell in cells} == FEATURES[kind_of(name)]
    assert [abs(cell["correlation"]) for cell in cells] == sorted((abs(cell["correlation"]) for cell in cells), reverse=True)
    assert all(0 <= cell["unit"] < 256 and -1 <= cell["correlation"] <= 1 for cell in cells)


def test_the_timed_primer_file_is_analysed_token_by_token(runs):
    name = next(name for name in SHIPPED if kind_of(name) == "timed")
    output = parsed(runs, ("activations", name))
    # simple_melody: three quarter notes, a major chord, a rest, two eighths, a half note; then a fourth higher.
    melody = ["C4_4", "E4_4", "G4_4", "C4.E4.G4_4", "R_4", "D4_2", "F4_2", "A4_8",
              "F4_4", "A4_4", "C5_4", "F4.A4.C5_4", "R_4", "G4_2", "B-4_2", "D5_8"]
    assert output["tokens"] == [token for token in melody if token not in output["dropped"]]
    assert set(output["dropped"]) <= {"C4.E4.G4_4", "F4.A4.C5_4"}  # the chords may be too rare for the vocabulary


def test_explain_needs_json(capsys, music_bundle_dir):
    with pytest.raises(SystemExit) as exit_:
        main(["generate", str(music_bundle_dir), "--explain", "3"])
    assert exit_.value.code == 2 and "--explain adds `steps` to the JSON output: give --json too" in capsys.readouterr().err


@pytest.mark.parametrize(("args", "message"), [
    (("lyrics",), "Give a lyrics model some text to read"),
    (("lyrics", "--primer", "tune.mid"), "Give a lyrics model some text to read"),
    (("music", "--layer", "lstm_9"), "This model has no LSTM layer 'lstm_9'; it has lstm_1."),
    (("music", "--tokens", "A0 Z9"), "none of the tokens are in the model's vocabulary (dropped: 'A0', 'Z9')"),
])
def test_activations_errors_say_what_to_do(capsys, music_bundle_dir, lyrics_bundle_dir, args, message):
    folder = {"music": music_bundle_dir, "lyrics": lyrics_bundle_dir}[args[0]]
    assert main(["activations", str(folder), *args[1:]]) == 1
    assert message in capsys.readouterr().err
