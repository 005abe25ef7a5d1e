"""What one default melody request costs the studio: sampling alone, until audio plays, and every output.

    python bench/serving.py [--bundle checkpoints/bach-timed] [--runs 7] [--json]
    python bench/serving.py --insight [--lyrics-bundle checkpoints/songs-poems-embed] [--runs 7] [--json]

Runs the Melody tab's own handlers (studio/melody.py) on the shipped default
model with the default settings (100 tokens, one melody): ``run_melody`` is
the first phase (tokens, MIDI, WAV: the audio is playable when it returns),
``describe_melody`` the follow-up (piano roll, sheet music, quality report).
Prints medians over ``--runs`` runs, after one warm-up run (model, SoundFont,
music21 and verovio loaded), each in process CPU milliseconds (all threads;
FluidSynth runs in-process) and wall milliseconds:

- ``sample_ms``: the bundle's sampler drawing 100 tokens alone;
- ``audio_ready_ms``: ``run_melody``;
- ``total_ms``: ``run_melody`` + ``describe_melody``;

and ``audio_ready_x`` / ``total_x``, their ratio to ``sample_ms`` (the targets:
at most 8 and 15).

``--insight`` measures instead what the explanation strip and the cells add
to a default request of each tab (target: at most 20 %).  Each run makes one
melody (``run_melody`` + ``describe_melody``) and one verse (``run_lyrics``)
without the insight (``studio.insight.GENERATION_OPTIONS`` emptied) and with
it (the sampler keeps each step's candidates and the top layer's hidden
states, then the follow-up ``studio.insight`` event makes the strip, ranks the
cells and draws the best one).  Whole requests vary by tens of milliseconds on
a shared machine, so the added CPU is measured on the two parts that differ:
the sampler with and without ``explain``/``record`` (same seeds; the median of
paired differences), and the follow-up.  It prints ``{melody,lyrics}_ms`` (a request without),
``…_with_insight_ms`` (with, follow-up included), ``…_sampling_added_ms``,
``…_follow_up_ms``, ``…_insight_ms`` (their sum) and ``…_insight_share``
(added / without).
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def timed(function, *args, **kwargs) -> tuple[object, float, float]:
    """(result, CPU ms, wall ms) of one call."""
    cpu, wall = time.process_time(), time.perf_counter()
    result = function(*args, **kwargs)
    return result, (time.process_time() - cpu) * 1000, (time.perf_counter() - wall) * 1000


def no_progress(*args, **kwargs) -> None:
    """Stands in for gr.Progress outside a request."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", default=str(ROOT / "checkpoints" / "bach-timed"))
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--insight", action="store_true", help="measure what the explanation strip and the cells add")
    parser.add_argument("--lyrics-bundle", default=str(ROOT / "checkpoints" / "songs-poems-embed"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="seqgen-bench-serving-") as folder:
        # The studio lists bundles from SEQGEN_CHECKPOINTS: give it these alone.
        for bundle_folder in [Path(args.bundle)] + ([Path(args.lyrics_bundle)] if args.insight else []):
            shutil.copytree(bundle_folder.resolve(), Path(folder) / "checkpoints" / bundle_folder.resolve().name)
        os.environ["SEQGEN_CHECKPOINTS"] = str(Path(folder) / "checkpoints")
        # The handlers' work runs in threads of this process (not studio.pool's workers), so its CPU is counted.
        os.environ["SEQGEN_GENERATION_WORKERS"] = "0"
        tempfile.tempdir = folder  # where the handlers make their output folders
        if args.insight:
            report(insight_costs(args.runs), args.json)
            return

        from seqgen.primers import melody_primer
        from studio import bundles, melody

        label = bundles.list_bundles("music")[0].label
        loaded = bundles.load(bundles.find(label, "music"))
        inputs = dict(bundle=label, primer_source=melody.PRIMERS[0], primer_file=None, primer_tokens="", length=100,
                      temperature=1.0, top_k=0, top_p=1.0, repetition_penalty=1.0, variations=1, tempo=120, instrument=0)
        figures = {name: [] for name in ("sample", "audio_ready", "total")}
        for run in range(args.runs + 1):
            primer = melody_primer(loaded, None, run)
            _, sample_cpu, sample_wall = timed(loaded.sampler.generate, primer, 100, None, rng_seed=run)
            first, ready_cpu, ready_wall = timed(melody.run_melody, **inputs, rng_seed=run, progress=no_progress)
            _, describe_cpu, describe_wall = timed(melody.describe_melody, first[-1], progress=no_progress)
            if run == 0:
                renderer = first[-1]["output"].melodies[0].renderer
                continue  # warm-up
            figures["sample"].append((sample_cpu, sample_wall))
            figures["audio_ready"].append((ready_cpu, ready_wall))
            figures["total"].append((ready_cpu + describe_cpu, ready_wall + describe_wall))
    results = {}
    for name, pairs in figures.items():
        results[f"{name}_ms"] = round(statistics.median(cpu for cpu, _ in pairs), 1)
        results[f"{name}_wall_ms"] = round(statistics.median(wall for _, wall in pairs), 1)
    results["audio_ready_x"] = round(results["audio_ready_ms"] / results["sample_ms"], 2)
    results["total_x"] = round(results["total_ms"] / results["sample_ms"], 2)
    results.update(runs=args.runs, renderer=renderer, cpus=os.cpu_count())
    if args.json:
        print(json.dumps(results))
        return
    for name in figures:
        print(f"{name:12s} CPU {results[name + '_ms']:8.1f} ms   wall {results[name + '_wall_ms']:8.1f} ms")
    print(f"audio ready at {results['audio_ready_x']}× sampling (target ≤ 8), everything at {results['total_x']}× (target ≤ 15); "
          f"renderer {renderer}")


def insight_costs(runs: int) -> dict:
    """Median CPU of one default melody and one default verse request, and what the insight views add to each."""
    from seqgen.primers import melody_primer
    from studio import bundles, insight, lyrics, melody

    options = dict(insight.GENERATION_OPTIONS)
    labels = {kind: bundles.list_bundles(kind)[0].label for kind in ("music", "lyrics")}
    loaded = {kind: bundles.load(bundles.find(label, kind)) for kind, label in labels.items()}
    melody_inputs = dict(bundle=labels["music"], primer_source=melody.PRIMERS[0], primer_file=None, primer_tokens="", length=100,
                         temperature=1.0, top_k=0, top_p=1.0, repetition_penalty=1.0, variations=1, tempo=120, instrument=0)
    show = {"music": insight.make_show("music"), "lyrics": insight.make_show("lyrics")}

    def request(kind: str, seed: int):
        """The tab's own handlers; returns the state its views follow."""
        if kind == "music":
            first = melody.run_melody(**melody_inputs, rng_seed=seed, progress=no_progress)
            melody.describe_melody(first[-1], progress=no_progress)
            return first[-1]
        *_, last = lyrics.run_lyrics(labels["lyrics"], lyrics.DEFAULT_SEED_LINE, 400, 0, False, 0.8, seed)
        return last[-1]

    def sample(kind: str, seed: int, fields: dict) -> None:
        primer = melody_primer(loaded[kind], None, seed) if kind == "music" else lyrics.DEFAULT_SEED_LINE
        loaded[kind].sampler.generate(primer, 100 if kind == "music" else 400, None, rng_seed=seed, **fields)

    cpu = {(kind, part): [] for kind in labels for part in ("request", "with", "show", "sampling_added")}
    for run in range(runs + 1):
        for kind in labels:
            insight.GENERATION_OPTIONS.clear()
            _, request_cpu, _ = timed(request, kind, run)
            insight.GENERATION_OPTIONS.update(options)
            state, with_cpu, _ = timed(request, kind, run)
            _, show_cpu, _ = timed(show[kind], state)
            # The sampler alone, without and with explain/record, three pairs a run: the median of paired
            # differences follows the other engineers' load less than a difference of medians would.
            added = []
            for repeat in range(3):
                _, sample_cpu, _ = timed(sample, kind, run, {})
                _, explained_cpu, _ = timed(sample, kind, run, options)
                added.append(explained_cpu - sample_cpu)
            if run:  # run 0 warms up: models, SoundFont, music21, verovio, plotly
                for part, spent in (("request", [request_cpu]), ("with", [with_cpu + show_cpu]), ("show", [show_cpu]),
                                    ("sampling_added", added)):
                    cpu[kind, part].extend(spent)
    results = {}
    for kind, name in (("music", "melody"), ("lyrics", "lyrics")):
        median = {part: statistics.median(cpu[kind, part]) for part in ("request", "with", "show", "sampling_added")}
        added = median["sampling_added"] + median["show"]
        results.update({f"{name}_ms": round(median["request"], 1), f"{name}_with_insight_ms": round(median["with"], 1),
                        f"{name}_sampling_added_ms": round(median["sampling_added"], 1),
                        f"{name}_follow_up_ms": round(median["show"], 1), f"{name}_insight_ms": round(added, 1),
                        f"{name}_insight_share": round(added / median["request"], 3)})
    return {**results, "runs": runs, "cpus": os.cpu_count()}


def report(results: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(results))
        return
    for name in ("melody", "lyrics"):
        print(f"{name:7s} request CPU {results[name + '_ms']:6.1f} ms ({results[name + '_with_insight_ms']:.1f} with the insight); "
              f"the insight adds {results[name + '_sampling_added_ms']:.1f} ms sampling + {results[name + '_follow_up_ms']:.1f} ms "
              f"follow-up = {results[name + '_insight_share']:.0%} (target ≤ 20 %)")


if __name__ == "__main__":
    main()
