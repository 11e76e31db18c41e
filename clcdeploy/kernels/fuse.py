"""Export rewrite: replace every IGC of CRF 2 (two outputs per group, 3x3, padding 1) by `clcdeploy::igc2`.

Run it after batch-norm folding (the fused op carries the folded bias). Opt-in: artifacts that contain the
op need this package's kernel library at run time (`clcdeploy.kernels.runtime`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import fx, nn

from clcdeploy.kernels.ops import igc2, pack_weight
from clcdeploy.zoo.layers import IGC


class FusedIGC2(nn.Module):
    """An IGC of CRF 2 computed by the fused op; numerically the IGC (grouped conv + interlace + bias)."""

    def __init__(self, igc: IGC) -> None:
        super().__init__()
        conv = igc.conv
        if not fusable(igc):
            raise ValueError(f"IGC {conv} is not fusable (needs CRF 2, 2 outputs per group, 3x3, padding 1)")
        self.stride = conv.stride[0]
        c = conv.out_channels
        bias = conv.bias.detach() if conv.bias is not None else torch.zeros(c)
        self.register_buffer("weight", pack_weight(conv.weight.detach()))
        self.register_buffer("bias", bias.clone())  # in the conv's channel order, as the kernel reads it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return igc2(x, self.weight, self.bias, self.stride)


def fusable(igc: nn.Module) -> bool:
    """True if `igc` is an IGC the fused kernel computes exactly."""
    if not isinstance(igc, IGC):
        return False
    conv = igc.conv
    return (conv.in_channels == conv.out_channels == 2 * conv.groups and conv.kernel_size == (3, 3)
            and conv.padding == (1, 1) and conv.dilation == (1, 1) and conv.stride[0] == conv.stride[1]
            and conv.stride[0] in (1, 2) and conv.padding_mode == "zeros")


def fuse_igc(model: nn.Module) -> nn.Module:
    """Return `model` (modified in place) with each fusable IGC submodule replaced by `FusedIGC2`."""
    return _replace_modules(model, fusable, FusedIGC2)


def _replace_modules(model: nn.Module, wanted: Callable[[nn.Module], bool],
                     replacement: Callable[[nn.Module], nn.Module]) -> nn.Module:
    """`model`, modified in place: each submodule `wanted` picks is replaced by `replacement(submodule)`."""
    for name, module in list(model.named_modules()):
        if name and wanted(module):
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, child, replacement(module))
    if isinstance(model, fx.GraphModule):
        model.recompile()
    return model


class GlobalMean(nn.Module):
    """A global average pool written as a mean over H and W: on channels-last activations the pool's export
    decomposition ends in an `as_strided` copy that XNNPACK does not take (an op outside the delegate and one
    more partition); the mean stays in the last partition."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean((2, 3), keepdim=True)


def pools_as_means(model: nn.Module) -> nn.Module:
    """Return `model` (modified in place) with each global `AdaptiveAvgPool2d` replaced by `GlobalMean`."""
    return _replace_modules(
        model, lambda m: isinstance(m, nn.AdaptiveAvgPool2d) and m.output_size in (1, (1, 1)), lambda m: GlobalMean())


class ChannelsLast(nn.Module):
    """Runs `model` on a channels-last copy of its NCHW input, so every 4-d activation is NHWC in memory.

    At the XNNPACK delegate boundaries ExecuTorch then passes NHWC tensors to the fused op and back with no
    layout conversion (the delegate works in NHWC). The copy is written as `.to(memory_format=...)`, which
    exports as `_to_dim_order_copy`, an op XNNPACK takes into the first partition (`.contiguous(...)` would
    export as `_clone_dim_order`, which runs outside the delegate as a slow portable-kernel copy).
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model  # weights stay contiguous: XNNPACK packs them itself

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.to(memory_format=torch.channels_last))
