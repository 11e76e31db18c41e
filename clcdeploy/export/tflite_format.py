"""TFLite (LiteRT): `litert-torch` conversion, run with the `ai-edge-litert` interpreter.

litert-torch converts the NCHW PyTorch graph to NHWC internally; the model is wrapped with
`to_channel_last_io` so the .tflite takes an NHWC input (what a phone app feeds) and no transpose runs
at the input. The manifest records the layout and shape.

clcdeploy's fused IGC op (`clcdeploy::igc2`, from `--fused-igc`) is lowered to the TFLite custom op
`custom_call.CLCDEPLOY_IGC2` on NHWC tensors (the transposes around it cancel against the converter's own);
the interpreter then runs it with clcdeploy's IGC2 delegate (`clcdeploy.kernels.runtime.litert_delegates`).

Before conversion, padded pools are put in forms LiteRT's XNNPACK delegate takes (`explicit_pool_padding`:
excluding average pools as counting pools times a factor, max pools of ReLU outputs padded with zeros).
Grouped convolutions with fewer than 8 outputs per group get their groups merged (`merge_small_groups`), as
for ExecuTorch. After conversion each convolution gets its own zero PAD (`tflite_unshare_pads`), which XNNPACK
then folds in.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from clcdeploy.export.tflite_unshare_pads import unshare_pads

NAME, SUFFIX, RUNTIME = "tflite", ".tflite", "ai-edge-litert"
# grouped convolutions with < 8 outputs per group merged (`merge_small_groups`): measured faster in XNNPACK
MERGES_GROUPS = True


def export(model: nn.Module, example: torch.Tensor, path: Path, *,
           merge_groups: bool = MERGES_GROUPS) -> dict:
    """Convert `model` with litert-torch and write the flatbuffer at `path` (NHWC input)."""
    import litert_torch

    from clcdeploy.export.passes import explicit_pool_padding, merge_small_groups, pool_padding_for

    _register_igc2_lowering()
    model = explicit_pool_padding(model, example, pool_padding_for(NAME))
    if merge_groups:  # XNNPACK computes 8-wide tiles per group anyway
        model = merge_small_groups(model)
    nhwc = example.permute(0, 2, 3, 1).contiguous()
    wrapped = litert_torch.to_channel_last_io(model, args=[0]).eval()
    litert_torch.convert(wrapped, (nhwc,)).export(str(path))
    return {"input_name": "args_0", "input_layout": "NHWC", "input_shape": list(nhwc.shape),
            "pads_unshared": unshare_pads(path)}


def run(path: Path, x: np.ndarray) -> np.ndarray:
    """Run with the LiteRT interpreter (default delegates, i.e. XNNPACK, plus clcdeploy's IGC2 delegate if the
    model calls the fused op); `x` is NCHW, fed as NHWC."""
    from ai_edge_litert.interpreter import Interpreter

    from clcdeploy.kernels.runtime import litert_delegates

    interpreter = Interpreter(model_path=str(path), experimental_delegates=litert_delegates(path))
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    interpreter.set_tensor(inp["index"], np.ascontiguousarray(x.transpose(0, 2, 3, 1)))
    interpreter.invoke()
    return interpreter.get_tensor(out["index"]).copy()


_lowering_registered = False


def _register_igc2_lowering() -> None:
    """Teach litert-torch to write `clcdeploy::igc2` (NCHW in PyTorch) as the custom op on NHWC tensors."""
    global _lowering_registered
    if _lowering_registered:
        return
    from litert_converter.mlir import ir
    from litert_converter.mlir.dialects import stablehlo
    from litert_torch.backend import lowerings
    from litert_torch.backend.lowerings import utils as lowering_utils

    from clcdeploy.kernels.ops import LITERT_CUSTOM_CODE  # also defines the torch op

    @lowerings.lower(torch.ops.clcdeploy.igc2.default)
    def igc2(lctx, x, weight, bias, stride):
        (out_nchw,) = lowering_utils.node_meta_to_ir_types(lctx.node)
        n, c, out_h, out_w = out_nchw.shape
        x_nhwc = stablehlo.transpose(x, ir.DenseI64ArrayAttr.get([0, 2, 3, 1]))
        y_nhwc = stablehlo.custom_call(
            result=[ir.RankedTensorType.get([n, out_h, out_w, c], out_nchw.element_type)],
            inputs=[x_nhwc, weight, bias], call_target_name=ir.StringAttr.get(LITERT_CUSTOM_CODE),
            has_side_effect=ir.BoolAttr.get(False), backend_config=ir.StringAttr.get(f"stride={int(stride)}"))
        return stablehlo.transpose(y_nhwc, ir.DenseI64ArrayAttr.get([0, 3, 1, 2]))

    _lowering_registered = True
