"""ExecuTorch: `torch.export`, `to_edge_transform_and_lower` with the XNNPACK partitioner, `.pte`;
run with ExecuTorch's Python runtime.

Padded average pools that count their padding get explicit zero padding first (`explicit_pool_padding`): the
partitioner leaves them outside the delegate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

NAME, SUFFIX, RUNTIME = "pte", ".pte", "executorch"


def export(model: nn.Module, example: torch.Tensor, path: Path) -> dict:
    """Write `model` lowered to the XNNPACK delegate as a .pte at `path`."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    from clcdeploy.export.passes import explicit_pool_padding, pool_padding_for

    model = explicit_pool_padding(model, example, pool_padding_for(NAME))
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
