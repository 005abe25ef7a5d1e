"""The ``seqgen`` command (also ``python -m seqgen``): every studio action, scriptable, and ``seqgen studio``.

Errors a user can fix are printed as ``error: ...`` with exit status 1;
bad arguments exit with status 2 (argparse).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from pathlib import Path

from seqgen import __version__
from seqgen.corpus import MIN_COUNT_HELP
from seqgen.errors import SeqgenError
from seqgen.music import TOKENIZER_HELP, TOKENIZERS
from seqgen.presets import KINDS, STUDY_LOSSES, STUDY_OPTIMIZERS
from seqgen.progress import TrainingProgress, progress_bar
from seqgen.vocab import FILTER_HELP, FILTERS
from seqgen.windows import SPLITS


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def zip_limits(args):
    """Zip caps from the command line, falling back to the environment defaults."""
    from seqgen.sources import ZipLimits

    given = {"max_files": args.zip_max_files, "max_bytes": args.zip_max_bytes}
    return ZipLimits(**{name: value for name, value in given.items() if value is not None})


def command_corpora(args) -> int:
    from seqgen.sources import BUILTIN_CORPORA, count_items, data_corpora, folder_kind

    rows = []
    for name, corpus in BUILTIN_CORPORA.items():
        rows.append({"name": name, "kind": corpus.kind, "source": "built-in", "items": count_items(name), "description": corpus.description})
    for name, folder in data_corpora().items():
        try:
            rows.append({"name": name, "kind": folder_kind(folder), "source": str(folder), "items": count_items(name), "description": ""})
        except SeqgenError as error:
            rows.append({"name": name, "kind": "?", "source": str(folder), "items": 0, "description": str(error)})
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    for row in rows:
        print(f"{row['name']:<15} {row['kind']:<7} {row['items']:>6} items  {row['description'] or row['source']}")
    return 0


def command_explore(args) -> int:
    from seqgen.corpus import explore, load_corpus

    update, bar = progress_bar(f"parsing {args.corpus}")
    try:
        corpus = load_corpus(
            args.corpus, tokenizer=args.tokenizer, text_column=args.text_column, keep_case=args.keep_case,
            limits=zip_limits(args),
            workers=args.workers, progress=update,
        )
    finally:
        bar.close()
    result = explore(corpus, min_count=args.min_count, filter_mode=args.filter, window=args.window)
    report = result.report
    if args.plots:
        write_plots(result, Path(args.plots))
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=1))
        return 0
    print(f"corpus {report['corpus']} ({report['kind']}, tokenizer {report['tokenizer']}): {report['items']} items")
    print(f"first {len(report['first_tokens'])} tokens: {' '.join(repr(t) if corpus.kind == 'lyrics' else t for t in report['first_tokens'])}")
    print(f"tokens: {report['tokens_total']:,}, distinct: {report['vocab_size']:,}")
    print(f"tokens occurring fewer than {report['min_count']} times: {report['rare_tokens']:,}")
    print(f"filter {report['filter']}: {report['tokens_after_filter']:,} tokens, {report['vocab_after_filter']:,} distinct, {report['rare_left']} rare left")
    print(f"sequences of {report['window']}: {report['sequences']:,}")
    if corpus.kind == "lyrics":
        print(f"characters: {len(report['charset_raw'])} raw, {len(report['charset_clean'])} after cleaning")
        print(f"removed: {' '.join(repr(char) for char in report['removed_chars']) or 'none'}")
    for item in report["skipped"]:
        print(f"skipped {item['file']}: {item['reason']}")
    for warning in report["warnings"]:
        print(f"warning: {warning}")
    return 0


def write_plots(result, folder: Path) -> None:
    """Write the exploration figures as standalone HTML files."""
    from seqgen import plots

    folder.mkdir(parents=True, exist_ok=True)
    figures = {
        "counts": plots.count_plot(result.counts),
        "frequency_kde": plots.frequency_kde(result.counts, result.report["min_count"]),  # the reference's figure
        "rank_frequency": plots.rank_frequency(result.counts, result.report["min_count"]),
        "top_tokens": plots.top_tokens(result.counts),
    }
    if result.report["kind"] == "lyrics":
        figures["characters"] = plots.char_frequencies(result.counts)
    for name, figure in figures.items():
        figure.write_html(folder / f"{name}.html", include_plotlyjs="cdn")


def command_presets(args) -> int:
    from seqgen.presets import KINDS, PRESETS, preset_names

    kinds = [args.kind] if args.kind else list(KINDS)
    presets = [PRESETS[(kind, name)] for kind in kinds for name in preset_names(kind)]
    if args.json:
        print(json.dumps([preset.to_json() for preset in presets], ensure_ascii=False, indent=1))
        return 0
    for preset in presets:
        print(f"{preset.kind:<7} {preset.name:<13} {preset.input_mode:<7} {preset.target_mode:<9} {preset.description}")
    return 0


def command_summary(args) -> int:
    from seqgen.models import build_model, describe_model
    from seqgen.presets import get_preset

    preset = get_preset(args.kind, args.preset)
    print(f"{args.kind} preset {preset.name!r}: {preset.description}")
    print(describe_model(build_model(args.kind, args.preset, args.vocab_size, args.window)))
    return 0


def training_config(args):
    from seqgen.train import TrainConfig

    return TrainConfig(
        kind=args.kind or "music", preset=args.preset, tokenizer=args.tokenizer, window=args.window,
        min_count=args.min_count, filter=args.filter, epochs=args.epochs, batch_size=args.batch_size,
        loss=getattr(args, "loss", None), optimizer=getattr(args, "optimizer", None), learning_rate=args.learning_rate,
        max_windows=args.max_windows, stride=args.stride, validation_fraction=args.validation_fraction, split=args.split, seed=args.seed,
        early_stopping=args.early_stopping, strategy=args.strategy, max_minutes=args.max_minutes,
    )


def load_training_corpus(args, tokenizer: str):
    from seqgen.corpus import load_corpus

    update, bar = progress_bar(f"parsing {args.corpus}")
    try:
        corpus = load_corpus(args.corpus, tokenizer=tokenizer, text_column=args.text_column, keep_case=args.keep_case, progress=update)
    finally:
        bar.close()
    if args.kind and corpus.kind != args.kind:
        raise SeqgenError(f"Corpus {args.corpus!r} is {corpus.kind}, not {args.kind} (--kind).")
    return corpus


def stop_on_interrupt():
    """A StopControl that Ctrl-C sets, so an interrupted run keeps its best checkpoint."""
    import signal

    from seqgen.train import StopControl

    stop = StopControl()

    def handler(signum, frame):
        print("\nstopping after this batch (Ctrl-C again to abort)...", file=sys.stderr)
        stop.stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGINT, handler)
    return stop


def command_train(args) -> int:
    from seqgen.bundle import is_bundle, read_config
    from seqgen.train import train

    out = Path(args.resume or args.out)
    tokenizer = args.tokenizer
    if args.resume:
        if not is_bundle(out):
            raise SeqgenError(f"--resume {out}: no bundle there.")
        tokenizer = read_config(out).get("tokenizer", tokenizer)
    config = training_config(args)
    corpus = load_training_corpus(args, tokenizer if tokenizer != "char" else "seed")
    config.kind = corpus.kind
    config.tokenizer = tokenizer if tokenizer != "char" else "seed"
    result = train(corpus, out, config, listener=TrainingProgress(), stop=stop_on_interrupt(), resume=bool(args.resume), overwrite=args.overwrite)
    best = result.best
    summary = {
        "bundle": str(result.folder), "epochs": len(result.history), "stopped": result.stopped, "seconds": round(result.seconds, 2),
        "parameters": result.parameters, "best_epoch": best.get("epoch"), "val_loss": best.get("val_loss"),
        "val_accuracy": best.get("val_accuracy"), "val_perplexity": best.get("val_perplexity"), "unigram_val_loss": result.unigram_val_loss,
    }
    if args.json:
        print(json.dumps(summary))
    else:
        for key, value in summary.items():
            print(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")
    return 0


def command_study(args) -> int:
    from seqgen.train import run_study

    config = training_config(args)
    corpus = load_training_corpus(args, args.tokenizer)
    config.kind = corpus.kind
    progress = {}

    def listener(event):
        bar = progress.get(event["run"])
        if bar is None:
            bar = progress[event["run"]] = TrainingProgress(f"[{event['run_number']}/{event['runs']} {event['run']}] ")
        bar(event)

    table = run_study(corpus, Path(args.out), config, tuple(args.losses), tuple(args.optimizers), listener=listener,
                      stop=stop_on_interrupt())
    print(table.to_string(index=False) if not args.json else table.to_json(orient="records"))
    print(f"results: {Path(args.out) / 'results.csv'}, curves: {Path(args.out) / 'curves.html'}", file=sys.stderr)
    return 0


def command_generate(args) -> int:
    import shutil
    import tempfile

    from seqgen.bundle import load_bundle, resolve_bundle
    from seqgen.generate import DEFAULT_SEED_LINE, complete_lyrics, describe_melodies, generate_melody, to_json
    from seqgen.sampling import SamplingOptions

    fields = {name: getattr(args, name) for name in ("temperature", "top_k", "top_p", "repetition_penalty", "max_copy")
              if getattr(args, name) is not None}
    SamplingOptions(**fields)  # bad options fail before TensorFlow loads
    bundle = load_bundle(resolve_bundle(args.bundle))
    sampling = bundle.default_sampling(**fields)  # the bundle's recommended settings under what the user set
    options = dict(mode=args.mode, sampling=sampling, variations=args.variations, rng_seed=args.rng_seed, explain=args.explain)
    if bundle.config["kind"] == "lyrics":
        if args.primer:
            raise SeqgenError("--primer is for melody bundles; give lyrics a --seed-text.")
        if args.until_end:
            raise SeqgenError("--until-end is for melody bundles; lyrics stop at the end of a verse with --verse.")
        output = complete_lyrics(bundle, args.seed_text if args.seed_text is not None else DEFAULT_SEED_LINE,
                                 length=args.length or 400, lines=args.lines, stop_at_verse_end=args.verse, **options)
        if args.json:
            print(json.dumps(to_json(output), ensure_ascii=False))
        else:
            for text in output.texts:
                print(output.seed + text)
                print()
            if output.dropped:
                print(f"dropped from the seed: {', '.join(repr(c) for c in output.dropped)}", file=sys.stderr)
        return 0
    if args.seed_text is not None:
        raise SeqgenError("--seed-text is for lyrics bundles; give a melody --primer FILE or leave it out for a random seed window.")
    out_dir = Path(args.out_dir) if args.out_dir else Path(tempfile.mkdtemp(prefix="seqgen-generate-"))
    # --primer always names a file: never read its name as tokens (a .txt would be "unknown token 'notes.txt'").
    primer = Path(args.primer) if args.primer else None
    output = generate_melody(bundle, out_dir, length=args.length, primer=primer, tempo_bpm=args.tempo, until_end=args.until_end,
                             instrument_program=args.instrument, render_audio=bool(args.audio) or not args.json or bool(args.out_dir),
                             max_audio_seconds=args.max_audio_seconds, **options)
    describe_melodies(bundle, output, engrave=bool(args.out_dir))
    first = output.melodies[0]
    if args.midi:
        shutil.copyfile(first.midi, args.midi)
    if args.audio:
        if first.wav is None:
            raise SeqgenError(f"No audio to write to {args.audio}: {first.renderer_note}.")
        if Path(args.audio).suffix.lower() in (".ogg", ".mp3"):
            from seqgen.audio import compress

            compress(first.wav, Path(args.audio), audio_format=Path(args.audio).suffix.lower()[1:])
        else:
            shutil.copyfile(first.wav, args.audio)
    if args.json:
        print(json.dumps(to_json(output), ensure_ascii=False))
    else:
        for number, melody in enumerate(output.melodies, start=1):
            print(f"melody {number}: {' '.join(melody.tokens)}")
            print(f"  quality: {json.dumps(melody.quality)}")
        print(f"files in {out_dir}; audio renderer: {first.renderer}" + (f" ({first.renderer_note})" if first.renderer_note else ""))
    return 0


def command_activations(args) -> int:
    from seqgen.bundle import load_bundle, resolve_bundle
    from seqgen.insight import activations, sequence

    bundle = load_bundle(resolve_bundle(args.bundle))
    result = activations(bundle, sequence(bundle, args.text, args.primer, args.rng_seed), args.layer)
    print(json.dumps(result.to_json(), ensure_ascii=False) if args.json else result.summary())
    return 0


def command_evaluate(args) -> int:
    import dataclasses

    from seqgen.bundle import load_bundle, resolve_bundle, write_quality, write_sampling
    from seqgen.card import quality_section
    from seqgen.evaluate import evaluate_bundle, sweep_sampling

    bundle = load_bundle(resolve_bundle(args.bundle))
    if args.sweep:
        settings, sweep = sweep_sampling(bundle, args.generations, args.rng_seed, args.temperatures, args.top_ps)
        if args.dry_run:  # measure the recommendation without storing it
            bundle = dataclasses.replace(bundle, recommended_sampling={"settings": settings, "sweep": sweep})
        else:
            write_sampling(bundle, settings, sweep)
    quality = evaluate_bundle(bundle, generations=args.generations, rng_seed=args.rng_seed)
    if not args.dry_run:
        write_quality(bundle, quality)
    if args.json:
        print(json.dumps({key: value for key, value in quality.items() if key != "reports"}
                         | ({"sweep": bundle.recommended_sampling} if args.sweep else {})))
        return 0
    print("\n".join(quality_section(bundle.config, quality, bundle.recommended_sampling)).strip())  # the model card's own tables
    if not args.dry_run:
        print(f"\nwrote the report and the model card into {bundle.folder}")
    return 0


def command_studio(args) -> int:
    """Replace this process with the studio (``python -m studio OPTIONS``): the backend never imports the UI."""
    if importlib.util.find_spec("gradio") is None:
        raise SeqgenError("The studio needs Gradio: pip install 'seqgen[studio]' (or pip install -r requirements.txt).")
    os.execv(sys.executable, [sys.executable, "-m", "studio", *args.options])


def add_training_arguments(parser, study: bool = False) -> None:
    parser.add_argument("corpus", help="a corpus name (see `corpora`) or a path")
    parser.add_argument("--kind", choices=KINDS, help="check the corpus kind (default: the corpus decides)")
    parser.add_argument("--preset", default="seed", help="model preset (see `presets`; default: seed)")
    parser.add_argument("--tokenizer", choices=TOKENIZERS, default="seed", help=TOKENIZER_HELP)
    parser.add_argument("--window", type=positive_int, default=40, help="window length (default: 40)")
    parser.add_argument("--min-count", type=positive_int, help=MIN_COUNT_HELP)
    parser.add_argument("--filter", choices=FILTERS, default="exact", help="rare-token filter (default: exact)")
    parser.add_argument("--epochs", type=int, default=10 if not study else 5, help="epochs to run")
    parser.add_argument("--batch-size", type=positive_int, help="windows per step (default: the preset's)")
    if study:
        parser.add_argument("--losses", nargs="+", default=list(STUDY_LOSSES),
                            help=f"losses to compare (default: {' '.join(STUDY_LOSSES)})")
        parser.add_argument("--optimizers", nargs="+", default=list(STUDY_OPTIMIZERS),
                            help=f"optimizers to compare (default: {' '.join(STUDY_OPTIMIZERS)})")
    else:
        parser.add_argument("--loss", help="loss name, e.g. categorical_crossentropy or mse (default: the preset's)")
        parser.add_argument("--optimizer", help="optimizer name, e.g. adam or adamax (default: the preset's)")
    parser.add_argument("--learning-rate", type=float, help="learning rate (default: the preset's; in a study, each optimizer's Keras default)")
    parser.add_argument("--max-windows", type=positive_int, help="train on a random subset of this many windows")
    parser.add_argument("--stride", type=positive_int, default=1,
                        help="tokens between window starts (default: 1, every window; presets that learn every position "
                             "still see every token with a larger stride, in fewer steps per epoch)")
    parser.add_argument("--validation-fraction", type=float, default=0.1, help="share of non-seed windows held out (default: 0.1)")
    parser.add_argument("--split", choices=SPLITS, help="validation split: random (the reference's, overlapping windows) or blocks "
                        "(held-out blocks, no shared token); default: the preset's (random for seed presets)")
    parser.add_argument("--seed", type=int, default=42, help="random seed for splits, shuffling and weights (default: 42)")
    parser.add_argument("--early-stopping", type=positive_int, metavar="PATIENCE", help="stop after this many epochs without improvement")
    parser.add_argument("--max-minutes", type=float, metavar="MINUTES",
                        help="time cap per run: stop at the first batch past it and keep the best epoch")
    parser.add_argument("--strategy", choices=("auto", "mirrored", "multi-worker"), default="auto", help="tf.distribute strategy")
    parser.add_argument("--text-column", help="lyrics CSV column (default: Lyrics, any case)")
    parser.add_argument("--keep-case", action="store_true", help="keep upper-case letters in lyrics")
    parser.add_argument("--json", action="store_true", help="print the final metrics as JSON")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seqgen", description="Recurrent sequence models for music and lyrics.")
    parser.add_argument("--version", action="version", version=f"seqgen {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    corpora = commands.add_parser("corpora", help="list the built-in and data/ corpora")
    corpora.add_argument("--json", action="store_true", help="print JSON")
    corpora.set_defaults(run=command_corpora)

    explore = commands.add_parser("explore", help="tokenize a corpus and report counts, rare tokens and sequences")
    explore.add_argument("corpus", help="a corpus name (see `corpora`) or a path: score file, folder, .zip, .csv, .txt")
    explore.add_argument("--tokenizer", choices=TOKENIZERS, default="seed", help=TOKENIZER_HELP)
    explore.add_argument("--min-count", type=positive_int, help=MIN_COUNT_HELP)
    explore.add_argument("--filter", choices=FILTERS, default="exact", help="; ".join(f"{k}: {v}" for k, v in FILTER_HELP.items()))
    explore.add_argument("--window", type=positive_int, default=40, help="window length (default: 40)")
    explore.add_argument("--text-column", help="lyrics CSV column (default: Lyrics, any case)")
    explore.add_argument("--keep-case", action="store_true", help="keep upper-case letters in lyrics")
    explore.add_argument("--zip-max-files", type=positive_int, help="zip cap: number of files (default: 5000 or SEQGEN_ZIP_MAX_FILES)")
    explore.add_argument("--zip-max-bytes", type=positive_int, help="zip cap: uncompressed bytes (default: 500 MiB or SEQGEN_ZIP_MAX_BYTES)")
    explore.add_argument("--workers", type=positive_int, help="processes for parsing (default: CPU count)")
    explore.add_argument("--plots", metavar="DIR", help="also write the figures as HTML into DIR")
    explore.add_argument("--json", action="store_true", help="print the report as JSON")
    explore.set_defaults(run=command_explore)

    presets = commands.add_parser("presets", help="list the model presets (names, kinds, input/target modes, defaults)")
    presets.add_argument("--kind", choices=KINDS, help="only this kind's presets")
    presets.add_argument("--json", action="store_true", help="print JSON: every field of each preset")
    presets.set_defaults(run=command_presets)

    summary = commands.add_parser("summary", help="print a preset's Keras summary and parameter count")
    summary.add_argument("--preset", default="seed", help="preset name (default: seed)")
    summary.add_argument("--kind", choices=KINDS, default="music", help="preset family (default: music)")
    summary.add_argument("--vocab-size", type=positive_int, required=True, help="vocabulary size V")
    summary.add_argument("--window", type=positive_int, default=40, help="window length (default: 40)")
    summary.set_defaults(run=command_summary)

    train = commands.add_parser("train", help="train a model and save it as a bundle")
    add_training_arguments(train)
    train.add_argument("--out", help="bundle folder to create")
    train.add_argument("--resume", metavar="DIR", help="continue training the bundle in DIR for --epochs more epochs")
    train.add_argument("--overwrite", action="store_true", help="replace a bundle that already exists in --out")
    train.set_defaults(run=command_train)

    study = commands.add_parser("study", help="the loss × optimizer grid on identical data")
    add_training_arguments(study, study=True)
    study.add_argument("--out", required=True, help="folder for the runs, results.csv/json and curves.html")
    study.set_defaults(run=command_study)

    generate = commands.add_parser("generate", help="generate a melody or complete lyrics from a bundle")
    generate.add_argument("bundle", help="a bundle folder, or the name of one under checkpoints/")
    generate.add_argument("--length", type=positive_int,
                          help="new tokens (default: 100 notes, 400 characters); with --until-end, the cap "
                               "(default: the corpus's 99th-percentile piece length)")
    generate.add_argument("--mode", choices=("window", "stateful"), help="window: the reference; stateful: one cell step per token")
    generate.add_argument("--temperature", type=float, help="0 = greedy argmax (the reference); higher = more varied "
                          "(default: the bundle's recommended sampling, else 1.0 melodies, 0.8 lyrics)")
    generate.add_argument("--top-k", type=positive_int, help="sample among the k most likely tokens")
    generate.add_argument("--top-p", type=float, help="sample within this probability mass (0 < p <= 1)")
    generate.add_argument("--repetition-penalty", type=float, help=">= 1; discourages recent tokens (default: 1, off)")
    generate.add_argument("--max-copy", type=int, help="the copy guard: never copy this many tokens in a row from the "
                          "training corpus (0: off; default: the model's recommended setting)")
    source = generate.add_mutually_exclusive_group()
    source.add_argument("--seed-text", help="lyrics: the line to complete")
    source.add_argument("--primer", help="melody: a MIDI or score file to continue (default: a random seed window)")
    generate.add_argument("--lines", type=positive_int, help="lyrics: stop after this many lines")
    generate.add_argument("--verse", action="store_true", help="lyrics: stop at the end of the verse")
    generate.add_argument("--until-end", action="store_true",
                          help="melodies: write a whole piece, from its start until the model ends it (models trained on "
                               "events tokens); the JSON says for each variation whether it ended")
    generate.add_argument("--variations", type=positive_int, default=1, help="continuations generated in one batch")
    generate.add_argument("--rng-seed", type=int, help="makes the output reproducible")
    generate.add_argument("--tempo", type=float, default=120.0, help="melody tempo in bpm (default: 120)")
    generate.add_argument("--instrument", type=int, default=0, help="General MIDI program (default: 0, piano)")
    generate.add_argument("--midi", help="write the (first) melody's MIDI here")
    generate.add_argument("--audio", help="write the (first) melody's audio here: WAV, or OGG/MP3 by the file's suffix")
    generate.add_argument("--max-audio-seconds", type=float,
                          help="render no audio for a longer melody (default: $SEQGEN_MAX_AUDIO_SECONDS or 180)")
    generate.add_argument("--out-dir", help="keep every output (MIDI, WAV, MusicXML, params JSON) here")
    generate.add_argument("--explain", type=positive_int, metavar="K",
                          help="with --json: add `steps`, each new token's K most likely candidates after the sampling rules")
    generate.add_argument("--json", action="store_true", help="print one JSON object")
    generate.set_defaults(run=command_generate)

    insight = commands.add_parser("activations", help="an LSTM layer's hidden state per token, and the cells that track a feature")
    insight.add_argument("bundle", help="a bundle folder, or the name of one under checkpoints/")
    source = insight.add_mutually_exclusive_group()
    source.add_argument("--text", "--tokens", dest="text", help="lyrics: the text; music: whitespace-separated tokens")
    source.add_argument("--primer", help="music: a MIDI or score file (default: a random seed window)")
    insight.add_argument("--layer", help="the LSTM layer, e.g. lstm_1 (default: the top one)")
    insight.add_argument("--rng-seed", type=int, help="music: picks the random seed window")
    insight.add_argument("--json", action="store_true", help="print one JSON object")
    insight.set_defaults(run=command_activations)

    evaluate = commands.add_parser("evaluate", help="measure a bundle's generations against its corpus and write them into its model card")
    evaluate.add_argument("bundle", help="a bundle folder, or the name of one under checkpoints/")
    evaluate.add_argument("--generations", type=positive_int, default=20, help="generations to average (default: 20)")
    evaluate.add_argument("--rng-seed", type=int, default=0, help="seed of the first generation and of the corpus windows (default: 0)")
    evaluate.add_argument("--sweep", action="store_true",
                          help="first try a temperature × top-p grid and store the pair closest to the corpus as the bundle's recommended sampling")
    evaluate.add_argument("--temperatures", type=float, nargs="+", help="the sweep's temperatures (default: 0.7 0.8 0.9 1.0 melodies, 0.5 … 0.8 lyrics)")
    evaluate.add_argument("--top-ps", type=float, nargs="+", help="the sweep's top-p values, 1 = off (default: 0.9 0.95 1.0)")
    evaluate.add_argument("--dry-run", action="store_true", help="print the report without writing it into the bundle")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object (without the per-generation reports)")
    evaluate.set_defaults(run=command_evaluate)

    # Its options belong to the studio (seqgen studio --help lists them): main() passes them on unparsed.
    studio = commands.add_parser("studio", add_help=False,
                                 help="launch the studio web app: seqgen studio [--port P] [--auth user:password] … (needs seqgen[studio])")
    studio.set_defaults(run=command_studio)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, options = parser.parse_known_args(argv)
    if options and args.command != "studio":
        parser.error(f"unrecognized arguments: {' '.join(options)}")
    args.options = options
    if args.command == "train" and not (args.out or args.resume):
        parser.error("train needs --out DIR (or --resume DIR)")
    if args.command == "generate" and args.explain and not args.json:
        parser.error("--explain adds `steps` to the JSON output: give --json too")
    if args.command in ("train", "study") and args.epochs < 1:
        parser.error(f"--epochs must be a positive integer, got {args.epochs}")
    try:
        return args.run(args)
    except SeqgenError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
