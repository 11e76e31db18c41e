"""ONNX: TorchScript-based `torch.onnx.export`, simplified with onnxsim, checked, run with onnxruntime.

A model containing clcdeploy's fused IGC op (`clcdeploy::igc2`, from `--fused-igc`) exports it as the custom
node `clcdeploy.IGC2`; onnxsim and onnxruntime then load clcdeploy's ONNX Runtime kernel library.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

NAME, SUFFIX, RUNTIME = "onnx", ".onnx", "onnxruntime"
# merged groups (`merge_small_groups`) measured slower in ONNX Runtime
MERGES_GROUPS = False
OPSET = 17
CUSTOM_OPSET_VERSION = 1


def export(model: nn.Module, example: torch.Tensor, path: Path, *,
           merge_groups: bool = MERGES_GROUPS) -> dict:
    """Write `model` as a simplified, checked ONNX file at `path`; return layout facts for the manifest."""
    import io
    import warnings

    import onnx
    import onnxsim

    from clcdeploy.export.passes import merge_small_groups
    from clcdeploy.kernels.build import build_onnxruntime_kernels
    from clcdeploy.kernels.fuse import FusedIGC2
    from clcdeploy.kernels.ops import ONNX_DOMAIN

    _register_igc2_symbolic()
    if merge_groups:
        model = merge_small_groups(model)
    fused = any(isinstance(m, FusedIGC2) for m in model.modules())
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # dynamo=False: the dynamo exporter needs onnxscript, which is not a dependency.
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), buffer, input_names=["input"], output_names=["logits"],
                          opset_version=OPSET, dynamo=False,
                          custom_opsets={ONNX_DOMAIN: CUSTOM_OPSET_VERSION} if fused else None)
    proto = onnx.load_from_string(buffer.getvalue())
    custom_lib = str(build_onnxruntime_kernels()) if fused else None  # onnxsim runs the graph with ORT
    simplified, ok = onnxsim.simplify(proto, custom_lib=custom_lib)
    if not ok:
        raise RuntimeError("onnxsim could not verify the simplified model")
    onnx.checker.check_model(simplified, full_check=True)
    path.write_bytes(simplified.SerializeToString())
    return {"input_name": "input", "input_layout": "NCHW", "input_shape": list(example.shape), "opset": OPSET}


def run(path: Path, x: np.ndarray) -> np.ndarray:
    """Run the model with onnxruntime's CPU provider (with clcdeploy's kernel library if it needs it)."""
    import onnxruntime as ort

    from clcdeploy.kernels.runtime import prepare_onnx

    options = ort.SessionOptions()
    prepare_onnx(options, path)
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def _register_igc2_symbolic() -> None:
    """Teach the TorchScript exporter to write `clcdeploy::igc2` as the node `clcdeploy.IGC2`."""
    from torch.onnx import register_custom_op_symbolic, symbolic_helper

    from clcdeploy.kernels.ops import ONNX_DOMAIN, ONNX_OP_TYPE  # also defines the torch op

    @symbolic_helper.parse_args("v", "v", "v", "i")
    def igc2(g, x, weight, bias, stride):
        out = g.op(f"{ONNX_DOMAIN}::{ONNX_OP_TYPE}", x, weight, bias, stride_i=stride)
        sizes = symbolic_helper._get_tensor_sizes(x)
        if sizes is not None and None not in sizes:  # static shapes: tell ONNX the output's
            n, c, h, w = sizes
            out.setType(x.type().with_sizes([n, c, (h - 1) // stride + 1, (w - 1) // stride + 1]))
        return out

    register_custom_op_symbolic("clcdeploy::igc2", igc2, OPSET)
