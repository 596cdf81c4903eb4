"""Profile a torch module into a layer graph: one vertex per traced op.

``profile_module(module, example_input, name)`` traces ``module`` with
``torch.fx.symbolic_trace``, runs the traced graph once on ``example_input``
(batch 1, inference mode, ``module.eval()``) and records for every fx node
(except the final ``output``) the attributes of the layer-graph contract (see
``docs/profiling.md``):

* ``macs``: multiply-accumulates = FLOPs / 2 as counted by
  ``torch.utils.flop_counter.FlopCounterMode`` (convolutions, linear layers and
  matrix products; element-wise ops, pooling and normalisation count 0, the
  convention of torchvision's published figures);
* ``param_bytes``: bytes of the parameters the vertex uses, each shared
  parameter counted once (at its first use);
* ``output_shape`` / ``output_bytes`` of the tensor it produces;
* ``latency_s``: median of the vertex's time over ``repeats`` runs of the whole
  traced graph (so each op meets its inputs, caches included, as in a forward
  pass, and the per-vertex latencies add up to about the whole-model one),
  single-threaded (``torch.set_num_threads(1)``: the work of one reference
  core), on the thread's CPU clock (:data:`LATENCY_CLOCK`); the input vertex
  does no work and has latency 0;
* ``block``: see :mod:`envs.dnn.blocks`.
"""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import time
import traceback
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import networkx as nx
import torch
from torch import fx, nn
from torch.utils.flop_counter import FlopCounterMode

from envs.dnn.blocks import block_of
from envs.dnn.profile_io import SCHEMA_VERSION

DEFAULT_REPEATS = 50
"""Timed runs of the traced graph (per-vertex times) and of the module (whole-model time);
the median of each is kept."""

WARMUP_RUNS = 2
"""Untimed forward passes before timing (after the counting run of the traced graph)."""

MEASUREMENT_THREADS = 1
"""``torch.set_num_threads`` value while latencies are measured."""

LATENCY_CLOCK = "thread_time"
"""Clock of every latency: the calling thread's CPU time (``time.thread_time``).  With one
torch thread all the work runs on the calling thread, so this is the compute time of batch-1
inference on one core, much less disturbed by other processes competing for the CPU than
wall-clock time (on a busy 2-core machine wall-clock medians came out up to 3x higher)."""


class ProfilingError(ValueError):
    """A module cannot be traced or run on its example input."""


def profile_module(
    module: nn.Module,
    example_input: torch.Tensor,
    name: str,
    repeats: int = DEFAULT_REPEATS,
    source: str | None = None,
) -> nx.DiGraph:
    """Trace, count and time ``module`` on ``example_input`` (batch 1) into a layer graph.

    Args:
        module: any torch.fx-traceable module returning one tensor; it is run in
            eval mode (its training flag is restored afterwards).
        example_input: the single input tensor, batch dimension 1.
        name: the profile name, stored as ``graph.graph["model"]``.
        repeats: timed runs per vertex and for the whole model (median kept).
        source: how the module was built; defaults to its class path.

    Returns:
        A ``networkx.DiGraph`` following the layer-graph contract, with latencies
        measured single-threaded (``torch.set_num_threads(1)``) on this CPU, as
        thread CPU time (:data:`LATENCY_CLOCK`).

    Raises:
        ProfilingError: the module cannot be traced (the message names the
            module and source line that failed) or a vertex fails on the input.
    """
    if repeats < 1:
        raise ValueError(f"repeats={repeats} must be at least 1")
    if not isinstance(example_input, torch.Tensor):
        raise ValueError(f"example_input must be one torch.Tensor, got {type(example_input).__name__}")
    was_training = module.training
    threads = torch.get_num_threads()
    module.eval()
    try:
        traced = trace_module(module)
        output_vertex = _output_vertex(traced)
        torch.set_num_threads(MEASUREMENT_THREADS)
        with torch.no_grad():
            recorder = _VertexRecorder(traced, module)
            recorder.run(example_input)
            for _ in range(WARMUP_RUNS):
                module(example_input)
            timer = _VertexTimer(traced)
            for _ in range(repeats):
                timer.run(example_input)
            total_latency_s = _median_latency_s(lambda: module(example_input), repeats)
    finally:
        torch.set_num_threads(threads)
        module.train(was_training)
    graph = _layer_graph(traced, recorder.records, timer.median_latencies_s())
    graph.graph.update(
        model=name,
        source=source or f"{type(module).__module__}.{type(module).__qualname__}",
        input_shape=list(example_input.shape),
        input_bytes=_tensor_bytes(example_input),
        output_vertex=output_vertex,
        macs_convention="multiply-accumulates",
        total_macs=sum(macs for _, macs in graph.nodes(data="macs")),
        total_params=sum(parameter.numel() for parameter in module.parameters()),
        total_latency_s=total_latency_s,
        torch_version=torch.__version__,
        torch_threads=MEASUREMENT_THREADS,
        latency_clock=LATENCY_CLOCK,
        machine=machine_description(),
        measured_on=datetime.date.today().isoformat(),
        repeats=repeats,
        schema_version=SCHEMA_VERSION,
    )
    return graph


def trace_module(module: nn.Module) -> fx.GraphModule:
    """``torch.fx`` trace of ``module``; raises :class:`ProfilingError` naming where tracing failed."""
    tracer = fx.Tracer()
    try:
        graph = tracer.trace(module)
    except Exception as error:
        raise ProfilingError(_trace_failure_message(module, tracer, error)) from error
    return fx.GraphModule(tracer.root, graph, type(module).__name__)


def machine_description() -> str:
    """CPU model and platform of this machine, e.g. ``"AMD EPYC (2 cores), Linux-6.1-x86_64"``."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            cpu = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu} ({os.cpu_count()} cores), {platform.platform()}"


class _VertexRecorder(fx.Interpreter):
    """Runs the traced graph once, recording per node its MACs, parameters and output."""

    def __init__(self, traced: fx.GraphModule, root: nn.Module):
        super().__init__(traced)
        self.root = root
        self.records: dict[str, dict[str, Any]] = {}
        self._seen_parameters: set[int] = set()

    def run_node(self, node: fx.Node) -> Any:
        if node.op == "output":
            return super().run_node(node)
        try:
            with FlopCounterMode(display=False) as counter:
                result = super().run_node(node)
        except Exception as error:
            raise ProfilingError(f"vertex {node.name!r} ({node.op} {_target_name(node)}) failed on the example "
                                 f"input: {type(error).__name__}: {error}") from error
        self.records[node.name] = {
            "op": _op_name(node, self.module),
            "target": _target_name(node),
            "macs": counter.get_total_flops() // 2,
            "param_bytes": self._new_parameter_bytes(node),
            "output_shape": list(result.shape) if isinstance(result, torch.Tensor) else [],
            "output_bytes": _tensor_bytes(result),
            "block": block_of(node, self.root),
        }
        return result

    def _new_parameter_bytes(self, node: fx.Node) -> int:
        if node.op == "call_module":
            parameters = list(self.module.get_submodule(node.target).parameters())
        elif node.op == "get_attr":
            attribute = self.fetch_attr(node.target)
            parameters = [attribute] if isinstance(attribute, nn.Parameter) else []
        else:
            return 0
        new = [p for p in parameters if id(p) not in self._seen_parameters]
        self._seen_parameters.update(id(p) for p in new)
        return sum(p.numel() * p.element_size() for p in new)


class _VertexTimer(fx.Interpreter):
    """Runs the traced graph, timing each node's own call (not the interpreter's bookkeeping)."""

    def __init__(self, traced: fx.GraphModule):
        super().__init__(traced)
        self.times_s: dict[str, list[float]] = defaultdict(list)

    def run_node(self, node: fx.Node) -> Any:
        args, kwargs = self.fetch_args_kwargs_from_env(node)
        execute = getattr(self, node.op)
        start = time.thread_time()
        result = execute(node.target, args, kwargs)
        self.times_s[node.name].append(time.thread_time() - start)
        return result

    def median_latencies_s(self) -> dict[str, float]:
        """Per node, the median of its timed calls so far."""
        return {name: statistics.median(times) for name, times in self.times_s.items()}


def _layer_graph(traced: fx.GraphModule, records: dict[str, dict[str, Any]],
                 latencies_s: dict[str, float]) -> nx.DiGraph:
    graph = nx.DiGraph()
    for order, node in enumerate(n for n in traced.graph.nodes if n.op != "output"):
        latency_s = 0.0 if node.op == "placeholder" else latencies_s[node.name]
        graph.add_node(node.name, **records[node.name], latency_s=latency_s, order=order)
        for producer in node.all_input_nodes:
            graph.add_edge(producer.name, node.name, bytes=records[producer.name]["output_bytes"])
    return graph


def _output_vertex(traced: fx.GraphModule) -> str:
    output = next(node for node in traced.graph.nodes if node.op == "output")
    result = output.args[0]
    if not isinstance(result, fx.Node):
        raise ProfilingError(f"the module must return a single tensor; its forward returns {result!r}")
    return result.name


def _op_name(node: fx.Node, traced: fx.GraphModule) -> str:
    if node.op == "placeholder":
        return "input"
    if node.op == "call_module":
        return type(traced.get_submodule(node.target)).__name__.lower()
    if node.op == "call_function":
        return getattr(node.target, "__name__", str(node.target))
    return str(node.target) if node.op == "call_method" else node.op


def _target_name(node: fx.Node) -> str:
    if callable(node.target):
        module_name = getattr(node.target, "__module__", None)
        function_name = getattr(node.target, "__name__", repr(node.target))
        return f"{module_name}.{function_name}" if module_name else function_name
    return str(node.target)


def _median_latency_s(run: Callable[[], Any], repeats: int) -> float:
    def timed() -> float:
        start = time.thread_time()
        run()
        return time.thread_time() - start

    return statistics.median(timed() for _ in range(repeats))


def _tensor_bytes(value: Any) -> int:
    """Bytes of all tensors in ``value`` (a tensor or a nest of tuples/lists/dicts); 0 for non-tensors."""
    sizes: list[int] = []

    def add_size(leaf: Any) -> None:
        if isinstance(leaf, torch.Tensor):
            sizes.append(leaf.numel() * leaf.element_size())

    fx.node.map_aggregate(value, add_size)
    return sum(sizes)


def _trace_failure_message(module: nn.Module, tracer: fx.Tracer, error: Exception) -> str:
    """Names the submodule being traced, the user source line and the last op traced before ``error``."""
    module_paths = [path for path, _module_type in tracer.module_stack.values()]
    where = (f"submodule {module_paths[-1]!r} ({type(module.get_submodule(module_paths[-1])).__name__})"
             if module_paths else f"the forward of {type(module).__name__}")
    message = f"cannot trace {type(module).__name__} with torch.fx: {type(error).__name__}: {error}; failed in {where}"
    torch_dir = os.path.dirname(torch.__file__)
    user_frames = [frame for frame in traceback.extract_tb(error.__traceback__)
                   if not frame.filename.startswith(torch_dir) and frame.filename != __file__]
    if user_frames:
        message += f" at {user_frames[-1].filename}:{user_frames[-1].lineno} `{user_frames[-1].line}`"
    traced_ops = [node for node in tracer.graph.nodes if node.op != "placeholder"] if hasattr(tracer, "graph") else []
    if traced_ops:
        message += f", just after the op {traced_ops[-1].name!r} ({_target_name(traced_ops[-1])})"
    return message + " (data-dependent control flow and non-torch calls on traced tensors cannot be traced)"
