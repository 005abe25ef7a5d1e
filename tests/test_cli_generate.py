"""Tests for ``python -m seqgen generate``, run as a user would.

Two tiny bundles (a ``seed`` melody model and a lyrics model) are trained in
process; every command then starts a fresh Python that imports TensorFlow
(seconds each), so the commands run side by side in one module fixture and the
tests check one outcome each.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
MELODY = ["C4", "E4", "G4", "C5", "B-4", "G4", "F#4", "E4", "0.4.7", "D4", "C#4", "D4"]
LYRICS = ("let dance for the rest of the night here\nwe dance until the morning light\n\n") * 8
LENGTH = 12


def seqgen(*args, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m seqgen ARGS`` in a subprocess."""
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), environment.get("PYTHONPATH", "")]))
    environment["PYTHONWARNINGS"] = "ignore"
    environment["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return subprocess.run([sys.executable, "-m", "seqgen", *map(str, args)], cwd=str(cwd), env=environment,
                          capture_output=True, text=True, timeout=timeout)


def output(result: subprocess.CompletedProcess) -> str:
    return f"rc={result.returncode}\nstdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"


def last_error(result: subprocess.CompletedProcess) -> str:
    """The ``error: ...`` line the CLI prints for a problem the user can fix."""
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert lines, output(result)
    return lines[-1]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A working folder with a music bundle, a lyrics bundle, a corrupt bundle and a text file."""
    from seqgen.corpus import Corpus
    from seqgen.train import TrainConfig, train

    root = tmp_path_factory.mktemp("cli-generate")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEQGEN_CACHE", str(root / "cache"))
        music = Corpus("toy", "music", "seed", 1, list(itertools.islice(itertools.cycle(MELODY), 400)))
        train(music, root / "music", TrainConfig(kind="music", preset="debug", window=8, epochs=1, min_count=1))
        lyrics = Corpus("toy", "lyrics", "char", 1, list(LYRICS))
        train(lyrics, root / "lyrics", TrainConfig(kind="lyrics", preset="debug", window=8, epochs=1, min_count=1))
    shutil.copytree(root / "music", root / "corrupt")
    (root / "corrupt" / "model.keras").unlink()
    (root / "notes.txt").write_text("C4 E4 G4\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def runs(workdir):
    """Every command of this file, run side by side; results by name."""
    common = ("--length", LENGTH, "--rng-seed", 3)
    commands = {
        "music": ("generate", "music", "--json", "--midi", "out.mid", "--audio", "out.wav", *common),
        "lyrics": ("generate", "lyrics", "--json", "--seed-text", "Let dance \u20ac", "--length", 40, "--rng-seed", 1),
        "missing": ("generate", "no-such-bundle", "--json"),
        "corrupt": ("generate", "corrupt", "--json", *common),
        "temperature": ("generate", "music", "--json", "--temperature", "-1", *common),
        "top_p": ("generate", "music", "--json", "--top-p", "1.5", *common),
        "primer": ("generate", "music", "--json", "--primer", "notes.txt", *common),
        "seed_text": ("generate", "music", "--json", "--seed-text", "hello", *common),
    }
    with ThreadPoolExecutor(4) as pool:
        futures = {name: pool.submit(seqgen, *args, cwd=workdir) for name, args in commands.items()}
        return {name: future.result() for name, future in futures.items()}


def test_music_json_prints_one_object(runs):
    result = runs["music"]
    assert result.returncode == 0, output(result)
    summary = json.loads(result.stdout)  # one JSON object and nothing else on stdout
    assert isinstance(summary, dict)
    assert {"tokens", "timings", "renderer", "quality"} <= set(summary)
    assert isinstance(summary["tokens"], list) and len(summary["tokens"]) == LENGTH
    assert all(isinstance(token, str) for token in summary["tokens"])
    assert summary["renderer"] in ("fluidsynth", "builtin")
    assert summary["quality"]["tokens"] == LENGTH
    assert summary["quality"]["pitch_class_distance"] is not None
    assert summary["quality"]["longest_copied_ngram"] is not None
    assert summary["timings"]["total_ms"] > 0
    assert summary["settings"]["rng_seed"] == 3


def test_music_writes_the_midi_and_audio_asked_for(runs, workdir):
    import soundfile

    from seqgen.music import tokenize_file

    assert runs["music"].returncode == 0, output(runs["music"])
    midi, wav = workdir / "out.mid", workdir / "out.wav"
    assert midi.is_file() and midi.read_bytes()[:4] == b"MThd"
    assert tokenize_file(midi, "seed") == json.loads(runs["music"].stdout)["tokens"]
    info = soundfile.info(str(wav))
    assert info.format == "WAV" and info.frames > 0
    assert info.frames / info.samplerate >= LENGTH * 0.5  # one quarter note per token at 120 bpm


def test_lyrics_json_prints_the_text(runs):
    result = runs["lyrics"]
    assert result.returncode == 0, output(result)
    summary = json.loads(result.stdout)
    assert isinstance(summary["text"], str) and len(summary["text"]) == 40
    assert summary["seed"] == "let dance "
    assert summary["dropped"] == {"\u20ac": 1}
    assert set(summary["quality"]) >= {"words", "distinct_2", "repeated_lines"}


def test_a_missing_bundle_is_reported(runs):
    result = runs["missing"]
    assert result.returncode == 1, output(result)
    assert "not found" in last_error(result) and "no-such-bundle" in last_error(result)
    assert "Traceback" not in result.stderr


def test_a_corrupt_bundle_is_reported(runs):
    result = runs["corrupt"]
    assert result.returncode == 1, output(result)
    assert "model.keras is missing" in last_error(result)
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_a_negative_temperature_is_reported(runs):
    result = runs["temperature"]
    assert result.returncode == 1, output(result)
    assert "Temperature must be >= 0" in last_error(result) and "-1" in last_error(result)


def test_top_p_above_one_is_reported(runs):
    result = runs["top_p"]
    assert result.returncode == 1, output(result)
    assert "top_p must be in (0, 1]" in last_error(result) and "1.5" in last_error(result)


def test_a_primer_that_is_not_a_score_is_reported(runs):
    result = runs["primer"]
    assert result.returncode == 1, output(result)
    assert "notes.txt" in last_error(result)
    assert "could not read it as a score" in last_error(result)


def test_seed_text_on_a_music_bundle_is_reported(runs):
    result = runs["seed_text"]
    assert result.returncode == 1, output(result)
    assert "--seed-text is for lyrics bundles" in last_error(result)
