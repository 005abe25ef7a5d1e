"""Tests for ``python -m seqgen generate``, run as a user would.

The commands use copies of the session's shared debug bundles (a ``seed``
melody model and a lyrics model, tests/conftest.py).  A command that loads a
model starts a fresh Python that imports TensorFlow (seconds each), so the
subprocess commands run side by side in one module fixture and the tests
check one outcome each; the remaining messages come from the same entry point
in this process.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import heavy_modules_after, run_seqgen
from seqgen.bundle import write_sampling

LENGTH = 12
RECOMMENDED = {"temperature": 0.55, "top_p": 0.8}


def output(result: subprocess.CompletedProcess) -> str:
    return f"rc={result.returncode}\nstdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"


def last_error(result: subprocess.CompletedProcess) -> str:
    """The ``error: ...`` line the CLI prints for a problem the user can fix."""
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert lines, output(result)
    return lines[-1]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, music_bundle_dir, lyrics_bundle_dir, events_bundle_dir, music_bundle):
    """A working folder with a music bundle, one with recommended sampling, an events bundle, a lyrics bundle, a corrupt
    bundle and a text file."""
    root = tmp_path_factory.mktemp("cli-generate")
    shutil.copytree(music_bundle_dir, root / "music")
    shutil.copytree(events_bundle_dir, root / "events")
    shutil.copytree(lyrics_bundle_dir, root / "lyrics")
    shutil.copytree(music_bundle_dir, root / "corrupt")
    (root / "corrupt" / "model.keras").unlink()
    (root / "notes.txt").write_text("C4 E4 G4\n", encoding="utf-8")
    shutil.copytree(music_bundle_dir, root / "recommended")
    write_sampling(dataclasses.replace(music_bundle, folder=root / "recommended"), RECOMMENDED, sweep={})
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
        "recommended": ("generate", "recommended", "--json", *common),
        "overridden": ("generate", "recommended", "--json", "--temperature", "1.3", "--top-k", "4", *common),
        "until_end": ("generate", "events", "--json", "--until-end", "--variations", "4", "--length", 300, "--rng-seed", 5),
    }
    with ThreadPoolExecutor(4) as pool:
        futures = {name: pool.submit(run_seqgen, *args, cwd=workdir) for name, args in commands.items()}
        return {name: future.result() for name, future in futures.items()}


def test_music_json_prints_one_object(runs, music_bundle):
    result = runs["music"]
    assert result.returncode == 0, output(result)
    summary = json.loads(result.stdout)  # one JSON object and nothing else on stdout
    assert isinstance(summary, dict)
    assert {"tokens", "timings", "renderer", "quality"} <= set(summary)
    tokens = summary["tokens"]
    assert isinstance(tokens, list) and len(tokens) == LENGTH
    assert set(tokens) <= set(music_bundle.vocab.tokens)
    assert summary["renderer"] in ("fluidsynth", "builtin")
    assert summary["timings"]["total_ms"] > 0
    assert summary["settings"]["rng_seed"] == 3 and summary["settings"]["length"] == LENGTH


def test_music_json_reports_the_quality_of_the_printed_melody(runs, music_bundle):
    from seqgen.quality import histogram_distance, longest_copied_ngram, pitch_class_histogram

    assert runs["music"].returncode == 0, output(runs["music"])
    summary = json.loads(runs["music"].stdout)
    tokens, quality = summary["tokens"], summary["quality"]
    assert quality["tokens"] == LENGTH
    distance = quality["pitch_class_distance"]
    assert isinstance(distance, float) and 0.0 <= distance <= 1.0
    assert distance == pytest.approx(histogram_distance(pitch_class_histogram(tokens), music_bundle.stats["pitch_class_histogram"]))
    copied = quality["longest_copied_ngram"]
    # Every token comes from the corpus, so at least one is "copied"; the figure is measured on the bundle's corpus.
    assert isinstance(copied, int) and 1 <= copied <= LENGTH
    assert copied == longest_copied_ngram(music_bundle.vocab.encode(tokens), music_bundle.corpus_ids)


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


def test_lyrics_json_prints_the_text(runs, lyrics_bundle):
    from seqgen.generate import complete_lyrics
    from seqgen.quality import lyrics_report

    result = runs["lyrics"]
    assert result.returncode == 0, output(result)
    summary = json.loads(result.stdout)
    assert isinstance(summary["text"], str) and len(summary["text"]) == 40
    assert set(summary["text"]) <= set(lyrics_bundle.vocab.tokens)
    assert summary["seed"] == "let dance "
    assert summary["dropped"] == {"\u20ac": 1}
    assert summary["quality"] == lyrics_report(summary["text"], set(lyrics_bundle.stats["words"]))
    # The command line makes what the library makes with the same seed text and rng seed.
    assert summary["text"] == complete_lyrics(lyrics_bundle, "Let dance \u20ac", length=40, rng_seed=1).texts[0]


def test_generate_uses_the_bundle_recommended_sampling_unless_overridden(runs):
    plain, recommended, overridden = (json.loads(runs[name].stdout)["settings"] for name in ("music", "recommended", "overridden"))
    assert (plain["temperature"], plain["top_p"]) == (1.0, None)  # no recommendation: the kind's default
    assert (recommended["temperature"], recommended["top_p"], recommended["top_k"]) == (0.55, 0.8, None)
    # What the user sets wins, field by field; the rest stays recommended.
    assert (overridden["temperature"], overridden["top_p"], overridden["top_k"]) == (1.3, 0.8, 4)
    assert json.loads(runs["recommended"].stdout)["tokens"] != json.loads(runs["music"].stdout)["tokens"]


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


@pytest.fixture
def main(workdir, monkeypatch):
    """``seqgen.cli.main(argv)`` in this process, from the working folder."""
    from seqgen.cli import main as cli_main

    monkeypatch.chdir(workdir)
    return cli_main


def test_a_primer_that_is_not_a_score_is_reported(main, capsys):
    assert main(["generate", "music", "--json", "--primer", "notes.txt", "--length", str(LENGTH)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("error: ") == 1
    assert "notes.txt" in err and "could not read it as a score" in err


def test_seed_text_on_a_music_bundle_is_reported(main, capsys):
    assert main(["generate", "music", "--json", "--seed-text", "hello", "--length", str(LENGTH)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("error: ") == 1
    assert "--seed-text is for lyrics bundles" in err


def test_until_end_writes_whole_pieces_and_reports_each_ending(runs, workdir):
    """The toy pieces all end after two bars: the model ends its own within the cap, on a bar line."""
    import symusic
    from music21.midi import DeltaTime, MidiFile

    result = runs["until_end"]
    assert result.returncode == 0, output(result)
    report = json.loads(result.stdout)
    assert report["primer"] == ["BOS_None"] and report["settings"]["until_end"] is True
    assert len(report["ended"]) == 4 and all(isinstance(ended, bool) for ended in report["ended"])
    assert sum(report["ended"]) >= 3, report["ended"]
    for tokens, ended, files in zip(report["tokens"], report["ended"], report["files"]):
        assert "EOS_None" not in tokens and len(tokens) <= 300
        if ended:  # the file's track ends on a bar line (4/4), after its last note
            midi = MidiFile()
            midi.open(files["midi"])
            midi.read()
            midi.close()
            track_end = sum(event.time for event in midi.tracks[0].events if isinstance(event, DeltaTime))
            last_note = symusic.Score(files["midi"]).end()
            assert track_end % (4 * midi.ticksPerQuarterNote) == 0 and track_end >= last_note > track_end - 4 * midi.ticksPerQuarterNote


def test_until_end_needs_a_model_that_learned_endings(main, capsys):
    assert main(["generate", "music", "--json", "--until-end"]) == 1
    assert "was trained without piece ends (tokenizer seed)" in capsys.readouterr().err
    assert main(["generate", "lyrics", "--json", "--until-end"]) == 1
    assert "--until-end is for melody bundles" in capsys.readouterr().err


def test_the_length_message_names_the_flag_and_the_unit(main, capsys):
    assert main(["generate", "lyrics", "--json", "--length", "100000"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "error: --length must be between 1 and 2000 characters (got 100000); SEQGEN_MAX_LENGTH sets the cap." in err


def test_generating_a_melody_imports_no_tensorflow(workdir):
    """A bundle's weights are read with h5py and the sampler is NumPy: generate (tokens, MIDI, audio) never loads
    TensorFlow or Keras, which cost seconds and hundreds of MB in every CLI run and generation worker."""
    argv = ["seqgen", "generate", "music", "--json", "--midi", "x.mid", "--audio", "x.wav", "--length", "8"]
    _, heavy = heavy_modules_after("runpy.run_module('seqgen', run_name='__main__')", argv, cwd=workdir)
    assert heavy == []
    assert (workdir / "x.mid").is_file() and (workdir / "x.wav").is_file()
