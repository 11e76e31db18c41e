"""ONNX: TorchScript-based `torch.onnx.export`, simplified with onnxsim, checked, run with onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

NAME, SUFFIX, RUNTIME = "onnx", ".onnx", "onnxruntime"
OPSET = 17


def export(model: nn.Module, example: torch.Tensor, path: Path) -> dict:
    """Write `model` as a simplified, checked ONNX file at `path`; return layout facts for the manifest."""
    import io
    import warnings

    import onnx
    import onnxsim

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # dynamo=False: the dynamo exporter needs onnxscript, which is not a dependency.
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), buffer, input_names=["input"], output_names=["logits"],
                          opset_version=OPSET, dynamo=False)
    proto = onnx.load_from_string(buffer.getvalue())
    simplified, ok = onnxsim.simplify(proto)
    if not ok:
        raise RuntimeError("onnxsim could not verify the simplified model")
    onnx.checker.check_model(simplified, full_check=True)
    path.write_bytes(simplified.SerializeToString())
    return {"input_name": "input", "input_layout": "NCHW", "input_shape": list(example.shape), "opset": OPSET}


def run(path: Path, x: np.ndarray) -> np.ndarray:
    """Run the model with onnxruntime's CPU provider."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]

