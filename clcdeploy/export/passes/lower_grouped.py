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

A small-group convolution read by a grouped convolution with G groups (clcNet-Ap: clcNet-A without the
interlace, so its 1x1 group convolution's two halves never mix) is first split into G parallel paths, each a
small-group convolution between dense ones: the consumer becomes one dense convolution per group, and the
producer one convolution per group's span (a dense producer split by rows, or the pieces of a concat that an
earlier split left).
"""

from __future__ import annotations

import torch
from torch import fx, nn

from clcdeploy.export.passes.eliminate_permutations import (
    _bias_rows, _conv, _conv_like, _is_cat, _is_unary, _register,
)
from clcdeploy.export.passes.lower_igc import split_lowering
from clcdeploy.export.passes.trace import finish, to_graph_module

# Measured on seed 004's pw-gconv-pw nets (BENCHMARKS.md section 5): 4 beats 2 by 0-2%; 8 (64 depthwise
# convolutions and 56 adds per layer) is slower than the grouped convolution.
MAX_GROUP_CHANNELS = 4
_SPLIT_SPAN = "clcdeploy_split_span"  # node meta: channels per piece of a concat `_split_per_consumer_group` made


def lower_grouped_convs(model: nn.Module, *, max_group_channels: int = MAX_GROUP_CHANNELS) -> fx.GraphModule:
    """A copy of `model` in which every spatial (kernel > 1x1) grouped convolution with 2..max_group_channels
    input channels per group, fed by a convolution and feeding dense convolutions (after splitting grouped
    consumers into paths), is written as depthwise convolutions (see the module docstring)."""
    gm = to_graph_module(model)
    for node in list(gm.graph.nodes):  # in order, so that a path split can take the pieces of the one before
        conv = _conv(gm, node)
        if conv is not None and _small_groups(conv, max_group_channels):
            _split_per_consumer_group(gm, node, conv)
    finish(gm)
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


def _split_per_consumer_group(gm: fx.GraphModule, node: fx.Node, conv: nn.Conv2d) -> None:
    """consumer(conv(x)) with a grouped 1x1 consumer of G groups -> cat_g(consumer_g(conv_g(x_g))), where x_g
    (the span of x that consumer group g depends on) comes from a dense producer's rows or a concat's pieces."""
    users = list(node.users)
    consumer = _conv(gm, users[0]) if len(users) == 1 and users[0].args[0] is node else None
    if consumer is None or not 1 < consumer.groups < consumer.in_channels or consumer.kernel_size != (1, 1):
        return
    groups, span = consumer.groups, conv.in_channels // consumer.groups
    if conv.in_channels != conv.out_channels or span % (conv.in_channels // conv.groups):
        return
    pieces = _producer_pieces(gm, node.args[0], groups, span)
    if pieces is None:
        return
    graph, per_part = gm.graph, conv.groups // groups
    outputs = []
    with graph.inserting_before(users[0]):
        for g, piece in enumerate(pieces):
            rows = slice(g * span, (g + 1) * span)
            part = _conv_like(conv, span, span, per_part, conv.weight.detach()[rows], _bias_rows(conv, rows))
            inner = graph.call_module(_register(gm, node.target, f"s{g}", part), (piece,))
            out_rows = slice(g * consumer.out_channels // groups, (g + 1) * consumer.out_channels // groups)
            dense = _conv_like(consumer, span, consumer.out_channels // groups, 1,
                               consumer.weight.detach()[out_rows], _bias_rows(consumer, out_rows))
            outputs.append(graph.call_module(_register(gm, users[0].target, f"s{g}", dense), (inner,)))
        joined = graph.call_function(torch.cat, (outputs, 1))
    joined.meta[_SPLIT_SPAN] = consumer.out_channels // groups
    users[0].replace_all_uses_with(joined)
    graph.erase_node(users[0])
    graph.erase_node(node)


def _producer_pieces(gm: fx.GraphModule, source: fx.Node, groups: int, span: int) -> list[fx.Node] | None:
    """`source` as `groups` tensors of `span` channels each, computed without copies, or None: per-channel ops
    used only here are applied per piece, over a dense convolution split by rows or a concat of such pieces."""
    unaries = []
    while isinstance(source, fx.Node) and _is_unary(gm, source) and len(source.users) == 1:
        unaries.append(source)
        source = source.args[0]
    if not isinstance(source, fx.Node) or len(source.users) != 1:
        return None
    graph = gm.graph
    producer = _conv(gm, source)
    if _is_cat(source) and len(source.args[0]) == groups and source.meta.get(_SPLIT_SPAN) == span:
        pieces = list(source.args[0])  # the consumer groups of an earlier split
    elif producer is not None and producer.groups == 1 and producer.out_channels == groups * span:
        rows = [slice(g * span, (g + 1) * span) for g in range(groups)]
        with graph.inserting_before(source):
            pieces = [graph.call_module(_register(gm, source.target, f"r{g}", _conv_like(
                producer, producer.in_channels, span, 1, producer.weight.detach()[r], _bias_rows(producer, r))),
                (source.args[0],)) for g, r in enumerate(rows)]
    else:
        return None
    for unary in reversed(unaries):
        with graph.inserting_after(unary):
            pieces = [graph.create_node(unary.op, unary.target, (p, *unary.args[1:]), dict(unary.kwargs))
                      for p in pieces]
    return pieces
