"""seqgen.audio: MIDI -> WAV with in-process FluidSynth or the built-in synthesizer, the length cap, and OGG compression."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import soundfile

from conftest import MULTITRACK_PIANO, write_multitrack_midi
from seqgen import audio, fluid, synth
from seqgen.errors import SeqgenError
from seqgen.music import write_midi

EIGHT_NOTES = ["C4", "D4", "E4", "F4", "G4", "A4", "B4", "C5"]  # 8 quarters = 4 s at 120 bpm
RELEASE_ALLOWANCE = 1.0  # release tail plus padding the builtin renderer may add (s)

needs_fluidsynth = pytest.mark.skipif(
    not (audio.fluidsynth_available() and audio.find_soundfont() is not None),
    reason="FluidSynth or a General MIDI SoundFont is missing (apt-get install fluidsynth fluid-soundfont-gm; pip install pyfluidsynth)",
)


def read(path):
    data, rate = soundfile.read(str(path), always_2d=True)
    return data, rate


def rms(data) -> float:
    return float(np.sqrt(np.mean(np.asarray(data, dtype=float) ** 2)))


@pytest.fixture
def melody_midi(tmp_path):
    return write_midi(EIGHT_NOTES, tmp_path / "melody.mid", "seed", tempo_bpm=120)


@pytest.fixture
def no_user_soundfont(monkeypatch):
    monkeypatch.delenv(audio.SOUNDFONT_ENV, raising=False)


@pytest.fixture
def fake_fluidsynth(tmp_path, monkeypatch):
    """Pretend FluidSynth and a SoundFont exist; ``fake_fluidsynth(make)`` makes ``make(notes, rate)`` its samples."""
    soundfont = tmp_path / "fake.sf2"
    soundfont.write_bytes(b"RIFF\x04\x00\x00\x00sfbk")
    monkeypatch.setenv(audio.SOUNDFONT_ENV, str(soundfont))
    monkeypatch.setattr(fluid, "unavailable_reason", lambda: None)

    def install(make_samples):
        monkeypatch.setattr(fluid, "play", lambda notes, soundfont, sample_rate: make_samples(notes, sample_rate))

    return install


# --- the built-in synthesizer -------------------------------------------------------------


def test_builtin_renders_expected_duration_and_is_audible(melody_midi, tmp_path):
    result = audio.render(melody_midi, tmp_path / "out.wav", renderer="builtin")
    assert result.renderer == "builtin"
    assert result.fallback_reason is None
    data, rate = read(result.wav_path)
    assert (rate, data.shape[1]) == (audio.DEFAULT_SAMPLE_RATE, 1) == (22050, 1)
    seconds = data.shape[0] / rate
    assert result.seconds == pytest.approx(seconds)
    assert 4.0 <= seconds <= 4.0 + RELEASE_ALLOWANCE
    assert rms(data) > 0.05
    assert np.max(np.abs(data)) <= 1.0
    assert result.wav_path.stat().st_mode & 0o777 == 0o644  # an ordinary output, not a private temporary file


@pytest.mark.parametrize("token, frequency", [("A4", 440.0), ("C4", 261.63), ("E5", 659.26)])
def test_builtin_plays_the_right_pitch(tmp_path, token, frequency):
    midi = write_midi([token] * 4, tmp_path / "pitch.mid", "seed")
    data, rate = read(audio.render(midi, tmp_path / "pitch.wav", renderer="builtin").wav_path)
    segment = data[: rate, 0] * np.hanning(rate)  # one second: 1 Hz resolution
    spectrum = np.abs(np.fft.rfft(segment))
    assert abs(np.argmax(spectrum) - frequency) <= 2


def test_builtin_follows_the_tempo(tmp_path):
    slow = write_midi(EIGHT_NOTES, tmp_path / "slow.mid", "seed", tempo_bpm=60)
    result = audio.render(slow, tmp_path / "slow.wav", renderer="builtin", sample_rate=16000)
    assert 8.0 <= result.seconds <= 8.0 + RELEASE_ALLOWANCE
    assert read(result.wav_path)[1] == 16000


def test_builtin_places_notes_and_rests_in_time(tmp_path):
    # 0-0.5 s a note, 0.5-2.5 s a rest, 2.5-3.0 s a note (120 bpm: a sixteenth is 0.125 s).
    midi = write_midi(["C4_4", "R_16", "G4_4"], tmp_path / "rest.mid", "timed", tempo_bpm=120)
    data, rate = read(audio.render(midi, tmp_path / "rest.wav", renderer="builtin").wav_path)
    first, gap, last = data[: rate // 2], data[int(1.2 * rate): int(2.4 * rate)], data[int(2.5 * rate): 3 * rate]
    assert rms(first) > 0.05 and rms(last) > 0.05
    assert rms(gap) < 1e-3  # silence once the first note's release is over


def test_read_midi_notes_applies_tempo_changes(tmp_path):
    # Conductor track: 90 bpm for 4 quarters, 140 bpm for the next 4, then 70 bpm.
    path = write_multitrack_midi(tmp_path / "multi.mid")

    def seconds(quarters):
        spans = [(0, 4, 90), (4, 8, 140), (8, float("inf"), 70)]
        return sum(max(0.0, min(quarters, end) - start) * 60 / bpm for start, end, bpm in spans)

    notes = synth.read_midi_notes(path)
    piano = sorted((note.start, note.end, note.pitch) for note in notes if note.channel != synth.PERCUSSION_CHANNEL)
    expected = sorted((seconds(start), seconds(start + length), pitch) for pitch, start, length in MULTITRACK_PIANO)
    assert np.allclose([note[:2] for note in piano], [note[:2] for note in expected], atol=1e-6)
    assert [note[2] for note in piano] == [note[2] for note in expected]
    assert any(note.channel == synth.PERCUSSION_CHANNEL for note in notes)
    result = audio.render(path, tmp_path / "multi.wav", renderer="builtin")
    assert seconds(10) <= result.seconds <= seconds(10) + RELEASE_ALLOWANCE


def test_builtin_chords_stay_within_full_scale(tmp_path):
    midi = write_midi(["C3.E3.G3.C4.E4.G4.C5_8", "C4.E4.G4_4"], tmp_path / "chords.mid", "timed")
    data, _ = read(audio.render(midi, tmp_path / "chords.wav", renderer="builtin").wav_path)
    assert 0.5 < np.max(np.abs(data)) <= 1.0


# --- FluidSynth -----------------------------------------------------------------------------


@needs_fluidsynth
def test_fluidsynth_renders_the_melody_in_process(melody_midi, tmp_path, no_user_soundfont, monkeypatch):
    def no_subprocess(*args, **kwargs):
        raise AssertionError("FluidSynth must render in this process")

    monkeypatch.setattr(subprocess, "Popen", no_subprocess)
    result = audio.render(melody_midi, tmp_path / "fs.wav", renderer="fluidsynth")
    assert result.renderer == "fluidsynth"
    assert result.fallback_reason is None
    assert result.soundfont == audio.find_soundfont()
    data, rate = read(result.wav_path)
    assert (rate, data.shape[1]) == (22050, 1)
    assert audio.audio_problem(data) is None
    assert result.seconds == pytest.approx(data.shape[0] / rate)
    assert 4.0 <= result.seconds <= 4.0 + fluid.RELEASE_SECONDS  # the release tail is trimmed, not cut to zero
    assert rms(data) > 0.02
    assert np.max(np.abs(data)) == pytest.approx(synth.PEAK_LEVEL, abs=0.01)
    # The sound follows the notes: the last quarter (3.5-4 s) sounds, and so does the first.
    assert rms(data[: rate // 2]) > 0.02 and rms(data[int(3.5 * rate): 4 * rate]) > 0.02


@needs_fluidsynth
def test_fluidsynth_keeps_one_synthesizer_and_renders_alike_from_many_threads(melody_midi, tmp_path, no_user_soundfont):
    reference = read(audio.render(melody_midi, tmp_path / "reference.wav", renderer="fluidsynth").wav_path)[0][:, 0]
    synthesizer = fluid._loaded["synth"]  # the SoundFont is loaded once per process, not per call

    def render(number):
        return read(audio.render(melody_midi, tmp_path / f"thread-{number}.wav", renderer="fluidsynth").wav_path)[0][:, 0]

    with ThreadPoolExecutor(4) as pool:
        renders = list(pool.map(render, range(8)))
    assert fluid._loaded["synth"] is synthesizer
    for data in renders:
        # Interleaved renders would mix one melody's notes into another's; only a faint reverb tail differs.
        length = min(len(data), len(reference))
        assert abs(len(data) - len(reference)) < 0.05 * 22050
        assert np.corrcoef(data[:length], reference[:length])[0, 1] > 0.999


@needs_fluidsynth
def test_fluidsynth_notes_played_alone_add_up_to_one_pass_through_the_synthesizer(no_user_soundfont):
    """play() sums notes FluidSynth rendered alone and keeps them; the sum is the synthesizer's own one-pass output,
    also where a pitch is struck again while it sounds, on the percussion channel, and across program changes."""
    Note = synth.MidiNote
    notes = [Note(0.0, 2.0, 60, 90, 1, 0), Note(0.5, 1.0, 60, 90, 1, 0),  # struck again: the first voice is released
             Note(0.7, 3.0, 64, 70, 2, 40), Note(0.9, 1.3, 64, 70, 2, 40), Note(1.1, 1.2, 67, 110, 1, 0),
             Note(0.2, 0.3, 36, 100, 10, 0), Note(1.0, 1.0, 38, 100, 10, 0), Note(2.5, 2.5, 62, 80, 1, 0)]
    soundfont, rate = audio.find_soundfont(), 22050
    fluid.play_through(notes, soundfont, rate)  # a first pass with more voices than before differs by 0.3 %; later ones agree
    through = fluid.play_through(notes, soundfont, rate)
    added = fluid.play(notes, soundfont, rate)
    assert added.shape == through.shape and rms(through) > 0.002
    assert rms(added - through) < 1e-5 * rms(through)
    assert np.array_equal(fluid.play(notes, soundfont, rate), added)  # from the kept notes: the same samples
    shifted = [Note(note.start + 0.01, note.end, note.pitch + 2, note.velocity, note.channel, note.program) for note in notes]
    assert rms(fluid.play(shifted, soundfont, rate) - fluid.play_through(shifted, soundfont, rate)) < 1e-5 * rms(through)


@needs_fluidsynth
def test_fluidsynth_keeps_at_most_its_budget_of_notes(no_user_soundfont, monkeypatch):
    soundfont, rate = audio.find_soundfont(), 22050
    scale = [synth.MidiNote(0.25 * step, 0.25 * step + 0.2, 48 + step, 90, 1, 0) for step in range(24)]
    fluid.play(scale[:1], soundfont, rate)
    (_, key), = fluid._sounded(fluid._events(scale[:1], rate))
    one_note = fluid._loaded["notes"][key].nbytes
    monkeypatch.setattr(fluid, "NOTE_CACHE_BYTES", 6 * one_note)
    played = fluid.play(scale, soundfont, rate)
    assert fluid._loaded["note_bytes"] <= 6 * one_note + max(samples.nbytes for samples in fluid._loaded["notes"].values())
    assert len(fluid._loaded["notes"]) < 24
    assert fluid._loaded["note_bytes"] == sum(samples.nbytes for samples in fluid._loaded["notes"].values())
    assert rms(played - fluid.play_through(scale, soundfont, rate)) < 1e-5 * rms(played)  # dropped notes are rendered again


@needs_fluidsynth
def test_fluidsynth_plays_percussion_and_program_changes(tmp_path, no_user_soundfont):
    path = write_multitrack_midi(tmp_path / "multi.mid")
    result = audio.render(path, tmp_path / "multi.wav", renderer="fluidsynth")
    notes = synth.read_midi_notes(path)
    assert result.seconds >= max(note.end for note in notes)
    assert rms(read(result.wav_path)[0]) > 0.02


@needs_fluidsynth
def test_auto_prefers_fluidsynth(melody_midi, tmp_path, no_user_soundfont):
    result = audio.render(melody_midi, tmp_path / "auto.wav")
    assert (result.renderer, result.fallback_reason) == ("fluidsynth", None)


@needs_fluidsynth
def test_real_fluidsynth_with_a_soundfont_env_var(melody_midi, tmp_path, monkeypatch):
    soundfont = audio.find_soundfont()
    monkeypatch.setenv(audio.SOUNDFONT_ENV, str(soundfont))
    result = audio.render(melody_midi, tmp_path / "env.wav")
    assert (result.renderer, result.soundfont) == ("fluidsynth", soundfont)


# --- falling back -------------------------------------------------------------------------------


def test_missing_soundfont_in_env_falls_back_to_builtin(melody_midi, tmp_path, monkeypatch):
    missing = tmp_path / "nowhere" / "missing.sf2"
    monkeypatch.setenv(audio.SOUNDFONT_ENV, str(missing))
    assert audio.find_soundfont() is None
    result = audio.render(melody_midi, tmp_path / "out.wav")
    assert result.renderer == "builtin"
    assert audio.SOUNDFONT_ENV in result.fallback_reason or "fluidsynth" in result.fallback_reason
    if audio.fluidsynth_available():
        assert audio.SOUNDFONT_ENV in result.fallback_reason and "missing.sf2" in result.fallback_reason
    assert rms(read(result.wav_path)[0]) > 0.05
    with pytest.raises(SeqgenError, match="melody.mid"):
        audio.render(melody_midi, tmp_path / "strict.wav", renderer="fluidsynth")


def test_soundfont_env_that_is_not_a_soundfont_falls_back(melody_midi, tmp_path, monkeypatch):
    # FluidSynth given a non-SoundFont quietly loads its default one; seqgen must not claim it used the file.
    bogus = tmp_path / "bogus.sf2"
    bogus.write_bytes(b"not a soundfont at all" * 100)
    monkeypatch.setenv(audio.SOUNDFONT_ENV, str(bogus))
    monkeypatch.setattr(fluid, "unavailable_reason", lambda: None)
    result = audio.render(melody_midi, tmp_path / "out.wav")
    assert result.renderer == "builtin"
    assert "bogus.sf2" in result.fallback_reason and "not a SoundFont" in result.fallback_reason


def test_missing_pyfluidsynth_falls_back(melody_midi, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "fluidsynth", None)  # as if pyfluidsynth were not installed
    assert not audio.fluidsynth_available()
    result = audio.render(melody_midi, tmp_path / "out.wav")
    assert result.renderer == "builtin"
    assert "pip install pyfluidsynth" in result.fallback_reason
    assert rms(read(result.wav_path)[0]) > 0.05
    with pytest.raises(SeqgenError, match="melody.mid: cannot render with FluidSynth: pyfluidsynth is not installed"):
        audio.render(melody_midi, tmp_path / "strict.wav", renderer="fluidsynth")


@needs_fluidsynth
def test_a_soundfont_fluidsynth_cannot_load_falls_back(melody_midi, tmp_path, monkeypatch):
    broken = tmp_path / "broken.sf2"
    broken.write_bytes(b"RIFF\x04\x00\x00\x00sfbk")  # the header and nothing else
    monkeypatch.setenv(audio.SOUNDFONT_ENV, str(broken))
    result = audio.render(melody_midi, tmp_path / "out.wav")
    assert result.renderer == "builtin"
    assert "could not load the SoundFont" in result.fallback_reason and "broken.sf2" in result.fallback_reason


@pytest.mark.parametrize("make_samples, problem", [
    (lambda notes, rate: np.zeros(0, dtype=np.float32), "no samples"),
    (lambda notes, rate: np.full(4 * rate, np.nan, dtype=np.float32), "invalid NaN/inf"),
    (lambda notes, rate: np.zeros(4 * rate, dtype=np.float32), "silent"),
])
def test_bad_fluidsynth_output_falls_back_to_builtin(melody_midi, tmp_path, fake_fluidsynth, make_samples, problem):
    fake_fluidsynth(make_samples)
    result = audio.render(melody_midi, tmp_path / "out.wav")
    assert result.renderer == "builtin"
    assert "FluidSynth output was unusable" in result.fallback_reason and problem in result.fallback_reason
    data, rate = read(result.wav_path)
    assert 4.0 <= data.shape[0] / rate <= 4.0 + RELEASE_ALLOWANCE
    assert rms(data) > 0.05
    with pytest.raises(SeqgenError, match=problem):
        audio.render(melody_midi, tmp_path / "strict.wav", renderer="fluidsynth")
    assert not (tmp_path / "strict.wav").exists()


def test_good_fake_fluidsynth_output_is_trimmed_and_normalised(melody_midi, tmp_path, fake_fluidsynth):
    def make(notes, rate):  # quiet audio with 2 s of trailing silence, as FluidSynth's release time leaves
        tone = 0.05 * np.sin(np.arange(int(4.2 * rate)) / 10.0)
        return np.concatenate([tone, np.zeros(2 * rate)]).astype(np.float32)

    fake_fluidsynth(make)
    result = audio.render(melody_midi, tmp_path / "out.wav")
    assert result.renderer == "fluidsynth"
    data, rate = read(result.wav_path)
    assert 4.2 <= data.shape[0] / rate <= 4.5
    assert np.max(np.abs(data)) == pytest.approx(synth.PEAK_LEVEL, abs=0.01)


# --- the length cap -------------------------------------------------------------------------------


@pytest.mark.parametrize("renderer", ["auto", "builtin"])
def test_audio_past_the_limit_is_not_rendered(melody_midi, tmp_path, renderer):
    with pytest.raises(audio.AudioTooLong, match=r"melody.mid lasts 4 s, longer than the 3 s audio limit"):
        audio.render(melody_midi, tmp_path / "out.wav", renderer=renderer, max_seconds=3)
    assert not (tmp_path / "out.wav").exists()
    assert audio.render(melody_midi, tmp_path / "out.wav", renderer=renderer, max_seconds=5).seconds >= 4.0


def test_the_audio_limit_comes_from_the_environment(melody_midi, tmp_path, monkeypatch):
    assert audio.max_audio_seconds() == audio.DEFAULT_MAX_AUDIO_SECONDS == 180.0
    monkeypatch.setenv(audio.MAX_AUDIO_ENV, "2.5")
    assert audio.max_audio_seconds() == 2.5 and audio.max_audio_seconds(10) == 10.0
    with pytest.raises(audio.AudioTooLong, match=audio.MAX_AUDIO_ENV):
        audio.render(melody_midi, tmp_path / "out.wav")
    for bad in ("three minutes", "0", "-5", "nan"):
        monkeypatch.setenv(audio.MAX_AUDIO_ENV, bad)
        with pytest.raises(SeqgenError, match=audio.MAX_AUDIO_ENV):
            audio.max_audio_seconds()


# --- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize("renderer", ["auto", "builtin", "fluidsynth"])
def test_non_midi_input_names_the_file(tmp_path, renderer):
    text = tmp_path / "notes.txt"
    text.write_text("C4 D4 E4\n")
    with pytest.raises(SeqgenError, match="notes.txt"):
        audio.render(text, tmp_path / "out.wav", renderer=renderer)
    assert not (tmp_path / "out.wav").exists()


def test_broken_empty_and_missing_midi_files(tmp_path):
    truncated = tmp_path / "truncated.mid"
    truncated.write_bytes(b"MThd\x00\x00\x00\x06garbage")
    empty = tmp_path / "empty.mid"
    empty.write_bytes(b"")
    for path in (truncated, empty, tmp_path / "missing.mid"):
        with pytest.raises(SeqgenError, match=path.name):
            audio.render(path, tmp_path / "out.wav", renderer="builtin")


def test_midi_without_notes(tmp_path):
    rests = write_midi(["R_4"], tmp_path / "rests.mid", "timed")
    with pytest.raises(SeqgenError, match="rests.mid: .*no notes"):
        audio.render(rests, tmp_path / "out.wav")


def test_unknown_renderer(melody_midi, tmp_path):
    with pytest.raises(SeqgenError, match="Unknown renderer"):
        audio.render(melody_midi, tmp_path / "out.wav", renderer="timidity")


# --- compression --------------------------------------------------------------------------------


def test_compress_to_ogg_keeps_the_duration(melody_midi, tmp_path):
    if audio.compressed_format() != "ogg":
        pytest.skip(f"this libsndfile ({soundfile.__libsndfile_version__}) cannot write OGG Vorbis")
    wav = audio.render(melody_midi, tmp_path / "out.wav", renderer="builtin")
    compressed = audio.compress(wav.wav_path, tmp_path / "web" / "melody.ogg")
    assert (compressed.format, compressed.mime_type) == ("ogg", "audio/ogg")
    assert compressed.path == tmp_path / "web" / "melody.ogg"
    info = soundfile.info(str(compressed.path))
    assert (info.format, info.subtype) == ("OGG", "VORBIS")
    data, rate = read(compressed.path)
    assert data.shape[0] / rate == pytest.approx(wav.seconds, abs=0.05)
    assert rms(data) > 0.05
    assert compressed.path.stat().st_size < wav.wav_path.stat().st_size / 3
    assert compressed.path.stat().st_mode & 0o777 == 0o644


def test_compress_mp3_when_supported(melody_midi, tmp_path):
    if "MP3" not in soundfile.available_formats():
        pytest.skip("this libsndfile cannot write MP3")
    wav = audio.render(melody_midi, tmp_path / "out.wav", renderer="builtin")
    compressed = audio.compress(wav.wav_path, audio_format="mp3")
    assert (compressed.path.suffix, compressed.mime_type) == (".mp3", "audio/mpeg")
    data, rate = read(compressed.path)
    assert data.shape[0] / rate == pytest.approx(wav.seconds, abs=0.1)


def test_compress_rejects_a_non_audio_file(tmp_path):
    if audio.compressed_format() is None:
        pytest.skip("no lossy format available")
    text = tmp_path / "notes.wav"
    text.write_text("not audio")
    with pytest.raises(SeqgenError, match="notes.wav"):
        audio.compress(text)


def test_loading_fluidsynth_prints_nothing_on_stdout_even_on_ci():
    """pyfluidsynth prints where it found libfluidsynth when CI is set; stdout must stay clean for the CLI's JSON."""
    import os
    import sys

    code = "from seqgen import fluid; fluid.unavailable_reason()"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "CI": "true"}, cwd=str(audio.__file__).rsplit("/seqgen/", 1)[0])
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
