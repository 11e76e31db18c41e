"""TFLite (LiteRT): `litert-torch` conversion, run with the `ai-edge-litert` interpreter.

litert-torch converts the NCHW PyTorch graph to NHWC internally; the model is wrapped with
`to_channel_last_io` so the .tflite takes an NHWC input (what a phone app feeds) and no transpose runs
at the input. The manifest records the layout and shape.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

NAME, SUFFIX, RUNTIME = "tflite", ".tflite", "ai-edge-litert"


def export(model: nn.Module, example: torch.Tensor, path: Path) -> dict:
    """Convert `model` with litert-torch and write the flatbuffer at `path` (NHWC input)."""
    import litert_torch

    nhwc = example.permute(0, 2, 3, 1).contiguous()
    wrapped = litert_torch.to_channel_last_io(model, args=[0]).eval()
    litert_torch.convert(wrapped, (nhwc,)).export(str(path))
    return {"input_name": "args_0", "input_layout": "NHWC", "input_shape": list(nhwc.shape)}


def run(path: Path, x: np.ndarray) -> np.ndarray:
    """Run with the LiteRT interpreter (default delegates, i.e. XNNPACK); `x` is NCHW, fed as NHWC."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    interpreter.set_tensor(inp["index"], np.ascontiguousarray(x.transpose(0, 2, 3, 1)))
    interpreter.invoke()
    return interpreter.get_tensor(out["index"]).copy()

