"""generate_melody(primer_first=True): the primer heard before the melody, in one WAV, from one rendering."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile

from seqgen.generate import generate_melody

PRIMER = ["C4", "E4", "G4", "C5"]  # seed tokens: one quarter note each, 2 s at 120 bpm


@pytest.fixture(scope="module")
def output(music_bundle, tmp_path_factory):
    folder = tmp_path_factory.mktemp("primed")
    return generate_melody(music_bundle, folder, length=8, primer=PRIMER, variations=2, rng_seed=1, renderer="builtin",
                           primer_first=True)


def test_the_primer_plays_first_then_the_melody(output):
    assert [melody.primed_wav.name for melody in output.melodies] == ["melody-1-primed.wav", "melody-2-primed.wav"]
    for melody in output.melodies:
        joined, rate = soundfile.read(str(melody.primed_wav))
        alone, alone_rate = soundfile.read(str(melody.wav))
        start = int(2.0 * rate)  # where the primer's four quarter notes end
        assert alone_rate == rate and len(joined) == start + len(alone)
        np.testing.assert_array_equal(joined[start:], alone)  # the melody's WAV is the same rendering from the primer's end
        assert np.sqrt(np.mean(np.square(joined[:start]))) > 1e-3  # the primer sounds first
        assert np.sqrt(np.mean(np.square(alone))) > 1e-3


def test_the_primer_first_is_the_primer_alone_at_first(output, music_bundle, tmp_path):
    """The first two seconds are the primer: rendered with another melody after it, they are the same samples."""
    other = generate_melody(music_bundle, tmp_path, length=8, primer=PRIMER, rng_seed=2, renderer="builtin", primer_first=True)
    first, rate = soundfile.read(str(output.melodies[0].primed_wav))
    second, _ = soundfile.read(str(other.melodies[0].primed_wav))
    start = int(1.9 * rate)  # before the last primer note's release meets the melody
    first, second = first[:start] / np.abs(first[:start]).max(), second[:start] / np.abs(second[:start]).max()
    np.testing.assert_allclose(first, second, atol=1e-3)  # each rendering is normalised to its own peak


def test_nothing_to_put_first(music_bundle, tmp_path):
    plain = generate_melody(music_bundle, tmp_path, length=8, primer=PRIMER, rng_seed=1, renderer="builtin")
    assert plain.melodies[0].primed_wav is None  # not asked
