"""A check shared by the export-pass tests: the rewritten graph as a .pte is one XNNPACK partition."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from clcdeploy.export import executorch_format
from clcdeploy.export.delegation import executorch_report


def run_as_one_xnnpack_partition(deployed: torch.nn.Module, x: torch.Tensor, path: Path) -> np.ndarray:
    """Export `deployed` to `path`, assert it is one XNNPACK partition with no operator outside it, and return
    its output for `x` (ExecuTorch's runtime)."""
    executorch_format.export(deployed, x, path)
    report = executorch_report(path)
    assert report["delegate_calls"] == {"XnnpackBackend": 1} and report["ops_outside_delegate"] == 0
    return executorch_format.run(path, x.numpy())
