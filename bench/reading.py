"""Read a folder of piano MIDI files cold: the ``events`` tokenizer against ``seed`` (and ``timed``); REMI against TSD.

    python bench/reading.py [--repeats 5] [--workers N] [--bach-files 0] [--json]

Issue 24 asks that reading a folder cold with ``events`` take at most a
twentieth of the time ``seed`` takes, measured in one run.  Nothing is
downloaded: before any timing, 21 keyboard and multi-part scores of music21's
bundled corpus (``PIECES``: 12 for piano alone, 6 for voices or an instrument
with piano, a piano trio, an SATB hymn and a trio sonata) are written to MIDI
with music21 into a temporary folder, a user's folder of MIDI files.

* ``cold``: ``load_corpus(folder, tokenizer=T, cache=TokenCache(empty folder),
  workers=W)`` for T in ``seed``, ``timed`` and ``events``, each in a fresh
  Python process (the way a user's first ``seqgen explore``/``train`` runs: the
  lazy imports of music21 or miditok and the tokenizer's construction count)
  with a new empty cache folder, timed inside that process around the call.
  The order of the tokenizers is reversed on every other repeat; the figures
  are medians, and ``ratio_seed_over_events`` compares medians of the same run
  (``..._process``: the same with each whole child process, interpreter start
  and seqgen's import included).
  W defaults to ``os.cpu_count()`` (the default of ``load_corpus``); ``seed``
  and ``timed`` parse in that many spawned processes, ``events`` reads MIDI in
  the calling process.
* ``parts``: symusic's reading alone (``symusic.Score(path)`` for the 21
  files), and miditok's encoding alone (``seqgen.events.encode_piece`` on the
  read scores), both in this process after a first untimed pass; and music21's
  parsing alone (``music21.converter.parse`` of the 21 MIDI files in one
  process, once, without the tokens).
* ``remi_vs_tsd``: on the ``bach`` corpus (read through ``read_pieces`` and
  ``merged``: one track a piece, as the ``events`` tokenizer sees it) and on the
  piano folder, the project's REMI (``seqgen.events.remi()``) against a
  ``miditok.TSD`` built from a copy of the same ``TokenizerConfig``: tokens per
  piece (miditok's output, without the ``BOS``/closing ``Bar``/``EOS`` that
  seqgen adds to either), tokens per note, vocabulary size and the distinct
  tokens the corpus uses.  The bach scores are read with music21 in a process
  pool (not timed).

Prints one JSON object (``--json``) or one ``key: value`` line per figure.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from multiprocessing import get_context
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

TOKENIZERS = ("seed", "timed", "events")

# music21 corpus paths (relative to music21/corpus), piano alone first.
PIECES = (
    # piano alone (12)
    "joplin/maple_leaf_rag.mxl",
    "chopin/mazurka06-2.krn",
    "mozart/k545/movement1_exposition.mxl",
    "bach/bwv846.mxl",
    "cpebach/h186.mxl",
    "schumann_clara/polonaise_op1n1.mxl",
    "schumann_clara/polonaise_op1n2.mxl",
    "schumann_clara/polonaise_op1n3.mxl",
    "schumann_clara/polonaise_op1n4.mxl",
    "schoenberg/opus19/movement2.mxl",
    "schoenberg/opus19/movement6.mxl",
    "verdi/laDonnaEMobile.mxl",
    # voices or an instrument with piano (6)
    "schumann_robert/dichterliebe_no2.xml",
    "schubert/Lindenbaum.xml",
    "handel/rinaldo/Lascia_chio_pianga.mxl",
    "beach/prayer_of_a_tired_child.musicxml",
    "liliuokalani/aloha_oe.mxl",
    "weber/concertino_clarinet.mxl",
    # other multi-part scores (3): piano trio, SATB hymn, trio sonata
    "schumann_clara/opus17/movement3.xml",
    "johnson_j_r/lift_every_voice.mxl",
    "corelli/opus3no1/1grave.xml",
)

# Run in a fresh interpreter: one cold read, timed around load_corpus only.
COLD_CHILD = """
import json, sys, tempfile, time
sys.path.insert(0, sys.argv[1])
from seqgen.cache import TokenCache
from seqgen.corpus import load_corpus
folder, tokenizer, workers = sys.argv[2], sys.argv[3], int(sys.argv[4])
with tempfile.TemporaryDirectory(prefix="seqgen-bench-reading-") as cache_dir:
    start = time.perf_counter()
    corpus = load_corpus(folder, tokenizer=tokenizer, cache=TokenCache(cache_dir), workers=workers)
    seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "pieces": corpus.items,
                  "tokens": len(corpus.tokens), "skipped": len(corpus.skipped)}))
"""


def music21_corpus_dir() -> Path:
    import music21

    return Path(music21.__file__).resolve().parent / "corpus"


def strip_repeats(score) -> None:
    """Remove repeat bar lines, brackets and expressions: the score is played once through."""
    from music21 import bar, repeat, spanner

    for measure in score.recurse().getElementsByClass("Measure"):
        for side in ("leftBarline", "rightBarline"):
            if isinstance(getattr(measure, side), bar.Repeat):
                setattr(measure, side, None)
    for element in list(score.recurse().getElementsByClass((repeat.RepeatExpression, spanner.RepeatBracket))):
        element.activeSite.remove(element)


def build_folder(folder: Path) -> list[dict]:
    """Write each of ``PIECES`` to ``folder`` as MIDI with music21; one record per file.  music21's MIDI writer
    expands repeats; a score whose repeats it cannot expand (the Chopin mazurka) is written played once through."""
    import symusic
    from music21 import converter
    from music21.repeat import ExpanderException

    root = music21_corpus_dir()
    records = []
    for number, relative in enumerate(PIECES, 1):
        score = converter.parse(str(root / relative))
        target = folder / f"{number:02d}-{relative.replace('/', '_').rsplit('.', 1)[0]}.mid"
        try:
            score.write("midi", fp=str(target))
            repeats = "expanded"
        except ExpanderException:
            strip_repeats(score)
            score.write("midi", fp=str(target))
            repeats = "removed"
        read = symusic.Score(str(target))
        records.append({
            "source": relative, "midi": target.name, "parts": len(score.parts), "repeats": repeats, "bytes": target.stat().st_size,
            "notes": sum(len(track.notes) for track in read.tracks),
        })
    return records


def cold_read(folder: Path, tokenizer: str, workers: int) -> dict:
    """One cold ``load_corpus`` in a fresh Python process (see ``COLD_CHILD``)."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", COLD_CHILD, str(REPO_ROOT), str(folder), tokenizer, str(workers)],
                          capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - started
    return result


def time_parts(files: list[Path], repeats: int) -> dict:
    """symusic reading alone, miditok encoding alone (medians), music21 parsing alone (once)."""
    import symusic
    from music21 import converter

    from seqgen.events import encode_piece

    scores = [symusic.Score(str(path)) for path in files]  # untimed first pass (file cache, imports)
    for score in scores:
        encode_piece(score)
    reads, encodes = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        scores = [symusic.Score(str(path)) for path in files]
        reads.append(time.perf_counter() - start)
        start = time.perf_counter()
        tokens = [encode_piece(score) for score in scores]
        encodes.append(time.perf_counter() - start)
    start = time.perf_counter()
    for path in files:
        converter.parse(str(path), forceSource=True)
    music21_s = time.perf_counter() - start
    return {
        "symusic_read_ms": round(1000 * statistics.median(reads), 2),
        "miditok_encode_ms": round(1000 * statistics.median(encodes), 1),
        "events_tokens": sum(len(piece) for piece in tokens),
        "music21_parse_s": round(music21_s, 2),
    }


# -- REMI against TSD ----------------------------------------------------------


@lru_cache(maxsize=1)
def tsd():
    """miditok's TSD with the project's REMI configuration (a copy)."""
    import miditok

    from seqgen.events import remi

    return miditok.TSD(copy.deepcopy(remi().config))


def _tokens(tokenizer, score) -> list[str]:
    sequences = tokenizer.encode(score)
    return list((sequences[0] if isinstance(sequences, list) else sequences).tokens)


def encode_both(one) -> dict | None:
    """REMI and TSD tokens of a one-track score, and its notes on the piano's keys; None without notes."""
    from seqgen.events import PITCH_RANGE, remi

    notes = one.tracks[0].notes.numpy()["pitch"] if len(one.tracks[0].notes) else []
    count = int(sum(1 for pitch in notes if PITCH_RANGE[0] <= pitch < PITCH_RANGE[1]))
    if not count:
        return None
    return {"notes": count, "remi": _tokens(remi(), one), "tsd": _tokens(tsd(), one)}


def encode_file(path: str) -> list[dict]:
    """Worker: ``encode_both`` for every piece of a score file (as the ``events`` tokenizer reads it)."""
    from seqgen.events import merged, read_pieces

    try:
        return [found for piece in read_pieces(Path(path)) if (found := encode_both(merged(piece))) is not None]
    except Exception:  # a file the events tokenizer skips is left out here too
        return []


def compare(pieces: list[dict]) -> dict:
    from seqgen.events import remi

    notes = sum(piece["notes"] for piece in pieces)
    result = {"pieces": len(pieces), "notes": notes}
    for name, tokenizer in (("remi", remi()), ("tsd", tsd())):
        lengths = [len(piece[name]) for piece in pieces]
        result[name] = {
            "tokens": sum(lengths), "tokens_per_piece_mean": round(sum(lengths) / len(pieces), 1),
            "tokens_per_piece_median": statistics.median(lengths), "tokens_per_note": round(sum(lengths) / notes, 3),
            "vocab_size": len(tokenizer.vocab), "distinct_used": len({token for piece in pieces for token in piece[name]}),
        }
    result["tsd_over_remi_tokens"] = round(result["tsd"]["tokens"] / result["remi"]["tokens"], 4)
    return result


def remi_vs_tsd(midi_files: list[Path], bach_limit: int, workers: int) -> dict:
    from seqgen.sources import resolve

    with resolve("bach") as source:
        bach_files = [str(path) for path in source.files]
    if bach_limit:
        bach_files = bach_files[:bach_limit]
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        bach = [piece for found in pool.map(encode_file, bach_files, chunksize=4) for piece in found]
    piano = [piece for path in midi_files for piece in encode_file(str(path))]
    return {"bach": {"files": len(bach_files), **compare(bach)}, "piano_folder": compare(piano)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="cold reads per tokenizer (default 5)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="load_corpus workers (default: CPU count)")
    parser.add_argument("--tokenizers", default=",".join(TOKENIZERS), help="comma-separated, default seed,timed,events")
    parser.add_argument("--bach-files", type=int, default=0, help="REMI/TSD on the first N bach files only (0: all)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    tokenizers = [name.strip() for name in args.tokenizers.split(",") if name.strip()]
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="seqgen-bench-midi-") as temp:
        folder = Path(temp)
        records = build_folder(folder)
        files = sorted(folder.glob("*.mid"))
        runs: dict[str, list[dict]] = {name: [] for name in tokenizers}
        for repeat in range(args.repeats):
            for name in (tokenizers if repeat % 2 == 0 else tokenizers[::-1]):
                runs[name].append(cold_read(folder, name, args.workers))
        parts = time_parts(files, max(5, args.repeats))
        comparison = remi_vs_tsd(files, args.bach_files, args.workers)
    cold = {
        name: {
            "median_s": round(statistics.median(run["seconds"] for run in results), 3),
            "runs_s": [round(run["seconds"], 3) for run in results],
            "process_median_s": round(statistics.median(run["process_s"] for run in results), 3),
            "pieces": results[0]["pieces"], "tokens": results[0]["tokens"], "skipped": results[0]["skipped"],
        }
        for name, results in runs.items()
    }
    result = {
        "folder": {
            "files": len(records), "notes": sum(record["notes"] for record in records),
            "bytes": sum(record["bytes"] for record in records), "pieces": records,
        },
        "workers": args.workers, "repeats": args.repeats, "cold": cold,
    }
    if "events" in cold:
        for name in ("seed", "timed"):
            if name in cold:
                result[f"ratio_{name}_over_events"] = round(cold[name]["median_s"] / cold["events"]["median_s"], 1)
                result[f"ratio_{name}_over_events_process"] = round(
                    cold[name]["process_median_s"] / cold["events"]["process_median_s"], 1)
        result["target_ratio"] = 20
    result["parts"] = parts
    result["remi_vs_tsd"] = comparison
    result["loadavg_before_after"] = [round(load_before[0], 2), round(os.getloadavg()[0], 2)]
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key}: {json.dumps(value)}")


if __name__ == "__main__":
    main()
