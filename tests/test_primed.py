"""seqgen.primed: the primer heard before the melody, in one WAV."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile

from seqgen.generate import generate_melody
from seqgen.primed import primer_first


@pytest.fixture(scope="module")
def output(music_bundle, tmp_path_factory):
    folder = tmp_path_factory.mktemp("primed")
    primer = ["C4", "E4", "G4", "C5"]  # seed tokens: one quarter note each, 2 s at 120 bpm
    return generate_melody(music_bundle, folder, length=8, primer=primer, variations=2, rng_seed=1, renderer="builtin")


def test_the_primer_plays_first_then_the_melody(output):
    paths = primer_first(output)
    assert [path.name for path in paths] == ["melody-1-primed.wav", "melody-2-primed.wav"]
    primer, rate = soundfile.read(str(paths[0].parent / "primer.wav"))
    for path, melody in zip(paths, output.melodies):
        joined, joined_rate = soundfile.read(str(path))
        alone, _ = soundfile.read(str(melody.wav))
        start = int(2.0 * rate)  # where the primer's four quarter notes end
        assert joined_rate == rate and len(joined) == max(len(primer), start + len(alone))
        assert np.allclose(joined[:start], primer[:start], atol=2 / 32768)  # the primer alone at first
        assert np.sqrt(np.mean(np.square(joined[start:]))) > 1e-3  # then sound


def test_nothing_to_put_first(output):
    rests = type(output)(output.melodies, ["R_4"], {}, {}, {**output.settings, "tokenizer": "timed"})
    assert primer_first(rests) == [melody.wav for melody in output.melodies]  # a primer of rests adds nothing
