"""Lower spatial grouped convolutions with a few channels per group, between dense convolutions, to depthwise
convolutions.

Runtimes have no fast kernel for groups of a few channels: XNNPACK runs them as GEMMs padded to its 8/16-wide
tiles, ONNX Runtime as an im2col + SGEMM per group. With `k` input and `m` output channels per group,
`x_j = x[:, j::k]` and `out_f = out[:, f::m]`, `out_f = sum_j DW(x_j; w[f::m, j])` (the IGC's split lowering,
`lower_igc`) and `out = interleave(out_0, .., out_{m-1})`: k*m depthwise convolutions on 1/k of the channels,
the same mult-adds. `eliminate_permutations` then lets the producer emit the slices (its weight rows split)
and the consumer read the interleave (its weight columns permuted, on a concat of the parts).

Only where both are free: the input comes from a convolution and the output goes to dense convolutions
(through per-channel ops). Elsewhere, e.g. with a channel shuffle behind (which `recognise_igc` takes for 2
channels per group) or a residual stream in front, the slices and interleaves cost more than the lowering
saves (seed 004's `sk_t4_gconv100_pwgconv2_w200` with 4 channels per group: 1.04-1.06x in XNNPACK).
"""

from __future__ import annotations

from torch import fx, nn

from clcdeploy.export.passes.eliminate_permutations import _conv, _is_unary
from clcdeploy.export.passes.lower_igc import split_lowering
from clcdeploy.export.passes.trace import finish, to_graph_module

# Measured on seed 004's pw-gconv-pw nets (BENCHMARKS.md section 5): 4 beats 2 by 0-2%; 8 (64 depthwise
# convolutions and 56 adds per layer) is slower than the grouped convolution.
MAX_GROUP_CHANNELS = 4


def lower_grouped_convs(model: nn.Module, *, max_group_channels: int = MAX_GROUP_CHANNELS) -> fx.GraphModule:
    """A copy of `model` in which every spatial (kernel > 1x1) grouped convolution with 2..max_group_channels
    input channels per group, fed by a convolution and feeding dense convolutions, is written as depthwise
    convolutions (see the module docstring)."""
    gm = to_graph_module(model)
    for node in list(gm.graph.nodes):
        conv = _conv(gm, node)
        if conv is None or not _small_groups(conv, max_group_channels) or not _between_convs(gm, node, conv):
            continue
        with gm.graph.inserting_before(node):
            out = split_lowering(gm, node, conv, interlaced=False)
        node.replace_all_uses_with(out)
        gm.graph.erase_node(node)
    return finish(gm)


def is_small_group_conv(module: nn.Module, max_group_channels: int = MAX_GROUP_CHANNELS) -> bool:
    """Whether `module` has the shape `lower_grouped_convs` lowers (wherever it is in a network)."""
    return type(module) is nn.Conv2d and _small_groups(module, max_group_channels)


def _small_groups(conv: nn.Conv2d, max_group_channels: int) -> bool:
    per_group = conv.in_channels // conv.groups
    return conv.groups > 1 and 2 <= per_group <= max_group_channels and conv.kernel_size != (1, 1)


def _between_convs(gm: fx.GraphModule, node: fx.Node, conv: nn.Conv2d) -> bool:
    """Whether `node` (applying `conv`) reads a convolution that can emit its slices as separate outputs
    (through per-channel ops used only here) and feeds only dense convolutions."""
    source = node.args[0]
    while isinstance(source, fx.Node) and _is_unary(gm, source) and len(source.users) == 1:
        source = source.args[0]
    producer = _conv(gm, source) if isinstance(source, fx.Node) else None
    if producer is None or len(source.users) != 1:
        return False
    step = conv.in_channels // conv.groups
    if producer.groups > 1 and (producer.out_channels // producer.groups) % step:
        return False  # a group of the producer would have to be split across slices
    return _reaches_only_dense_convs(gm, node)


def _reaches_only_dense_convs(gm: fx.GraphModule, node: fx.Node) -> bool:
    for user in node.users:
        if _is_unary(gm, user) and user.args[0] is node:
            if not _reaches_only_dense_convs(gm, user):
                return False
            continue
        conv = _conv(gm, user)
        if conv is None or conv.groups != 1 or user.args[0] is not node:
            return False
    return bool(node.users)
