"""Split plans of one model: the split families of the five source papers.

:class:`SplitPlanner` turns a model's layer graph and accuracy profile into
:class:`~envs.dnn.plan.SplitPlan` objects (see ``docs/planner.md``):

* ``none``: the whole model as one fragment, or SplitPlace's "MC" baseline
  (variant ``compressed``): a smaller stand-in model from the accuracy profile.
* ``layer`` (SplitPlace, MDI): a chain of fragments cut at cut points
  (:mod:`envs.dnn.cut_points`); also the optimal device/server cut of
  :mod:`envs.dnn.mincut` as a two-fragment plan.
* ``semantic`` (SplitPlace): the branches of the model's semantic-net profile,
  one fragment each, plus a gather fragment (the concatenation).
* ``early_exit`` (MDI-Exit): a chain whose fragments end at exit heads; items
  leave at each head with the probability of a confidence-threshold policy;
  optional activation compression between fragments.
* ``width`` (ParaDiS): parallel sub-networks of fractional width fused by the
  final classifier.

Accuracies come from the accuracy profile only.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Sequence
from functools import cached_property

import networkx as nx

from envs.dnn.accuracy import AccuracyProfile, EarlyExitProfile, ExitPolicy, list_accuracy_profiles, load_accuracy
from envs.dnn.cut_points import execution_order, input_vertex, layer_boundaries, valid_cut_points
from envs.dnn.fragments import make_fragment, partition_fragments
from envs.dnn.mincut import CutProblem, DelayModel
from envs.dnn.plan import ORIGIN, Fragment, SplitPlan, Transfer
from envs.dnn.profile_io import list_profiles, load_profile

SEMANTIC_SUFFIX = "_semantic"
"""A base profile ``<app>_layer`` has its semantic net in the profile ``<app>_semantic``."""
LAYER_SUFFIX = "_layer"
BRANCH_BLOCK_PREFIX = "branches."
"""Blocks of a semantic-net profile that are branches (``branches.0``, ``branches.1``, ...)."""
WIDTH_SUM_TOLERANCE = 1e-6
THRESHOLD_TOLERANCE = 1e-9


def check_planner_options(max_layer_fragments: object, cut_candidates: object) -> None:
    """Both must be integers >= 1 (ValueError naming the one that is not)."""
    for name, value in (("max_layer_fragments", max_layer_fragments), ("cut_candidates", cut_candidates)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r} must be an integer >= 1")


class SplitPlanner:
    """All split plans of one model.

    Args:
        graph: the model's layer graph (see the profile contract).
        accuracy: its accuracy profile (``accuracy.model`` must name ``graph``).
        semantic_graph: the layer graph of the model's semantic net, if it has one.
        max_layer_fragments: longest chain :meth:`layer_plans` and :meth:`all_plans` offer.
        cut_candidates: how many layer boundaries (cut points followed by a
            convolution or linear layer), spread evenly over the model's
            multiply-accumulates, :meth:`layer_plans` combines.
    """

    def __init__(
        self,
        graph: nx.DiGraph,
        accuracy: AccuracyProfile,
        semantic_graph: nx.DiGraph | None = None,
        max_layer_fragments: int = 4,
        cut_candidates: int = 5,
    ):
        self.model: str = graph.graph["model"]
        if accuracy.model != self.model:
            raise ValueError(f"accuracy profile is for {accuracy.model!r}, the layer graph for {self.model!r}")
        check_planner_options(max_layer_fragments, cut_candidates)
        self.graph = graph
        self.accuracy = accuracy
        self.semantic_graph = semantic_graph
        self.max_layer_fragments = max_layer_fragments
        self.cut_candidates = cut_candidates
        self._input = input_vertex(graph)
        self._cut_problems: dict[bool, CutProblem] = {}

    @classmethod
    def for_model(cls, model: str, max_layer_fragments: int = 4, cut_candidates: int = 5) -> SplitPlanner:
        """The planner of shipped profile ``model`` (a base profile: not a ``*_semantic`` one)."""
        profiles = list_profiles()
        base_models = [name for name in profiles if not name.endswith(SEMANTIC_SUFFIX)]
        if model not in base_models:
            raise ValueError(f"unknown model {model!r}; allowed: {base_models}")
        semantic_name = model.removesuffix(LAYER_SUFFIX) + SEMANTIC_SUFFIX
        semantic_graph = load_profile(semantic_name) if semantic_name in profiles else None
        return cls(load_profile(model), load_accuracy(model), semantic_graph, max_layer_fragments, cut_candidates)

    # -- no split and layer chains --------------------------------------------------------------

    def no_split(self) -> SplitPlan:
        """The whole model as one fragment."""
        vertices = [v for v in execution_order(self.graph) if v != self._input]
        return self._plan("none", "whole", [vertices], self.accuracy.full, names=[self.model])

    def compressed_model(self) -> SplitPlan:
        """The "MC" baseline: the accuracy profile's smaller stand-in model, unsplit (family ``none``,
        variant ``compressed``).

        Its MACs are ``macs_fraction`` and its parameters ``param_fraction`` of the
        model's; its latency is taken to scale with the MACs, its activations
        with the square root of the MACs fraction (as for a uniformly slimmed
        network, whose work scales with the width squared and activations with
        the width).
        """
        compressed = self.accuracy.compressed_model
        if compressed is None:
            raise ValueError(f"the accuracy profile of {self.model!r} has no compressed model; models with one: "
                             f"{_models_with(lambda profile: profile.compressed_model is not None)}")
        unsplit = self.no_split()
        (whole,) = unsplit.fragments
        fragment = dataclasses.replace(
            whole,
            name=f"{self.model} (compressed)",
            macs=round(whole.macs * compressed.macs_fraction),
            reference_latency_s=whole.reference_latency_s * compressed.macs_fraction,
            param_bytes=round(whole.param_bytes * compressed.param_fraction),
            activation_bytes=round(whole.activation_bytes * math.sqrt(compressed.macs_fraction)),
            vertices=(),
        )
        return dataclasses.replace(unsplit, variant="compressed", fragments=(fragment,), accuracy=compressed.accuracy)

    def valid_cut_points(self) -> tuple[str, ...]:
        """Every cut point of the model, in execution order."""
        return self._cut_points

    @cached_property
    def _cut_points(self) -> tuple[str, ...]:
        return tuple(valid_cut_points(self.graph))

    @cached_property
    def layer_cut_candidates(self) -> tuple[str, ...]:
        """The cut points :meth:`layer_plans` combines: at most ``cut_candidates`` layer boundaries,
        those whose prefix multiply-accumulates lie nearest to 1/(n+1), ..., n/(n+1) of the total."""
        boundaries = layer_boundaries(self.graph)
        if len(boundaries) <= self.cut_candidates:
            return tuple(boundaries)
        order = execution_order(self.graph)
        prefix_macs = dict(zip(order, itertools.accumulate(self.graph.nodes[v]["macs"] for v in order)))
        total_macs = prefix_macs[order[-1]]
        chosen: list[str] = []
        for step in range(1, self.cut_candidates + 1):
            target = total_macs * step / (self.cut_candidates + 1)
            chosen.append(min((b for b in boundaries if b not in chosen), key=lambda b: abs(prefix_macs[b] - target)))
        return tuple(b for b in boundaries if b in chosen)

    def layer_chain(self, cuts: Sequence[str]) -> SplitPlan:
        """The chain of ``len(cuts) + 1`` fragments cut after each of ``cuts`` (valid cut points, any order)."""
        ordered = self._checked_cuts(cuts)
        return self._plan("layer", f"cuts={','.join(ordered)}", self._chain_groups(ordered), self.accuracy.full)

    def layer_plans(self, fragments: int) -> list[SplitPlan]:
        """Every chain of ``fragments`` pieces cut at :attr:`layer_cut_candidates`, in lexicographic cut order."""
        allowed = self._layer_fragment_counts
        if fragments not in allowed:
            raise ValueError(f"a layer chain of {fragments} fragments is not offered for {self.model!r}; allowed: "
                             f"{list(allowed)} (max_layer_fragments={self.max_layer_fragments}, "
                             f"{len(self.layer_cut_candidates)} candidate cut points)")
        return [self.layer_chain(cuts) for cuts in itertools.combinations(self.layer_cut_candidates, fragments - 1)]

    @property
    def _layer_fragment_counts(self) -> range:
        return range(2, min(self.max_layer_fragments, len(self.layer_cut_candidates) + 1) + 1)

    def optimal_cut(self, delay: DelayModel, blockwise: bool = False) -> SplitPlan:
        """The least-delay device/server split under ``delay`` (minimum s-t cut) as a ``layer`` plan:
        the device fragment first, then the server fragment; one fragment when either side is empty."""
        if blockwise not in self._cut_problems:
            self._cut_problems[blockwise] = CutProblem(self.graph, blockwise)
        cut = self._cut_problems[blockwise].solve(delay)
        device = [v for v in execution_order(self.graph) if v in cut.device_vertices and v != self._input]
        server = [v for v in execution_order(self.graph) if v in cut.server_vertices]
        groups = [group for group in (device, server) if group]
        variant = (f"optimal-cut:{delay.objective},{'block-wise' if blockwise else 'vertex-wise'},"
                   f"device={delay.device_speed_factor:g},server={delay.server_speed_factor:g},"
                   f"bandwidth={delay.bandwidth_mbps:g}Mbps,batch={delay.batch_size}")
        return self._plan("layer", variant, groups, self.accuracy.full)

    # -- semantic -------------------------------------------------------------------------------

    def semantic(self, branches: int | None = None) -> SplitPlan:
        """SplitPlace's semantic split: one fragment per branch of the semantic net, then a gather fragment.

        ``branches`` (default: all of them) must equal the semantic net's branch count.
        """
        if self.semantic_graph is None:
            raise ValueError(f"model {self.model!r} has no semantic-net profile; semantic splits exist for the "
                             f"SplitPlace apps (profiles '<app>{LAYER_SUFFIX}' with '<app>{SEMANTIC_SUFFIX}')")
        graph = self.semantic_graph
        order = execution_order(graph)
        branch_blocks = list(dict.fromkeys(graph.nodes[v]["block"] for v in order
                                           if graph.nodes[v]["block"].startswith(BRANCH_BLOCK_PREFIX)))
        count = len(branch_blocks)
        if branches is not None and branches != count:
            raise ValueError(f"branches={branches!r}: the semantic net of {self.model!r} has {count}; "
                             f"allowed: [{count}]")
        if count not in self.accuracy.semantic:
            raise ValueError(f"the accuracy profile of {self.model!r} has no semantic accuracy for {count} branches; "
                             f"it has: {sorted(self.accuracy.semantic)}")
        groups = [[v for v in order if graph.nodes[v]["block"] == block] for block in branch_blocks]
        gather = [v for v in order if v != input_vertex(graph) and graph.nodes[v]["block"] not in branch_blocks]
        fragments, transfers = partition_fragments(graph, groups + [gather], names=branch_blocks + ["gather"])
        return SplitPlan(self.model, "semantic", f"branches={count}", fragments, transfers,
                         self.accuracy.semantic[count])

    # -- early exit -----------------------------------------------------------------------------

    @property
    def exit_thresholds(self) -> tuple[float, ...]:
        """Confidence thresholds of the early-exit policies (empty without an early-exit profile)."""
        early_exit = self.accuracy.early_exit
        return () if early_exit is None else tuple(policy.threshold for policy in early_exit.policies)

    def early_exit(self, threshold: float, cuts: Sequence[str] | None = None,
                   compression_ratio: float | None = None) -> SplitPlan:
        """An early-exit chain: fragments cut at ``cuts`` (default: at every exit), exit heads at the
        profile's ``exit_after`` vertices, exit probabilities of the policy with ``threshold``.

        Every exit must end a fragment; a fragment that ends at an exit also runs
        its head. With ``compression_ratio`` (a ratio of the accuracy profile's
        ``compression`` table) the bytes sent between fragments are divided by
        it and its accuracy drop is subtracted; the encoder/decoder compute is
        not modelled.
        """
        early_exit = self.accuracy.early_exit
        if early_exit is None:
            raise ValueError(f"model {self.model!r} has no early-exit profile; models with one: "
                             f"{_models_with(lambda profile: profile.early_exit is not None)}")
        policy = self._policy(threshold)
        exits = list(early_exit.exit_after)
        not_cut_points = [v for v in exits if v not in self._cut_points]
        if not_cut_points:
            raise ValueError(f"exits after {not_cut_points} of {self.model!r} are not valid cut points")
        ordered = self._checked_cuts(exits if cuts is None else cuts)
        missing = [v for v in exits if v not in ordered]
        if missing:
            raise ValueError(f"cuts={list(ordered)} must include every exit vertex; missing: {missing}")
        drop = self._compression_drop(compression_ratio)
        fragments, transfers = partition_fragments(self.graph, self._chain_groups(ordered))
        heads = {vertex: number for number, vertex in enumerate(exits)}
        fragments = tuple(
            _with_head(fragment, early_exit, heads[fragment.vertices[-1]])
            if fragment.vertices[-1] in heads else fragment
            for fragment in fragments
        )
        if compression_ratio is not None:
            transfers = _compressed(transfers, compression_ratio)
        leave = _conditional_exit_probabilities(policy)
        exit_probability = tuple(leave[heads[f.vertices[-1]]] if f.vertices[-1] in heads else 0.0
                                 for f in fragments[:-1]) + (1.0,)
        variant = f"threshold={policy.threshold:g},cuts={','.join(ordered)}" + (
            "" if compression_ratio is None else f",compression={compression_ratio:g}")
        return SplitPlan(self.model, "early_exit", variant, fragments, transfers,
                         min(1.0, max(0.0, policy.accuracy - drop)), exit_probability)

    def _policy(self, threshold: float) -> ExitPolicy:
        for policy in self.accuracy.early_exit.policies:
            if math.isclose(policy.threshold, threshold, abs_tol=THRESHOLD_TOLERANCE):
                return policy
        raise ValueError(f"threshold={threshold!r} has no early-exit policy for {self.model!r}; "
                         f"allowed: {list(self.exit_thresholds)}")

    def _compression_drop(self, ratio: float | None) -> float:
        if ratio is None:
            return 0.0
        for known, drop in self.accuracy.compression.items():
            if math.isclose(known, ratio):
                return drop
        raise ValueError(f"compression_ratio={ratio!r} has no accuracy figure for {self.model!r}; "
                         f"allowed: {sorted(self.accuracy.compression)} or None")

    # -- width-parallel switches ----------------------------------------------------------------

    def width_parallel(self, widths: Sequence[float]) -> SplitPlan:
        """A ParaDiS switch: one sub-network per share of the width, fused by the final classifier.

        Sub-network i does ``w_i ** 2`` of the work and holds ``w_i ** 2`` of the
        parameters of everything before the classifier (a convolution's work and
        weights scale with its input times its output channels), and ``w_i`` of
        its activations; it receives the whole input and sends ``w_i`` of the
        penultimate feature vector to the fusion fragment, which runs the
        classifier as it is.
        """
        switches = self.accuracy.width_switches
        if not switches:
            raise ValueError(f"model {self.model!r} has no ParaDiS width-switch accuracies; models with them: "
                             f"{_models_with(lambda profile: bool(profile.width_switches))}")
        widths = tuple(float(w) for w in widths)
        if len(widths) not in switches:
            raise ValueError(f"a switch of {len(widths)} sub-networks has no accuracy for {self.model!r}; "
                             f"allowed numbers of widths: {sorted(switches)}")
        if not all(0.0 < w <= 1.0 for w in widths) or abs(sum(widths) - 1.0) > WIDTH_SUM_TOLERANCE:
            raise ValueError(f"widths={list(widths)} must each lie in (0, 1] and sum to 1 "
                             f"(within {WIDTH_SUM_TOLERANCE})")
        graph = self.graph
        classifier = graph.graph["output_vertex"]
        features = list(graph.predecessors(classifier))
        if len(features) != 1:
            raise ValueError(f"width-parallel splits need a classifier {classifier!r} that reads one feature "
                             f"vector; it reads {features}")
        body = make_fragment(graph, [v for v in graph.nodes if v not in (self._input, classifier)])
        sub_networks = tuple(
            Fragment(
                name=f"width{number}({w:g})",
                macs=round(body.macs * w**2),
                reference_latency_s=body.reference_latency_s * w**2,
                param_bytes=round(body.param_bytes * w**2),
                activation_bytes=round(body.activation_bytes * w),
                vertices=body.vertices,
            )
            for number, w in enumerate(widths)
        )
        fusion = len(widths)
        feature_bytes = graph.nodes[features[0]]["output_bytes"]
        transfers = tuple(Transfer(ORIGIN, number, graph.graph["input_bytes"]) for number in range(fusion)) + tuple(
            Transfer(number, fusion, math.ceil(feature_bytes * w)) for number, w in enumerate(widths)
        ) + (Transfer(fusion, ORIGIN, graph.nodes[classifier]["output_bytes"]),)
        return SplitPlan(self.model, "width", f"widths={','.join(f'{w:g}' for w in widths)}",
                         sub_networks + (make_fragment(graph, [classifier], name="fusion"),), transfers,
                         switches[len(widths)])

    # -- everything -----------------------------------------------------------------------------

    def all_plans(self) -> list[SplitPlan]:
        """Every plan offered for the model, in a fixed order.

        No split; the compressed model if the accuracy profile has one; layer
        chains of 2 to ``max_layer_fragments`` fragments over
        :attr:`layer_cut_candidates`; the semantic split if the model has one;
        an early-exit chain cut at its exits per threshold, without and with
        each compression ratio; a ParaDiS switch of equal widths per number of
        sub-networks (2 or more) with an accuracy figure.
        """
        plans = [self.no_split()]
        if self.accuracy.compressed_model is not None:
            plans.append(self.compressed_model())
        for fragments in self._layer_fragment_counts:
            plans += self.layer_plans(fragments)
        if self.semantic_graph is not None:
            plans.append(self.semantic())
        for threshold in self.exit_thresholds:
            for ratio in [None, *sorted(self.accuracy.compression)]:
                plans.append(self.early_exit(threshold, compression_ratio=ratio))
        for count in sorted(k for k in self.accuracy.width_switches if k >= 2):
            plans.append(self.width_parallel([1.0 / count] * count))
        return plans

    # -- helpers --------------------------------------------------------------------------------

    def _checked_cuts(self, cuts: Sequence[str]) -> list[str]:
        """``cuts`` in execution order; raises unless they are distinct valid cut points."""
        if isinstance(cuts, str):
            raise ValueError(f"cuts must be a sequence of vertex names, got the string {cuts!r}")
        invalid = [c for c in cuts if c not in self._cut_points]
        if invalid:
            raise ValueError(f"{invalid} are not valid cut points of {self.model!r}; allowed: {list(self._cut_points)}")
        if len(set(cuts)) != len(cuts):
            raise ValueError(f"cuts={list(cuts)} repeat a cut point")
        return [c for c in self._cut_points if c in cuts]

    def _chain_groups(self, ordered_cuts: Sequence[str]) -> list[list[str]]:
        """The vertices (input excluded) of each fragment of the chain cut after ``ordered_cuts``."""
        groups: list[list[str]] = [[]]
        for vertex in execution_order(self.graph):
            if vertex != self._input:
                groups[-1].append(vertex)
            if vertex in ordered_cuts:
                groups.append([])
        return groups

    def _plan(self, family: str, variant: str, groups: list[list[str]], accuracy: float,
              names: Sequence[str] | None = None) -> SplitPlan:
        fragments, transfers = partition_fragments(self.graph, groups, names)
        return SplitPlan(self.model, family, variant, fragments, transfers, accuracy)


def _with_head(fragment: Fragment, early_exit: EarlyExitProfile, head: int) -> Fragment:
    """``fragment`` plus the compute and weights of exit head number ``head``."""
    return dataclasses.replace(
        fragment,
        name=f"{fragment.name}+exit{head}",
        macs=fragment.macs + early_exit.head_macs[head],
        reference_latency_s=fragment.reference_latency_s + early_exit.head_latency_s[head],
        param_bytes=fragment.param_bytes + early_exit.head_param_bytes[head],
    )


def _compressed(transfers: tuple[Transfer, ...], ratio: float) -> tuple[Transfer, ...]:
    """``transfers`` with the bytes sent between fragments (not to or from the origin) divided by ``ratio``."""
    return tuple(
        transfer if ORIGIN in (transfer.source, transfer.target)
        else dataclasses.replace(transfer, bytes=math.ceil(transfer.bytes / ratio))
        for transfer in transfers
    )


def _conditional_exit_probabilities(policy: ExitPolicy) -> list[float]:
    """Probability of leaving at each exit given the item got there (from shares of all items); final 1."""
    probabilities = []
    remaining = 1.0
    for share in policy.exit_fraction[:-1]:
        probabilities.append(1.0 if remaining <= 0.0 else min(1.0, share / remaining))
        remaining -= share
    return probabilities + [1.0]


def _models_with(has_figures: Callable[[AccuracyProfile], bool]) -> list[str]:
    """Shipped models whose accuracy profile satisfies ``has_figures``."""
    return [name for name in list_accuracy_profiles() if has_figures(load_accuracy(name))]
