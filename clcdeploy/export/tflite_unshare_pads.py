"""Give every convolution its own zero PAD in a .tflite flatbuffer, so that XNNPACK folds the padding into it.

A PyTorch convolution with stride 2 and padding 1 on an even input has no TFLite equivalent (SAME pads
bottom/right, PyTorch top/left), so litert-torch writes PAD + a VALID convolution. LiteRT's XNNPACK delegate
folds such a PAD into the convolution's own padding, but only when the PAD has a single consumer. The IGC
lowering reads each half of the input with two depthwise convolutions, so their shared PAD stayed a separate
tensor copy: 17 `Constant Pad` operators, 15% of clcNet-A's LiteRT time (BENCHMARKS.md, section 3). Copying
the PAD operator per convolution lets XNNPACK fold each one. Exact: the copies compute the same tensor.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np

CONVOLUTIONS = ("CONV_2D", "DEPTHWISE_CONV_2D")


def unshare_pads(path: Path) -> int:
    """Rewrite the .tflite at `path` in place; return the number of PAD operators added."""
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(path))
    names = [_op_name(code) for code in model.operatorCodes]
    added = sum(_unshare_in_subgraph(model, subgraph, names) for subgraph in model.subgraphs)
    if added:
        flatbuffer_utils.write_model(model, str(path))
    return added


def _unshare_in_subgraph(model, subgraph, names: list[str]) -> int:
    consumers: dict[int, list[tuple[object, int]]] = {}  # tensor -> (operator, input slot)
    for op in subgraph.operators:
        for slot, tensor in enumerate(op.inputs):
            consumers.setdefault(tensor, []).append((op, slot))
    operators, added = [], 0
    for op in subgraph.operators:
        operators.append(op)
        if names[op.opcodeIndex] != "PAD" or not _pads_height_and_width_only(model, subgraph, op):
            continue
        output = op.outputs[0]
        convs = [(consumer, slot) for consumer, slot in consumers.get(output, [])
                 if names[consumer.opcodeIndex] in CONVOLUTIONS and slot == 0]
        others = len(consumers.get(output, [])) - len(convs) + (output in subgraph.outputs)
        # The original PAD keeps the other consumers, or else the first convolution.
        for consumer, slot in convs[0 if others else 1:]:
            clone = copy.deepcopy(subgraph.tensors[output])
            clone.name = f"{_text(clone.name)}/for_{len(subgraph.tensors)}".encode()
            subgraph.tensors.append(clone)
            pad = copy.deepcopy(op)
            pad.outputs = [len(subgraph.tensors) - 1]
            operators.append(pad)
            consumer.inputs[slot] = pad.outputs[0]
            added += 1
    subgraph.operators = operators
    return added


def _pads_height_and_width_only(model, subgraph, op) -> bool:
    """XNNPACK folds a PAD into a convolution only when it pads the spatial axes of an NHWC tensor."""
    from ai_edge_litert import schema_py_generated as schema

    paddings = subgraph.tensors[op.inputs[1]]
    data = model.buffers[paddings.buffer].data
    if data is None or len(data) == 0:
        return False  # paddings computed at run time
    dtype = np.int64 if paddings.type == schema.TensorType.INT64 else np.int32
    pads = np.frombuffer(bytes(data), dtype=dtype).reshape(-1, 2)
    return pads.shape[0] == 4 and not pads[0].any() and not pads[3].any() and (pads >= 0).all()


def _op_name(code) -> str:
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools.flatbuffer_utils import get_builtin_code_from_operator_code

    builtin = get_builtin_code_from_operator_code(code)
    return next((k for k, v in vars(schema.BuiltinOperator).items() if v == builtin and not k.startswith("_")), "")


def _text(name) -> str:
    return name.decode() if isinstance(name, bytes) else str(name)
