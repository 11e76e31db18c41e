"""ExecuTorch: `torch.export`, `to_edge_transform_and_lower` with the XNNPACK partitioner, `.pte`;
run with ExecuTorch's Python runtime.

Padded average pools that count their padding get explicit zero padding first (`explicit_pool_padding`): the
partitioner leaves them outside the delegate. Grouped convolutions with fewer than 8 outputs per group get
their groups merged (`merge_small_groups`): XNNPACK computes 8-wide tiles per group anyway."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

NAME, SUFFIX, RUNTIME = "pte", ".pte", "executorch"
# grouped convolutions with < 8 outputs per group merged (`merge_small_groups`): measured faster in XNNPACK
MERGES_GROUPS = True


def export(model: nn.Module, example: torch.Tensor, path: Path, *,
           merge_groups: bool = MERGES_GROUPS) -> dict:
    """Write `model` lowered to the XNNPACK delegate as a .pte at `path`."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    from clcdeploy.export.passes import explicit_pool_padding, merge_small_groups, pool_padding_for

    model = explicit_pool_padding(model, example, pool_padding_for(NAME))
    if merge_groups:  # XNNPACK computes 8-wide tiles per group anyway
        model = merge_small_groups(model)
    program = torch.export.export(model, (example,), strict=False)
    lowered = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
    path.write_bytes(lowered.to_executorch().buffer)
    return {"input_name": "forward[0]", "input_layout": "NCHW", "input_shape": list(example.shape),
            "backend": "XnnpackBackend"}


def run(path: Path, x: np.ndarray) -> np.ndarray:
    """Run `forward` with the ExecuTorch runtime's Python bindings (loading clcdeploy's kernel library
    first if the program calls the fused IGC op)."""
    from executorch.runtime import Runtime

    from clcdeploy.kernels.runtime import prepare_pte

    prepare_pte(path)
    method = Runtime.get().load_program(Path(path)).load_method("forward")
    return method.execute((torch.from_numpy(x),))[0].numpy()
