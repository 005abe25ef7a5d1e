"""The primer before its continuation: one WAV where the primer plays and the generated melody follows.

The primer is written and rendered once per request, then mixed in front of
each melody's own WAV at the moment the primer ends (its last note rings on
under the first generated note), so a listener hears how the melody goes on.
Mixing samples costs far less than rendering primer and melody again.

    paths = primer_first(output)   # one path (or None: no audio) per melody
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seqgen.errors import SeqgenError


def primer_first(output) -> list[Path | None]:
    """Write ``melody-N-primed.wav`` beside each melody's WAV: the primer, then the melody.

    Args:
        output: a :class:`seqgen.generate.MelodyOutput` of the first phase.

    Returns:
        One path per melody; the melody's own WAV when the primer has no
        notes, None when the melody has no audio.
    """
    import soundfile

    from seqgen.audio import render
    from seqgen.music import REST, duration_quarters, write_midi

    settings, melodies = output.settings, output.melodies
    rendered = [melody for melody in melodies if melody.wav]
    tokenizer = settings["tokenizer"]
    if not rendered or all(token.rpartition("_")[0] == REST for token in output.primer):  # nothing to hear
        return [melody.wav for melody in melodies]
    folder = rendered[0].wav.parent
    midi = write_midi(output.primer, folder / "primer.mid", tokenizer, settings["tempo_bpm"], settings["instrument_program"])
    primer_wav = render(midi, folder / "primer.wav", renderer=rendered[0].renderer or "auto").wav_path
    primer, rate = soundfile.read(str(primer_wav), dtype="float32")
    start = int(round(duration_quarters(output.primer, tokenizer) * 60.0 / settings["tempo_bpm"] * rate))
    paths = []
    for melody in melodies:
        if not melody.wav:
            paths.append(None)
            continue
        samples, melody_rate = soundfile.read(str(melody.wav), dtype="float32")
        if melody_rate != rate:
            raise SeqgenError(f"{melody.wav.name} is at {melody_rate} Hz but the primer at {rate} Hz: they cannot be joined.")
        mixed = np.zeros(max(len(primer), start + len(samples)), dtype=np.float32)
        mixed[:len(primer)] += primer
        mixed[start:start + len(samples)] += samples
        path = melody.wav.with_name(f"{melody.wav.stem}-primed.wav")
        soundfile.write(str(path), np.clip(mixed, -1.0, 1.0), rate, subtype="PCM_16", format="WAV")
        paths.append(path)
    return paths
