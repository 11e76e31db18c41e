"""Merge adjacent groups of grouped convolutions with few output channels per group, for XNNPACK.

XNNPACK's GEMM kernels compute a whole tile of output channels per group (8 wide on ARM NEON, 8-16 on x86),
so a group with 2 output channels costs what one with 8 does, plus per-group overhead. Merging b adjacent
groups into one whose weight is block-diagonal (zeros between the original groups) is exact and leaves the
channel order as it is; while b * (outputs per group) fits in an 8-wide tile it computes no more tiles than
before, and only the per-group overhead goes. The weights of those layers (and their nominal mult-adds) grow
b-fold. ExecuTorch's and LiteRT's exports apply it; ONNX Runtime ran the merged form slower (BENCHMARKS.md,
section 5). IGCs keep their own convolutions (they are lowered or fused as a whole).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from clcdeploy.zoo.layers import IGC

TILE_OUTPUTS = 8  # XNNPACK's narrowest f32 GEMM tile (ARM NEON): 8 output channels


def merge_small_groups(model: nn.Module, tile: int = TILE_OUTPUTS) -> nn.Module:
    """`model` with each grouped (not depthwise) convolution that has fewer than `tile` outputs per group
    merged b groups at a time, b the largest divisor of its group count with b * outputs <= tile; `model`
    itself when no convolution qualifies."""
    if not mergeable_convs(model, tile):
        return model
    merged = copy.deepcopy(model)
    for parent in [merged, *_modules(merged)]:
        for name, child in list(parent.named_children()):
            factor = _merge_factor(child, tile) if type(child) is nn.Conv2d else 1
            if factor > 1:
                setattr(parent, name, _merged(child, factor))
    return merged


def mergeable_convs(model: nn.Module, tile: int = TILE_OUTPUTS) -> int:
    """How many convolutions of `model` `merge_small_groups` merges."""
    return sum(_merge_factor(conv, tile) > 1 for conv in _convs(model))


def is_mergeable_conv(module: nn.Module, tile: int = TILE_OUTPUTS) -> bool:
    """Whether `merge_small_groups` merges `module`'s groups (when it is not inside an IGC)."""
    return type(module) is nn.Conv2d and _merge_factor(module, tile) > 1


def _modules(model: nn.Module):
    """Every submodule of `model` outside IGCs."""
    for child in model.children():
        if not isinstance(child, IGC):
            yield child
            yield from _modules(child)


def _convs(model: nn.Module):
    return (m for m in [model, *_modules(model)] if type(m) is nn.Conv2d)


def _merge_factor(conv: nn.Conv2d, tile: int) -> int:
    per_group_out, per_group_in = conv.out_channels // conv.groups, conv.in_channels // conv.groups
    if conv.groups == 1 or per_group_in == 1 or per_group_out >= tile:
        return 1  # dense, depthwise (its own kernels), or already a full tile
    return max(b for b in range(1, tile // per_group_out + 1) if conv.groups % b == 0)


def _merged(conv: nn.Conv2d, factor: int) -> nn.Conv2d:
    groups = conv.groups // factor
    out = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                    conv.dilation, groups, conv.bias is not None, conv.padding_mode,
                    dtype=conv.weight.dtype, device=conv.weight.device)
    with torch.no_grad():
        out.weight.copy_(_block_diagonal(conv.weight, conv.groups, factor))
        if conv.bias is not None:
            out.bias.copy_(conv.bias)
    return out.train(conv.training)


def _block_diagonal(weight: torch.Tensor, groups: int, factor: int) -> torch.Tensor:
    """A grouped weight (out, k, kh, kw) as the weight (out, factor * k, kh, kw) of groups // factor groups."""
    out, k = weight.shape[:2]
    m = out // groups
    merged = weight.new_zeros(out, factor * k, *weight.shape[2:])
    for g in range(groups):
        i = g % factor  # position of group g inside its merged group
        merged[g * m:(g + 1) * m, i * k:(i + 1) * k] = weight[g * m:(g + 1) * m]
    return merged
