"""Generations stepped together (seqgen.lockstep) against the same generations alone: CPU and sameness.

    python bench/lockstep.py [--requests 16] [--rounds 4] [--json]

With the shipped default models (bach-timed melodies of 100 tokens, songs-poems-embed verses of 400 characters, the
studio's sampling and explanations), ``--requests`` requests (half melodies, half verses, each with its own seed) run
one after the other, then all at once in threads while seqgen.lockstep steps them together, as in a studio worker.
Prints the CPU milliseconds per request of sampling alone and together, and the share of requests whose tokens are the
same both ways (they differ only where float32 rounding of the shared matrix products tips a draw).

    python bench/lockstep.py --products [--json]

Times one product of a few rows with each LSTM weight matrix of the two models, as one matrix product and in
column slices (seqgen.numpy_lstm.SMALL_PRODUCT): microseconds, the best of 5 repeats, one BLAS thread.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from seqgen import lockstep  # noqa: E402
from seqgen.bundle import load_bundle  # noqa: E402
from seqgen.generate import DEFAULT_SEED_LINE  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]


def requests(count: int, round_number: int) -> list[tuple]:
    melody, verse = load_bundle(REPO_ROOT / "checkpoints" / "bach-timed"), load_bundle(REPO_ROOT / "checkpoints" / "songs-poems-embed")
    made = []
    for number in range(count):
        seed = round_number * count + number
        if number % 2 == 0:
            made.append((melody.sampler, dict(primer_tokens=melody.seeds[seed % len(melody.seeds)], length=100, rng_seed=seed,
                                              explain=5, record="top")))
        else:
            made.append((verse.sampler, dict(primer_tokens=DEFAULT_SEED_LINE, length=400, rng_seed=seed, explain=5, record="top")))
    return made


def together(batch: list[tuple]) -> list:
    results = [None] * len(batch)

    def one(index, sampler, kwargs):
        results[index] = sampler.generate(**kwargs).tokens

    threads = [threading.Thread(target=one, args=(index, *request)) for index, request in enumerate(batch)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def best_us(function, calls: int = 300, repeats: int = 5) -> float:
    function()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(calls):
            function()
        best = min(best, (time.perf_counter() - started) / calls)
    return round(best * 1e6, 1)


def products() -> dict:
    """Microseconds of ``rows @ weights`` as one product and in slices, per model layer and row count."""
    from seqgen.numpy_lstm import blas_limit

    timings = {}
    with blas_limit(1):
        for name in ("bach-timed", "songs-poems-embed"):
            stack = load_bundle(REPO_ROOT / "checkpoints" / name).sampler.stack
            for layer, lstm in zip(stack.layer_names, stack.lstms):
                for label, weights in (("recurrent", lstm.recurrent), ("stacked", lstm.stacked)):
                    for rows in (1, 2, 4, 8, 16):
                        x = np.random.default_rng(0).random((rows, weights.matrix.shape[0]), dtype=np.float32)
                        timings[f"{name} {layer} {label} {weights.matrix.shape} x{rows}"] = {
                            "one_product_us": best_us(lambda: x @ weights.matrix), "sliced_us": best_us(lambda: weights.times(x))}
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--products", action="store_true", help="time the weight products alone (see the docstring)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.products:
        report = {"machine": f"{__import__('os').cpu_count()} CPU cores", "products": products()}
        print(json.dumps(report) if args.json else json.dumps(report, indent=1))
        return
    alone_ms, together_ms, same = [], [], []
    for round_number in range(args.rounds):
        batch = requests(args.requests, round_number)
        lockstep._LOCKSTEP = None
        started = time.process_time()
        alone = [sampler.generate(**kwargs).tokens for sampler, kwargs in batch]
        alone_ms.append((time.process_time() - started) * 1000 / len(batch))
        lockstep.enable()
        started = time.process_time()
        joint = together(batch)
        together_ms.append((time.process_time() - started) * 1000 / len(batch))
        same += [first == second for first, second in zip(alone, joint)]
    report = {"machine": f"{__import__('os').cpu_count()} CPU cores", "requests": args.requests, "rounds": args.rounds,
              "alone_cpu_ms_per_request": round(statistics.median(alone_ms), 1),
              "together_cpu_ms_per_request": round(statistics.median(together_ms), 1),
              "same_tokens_share": round(sum(same) / len(same), 4), "compared": len(same)}
    print(json.dumps(report) if args.json else json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
