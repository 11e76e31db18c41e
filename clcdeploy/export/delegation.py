"""What each artifact asks its runtime to do: op histograms and delegation (`shared/design/IGC_LOWERING.md`).

- ONNX: op histogram (no delegation: the session's provider runs every op).
- ExecuTorch: the .pte's instruction list: delegate calls per backend, the kernel calls left outside
  any delegate (compute ops and convolutions among them) and, separately, calls of clcdeploy's own custom
  ops (the fused IGC kernel; intended, not a delegation failure).
- TFLite: op histogram without delegates (so CONV_2D's groups can be read), the number of DELEGATE
  partitions the default XNNPACK delegate makes, and the ops it leaves out; calls of clcdeploy's fused IGC
  custom op, which clcdeploy's own delegate takes, are counted separately.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

# Operators that do no arithmetic (views, symbolic sizes): not counted as compute left outside a delegate.
_NON_COMPUTE_PREFIXES = ("executorch_prim::",)
_NON_COMPUTE = {"aten::view_copy", "aten::_to_dim_order_copy", "dim_order_ops::_to_dim_order_copy",
                "dim_order_ops::_clone_dim_order"}
# clcdeploy's own kernels (`clcdeploy.kernels`, opt-in with `--fused-igc`): intended calls outside the
# delegate, reported as custom-op calls rather than as ops the partitioner failed to delegate.
CUSTOM_OP_PREFIX = "clcdeploy::"
# A grouped CONV_2D whose groups read fewer channels than this runs as padded tiny GEMMs on mobile CPUs.
MIN_GROUP_CHANNELS = 8


def onnx_report(path: Path) -> dict:
    import onnx

    graph = onnx.load(str(path)).graph
    return {"op_histogram": _sorted(Counter(n.op_type for n in graph.node))}


def executorch_report(path: Path) -> dict:
    from executorch.exir._serialize._program import deserialize_pte_binary

    program = deserialize_pte_binary(Path(path).read_bytes()).program
    plan = next(p for p in program.execution_plan if p.name == "forward")
    kernels: Counter[str] = Counter()
    delegates: Counter[str] = Counter()
    for chain in plan.chains:
        for instruction in chain.instructions:
            args = instruction.instr_args
            kind = type(args).__name__
            if kind == "KernelCall":
                op = plan.operators[args.op_index]
                kernels[op.name + (f".{op.overload}" if op.overload else "")] += 1
            elif kind == "DelegateCall":
                delegates[plan.delegates[args.delegate_index].id] += 1
    custom = {k: v for k, v in kernels.items() if k.startswith(CUSTOM_OP_PREFIX)}
    outside = {k: v for k, v in kernels.items() if not _non_compute(k) and k not in custom}
    return {
        "op_histogram": _sorted(kernels),
        "delegate_calls": _sorted(delegates),
        "ops_outside_delegate": sum(outside.values()),
        "ops_outside_delegate_histogram": _sorted(Counter(outside)),
        "convolutions_outside_delegate": sum(v for k, v in outside.items() if "convolution" in k),
        "custom_op_calls": _sorted(Counter(custom)),
    }


def tflite_report(path: Path) -> dict:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from clcdeploy.kernels.ops import LITERT_CUSTOM_CODE
    from clcdeploy.kernels.runtime import litert_delegates

    raw = Interpreter(model_path=str(path),
                      experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    ops = raw._get_ops_details()
    shapes = {t["index"]: list(t["shape"]) for t in raw.get_tensor_details()}
    grouped = []
    for op in ops:
        if op["op_name"] == "CONV_2D":
            channels, filter_channels = int(shapes[op["inputs"][0]][-1]), int(shapes[op["inputs"][1]][-1])
            if filter_channels != channels:
                grouped.append({"channels": channels, "groups": channels // filter_channels,
                                "group_channels": filter_channels})
    delegated = Interpreter(model_path=str(path), experimental_delegates=litert_delegates(path))
    delegated.allocate_tensors()
    nodes = delegated._get_ops_details()
    partitions = [n for n in nodes if n["op_name"] == "DELEGATE"]
    outside = _outside_partitions([n for n in nodes if n["op_name"] != "DELEGATE"], partitions)
    # clcdeploy's delegate computes exactly the custom op's outputs; XNNPACK's partitions are the others.
    custom_outputs = {int(t) for n in nodes if n["op_name"] == LITERT_CUSTOM_CODE for t in n["outputs"]}
    ours = [p for p in partitions if {int(t) for t in p["outputs"]} <= custom_outputs]
    return {
        "op_histogram": _sorted(Counter(op["op_name"] for op in ops)),
        "delegate_partitions": len(partitions) - len(ours),
        "custom_op_calls": _sorted(Counter(op["op_name"] for op in ops if op["op_name"] == LITERT_CUSTOM_CODE)),
        "ops_outside_delegate": len(outside),
        "ops_outside_delegate_histogram": _sorted(Counter(n["op_name"] for n in outside)),
        "grouped_conv2d": grouped,
    }


def _outside_partitions(originals: list[dict], partitions: list[dict]) -> list[dict]:
    """Original nodes not replaced by a DELEGATE node.

    The interpreter keeps the replaced nodes in its node list; a node belongs to a partition when it lies
    between that DELEGATE node's inputs and outputs (walking producers back from the outputs).
    """
    producer = {t: n for n in originals for t in n["outputs"]}
    inside: set[int] = set()
    for partition in partitions:
        boundary = set(partition["inputs"])
        stack = [t for t in partition["outputs"] if t in producer]
        while stack:
            node = producer[stack.pop()]
            if node["index"] in inside:
                continue
            inside.add(node["index"])
            stack.extend(t for t in node["inputs"] if t not in boundary and t in producer)
    return [n for n in originals if n["index"] not in inside]


def delegation_failures(fmt: str, op_histogram: dict[str, int], report: dict, *, igc_lowered: bool) -> list[str]:
    """What keeps one artifact from running wholly in XNNPACK (any model), and, when `igc_lowered`, the clcNet
    family's delegation requirements (issue 3) it violates.

    `report` is the format's report without its op histogram (given separately). An op left outside the
    delegate runs in the runtime's reference kernels, usually in NCHW with layout conversions around it, and
    splits the graph: ShuffleNet's three padded average pools once made its .pte 4.8x slower than MobileNet-v1.
    """
    failures = []
    if fmt in ("pte", "tflite") and report["ops_outside_delegate"]:
        ops = ", ".join(f"{name} x{count}" for name, count in report["ops_outside_delegate_histogram"].items())
        failures.append(f"{fmt}: {report['ops_outside_delegate']} op(s) outside the XNNPACK delegate ({ops}); "
                        f"they run in the runtime's reference kernels")
    if fmt == "pte" and not report["delegate_calls"]:
        failures.append("pte: nothing was delegated to XNNPACK")
    if fmt == "tflite" and igc_lowered:
        if not op_histogram.get("DEPTHWISE_CONV_2D") and not report.get("custom_op_calls"):
            failures.append("tflite: no DEPTHWISE_CONV_2D (IGCs were not lowered)")
        tiny = [g for g in report["grouped_conv2d"] if g["group_channels"] < MIN_GROUP_CHANNELS]
        if tiny:
            failures.append(f"tflite: {len(tiny)} grouped CONV_2D with fewer than {MIN_GROUP_CHANNELS} input "
                            f"channels per group (first: {tiny[0]['channels']} channels in {tiny[0]['groups']} "
                            f"groups of {tiny[0]['group_channels']})")
    return failures


def _non_compute(name: str) -> bool:
    base = name.split(".")[0]
    return name.startswith(_NON_COMPUTE_PREFIXES) or base in _NON_COMPUTE


def _sorted(counts: Counter) -> dict[str, int]:
    return dict(sorted(counts.items()))
