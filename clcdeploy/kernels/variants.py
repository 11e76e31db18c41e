"""Deployment formulations of a zoo model for benchmarking, including timing-only floors for clcNet.

- "standard": the export's default passes (BN folded; IGC lowered permutation-free, `DEFAULT_IGC_LOWERING`).
- "split": the permutation-free lowering with the quarter-tensor concats where `eliminate_permutations` leaves
  them (the default before the concat placement was measured).
- "split-k", "split-late", "split-dw", "split-gc": the split lowering with its concats removed by split-K
  sums into the next 1x1 conv / moved behind stride-2 depthwise convs (the export default) / behind every
  depthwise conv / in front of the GC as one concat feeding two grouped 1x1 (`export.passes.sink_concats`);
  "split-k-gc": split-K on large feature maps, split-gc on small ones (ONNX's export default).
- "swap", "grouped": the export's other IGC lowerings (paper Sec. 4.2 swap+interlace; naive grouped conv).
- "floor2" / "floor1": each IGC replaced by two / one depthwise convs and no permutation at all;
  "floor0": by a per-channel 1x1 scale with the IGC's stride (the network without IGC work).
  Timing only: NOT numerically the IGC.
- "fused" / "fused-nhwc": each CRF-2 IGC replaced by the fused custom op `clcdeploy::igc2` (ExecuTorch, and
  "fused" also for ONNX Runtime and LiteRT); "-nhwc" runs the network on a channels-last input copy so
  ExecuTorch's XNNPACK partitions hand NHWC tensors over.
"""

from __future__ import annotations

import torch
from torch import nn

from clcdeploy.kernels.fuse import ChannelsLast, fuse_igc
from clcdeploy.zoo.layers import IGC

LOWERING_VARIANTS = ("standard", "split", "split-k", "split-late", "split-dw", "split-gc", "split-k-gc", "swap",
                     "grouped")  # the export's IGC lowerings
VARIANTS = (*LOWERING_VARIANTS, "floor2", "floor1", "floor0", "fused", "fused-nhwc")
TIMING_ONLY = frozenset({"floor2", "floor1", "floor0"})
FLOOR_DEPTHWISE_COUNT = {"floor2": 2, "floor1": 1, "floor0": 0}
CUSTOM_OP = frozenset({"fused", "fused-nhwc"})


class DepthwiseFloor(nn.Module):
    """Stand-in for an IGC with the cost of `count` depthwise convs and no permutation (not the IGC);
    `count` 0 is one per-channel 1x1 scale with the IGC's stride (no spatial work at all)."""

    def __init__(self, igc: IGC, count: int) -> None:
        super().__init__()
        conv = igc.conv
        kernel, padding = (conv.kernel_size, conv.padding) if count else ((1, 1), (0, 0))
        self.convs = nn.ModuleList(
            nn.Conv2d(conv.in_channels, conv.out_channels, kernel, conv.stride, padding,
                      groups=conv.in_channels, bias=(i == 0)) for i in range(max(count, 1)))
        with torch.no_grad():
            for i, dw in enumerate(self.convs):
                taps = conv.weight[:, i % conv.weight.shape[1]: i % conv.weight.shape[1] + 1]
                dw.weight.copy_(taps if count else taps[:, :, 1:2, 1:2])
                if dw.bias is not None:
                    dw.bias.copy_(conv.bias if conv.bias is not None else torch.zeros(conv.out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.convs[0](x)
        for conv in self.convs[1:]:
            out = out + conv(x)
        return out


def _replace_igcs(model: nn.Module, count: int) -> nn.Module:
    for name, module in list(model.named_modules()):
        if name and isinstance(module, IGC) and module.conv.in_channels == module.conv.out_channels:
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, child, DepthwiseFloor(module, count))
    if hasattr(model, "recompile"):
        model.recompile()
    return model


def deploy_variant(model: nn.Module, example: torch.Tensor, variant: str) -> nn.Module:
    """The eval-mode module to export for `variant` (see the module docstring); `model` is not modified."""
    from clcdeploy.export.passes import DEFAULT_IGC_LOWERING, deployment_passes, fold_batchnorm

    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    if variant in LOWERING_VARIANTS:
        lowering = DEFAULT_IGC_LOWERING if variant == "standard" else variant
        return deployment_passes(model, example, igc_lowering=lowering).eval()
    folded = fold_batchnorm(model)
    if variant in TIMING_ONLY:
        return _replace_igcs(folded, FLOOR_DEPTHWISE_COUNT[variant]).eval()
    fused = fuse_igc(folded)
    return (ChannelsLast(fused) if variant == "fused-nhwc" else fused).eval()
