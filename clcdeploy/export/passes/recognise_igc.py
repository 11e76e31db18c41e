"""Recognise a grouped convolution followed by a channel shuffle with as many groups as an IGC.

The sparse-kernel nets of seed 004 (e.g. `sk_t4_gconv100_pwgconv2_w200`) write clcNet's block by hand: a 3x3
convolution with groups of two channels, its BN, a channel shuffle with the same groups, then a 1x1 group
convolution. The shuffle is the IGC's interlace (`zoo.layers.interlace`), so the pair is an IGC and the rest of
the deployment passes lower it without tiny grouped convolutions or a permutation. The BN moves behind the
interlace (its parameters permuted with it), where `fold_batchnorm` folds IGC + BN.
"""

from __future__ import annotations

import copy

import torch
from torch import fx, nn

from clcdeploy.export.passes.trace import add_submodule, finish, to_graph_module
from clcdeploy.zoo.layers import IGC, ChannelShuffle

MAX_CRF = 2  # the lowerings that remove tiny grouped convolutions cover CRF <= 2


def recognise_igc(model: nn.Module) -> fx.GraphModule:
    """A copy of `model` in which every `conv -> [BN] -> ChannelShuffle` of one IGC's shape is an IGC (+ BN)."""
    gm = to_graph_module(model)
    for node in list(gm.graph.nodes):
        if not _is_module(gm, node, ChannelShuffle):
            continue
        shuffle = gm.get_submodule(node.target)
        bn_node = node.args[0] if _is_module(gm, node.args[0], nn.BatchNorm2d) else None
        conv_node = bn_node.args[0] if bn_node is not None else node.args[0]
        if not _is_igc_conv(gm, conv_node, shuffle.groups) or any(
                len(n.users) != 1 for n in (conv_node, bn_node) if n is not None):
            continue
        conv = gm.get_submodule(conv_node.target)
        igc = IGC(conv.in_channels, conv.out_channels, conv.groups)
        igc.conv = copy.deepcopy(conv)
        with gm.graph.inserting_before(node):
            out = gm.graph.call_module(add_submodule(gm, f"{conv_node.target}_igc", igc), (conv_node.args[0],))
            if bn_node is not None:
                bn = _permuted(gm.get_submodule(bn_node.target), igc.channel_permutation())
                out = gm.graph.call_module(add_submodule(gm, f"{bn_node.target}_interlaced", bn), (out,))
        node.replace_all_uses_with(out)
        for dead in (node, bn_node, conv_node):
            if dead is not None:
                gm.graph.erase_node(dead)
    return finish(gm)


def _is_module(gm: fx.GraphModule, node, kind: type) -> bool:
    return isinstance(node, fx.Node) and node.op == "call_module" and isinstance(gm.get_submodule(node.target), kind)


def _is_igc_conv(gm: fx.GraphModule, node, groups: int) -> bool:
    if not _is_module(gm, node, nn.Conv2d):
        return False
    conv = gm.get_submodule(node.target)
    return (conv.groups == groups > 1 and conv.in_channels // groups <= MAX_CRF and conv.bias is None
            and conv.padding_mode == "zeros" and conv.in_channels != conv.groups)


def _permuted(bn: nn.BatchNorm2d, perm: list[int]) -> nn.BatchNorm2d:
    """`bn` for the interlaced tensor: its channel p normalises what was channel perm[p]."""
    moved = copy.deepcopy(bn)
    index = torch.tensor(perm)
    with torch.no_grad():
        for name in ("weight", "bias", "running_mean", "running_var"):
            tensor = getattr(moved, name)
            if tensor is not None:
                tensor.copy_(getattr(bn, name)[index])
    return moved
