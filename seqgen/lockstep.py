"""The generation loop, and concurrent generations stepped together.

A :class:`Run` is one :meth:`seqgen.sample.Sampler.generate` call's loop: its
rows (variations), their tokens so far, the recurrent state and the sampling
rules.  :func:`advance` takes every run it is given one token further: runs
with the same sampling rules are ranked in one call, and runs of the same model
share one matrix product per layer.  Alone, a run computes exactly what it
always did; together, a step of eight verses costs about what two cost alone
(the weights are read from memory once for all rows).

A server enables :class:`Lockstep` in a process that answers many requests
at once (a studio worker): from then on every ``generate`` call of that process
joins one loop in a thread of its own, at the next step, and leaves it when
done, so a class's requests share their model maths.  Their draws stay each
request's own (its own random generator), but the shared matrix products round
differently in the last bit from one row alone, so in rare cases (a draw that
lands within about 1e-7 of a boundary) a melody made in a busy studio differs
from the one its seed makes alone from that token on.
"""

from __future__ import annotations

import contextvars
import threading
from collections import defaultdict
from typing import Callable

import numpy as np

from seqgen.numpy_lstm import State, blas_limit
from seqgen.sampling import Candidates, Ranked, SamplingOptions, rank

EXPLAIN_RUN = 64  # steps explained at once: vectorised, and a bounded copy of their distributions


class Run:
    """One generation loop: ``batch`` rows continuing the same primer for ``length`` tokens.

    ``history[:, :window]`` holds the (left-padded) primer ids and the generated
    ids follow.  The caller primes the run: ``probs``, the next-token
    probabilities of every row; in stateful mode ``state``, the recurrent state;
    with a recorded ``layer``, ``hidden`` (its states over primer and generation).
    """

    def __init__(self, sampler, ids: list[int], length: int, batch: int, sampling: SamplingOptions, rng: np.random.Generator,
                 mode: str, explain: int | None = None, layer: int | None = None, on_token: Callable | None = None,
                 stop_id: int | None = None):
        self.sampler, self.length, self.batch, self.sampling, self.rng, self.mode = sampler, length, batch, sampling, rng, mode
        self.explain, self.layer, self.on_token, self.primer_length = explain, layer, on_token, len(ids)
        self.stop_id = stop_id  # a row that draws it has ended; the run stops when every row has
        self.ended_at = np.full(batch, -1)  # per row, the step that drew ``stop_id`` (-1: not yet)
        # events tokens: the order they come in (seqgen.events.Grammar), one state per row
        self.grammar = getattr(sampler, "grammar", None)
        self.grammar_states = [self.grammar.state_after(ids)] * batch if self.grammar is not None else None
        self.probs: np.ndarray | None = None
        self.state: State | None = None
        self.hidden: np.ndarray | None = None
        window = sampler.window
        self.pad = window - len(ids)
        self.history = np.empty((batch, window + length), dtype=np.int64)
        self.history[:, :self.pad] = ids[0]
        self.history[:, self.pad:window] = ids
        self.rows = np.arange(batch)
        self.step = 0
        self.chosen: np.ndarray | None = None  # the last tokens drawn, `(batch,)`
        self.explained: list[Candidates] = []  # with explain: Candidates of runs of steps
        self._pending: list[tuple[Ranked, np.ndarray]] = []  # the steps not explained yet
        self.context = contextvars.copy_context()  # on_token runs in the caller's context, from whichever thread steps
        self.error: BaseException | None = None
        self.finished = threading.Event()

    @property
    def all_ended(self) -> bool:
        return self.stop_id is not None and bool((self.ended_at >= 0).all())

    @property
    def done(self) -> bool:
        return self.error is not None or self.step >= self.length or self.all_ended

    @property
    def generated(self) -> np.ndarray:
        """The tokens drawn so far, ``(batch, steps)`` (a row that ended goes on to the run's end)."""
        return self.history[:, self.sampler.window:self.sampler.window + self.step]

    def recent(self) -> np.ndarray | None:
        """With a repetition penalty: each row's tokens among the last ``window`` of its context, ``(batch, V)``."""
        if self.sampling.repetition_penalty == 1:
            return None
        end = self.sampler.window + self.step
        recent = np.zeros((self.batch, self.sampler.vocab_size), dtype=bool)
        recent[self.rows[:, None], self.history[:, max(self.pad, end - self.sampler.window):end]] = True
        return recent

    def blocked(self) -> np.ndarray | None:
        """With the copy guard (``max_copy`` n): each row's tokens that would make its last n generated tokens a
        passage of the training corpus, ``(batch, V)``; None before n - 1 tokens are generated."""
        n = self.sampling.max_copy
        if not n or self.step < n - 1:
            return None
        continuations = self.sampler.corpus_continuations(n - 1)
        end = self.sampler.window + self.step
        blocked = np.zeros((self.batch, self.sampler.vocab_size), dtype=bool)
        for row, context in enumerate(self.history[:, end - n + 1:end]):
            following = continuations.get(context.tobytes())
            if following is not None:
                blocked[row, following] = True
        return blocked

    def choose(self, ranked: Ranked, places: np.ndarray) -> None:
        """Take this step's tokens (``chosen``) at ``places`` of ``ranked`` (this run's rows, drawn with
        :meth:`Ranked.places` from this run's generator), record them and report them."""
        self.chosen = chosen = ranked.order[self.rows, places]
        self.history[:, self.sampler.window + self.step] = chosen
        if self.grammar is not None:
            self.grammar_states = [self.grammar.advance(state, int(token)) for state, token in zip(self.grammar_states, chosen)]
        going = self.ended_at < 0  # rows still writing (all of them without a stop token)
        if self.stop_id is not None:
            self.ended_at[going & (chosen == self.stop_id)] = self.step
        if self.explain is not None:
            self._pending.append((ranked, places))
        if self.on_token is not None:
            tokens = self.sampler.vocab.tokens
            for variation, index in enumerate(chosen):
                if going[variation]:
                    self.context.run(self.on_token, variation, self.step, tokens[index])
        self.step += 1
        if self._pending and (len(self._pending) == EXPLAIN_RUN or self.done):
            self.explained.append(Candidates.of_steps(*zip(*self._pending), self.explain))
            self._pending.clear()

    @property
    def needs_prediction(self) -> bool:
        """No prediction is needed after the last token (unless a layer is recorded)."""
        if self.error is not None or self.all_ended:
            return False
        return self.step < self.length or (self.layer is not None and self.step == self.length)

    def next_probs(self) -> np.ndarray:
        """The next-token probabilities the rules rank: with a grammar, those of the tokens it rules out are 0."""
        if self.grammar is None:
            return self.probs
        return self.probs * np.stack([self.grammar.allowed(state) for state in self.grammar_states])

    def window_ids(self) -> np.ndarray:
        """Each row's last ``window`` tokens, ``(batch, window)``: the padded primer at first."""
        end = self.sampler.window + self.step
        return self.history[:, end - self.sampler.window:end]


def _rank_together(runs: list[Run]) -> None:
    """Every run draws one token; runs with the same sampling rules are ranked in one call."""
    groups: dict[SamplingOptions, list[Run]] = defaultdict(list)
    for run in runs:
        groups[run.sampling].append(run)
    for sampling, members in groups.items():
        probs = members[0].next_probs() if len(members) == 1 else np.concatenate([run.next_probs() for run in members])
        recent, blocked = [run.recent() for run in members], [run.blocked() for run in members]
        if any(mask is not None for mask in blocked):
            blocked = np.concatenate([np.zeros((run.batch, run.sampler.vocab_size), bool) if mask is None else mask
                                      for run, mask in zip(members, blocked)])
        else:
            blocked = None
        ranked = rank(probs, sampling, None if recent[0] is None else np.concatenate(recent), blocked)
        # One draw for every row, each run's uniforms from its own generator (in the order it would draw alone).
        places = ranked.places(None if ranked.greedy else np.concatenate([run.rng.random(run.batch) for run in members]))
        start = 0
        for run in members:
            rows = slice(start, start + run.batch)
            start += run.batch
            part = ranked if len(members) == 1 else Ranked(ranked.order[rows], ranked.logits[rows], ranked.weights[rows], ranked.greedy)
            try:
                run.choose(part, places[rows])
            except BaseException as error:  # its on_token stopped it: the others go on
                run.error = error


def _predict_together(runs: list[Run]) -> None:
    """The next-token probabilities of every run that needs them; one model call per model and mode."""
    groups: dict[tuple[int, str], list[Run]] = defaultdict(list)
    for run in runs:
        if run.needs_prediction:
            groups[id(run.sampler), run.mode].append(run)
    for (_, mode), members in groups.items():
        sampler = members[0].sampler
        if mode == "window":
            windows = [run.window_ids() for run in members]
            probs = sampler.window_probabilities(windows[0] if len(members) == 1 else np.concatenate(windows))
        elif len(members) == 1:
            run = members[0]
            probs = sampler.step(run.state, run.chosen)
        else:
            state = State([tuple(np.concatenate([run.state.layers[number][part] for run in members]) for part in (0, 1))
                           for number in range(len(members[0].state.layers))])
            probs = sampler.step(state, np.concatenate([run.chosen for run in members]))
        start = 0
        for run in members:
            rows = slice(start, start + run.batch)
            start += run.batch
            run.probs = probs[rows]
            if mode == "stateful":
                if len(members) > 1:
                    run.state = State([(h[rows], c[rows]) for h, c in state.layers])
                if run.layer is not None:
                    run.hidden[:, run.primer_length + run.step - 1] = run.state.layers[run.layer][0]


def advance(runs: list[Run]) -> None:
    """Take every run one token further (runs that are done are left alone)."""
    active = [run for run in runs if not run.done]
    _rank_together(active)
    _predict_together(active)


def drive(run: Run) -> None:
    """Run a generation to its end: alone, or in the process's :class:`Lockstep` when one is enabled."""
    lockstep = _LOCKSTEP
    if lockstep is None:
        while not run.done:
            advance([run])
    else:
        lockstep.join(run)
    if run.error is not None:
        raise run.error


class Lockstep:
    """One thread that steps every generation of this process together (see the module's docstring)."""

    def __init__(self):
        self._lock = threading.Condition()
        self._arrivals: list[Run] = []
        self._thread: threading.Thread | None = None

    def join(self, run: Run) -> None:
        """Add ``run`` to the loop at its next step and wait until it is done."""
        with self._lock:
            self._arrivals.append(run)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="seqgen-lockstep", daemon=True)
                self._thread.start()
            self._lock.notify()
        run.finished.wait()

    def _loop(self) -> None:
        runs: list[Run] = []
        while True:
            with self._lock:
                while not runs and not self._arrivals:
                    self._lock.wait()
                runs += self._arrivals
                self._arrivals.clear()
            try:
                advance(runs)
            except BaseException as error:  # a model call failed: every run in it fails, the loop goes on
                for run in runs:
                    run.error = run.error or error
            for run in [run for run in runs if run.done]:
                runs.remove(run)
                run.finished.set()


_LOCKSTEP: Lockstep | None = None


def enable() -> None:
    """From now on, this process's generations are stepped together (a server's worker calls this once).

    The process keeps BLAS to one thread from then on: the loop's thread does
    every matrix product, and each generation's own one-thread limit (entered
    and left by many threads at once) must not restore more threads under it.
    """
    global _LOCKSTEP
    if _LOCKSTEP is None:
        blas_limit(1).__enter__()  # never left: for the process's life
        _LOCKSTEP = Lockstep()
