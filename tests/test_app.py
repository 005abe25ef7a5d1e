"""The studio (studio/app.py, launched as ``python app.py``) end to end: the real server on 127.0.0.1, driven with gradio_client.

A session fixture starts ``python app.py`` in a subprocess with its own
``SEQGEN_CHECKPOINTS``, ``SEQGEN_STUDIO_DIR`` and temp folder, and meanwhile
copies the shipped bundles (``checkpoints/``) into that checkpoints folder and
the session's shared debug bundles (tests/conftest.py) beside them, as
``debug-music`` and ``debug-lyrics``.  The first melody and lyrics calls use
the shipped models; the rest use the debug ones, whose tiny vocabularies the
assertions know.  The browser test reuses it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 120


@dataclass
class Studio:
    url: str
    root: Path
    process: subprocess.Popen
    log: Path

    def client(self):
        from gradio_client import Client

        return Client(self.url, verbose=False, download_files=str(self.root / "downloads"), analytics_enabled=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the studio exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url + "/gradio_api/info", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the studio did not start in {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")


_shared: dict = {"users": 0}  # one server for the session, also when test_browser.py imports this fixture


def start_studio(root: Path, debug_bundles) -> Studio:
    """Start the server, then fill its checkpoints folder while it starts.

    ``debug_bundles()`` gives the shared debug bundle folders (it may train them first).
    """
    for name in ("checkpoints", "tmp", "gradio", "downloads"):
        (root / name).mkdir()
    port = free_port()
    env = dict(os.environ, SEQGEN_CHECKPOINTS=str(root / "checkpoints"), SEQGEN_STUDIO_DIR=str(root / "studio"),
               TMPDIR=str(root / "tmp"), GRADIO_TEMP_DIR=str(root / "gradio"), GRADIO_ANALYTICS_ENABLED="False",
               PYTHONWARNINGS="ignore", PYTHONUNBUFFERED="1", SEQGEN_MAX_FILE_SIZE="1mb",
               SEQGEN_GENERATION_WORKERS="1")  # one worker process: the real path, at the least CPU
    env.pop("GRADIO_SERVER_NAME", None)
    log = root / "server.log"
    with open(log, "wb") as output:
        process = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=REPO_ROOT, env=env,
                                   stdout=output, stderr=subprocess.STDOUT)
    studio = Studio(f"http://127.0.0.1:{port}", root, process, log)
    try:
        for shipped in sorted((REPO_ROOT / "checkpoints").iterdir()):
            shutil.copytree(shipped, root / "checkpoints" / shipped.name)
        for name, folder in debug_bundles().items():  # while the server starts
            shutil.copytree(folder, root / "checkpoints" / name)
        wait_until_up(studio.url, process, log)
    except BaseException:
        stop_studio(studio)
        raise
    return studio


def stop_studio(studio: Studio) -> None:
    studio.process.terminate()
    try:
        studio.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        studio.process.kill()


@pytest.fixture(scope="session")
def studio(tmp_path_factory, isolated_seqgen_env, request):
    """The running studio (started once per session, stopped after its last user)."""
    def debug_bundles() -> dict:
        return {"debug-music": request.getfixturevalue("music_bundle_dir"),
                "debug-events": request.getfixturevalue("events_bundle_dir"),
                "debug-lyrics": request.getfixturevalue("lyrics_bundle_dir")}

    if "studio" not in _shared:
        _shared["studio"] = start_studio(tmp_path_factory.mktemp("studio"), debug_bundles)
    _shared["users"] += 1
    yield _shared["studio"]
    _shared["users"] -= 1
    if _shared["users"] == 0:
        stop_studio(_shared.pop("studio"))


@pytest.fixture(scope="session")
def client(studio):
    return studio.client()


def plot_figure(update) -> dict:
    """The plotly figure (its JSON) that a ``gr.Plot`` output holds."""
    value = update["value"] if isinstance(update, dict) and "__type__" in update else update
    assert isinstance(value, dict) and value.get("type") == "plotly", value
    return json.loads(value["plot"])


def plot_values(array) -> list:
    """A plotly JSON array as a list (plotly writes numpy arrays as base64 ``bdata``)."""
    if isinstance(array, dict) and "bdata" in array:
        import base64

        import numpy as np

        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"]).tolist()
    return list(array)


def app_error(callable_, *args, **kwargs) -> str:
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as caught:
        callable_(*args, **kwargs)
    return str(caught.value)


TRAIN_ARGS = dict(corpus="chopin", uploads=None, text_column="", kind="music", preset="debug", tokenizer="seed", epochs=1,
                  batch_size=None, loss="preset default", optimizer="preset default", learning_rate=None, max_windows=200,
                  window=8, min_count=1, filter_mode="exact")
MELODY_ARGS = dict(bundle="debug-music", primer_source="random seed window", primer_file=None, primer_tokens="", length=100,
                   temperature=1.0, top_k=0, top_p=1.0, repetition_penalty=1.0, variations=1, rng_seed=7, tempo=120,
                   instrument=0, mode="auto")


# --- start-up ------------------------------------------------------------------------------


def test_import_is_fast_and_lazy():
    """Building the demo imports neither TensorFlow nor music21."""
    code = "import sys, app; print(sorted(m for m in ('tensorflow', 'keras', 'music21') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, PYTHONWARNINGS="ignore"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_opening_the_page_lists_the_models_on_disk(client):
    """The page's load event (what a browser runs when the page opens) gives both Play lists their current models."""
    melody_list, melody_notice, lyrics_list, lyrics_notice = client.predict(api_name="/open_page")
    assert "debug-music" in [choice[1] for choice in melody_list["choices"]], melody_list
    assert "debug-lyrics" in [choice[1] for choice in lyrics_list["choices"]], lyrics_list
    assert melody_notice["visible"] is False and lyrics_notice["visible"] is False


def test_every_tab_has_its_endpoint(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    for name in ("/explore", "/train", "/study", "/generate_melody", "/describe_melody", "/complete_lyrics", "/models", "/stop_training"):
        assert name in endpoints


# --- Explore ---------------------------------------------------------------------------------


def test_explore_chopin(client):
    from seqgen.music import display_token

    report, summary, first, counts, ranks, top, *_ = client.predict(
        corpus="chopin", uploads=None, text_column="", tokenizer="seed", min_count=10, filter_mode="exact", window=40,
        api_name="/explore")
    assert report["corpus"] == "chopin" and report["kind"] == "music"
    assert len(report["first_tokens"]) == 50 and first.split() == [display_token(token) for token in report["first_tokens"]]
    assert report["sequences"] == max(0, report["tokens_after_filter"] - 40)
    assert "fewer than 10 times" in summary and f"**{report['rare_tokens']:,}**" in summary
    # The count plot: one bar per distinct token (chopin has fewer than the plot's 300), most frequent
    # first, adding up to the whole corpus.
    bars = plot_figure(counts)["data"][0]
    assert bars["type"] == "bar" and len(bars["x"]) == report["vocab_size"] < 300
    assert bars["y"] == sorted(bars["y"], reverse=True) and sum(bars["y"]) == report["tokens_total"]
    # The top-tokens plot: the report's top 20 (with ♭ and ♯), least frequent at the bottom, every bar labelled.
    top_figure = plot_figure(top)
    top_bars = top_figure["data"][0]
    assert list(zip(top_bars["y"], top_bars["x"])) == [(display_token(token), count) for token, count in report["top_tokens"]][::-1]
    assert top_figure["layout"]["yaxis"]["ticktext"] == top_bars["y"]
    # Counts by rank on log axes: one dot per distinct token, most frequent first, and the min-count line.
    rank_figure = plot_figure(ranks)
    dots, line = rank_figure["data"]
    assert plot_values(dots["y"]) == bars["y"] and plot_values(dots["x"]) == list(range(1, len(bars["y"]) + 1))
    assert plot_values(line["y"]) == [10, 10] and rank_figure["layout"]["yaxis"]["type"] == "log"


def test_explore_events_plots_pitch_duration_and_position(client):
    report, summary, first, *_, event_types = client.predict(
        corpus="chopin", uploads=None, text_column="", tokenizer="events", min_count=None, filter_mode="exact", window=40,
        api_name="/explore")
    assert report["tokenizer"] == "events" and report["min_count"] == 1 and report["tokens_after_filter"] == report["tokens_total"]
    assert first.split()[:2] == ["start", "bar"]  # a piece's start, then its first bar line, as people read them
    figure = plot_figure(event_types)
    assert [trace["type"] for trace in figure["data"]] == ["bar"] * 3
    pitches, durations, positions = (plot_values(trace["y"]) for trace in figure["data"])
    assert sum(pitches) == sum(durations) > 0  # every note has one pitch and one duration
    assert figure["data"][2]["x"][0] == "beat 1" and sum(positions) > 0


def test_explore_reference_filter_keeps_some_rare_tokens(client):
    def explore(filter_mode):
        report, *_ = client.predict(corpus="chopin", uploads=None, text_column="", tokenizer="seed", min_count=5,
                                    filter_mode=filter_mode, window=40, api_name="/explore")
        return report

    reference, exact = explore("reference"), explore("exact")
    assert reference["filter"] == "reference" and exact["filter"] == "exact"
    assert reference["rare_tokens"] == exact["rare_tokens"] > 0
    assert exact["rare_left"] == 0
    # The reference's loop removes items from the list it iterates over, so it skips some rare tokens.
    assert 0 < reference["rare_left"] <= reference["rare_tokens"]
    assert reference["tokens_after_filter"] > exact["tokens_after_filter"]


def test_explore_lyrics_upload_reports_charsets(client, tmp_path):
    from gradio_client import handle_file

    verses = tmp_path / "verses.txt"
    verses.write_text("Caf\u00e9 at night \u2014 we dance\u2026 \u266a\nla la la\n" * 30, encoding="utf-8")
    report, summary, first, *_rest = client.predict(
        corpus="chopin", uploads=[handle_file(str(verses))], text_column="", tokenizer="seed", min_count=1,
        filter_mode="exact", window=40, api_name="/explore")
    charset = _rest[-3]  # then the skipped files and the events figure
    assert report["kind"] == "lyrics" and report["corpus"] == "verses"
    assert "\u266a" in report["removed_chars"]
    assert "Removed" in (charset["value"] if isinstance(charset, dict) else charset)


def test_explore_bad_input(client):
    message = app_error(client.predict, corpus="chopin", uploads=None, text_column="", tokenizer="seed", min_count=10**9,
                        filter_mode="exact", window=40, api_name="/explore")
    # The studio names its own field, not the command line's --min-count, and says how low to go.
    assert "min-count 1000000000 removed every token" in message and "Lower min-count to" in message and "--" not in message
    message = app_error(client.predict, corpus="/etc", uploads=None, text_column="", tokenizer="seed", min_count=1,
                        filter_mode="exact", window=40, api_name="/explore")
    assert "Unknown corpus '/etc'" in message


# --- Train and Models -----------------------------------------------------------------------


def test_train_streams_curves_and_the_bundle_is_listed(client):
    job = client.submit(**TRAIN_ARGS, model_name="my tune", api_name="/train")
    status, curves, result = job.result(timeout=180)
    streamed = job.outputs()[:-1]  # the updates before the final one
    assert any(isinstance(output[1], dict) and "training loss" in output[1].get("plot", "") for output in streamed)
    assert any("epoch 1/1" in output[0] for output in streamed)
    assert result["bundle"] == "studio/my-tune" and result["epochs"] == 1
    assert "Saved **studio/my-tune**" in status
    table, card, figure, config = client.predict(selected="studio/my-tune", api_name="/models")
    names = [row[0] for row in table["data"]]
    assert {"studio/my-tune", "debug-music", "debug-lyrics"} <= set(names)
    assert card.splitlines()[0] == "# my-tune" and "preset `debug`" in card and "| epochs | 1 |" in card
    assert config["preset"] == "debug" and config["corpus"]["name"] == "chopin"
    curves = plot_figure(figure)  # the run's training curves: one point per trace, the epoch
    assert {trace["name"] for trace in curves["data"]} == {
        "training loss", "validation loss", "training accuracy", "validation accuracy", "unigram baseline"}
    assert all(trace["x"] == [1] for trace in curves["data"])
    assert curves["layout"]["title"]["text"].startswith("studio/my-tune: best epoch 1, val loss")


def test_a_taken_model_name_gets_a_suffix_and_names_stay_plain(tmp_path):
    from studio.common import reserve_folder, safe_name

    assert safe_name("my tune", "fallback") == "my-tune"
    assert safe_name("../../etc/passwd", "fallback") == "etc-passwd"  # never a path
    assert safe_name(" .hidden ", "fallback") == "hidden" and safe_name("", "chopin-embed") == "chopin-embed"
    first, second = reserve_folder(tmp_path, "my-tune"), reserve_folder(tmp_path, "my-tune")
    assert (first.name, second.name, reserve_folder(tmp_path, "my-tune").name) == ("my-tune", "my-tune-2", "my-tune-3")


def test_forms_left_at_their_defaults_ask_for_the_model_recommended_sampling():
    from seqgen.sampling import SamplingOptions
    from studio.common import sampling_options

    assert sampling_options(1.0, 0, 1.0, 1.0, kind="music") is None and sampling_options(0.8, "", None, 1, kind="lyrics") is None
    assert sampling_options(0.8, 0, 1.0, 1.0, kind="music") == SamplingOptions(temperature=0.8)  # another kind's default is a choice
    assert sampling_options(1.0, 0, 0.9, 1.0, kind="music") == SamplingOptions(temperature=1.0, top_p=0.9)
    assert sampling_options(1.0, 0, 1.0, 1.0) == SamplingOptions()  # without a kind: exactly the fields


def test_train_bad_input(client):
    message = app_error(client.predict, **{**TRAIN_ARGS, "learning_rate": -1}, model_name="bad", api_name="/train")
    assert "Learning rate must be a positive number" in message
    message = app_error(client.predict, **{**TRAIN_ARGS, "kind": "lyrics"}, model_name="bad", api_name="/train")
    assert "is music, but the model kind is lyrics" in message
    # Found by the training process, worded by the studio: its field, not the CLI flag the process would print.
    message = app_error(client.predict, **{**TRAIN_ARGS, "min_count": 10**6}, model_name="bad", api_name="/train")
    assert "min-count 1000000 removed every token" in message and "lower min-count to" in message and "--" not in message


def test_models_bad_input(client):
    assert "not found" in app_error(client.predict, selected="no-such-model", api_name="/models")


def test_study_runs_the_grid_and_highlights_the_best(client):
    job = client.submit(corpus="songs-poems", uploads=None, text_column="", kind="lyrics", preset="debug", tokenizer="seed",
                        losses=["categorical_crossentropy"], optimizers=["adam", "sgd"], epochs=1, max_windows=100,
                        batch_size=None, window=8, min_count=1, filter_mode="exact", api_name="/study")
    status, figure, table, best, files = job.result(timeout=180)
    assert table["visible"] and files["visible"]  # shown with the results
    table, files = table["value"], files["value"]
    assert status.startswith("Done: 2 runs")
    assert [row[:2] for row in table["data"]] == [["categorical_crossentropy", "adam"], ["categorical_crossentropy", "sgd"]]
    assert "Best:" in best and "background-color" in str(table.get("metadata"))
    assert {Path(path).name for path in files} == {"results.csv", "results.json", "curves.html"}
    streamed = [output[1] for output in job.outputs()[:-1] if isinstance(output[1], dict) and "plot" in output[1]]
    assert any("categorical_crossentropy-adam training accuracy" in plot["plot"] for plot in streamed)


def test_study_bad_input(client):
    message = app_error(client.predict, corpus="songs-poems", uploads=None, text_column="", kind="lyrics", preset="debug",
                        tokenizer="seed", losses=["categorical_crossentropy"], optimizers=["rmsprop"], epochs=1,
                        max_windows=100, batch_size=None, window=8, min_count=1, filter_mode="exact", api_name="/study")
    assert "Unknown optimizer 'rmsprop'" in message


# --- Melody ---------------------------------------------------------------------------------


def audio_path(update) -> str:
    value = update["value"] if isinstance(update, dict) and "__type__" in update else update
    return value["path"] if isinstance(value, dict) else value


def test_generate_melody_plays_before_the_score_exists_then_describe_adds_it(studio):
    import json

    import music21
    import numpy as np
    import soundfile

    client = studio.client()  # its own session: describe_melody reads this session's last melodies
    assert "Generate a melody first" in app_error(client.predict, api_name="/describe_melody")
    outputs = client.predict(**{**MELODY_ARGS, "bundle": "bach-timed"}, api_name="/generate_melody")  # the default model
    assert len(outputs) == 7  # four players, downloads, tokens, summary: no piano roll, score or report yet
    first = outputs[0]
    from seqgen.audio import find_soundfont, fluidsynth_available

    fluidsynth = fluidsynth_available() and find_soundfont() is not None
    renderer = "FluidSynth" if fluidsynth else "the built-in synth"
    assert f"Melody 1: primer first, rendered with {renderer}" in outputs[6]  # the summary says what the player plays
    data, rate = soundfile.read(audio_path(first))
    assert audio_path(first).endswith(".wav") and rate == 22050
    assert len(data) > rate and float(np.sqrt(np.mean(np.square(data)))) > 1e-3  # over a second of sound, not silent
    assert audio_path(first).endswith("-primed.wav")  # the primer plays first
    files = outputs[4]
    assert sorted(Path(path).name for path in files) == ["melody-1-primed.wav", "melody-1.json", "melody-1.mid", "melody-1.wav"]
    params = json.loads(Path(next(path for path in files if path.endswith(".json"))).read_text(encoding="utf-8"))
    assert "quality" not in params  # the second phase has not run
    generated = outputs[5].split(": ", 1)[1].replace("♭", "-").replace("♯", "#").split()  # the page shows ♭ and ♯
    assert len(generated) == 100 and all("_" in token for token in generated)  # timed tokens: pitches_steps
    assert params["tokens"] == generated
    from seqgen.music import tokenize_file

    midi = next(path for path in files if path.endswith(".mid"))
    assert len(music21.converter.parse(midi).flatten().notes) > 0
    # The MIDI file holds the printed melody: the same notes and chords with the same durations, in order
    # (rests are the gaps between notes, so only they can come back merged or dropped).
    pitched = [token for token in tokenize_file(Path(midi), "timed") if not token.startswith("R_")]
    assert pitched == [token for token in generated if not token.startswith("R_")]

    files, quality, *views = client.predict(api_name="/describe_melody")
    rolls, sheets = views[:4], views[4:]
    assert sorted(Path(path).name for path in files) == ["melody-1-primed.wav", "melody-1.json", "melody-1.mid",
                                                         "melody-1.musicxml", "melody-1.wav"]
    # The quality report is the one of these tokens against the bundle's corpus.
    from seqgen.bundle import load_bundle
    from seqgen.quality import melody_report

    shipped = load_bundle(REPO_ROOT / "checkpoints" / "bach-timed")
    expected = melody_report(generated, shipped.vocab.encode(generated), shipped.stats["pitch_class_histogram"], shipped.corpus_ids)
    assert quality["melody 1"] == pytest.approx(expected)
    assert quality["melody 1"]["tokens"] == 100 and 0.0 <= quality["melody 1"]["pitch_class_distance"] <= 1.0
    assert rolls[0]["visible"] and rolls[0]["value"]["type"] == "plotly" and not rolls[1]["visible"]
    assert [trace["name"] for trace in plot_figure(rolls[0])["data"]] == ["primer", "generated"]
    assert sheets[0]["visible"] and "<svg" in sheets[0]["value"] and not sheets[1]["visible"]


def test_melody_variations_and_token_primer(client):
    outputs = client.predict(**{**MELODY_ARGS, "variations": 2, "primer_source": "tokens", "primer_tokens": "C4 E4 G4 X9",
                                "length": 20}, api_name="/generate_melody")
    assert audio_path(outputs[0]) and audio_path(outputs[1]) and outputs[2] is None and outputs[3] is None
    assert "X9" in outputs[6]  # the summary names the unknown primer token


def test_melody_primer_from_an_uploaded_midi(client, tmp_path):
    from gradio_client import handle_file

    from seqgen.music import write_midi

    primer = write_midi(["C4", "E4", "G4", "C5", "G4", "E4"] * 2, tmp_path / "primer.mid", "seed")
    outputs = client.predict(**{**MELODY_ARGS, "primer_source": "uploaded MIDI", "primer_file": handle_file(str(primer)),
                                "length": 16}, api_name="/generate_melody")
    assert "Primer (8 tokens): `G4 E4 C4 E4 G4 C5 G4 E4`" in outputs[6]  # the file's last window (8) of notes
    missing = app_error(client.predict, **{**MELODY_ARGS, "primer_source": "uploaded MIDI"}, api_name="/generate_melody")
    assert "Upload a MIDI" in missing


def test_melody_without_the_primer_first(client):
    outputs = client.predict(**{**MELODY_ARGS, "length": 8, "play_primer": False}, api_name="/generate_melody")
    assert audio_path(outputs[0]).endswith("melody-1.wav") and "Melody 1: rendered with" in outputs[6]
    files, quality, *views = client.predict(api_name="/describe_melody")
    assert [trace["name"] for trace in plot_figure(views[0])["data"]] == ["notes"]


def test_melody_messages_name_the_fields_and_the_models_tokens(client):
    message = app_error(client.predict, **{**MELODY_ARGS, "length": 100000}, api_name="/generate_melody")
    assert "Length must be between 0 and 2,000 tokens (got 100,000)" in message and "SEQGEN_MAX_LENGTH" not in message
    typed = {"primer_source": "tokens", "primer_tokens": "  "}
    assert "seed tokens, e.g. C4 E4 G4 4.7.11" in app_error(client.predict, **{**MELODY_ARGS, **typed}, api_name="/generate_melody")
    message = app_error(client.predict, **{**MELODY_ARGS, **typed, "bundle": "bach-timed"}, api_name="/generate_melody")
    assert "timed tokens, e.g. C4_4 E4_4 G4_4" in message


def test_an_events_model_writes_whole_pieces_with_every_view(studio):
    client = studio.client()
    outputs = client.predict(**{**MELODY_ARGS, "bundle": "debug-events", "length": 0, "until_end": True, "variations": 2},
                             api_name="/generate_melody")
    # The one-epoch toy model may end a piece before its first note: then the summary says there is no audio.
    assert all(audio_path(player) or "has no notes" in outputs[6] for player in outputs[:2])
    assert outputs[6].count("the model ended the piece after") + outputs[6].count("had not ended the piece at the cap") == 2
    assert "Primer (1 tokens): `start`" in outputs[6]
    files, quality, *views = client.predict(api_name="/describe_melody")
    rolls, sheets = views[:4], views[4:]
    assert rolls[0]["visible"] and sheets[0]["visible"] and "<svg" in sheets[0]["value"]
    assert quality["melody 1"]["key_consistency"] is not None
    # A model that never learned endings writes its length, and says why there is no end.
    outputs = client.predict(**{**MELODY_ARGS, "length": 0, "until_end": True}, api_name="/generate_melody")
    assert "This model never learned where pieces end (seed tokens), so it wrote 100 tokens" in outputs[6]


def test_melody_bad_input(client):
    assert "Tempo must be between 20 and 400 bpm" in app_error(client.predict, **{**MELODY_ARGS, "tempo": 5}, api_name="/generate_melody")
    assert "less than minimum" in app_error(client.predict, **{**MELODY_ARGS, "temperature": -1}, api_name="/generate_melody")
    assert "not found" in app_error(client.predict, **{**MELODY_ARGS, "bundle": "../../etc"}, api_name="/generate_melody")
    assert "lyrics" in app_error(client.predict, **{**MELODY_ARGS, "bundle": "debug-lyrics"}, api_name="/generate_melody")


# --- Lyrics ---------------------------------------------------------------------------------


LYRICS_ARGS = dict(bundle="debug-lyrics", seed_line="Let's dance for the rest of the night \u266a", length=80, lines=0,
                   stop_at_verse_end=False, temperature=0.8, rng_seed=3, top_k=0, top_p=1.0, repetition_penalty=1.0)


def test_complete_lyrics_with_the_shipped_model(client):
    from seqgen.generate import DEFAULT_SEED_LINE

    args = {**LYRICS_ARGS, "bundle": "songs-poems-embed", "seed_line": DEFAULT_SEED_LINE, "length": 400}
    completion, plain, quality, dropped = client.predict(**args, api_name="/complete_lyrics")
    assert plain.startswith(DEFAULT_SEED_LINE) and len(plain) == len(DEFAULT_SEED_LINE) + 400
    assert quality["words"] > 40 and quality["known_word_share"] > 0.5
    assert dropped.startswith("Every character of the seed is in the model's vocabulary.")
    assert "RNG seed `3`" in dropped


def test_complete_lyrics(client, lyrics_bundle):
    from seqgen.quality import lyrics_report

    completion, plain, quality, dropped = client.predict(**LYRICS_ARGS, api_name="/complete_lyrics")
    assert 'class="seqgen-seed"' in completion and "font-weight:700" in completion
    seed = "lets dance for the rest of the night "  # lower case; the tiny corpus has neither an apostrophe nor a note
    assert plain.startswith(seed) and len(plain) == len(seed) + LYRICS_ARGS["length"]
    assert "\u266a" in dropped and "'" in dropped
    # The quality report is the continuation's, against the bundle's corpus words.
    assert quality == lyrics_report(plain[len(seed):], set(lyrics_bundle.stats["words"]))


def test_lyrics_escape_html(client):
    completion, *_ = client.predict(**{**LYRICS_ARGS, "seed_line": "<b>dance</b> & sing"}, api_name="/complete_lyrics")
    assert "<b>" not in completion


def test_lyrics_bad_input(client):
    assert "The seed line is empty" in app_error(client.predict, **{**LYRICS_ARGS, "seed_line": "   "}, api_name="/complete_lyrics")
    message = app_error(client.predict, **{**LYRICS_ARGS, "length": 100000}, api_name="/complete_lyrics")
    assert "Length must be between 1 and 2,000 characters (got 100,000)" in message


# --- concurrency ---------------------------------------------------------------------------


def job_processes(parent_pid: int) -> list[int]:
    """Process ids of the training jobs (``python -m seqgen.jobs``) that ``parent_pid`` started."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent_pid and "seqgen.jobs" in command:
            found.append(int(entry.name))
    return found


def test_generation_stays_responsive_while_training_and_survives_a_killed_run(studio, client):
    """8 simultaneous melodies all succeed while a long training job runs; kill -9 of the job leaves the server up."""
    import signal

    from seqgen.bundle import load_bundle

    trainer = studio.client()
    job = trainer.submit(**{**TRAIN_ARGS, "epochs": 500, "max_windows": None}, model_name="long run", api_name="/train")
    deadline = time.monotonic() + 90
    while not any(output[0] and "best val loss" in output[0] for output in job.outputs()):  # an epoch was saved
        assert time.monotonic() < deadline and not job.done(), "training did not start"
        time.sleep(0.3)
    waiting = studio.client().submit(**TRAIN_ARGS, model_name="waiting", api_name="/train")  # one training at a time
    generators = [studio.client() for _ in range(2)]
    jobs = [generators[number % 2].submit(**{**MELODY_ARGS, "length": 32, "rng_seed": number}, api_name="/generate_melody")
            for number in range(8)]
    results = [item.result(timeout=120) for item in jobs]
    for result in results:
        assert Path(audio_path(result[0])).is_file() and Path(audio_path(result[0])).stat().st_size > 1000
        assert len(result[5].split(": ", 1)[1].split()) == 32
    assert not job.done(), "the training job should still be running"
    from gradio_client.utils import Status

    assert waiting.status().code == Status.IN_QUEUE and not waiting.outputs()
    (pid,) = job_processes(studio.process.pid)  # training runs in a process of its own, not in the server
    os.kill(pid, signal.SIGKILL)
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match=r"The training process ended unexpectedly \(exit code -9\)"):
        job.result(timeout=120)
    assert httpx.get(studio.url + "/gradio_api/info", timeout=5).status_code == 200
    assert load_bundle(studio.root / "studio" / "models" / "long-run").config["best"]["epoch"] >= 1
    assert waiting.result(timeout=120)[2]["bundle"] == "studio/waiting"  # it ran once the first one ended


# --- security --------------------------------------------------------------------------------


def test_file_route_refuses_etc_passwd(studio):
    for path in ("/gradio_api/file=/etc/passwd", "/file=/etc/passwd", "/gradio_api/file=../../../../etc/passwd",
                 "/gradio_api/file=%2Fetc%2Fpasswd"):
        response = httpx.get(studio.url + path, timeout=10)
        assert response.status_code != 200 or "root:" not in response.text, path


def test_file_route_serves_neither_source_nor_models(studio):
    for path in (REPO_ROOT / "app.py", studio.root / "checkpoints" / "debug-music" / "config.json"):
        response = httpx.get(f"{studio.url}/gradio_api/file={path}", timeout=10)
        assert response.status_code != 200, path


def test_uploads_over_the_limit_are_refused(studio):
    """The test server runs with SEQGEN_MAX_FILE_SIZE=1mb (app.py --max-file-size)."""
    big = {"files": ("big.txt", b"la " * 700_000, "text/plain")}
    assert httpx.post(studio.url + "/gradio_api/upload", files=big, timeout=30).status_code == 413
    small = {"files": ("small.txt", b"la la la\n", "text/plain")}
    assert httpx.post(studio.url + "/gradio_api/upload", files=small, timeout=30).status_code == 200


def test_server_survived(studio):
    assert studio.process.poll() is None
    assert httpx.get(studio.url + "/gradio_api/info", timeout=5).status_code == 200



# --- defaults and without any model --------------------------------------------------------


def test_generation_tabs_open_with_the_shipped_models(monkeypatch, tmp_path):
    from studio import lyrics, melody

    monkeypatch.setenv("SEQGEN_CHECKPOINTS", str(REPO_ROOT / "checkpoints"))
    monkeypatch.setenv("SEQGEN_STUDIO_DIR", str(tmp_path / "studio"))
    (music, notice), (verses, _) = melody.refresh(), lyrics.refresh()
    labels = dict((name, label) for label, name in music["choices"] + verses["choices"])
    assert music["value"] == "bach-chorales" and not notice["visible"] and verses["value"] == "songs-poems-embed"
    # Each model says what it is, from its own metrics.
    assert labels["bach-timed"] == "bach-timed — recommended, with rhythm, 5 epochs, well below the unigram baseline"
    assert labels["bach-chorales"].startswith("bach-chorales — recommended, every voice, whole pieces, ")
    assert labels["mozart-seed"].startswith("mozart-seed — reference architecture, pitches only, ")
    assert labels["songs-poems-seed"].startswith("songs-poems-seed — reference architecture, ")
    # A reference model says what the report's own run reached.
    assert labels["mozart-seed"].endswith("(the report: 200 epochs)")
    assert labels["songs-poems-seed"].endswith("(the report: about 50 % accuracy)")
    # The primer box's placeholder is in the chosen model's token format; the examples are tokens the models know.
    assert melody.primer_format("mozart-seed")["placeholder"] == "C4 E4 G4 4.7.11"
    assert melody.primer_format("bach-timed")["placeholder"] == melody.PRIMER_EXAMPLES["timed"]
    for name, tokenizer in (("bach-timed", "timed"), ("bach-chorales", "events")):
        known = set(json.loads((REPO_ROOT / "checkpoints" / name / "vocab.json").read_text())["tokens"])
        assert set(melody.PRIMER_EXAMPLES[tokenizer].split()) <= known and set(melody.EXAMPLE_PRIMERS[tokenizer].split()) <= known

    assert melody.refresh("mozart-seed")[0]["value"] == "mozart-seed"  # a user's pick survives a refresh



def test_generation_tabs_without_models_say_train_first(tmp_path, monkeypatch):
    """No bundle yet: the tabs show a notice and generating says where to go (handlers called in process)."""
    import gradio as gr

    from studio import lyrics, melody

    monkeypatch.setenv("SEQGEN_CHECKPOINTS", str(tmp_path / "none"))
    monkeypatch.setenv("SEQGEN_STUDIO_DIR", str(tmp_path / "studio"))
    dropdown, notice = melody.refresh()
    assert dropdown["choices"] == [] and notice["visible"] and "train a model in the Train tab first" in notice["value"]
    with pytest.raises(gr.Error, match="train a model in the Train tab first"):
        melody.run_melody(**MELODY_ARGS, progress=lambda *args, **kwargs: None)
    with pytest.raises(gr.Error, match="train a model in the Train tab first"):
        list(lyrics.run_lyrics(**LYRICS_ARGS))  # a generator: it raises when run


def test_user_errors_are_logged_in_one_line_and_real_ones_with_their_traceback(caplog):
    import gradio as gr

    from seqgen.errors import SeqgenError
    from studio.common import user_errors

    @user_errors
    def explore(kind):
        if kind == "user":
            raise SeqgenError("{--min-count} 100 removed every token:\nlower {--min-count} to 3.")
        raise KeyError("bug")

    with pytest.raises(gr.Error) as user:
        explore("user")
    (record,) = caplog.records
    assert record.getMessage() == "explore: min-count 100 removed every token: lower min-count to 3." and record.exc_info is None
    assert not user.value.print_exception  # Gradio prints no traceback either
    caplog.clear()
    with pytest.raises(gr.Error, match="Unexpected error"):
        explore("bug")
    (record,) = caplog.records
    assert record.exc_info is not None and record.exc_info[0] is KeyError


def test_inputs_that_do_not_apply_are_hidden():
    from studio import explore, melody

    assert [update["visible"] for update in melody.primer_inputs("random seed window")] == [False, False]
    assert [update["visible"] for update in melody.primer_inputs("uploaded MIDI")] == [True, False]
    assert [update["visible"] for update in melody.primer_inputs("tokens")] == [False, True]
    csv_column, tokenizer = explore.inputs_that_apply("mozart", None)
    assert (csv_column["visible"], tokenizer["visible"]) == (False, True)
    csv_column, tokenizer = explore.inputs_that_apply("songs-poems", None)
    assert (csv_column["visible"], tokenizer["visible"]) == (False, False)
    csv_column, tokenizer = explore.inputs_that_apply("mozart", ["/tmp/songs.CSV"])
    assert (csv_column["visible"], tokenizer["visible"]) == (True, False)


def test_lyrics_stream_into_the_page_as_they_are_sampled(monkeypatch, tmp_path, lyrics_bundle_dir):
    from studio import lyrics

    monkeypatch.setenv("SEQGEN_CHECKPOINTS", str(lyrics_bundle_dir.parent))
    monkeypatch.setenv("SEQGEN_STUDIO_DIR", str(tmp_path / "studio"))
    monkeypatch.setattr(lyrics, "STREAM_EVERY_S", 0.005)  # the tiny test model writes 2000 characters in a blink
    updates = list(lyrics.run_lyrics(**{**LYRICS_ARGS, "bundle": lyrics_bundle_dir.name, "length": 2000}))
    *partial, final = updates
    assert partial, "nothing was streamed before the end"
    completion, plain, quality, dropped, generated = final
    assert quality["words"] > 0 and "Dropped from the seed" in dropped
    assert len(generated["output"].steps[0]) == len(generated["output"].texts[0])  # for the views under the tab (studio.insight)
    # Each update shows more of the same verse: what was sampled so far, after the seed as typed.
    seed, cleaned = LYRICS_ARGS["seed_line"], "lets dance for the rest of the night "
    streamed = [update[1] for update in partial]
    assert all(text.startswith(seed) for text in streamed)
    assert all(len(first) < len(second) for first, second in zip(streamed, streamed[1:]))
    assert all(plain[len(cleaned):].startswith(text[len(seed):]) for text in streamed)
    # The report comes last; meanwhile plain values (no gr.skip(), whose config rebuild costs the server per piece).
    assert all(update[2] is None and update[3] == lyrics.STREAMING for update in partial)


def test_the_queue_is_bounded(monkeypatch):
    from studio import common

    assert common.queue_size() == common.DEFAULT_QUEUE_SIZE == 64
    monkeypatch.setenv("SEQGEN_QUEUE_SIZE", "3")
    assert common.queue_size() == 3
    monkeypatch.setenv("SEQGEN_QUEUE_SIZE", "lots")
    with pytest.raises(SystemExit, match="SEQGEN_QUEUE_SIZE must be a positive whole number"):
        common.queue_size()


def test_the_studio_keeps_the_models_copy_guard_under_the_users_sampling(music_bundle_dir):
    from dataclasses import replace

    from seqgen.bundle import load_bundle
    from seqgen.sampling import SamplingOptions
    from studio import bundles

    bundle = load_bundle(music_bundle_dir)
    assert bundles.with_copy_guard(bundle, {"sampling": None}) == {"sampling": None}  # untouched: the model's settings
    guarded = replace(bundle, recommended_sampling={"settings": {"temperature": 0.8, "max_copy": 16}})
    options = bundles.with_copy_guard(guarded, {"sampling": SamplingOptions(temperature=1.2), "length": 5})
    assert options == {"sampling": SamplingOptions(temperature=1.2, max_copy=16), "length": 5}
