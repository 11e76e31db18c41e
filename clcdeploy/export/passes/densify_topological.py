"""Replace each topologically subdivided convolution (SIC models F, G, I) by one dense convolution.

`TopologicalConv` gathers every output channel's c input channels with `index_select` and convolves them as
a grouped conv with one output channel per group. No runtime runs that well: the gather stays outside the
XNNPACK delegate (a partition break per layer) and the grouped conv is as many tiny GEMMs as there are
channels. The same linear map as a dense conv, with zero weights outside each neighbourhood, costs n/c times
the layer's mult-adds but runs as one delegated GEMM (measured: BENCHMARKS.md, section 5, "Zoo layers
rewritten for speed"). Exact: every output still sums exactly its neighbourhood's terms.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from clcdeploy.zoo.sic import TopologicalConv


def densify_topological(model: nn.Module) -> nn.Module:
    """A copy of `model` with every `TopologicalConv` replaced by the equivalent dense `nn.Conv2d`
    (`model` itself is returned when it has none)."""
    if not any(isinstance(m, TopologicalConv) for m in model.modules()):
        return model
    model = copy.deepcopy(model)
    for name, module in list(model.named_modules()):
        if isinstance(module, TopologicalConv):
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, child, dense_conv(module))
    return model


def dense_conv(topo: TopologicalConv) -> nn.Conv2d:
    """The dense conv computing `topo`: weight[o, i] sums the taps of output o that read input i."""
    grouped = topo.conv
    dense = nn.Conv2d(topo.channels, topo.channels, grouped.kernel_size, grouped.stride, grouped.padding,
                      grouped.dilation, bias=grouped.bias is not None, dtype=grouped.weight.dtype,
                      device=grouped.weight.device)
    outputs = torch.arange(topo.channels, device=grouped.weight.device).repeat_interleave(topo.fan_in)
    with torch.no_grad():
        weight = torch.zeros_like(dense.weight)
        # grouped.weight[o, j] is the tap of output o on its j-th gathered input, topo.index[o * fan_in + j]
        weight.index_put_((outputs, topo.index), grouped.weight.reshape(-1, *grouped.weight.shape[2:]),
                          accumulate=True)
        dense.weight.copy_(weight)
        if grouped.bias is not None:
            dense.bias.copy_(grouped.bias)
    return dense.train(grouped.training)
