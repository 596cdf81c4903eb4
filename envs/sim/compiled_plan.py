"""A :class:`~envs.dnn.plan.SplitPlan` in the flat array form the compiled scheduler walks.

Built once per plan object (the simulator caches them): the fragments in
topological order, their inputs and results, memory and early-exit chain, as
arrays; plus scratch arrays the scheduler writes (finish times, fragment runs).
"""

from __future__ import annotations

from graphlib import CycleError, TopologicalSorter

import numpy as np

from envs.dnn.plan import ORIGIN, SplitPlan

ALL_ITEMS = np.empty(0)
"""``reach`` meaning that every fragment handles all the job's items (no early exits)."""

RUN_FIELDS = 4
"""Columns of the fragment runs the scheduler records: node, start_s, end_s, energy_j."""


class CompiledPlan:
    """A :class:`SplitPlan` in the flat form :func:`reserve_pass` walks (built once per plan object).

    ``index`` (int64) holds, back to back: the fragments in topological order (``n``); per fragment where its
    inputs start in the input lists, plus their end (``n + 1``); the input sources (``m``, in fragment order);
    the sources of the results sent back to the origin (``r``); per fragment the next one of an early-exit
    chain, else -1 (``n``).  ``values`` (float64): per fragment its reference latency in s (``n``), the input
    bytes (``m``), the result bytes (``r``), per fragment its memory in bytes (``n``).
    """

    __slots__ = ("plan", "fragment_count", "inputs", "index", "values", "memory_bytes", "exit_probability",
                 "chain", "reach_share", "exit_share", "finish_s", "runs")

    def __init__(self, plan: SplitPlan):
        count = len(plan.fragments)
        if count == 0:
            raise ValueError(f"plan {plan.model}/{plan.variant}: has no fragments")
        inputs: list[list[tuple[int, int]]] = [[] for _ in range(count)]
        results: list[tuple[int, int]] = []
        children: list[list[int]] = [[] for _ in range(count)]
        for transfer in plan.transfers:
            source, target = transfer.source, transfer.target
            if not (ORIGIN <= source < count and ORIGIN <= target < count) or source == target:
                raise ValueError(f"plan {plan.model}/{plan.variant}: transfer {transfer} must join two different "
                                 f"fragments in [0, {count}) or ORIGIN ({ORIGIN})")
            if transfer.bytes < 0:
                raise ValueError(f"plan {plan.model}/{plan.variant}: transfer {transfer} has negative bytes")
            if target == ORIGIN:
                results.append((source, transfer.bytes))
            else:
                inputs[target].append((source, transfer.bytes))
                if source != ORIGIN:
                    children[source].append(target)
        try:
            order = tuple(TopologicalSorter({i: {s for s, _ in inputs[i] if s != ORIGIN}
                                             for i in range(count)}).static_order())
        except CycleError as error:
            raise ValueError(f"plan {plan.model}/{plan.variant}: fragments form a cycle {error.args[1]}") from error
        for fragment in plan.fragments:
            if fragment.reference_latency_s < 0 or fragment.memory_bytes < 0:
                raise ValueError(f"plan {plan.model}/{plan.variant}: fragment {fragment.name!r} has negative "
                                 f"latency or memory")
        self.plan = plan
        self.fragment_count = count
        self.inputs = tuple(tuple(pairs) for pairs in inputs)
        self.memory_bytes = [fragment.memory_bytes for fragment in plan.fragments]
        self.exit_probability = tuple(plan.exit_probability)
        self.chain = self._exit_chain(children) if self.exit_probability else None
        next_fragment = [-1] * count
        if self.chain is not None:
            for fragment, after in zip(self.chain, self.chain[1:]):
                next_fragment[fragment] = after
            leave = np.array([self.exit_probability[fragment] for fragment in self.chain])
            leave[-1] = 1.0  # whatever reaches the end leaves there
            self.reach_share = np.cumprod(np.concatenate(([1.0], 1.0 - leave[:-1])))  # per chain position
            self.exit_share = self.reach_share * leave
        input_start = np.cumsum([0] + [len(pairs) for pairs in inputs]).tolist()
        flat_inputs = [pair for pairs in inputs for pair in pairs]
        self.index = np.array([*order, *input_start, *(source for source, _ in flat_inputs),
                               *(source for source, _ in results), *next_fragment], dtype=np.int64)
        self.values = np.array([*(fragment.reference_latency_s for fragment in plan.fragments),
                                *(size for _, size in flat_inputs), *(size for _, size in results),
                                *self.memory_bytes], dtype=float)
        self.finish_s = np.zeros(count)
        """Scratch: when each fragment finished in the pass reserved last, seconds."""
        self.runs = np.zeros((count, RUN_FIELDS))
        """Scratch: the fragment runs of the job reserved last, when they are recorded (grown by
        :meth:`runs_for`)."""

    def runs_for(self, iterations: int) -> np.ndarray:
        """The runs scratch, with room for ``iterations`` passes."""
        if self.runs.shape[0] < iterations * self.fragment_count:
            self.runs = np.zeros((iterations * self.fragment_count, RUN_FIELDS))
        return self.runs

    def _exit_chain(self, children: list[list[int]]) -> list[int]:
        """An early-exit plan's fragments in chain order (it must be one chain)."""
        plan, count = self.plan, self.fragment_count
        if len(self.exit_probability) != count or not all(0.0 <= p <= 1.0 for p in self.exit_probability):
            raise ValueError(f"plan {plan.model}/{plan.variant}: exit_probability needs {count} values in [0, 1], "
                             f"got {self.exit_probability}")
        heads = [i for i in range(count) if not any(s != ORIGIN for s, _ in self.inputs[i])]
        chain = heads[:1]
        while len(heads) == 1 and len(children[chain[-1]]) == 1 and len(chain) <= count:
            chain.append(children[chain[-1]][0])
        if len(heads) != 1 or len(chain) != count or children[chain[-1]]:
            raise ValueError(f"plan {plan.model}/{plan.variant}: an early-exit plan must be a chain of fragments")
        return chain

    def sampled_reach(self, items: int, rng: np.random.Generator) -> np.ndarray:
        """Items that reach each fragment (float64): :data:`ALL_ITEMS` (all of them), or for early exits drawn at
        once (multinomial over the exits: the same law as one binomial draw per exit)."""
        if self.chain is None:
            return ALL_ITEMS
        leaving = rng.multinomial(items, self.exit_share)
        reach = np.empty(self.fragment_count)
        reach[self.chain] = items - np.concatenate(([0], np.cumsum(leaving[:-1])))
        return reach

    def expected_reach(self, items: int) -> np.ndarray:
        """Mean of :meth:`sampled_reach` (:data:`ALL_ITEMS` without early exits)."""
        if self.chain is None:
            return ALL_ITEMS
        reach = np.empty(self.fragment_count)
        reach[self.chain] = items * self.reach_share
        return reach
