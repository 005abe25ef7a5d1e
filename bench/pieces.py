"""The music a shipped model writes, read back from its MIDI files as a user would get them.

    python bench/pieces.py bach-chorales [--generations 10] [--length 200] [--rng-seed 1] [--json]

Runs ``python -m seqgen generate`` as a user would: ``--length`` tokens from
a random seed window, once per generation (each its own primer), then the
whole pieces with ``--until-end`` in one call.  Every MIDI file is read back with symusic (not with the code
that wrote it) and measured from its notes (:mod:`seqgen.musicality`):

* notes sounding at each onset (the chorales themselves: about 4.3);
* the share of notes inside the best-fitting major or harmonic-minor scale;
* for whole pieces: how many the model ended itself within the cap, and how
  many of those end on the tonic, beside the share of the training corpus's
  pieces that do.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from seqgen.bundle import load_bundle, resolve_bundle  # noqa: E402
from seqgen.evaluate import corpus_pieces  # noqa: E402
from seqgen.musicality import ends_on_tonic, notes_from_midi, notes_of, polyphony  # noqa: E402
from seqgen.quality import scale_fit  # noqa: E402


def generate(bundle: str, folder: Path, *options) -> dict:
    """``seqgen generate BUNDLE --json --out-dir FOLDER OPTIONS`` in a fresh Python, as a user runs it."""
    command = [sys.executable, "-m", "seqgen", "generate", bundle, "--json", "--out-dir", str(folder), *map(str, options)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def in_key(notes: np.ndarray) -> float | None:
    """The share of notes inside the best-fitting major or harmonic-minor scale (each note counted once)."""
    return scale_fit(np.bincount(notes[:, 2].astype(int) % 12, minlength=12)) if len(notes) else None


def measured(report: dict) -> list[np.ndarray]:
    """The notes of every MIDI file a generate report lists, read back by symusic."""
    return [notes_from_midi(Path(files["midi"])) for files in report["files"]]


def mean(values) -> float | None:
    known = [value for value in values if value is not None]
    return round(float(np.mean(known)), 4) if known else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", help="a shipped model's name or a bundle folder")
    parser.add_argument("--generations", type=int, default=10, help="generations of each kind (at most 16)")
    parser.add_argument("--length", type=int, default=200, help="tokens of the fixed-length generations")
    parser.add_argument("--rng-seed", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="seqgen-bench-pieces-") as folder:
        # One primer each (a variation would share its primer with the others): seeds rng_seed, rng_seed + 1, ...
        passages = [generate(args.bundle, Path(folder) / f"passage-{number}", "--length", args.length,
                             "--rng-seed", args.rng_seed + number) for number in range(args.generations)]
        passage_notes = [notes for report in passages for notes in measured(report)]
        pieces = generate(args.bundle, Path(folder) / "pieces", "--variations", args.generations, "--until-end",
                          "--rng-seed", args.rng_seed)
        piece_notes = measured(pieces)
    ended = pieces["ended"]
    bundle = load_bundle(resolve_bundle(args.bundle))
    corpus = [ends_on_tonic(notes_of(piece, bundle.config["tokenizer"])) for piece in corpus_pieces(bundle)]
    result = {
        "bundle": args.bundle, "generations": args.generations, "length": args.length, "rng_seed": args.rng_seed,
        "sampling": {key: pieces["settings"][key] for key in ("temperature", "top_k", "top_p", "repetition_penalty", "max_copy")},
        "passages": {"notes_per_onset": mean(polyphony(notes) for notes in passage_notes),
                     "notes_per_onset_each": [round(polyphony(notes) or 0, 2) for notes in passage_notes],
                     "in_key": mean(in_key(notes) for notes in passage_notes)},
        "pieces": {"cap": pieces["settings"]["length"], "ended": int(sum(ended)), "of": len(ended),
                   "tokens": [len(tokens) for tokens in pieces["tokens"]],
                   "ends_on_tonic": mean(ends_on_tonic(notes) for notes, done in zip(piece_notes, ended) if done),
                   "corpus_ends_on_tonic": mean(corpus), "corpus_pieces": len(corpus),
                   "notes_per_onset": mean(polyphony(notes) for notes in piece_notes),
                   "in_key": mean(in_key(notes) for notes in piece_notes)},
    }
    print(json.dumps(result) if args.json else json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
