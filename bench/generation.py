"""Time 100 new tokens: the reference model.predict loop against the sampler's modes.

    python bench/generation.py [--tokens 100] [--repeats 3] [--json]

All timings use the same weights: the reference ``seed`` melody architecture
(LSTM(512) → LSTM(256) → Dense(256) → softmax, V = 228, window 40) with
random initial weights, which cost exactly what trained ones do.

- reference: ``model.predict(window[None], verbose=0)`` per token, argmax,
  slide the window (what the report's notebook did);
- window: ``Sampler(mode="window")``, the same computation (last 40 tokens
  from a zero state) without predict's per-call overhead; ``window_keras``
  is the same mode running the Keras model in a ``tf.function``;
- stateful: ``Sampler(mode="stateful")``, one cell step per token.

Greedy decoding everywhere, so the window modes must pick the reference's
exact tokens (``window_tokens_match``).  Times are medians over the repeats,
in milliseconds per ``--tokens`` tokens; speedups are reference / mode.
``max_abs_prob_diff`` compares probabilities with Keras: window mode against
``model.predict`` on the seed architecture, and stateful mode (primed with a
full window) against the full-sequence output of the ids/sequence ``embed``
preset at the last position.
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from seqgen.models import build_model  # noqa: E402
from seqgen.presets import get_preset  # noqa: E402
from seqgen.sample import Sampler  # noqa: E402
from seqgen.vocab import Vocab  # noqa: E402

VOCAB_SIZE = 228
WINDOW = 40


def make_bundle(preset: str, vocab_size: int = VOCAB_SIZE, window: int = WINDOW, seed: int = 0) -> SimpleNamespace:
    """A Bundle-like object around a preset model with random weights."""
    import keras

    keras.utils.set_random_seed(seed)
    spec = get_preset("music", preset)
    vocab = Vocab(tuple(f"t{index:03d}" for index in range(vocab_size)))
    config = {
        "kind": "music", "preset": preset, "window": window, "vocab_size": vocab_size,
        "input_mode": spec.input_mode, "target_mode": spec.target_mode, "lowercase": False,
    }
    return SimpleNamespace(folder=None, config=config, vocab=vocab, model=build_model("music", preset, vocab_size, window), seeds=[])


def reference_loop(model, primer_ids: np.ndarray, tokens: int, vocab_size: int) -> list[int]:
    """The report's generation: predict the scaled window, argmax, slide."""
    current = np.array(primer_ids, dtype=np.int64)
    generated = []
    for _ in range(tokens):
        window = (current.astype(np.float32) / np.float32(vocab_size))[:, None]  # (window, 1)
        probabilities = model.predict(window[None], verbose=0)[0]
        index = int(np.argmax(probabilities))
        generated.append(index)
        current = np.append(current[1:], index)
    return generated


def timed(function, repeats: int) -> tuple[float, object]:
    """Median wall time in ms over `repeats` calls, and the last call's result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    seed_bundle = make_bundle("seed")
    rng = np.random.default_rng(0)
    primer_ids = rng.integers(VOCAB_SIZE, size=WINDOW)
    primer = seed_bundle.vocab.decode(primer_ids)
    window_sampler = Sampler(seed_bundle, mode="window")
    keras_sampler = Sampler(seed_bundle, mode="window", engine="keras")
    stateful_sampler = Sampler(seed_bundle, mode="stateful")

    # Warm-ups: predict's first call builds its function; so does the tf.function.
    seed_bundle.model.predict((primer_ids[None, :, None] / VOCAB_SIZE).astype(np.float32), verbose=0)
    keras_sampler.generate(primer, 2, temperature=0)
    stateful_sampler.generate(primer, 2, temperature=0)

    def generate(sampler):
        return lambda: sampler.generate(primer, args.tokens, temperature=0)

    reference_ms, reference_ids = timed(lambda: reference_loop(seed_bundle.model, primer_ids, args.tokens, VOCAB_SIZE), args.repeats)
    window_ms, window_result = timed(generate(window_sampler), args.repeats)
    keras_ms, keras_result = timed(generate(keras_sampler), args.repeats)
    stateful_ms, stateful_result = timed(generate(stateful_sampler), max(args.repeats, 5))

    # Probability agreement with Keras.
    windows = rng.integers(VOCAB_SIZE, size=(4, WINDOW))
    predicted = seed_bundle.model.predict((windows[..., None] / np.float32(VOCAB_SIZE)).astype(np.float32), verbose=0)
    window_diff = float(np.abs(window_sampler.window_probabilities(windows) - predicted).max())
    embed_bundle = make_bundle("embed")
    full = embed_bundle.model.predict(windows.astype(np.int32), verbose=0)  # (4, window, V)
    embed_sampler = Sampler(embed_bundle, mode="stateful")
    stateful_diff = max(float(np.abs(embed_sampler.prime(row)[1][0] - full[index, -1]).max()) for index, row in enumerate(windows))
    # The seed model's first stateful prediction is exact too (a full window from zero).
    stateful_seed_diff = float(np.abs(stateful_sampler.prime(windows[0])[1][0] - predicted[0]).max())

    result = {
        "architecture": f"music seed, V={VOCAB_SIZE}, window {WINDOW}, random weights",
        "tokens": args.tokens,
        "repeats": args.repeats,
        "reference_ms": round(reference_ms, 1),
        "window_ms": round(window_ms, 1),
        "window_keras_ms": round(keras_ms, 1),
        "stateful_ms": round(stateful_ms, 2),
        "reference_per_token_ms": round(reference_ms / args.tokens, 2),
        "stateful_per_token_ms": round(stateful_ms / args.tokens, 3),
        "window_speedup": round(reference_ms / window_ms, 1),
        "window_keras_speedup": round(reference_ms / keras_ms, 1),
        "stateful_speedup": round(reference_ms / stateful_ms, 1),
        "window_tokens_match": window_result.ids[0] == reference_ids and keras_result.ids[0] == reference_ids,
        "max_abs_prob_diff": {
            "window_vs_predict": window_diff,
            "stateful_vs_keras_sequence": stateful_diff,
            "stateful_vs_predict_seed_first_step": stateful_seed_diff,
        },
        "stateful_first_token_matches": stateful_result.ids[0][0] == reference_ids[0],
    }
    if args.json:
        print(json.dumps(result))
    else:
        print("\n".join(f"{key}: {value}" for key, value in result.items()))


if __name__ == "__main__":
    main()
