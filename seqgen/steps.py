"""Generation by hand: the next token's candidates, then a token a person picks or the model draws.

A :class:`StepSession` is everything one hand-steered generation carries
from step to step: the stateful sampler's LSTM state after the context, the
next-token probabilities, the random generator and what was picked so far.
It is small (a few kilobytes) and picklable, so a server can keep it per
user and send it to whichever worker runs the next step.  Each step is one
cell step of :meth:`seqgen.sample.Sampler.step` and one
:func:`seqgen.sampling.rank`; when the model picks every token, a session
gives exactly the tokens of ``Sampler.generate(..., mode="stateful")`` with
the same seed.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace

import numpy as np

from seqgen.errors import SeqgenError
from seqgen.numpy_lstm import State, blas_limit
from seqgen.primers import encode_primer, melody_primer
from seqgen.sampling import SamplingOptions, rank

MAX_STEPS = 500  # tokens one session may add
CANDIDATES = 5  # the next token's candidates offered at each step


@dataclass
class StepSession:
    """One hand-steered generation between two steps.

    Attributes:
        primer: The primer tokens that condition it (the last `window` in-vocabulary ones).
        picked: The tokens added so far.
        context: Ids of `primer + picked` (the repetition penalty looks at the last `window`).
        state: The LSTM state after the context (one row).
        probs: Next-token probabilities, `(1, V)`.
        sampling: The rules the model draws with.
        rng: The generator the model draws from.
        offered: The next token's candidates (see :meth:`seqgen.sampling.Ranked.explain`).
        dropped: Primer tokens the vocabulary lacks, with counts.
        by_model: For each picked token, whether the model drew it.
    """

    primer: list[str]
    picked: list[str]
    context: list[int]
    state: State
    probs: np.ndarray
    sampling: SamplingOptions
    rng: np.random.Generator
    offered: dict
    dropped: dict[str, int]
    by_model: list[bool] = field(default_factory=list)


def _ranked(bundle, context: list[int], probs: np.ndarray, sampling: SamplingOptions):
    """The next token's distribution after the rules, penalising the last `window` context tokens (events: only the
    tokens that may come next, as the sampler draws them: :class:`seqgen.events.Grammar`)."""
    recent = [context[-bundle.sampler.window:]] if sampling.repetition_penalty != 1 else None
    grammar = bundle.sampler.grammar
    if grammar is not None:
        probs = probs * grammar.allowed(grammar.state_after(context))
    return rank(probs, sampling, recent)


def start(bundle, primer, sampling: SamplingOptions | None = None, rng_seed: int | None = None,
          candidates: int = CANDIDATES) -> StepSession:
    """Primes the stateful sampler and offers the first token's candidates.

    Args:
        bundle: A loaded bundle.
        primer: Tokens or text (see :func:`seqgen.primers.encode_primer`); for
            melodies also a score file or None (a random seed window, see
            :func:`seqgen.primers.melody_primer`).
        sampling: The rules the model draws with; None: the kind's defaults.
        rng_seed: Seed of the model's draws (None: fresh entropy).
        candidates: How many candidates to offer at each step.
    """
    sampler = bundle.sampler
    sampling = sampling or SamplingOptions.for_kind(bundle.config["kind"])
    if bundle.config["kind"] == "music":
        primer = melody_primer(bundle, primer, rng_seed)
    ids, tokens, dropped = encode_primer(bundle, primer)
    if not ids:
        raise SeqgenError("The seed is empty: none of its tokens are in the model's vocabulary. Type something the model knows.")
    ids, tokens = ids[-sampler.window:], tokens[-sampler.window:]
    with blas_limit(sampler.blas_threads):
        state, probs = sampler.prime(ids)
    offered = _ranked(bundle, ids, probs, sampling).explain(candidates, bundle.vocab.tokens)[0]
    return StepSession(tokens, [], list(ids), state, probs, sampling, np.random.default_rng(rng_seed), offered, dropped)


def advance(bundle, session: StepSession, token: str | None = None, candidates: int = CANDIDATES) -> StepSession:
    """Adds one token, `token` or (None) one the model draws, and offers the next token's candidates.

    Returns a new session; `session` is left as it was.

    Raises:
        SeqgenError: If `token` is not in the vocabulary or the session is full (``MAX_STEPS``).
    """
    if len(session.picked) >= MAX_STEPS:
        raise SeqgenError(f"This generation has {MAX_STEPS} tokens, the most one session takes: start again.")
    sampler, rng = bundle.sampler, copy.deepcopy(session.rng)  # the old session keeps its own generator
    if token is None:
        chosen = int(_ranked(bundle, session.context, session.probs, session.sampling).draw(rng)[0])
    elif token in bundle.vocab:
        chosen = bundle.vocab.encode([token])[0]
    else:
        raise SeqgenError(f"{token!r} is not a token of this model.")
    state = State([(h.copy(), c.copy()) for h, c in session.state.layers])
    with blas_limit(sampler.blas_threads):
        probs = sampler.step(state, [chosen])
    context = session.context + [chosen]
    offered = _ranked(bundle, context, probs, session.sampling).explain(candidates, bundle.vocab.tokens)[0]
    return replace(session, picked=session.picked + [bundle.vocab.tokens[chosen]], context=context, state=state, probs=probs,
                   rng=rng, offered=offered, by_model=session.by_model + [token is None])
