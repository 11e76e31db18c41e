"""Move the channel concats left by the permutation-free IGC lowering to where they cost less, or remove them.

After `eliminate_permutations`, each clcNet block concatenates quarter tensors (the evens, resp. odds, of both
GC groups) before its depthwise convolutions. Exact rewrites, applied until none matches:
- a depthwise convolution of a concat becomes a concat of depthwise convolutions of the pieces
  (`strided_only`: only for stride > 1, where the concat then moves a quarter of the data);
- an add of two concats with the same piece sizes becomes a concat of the pieces' adds;
- with `split_k`, a dense convolution of a concat becomes the sum of one convolution per piece (split-K;
  the bias goes to the first), so no concat is left inside the network;
- `split_k_min_pixels` limits these rewrites to feature maps of at least that many pixels (H x W), so a
  later `merge_gc` run can handle the small ones;
- with `merge_gc`, a concat of equal dense convolutions (each optionally followed by the same activation)
  of different inputs becomes one grouped convolution of the concat of those inputs: the quarter-tensor
  concat after the GC moves in front of it, where the two GC groups of one parity share one concat of the
  depthwise outputs (`cat(z_lo, z_hi)`), which stride-2 blocks make 4x smaller.
"""

from __future__ import annotations

import operator

import torch
from torch import fx, nn
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.fx.passes.shape_prop import ShapeProp

from clcdeploy.export.passes.eliminate_permutations import (
    _channels,
    _conv,
    _conv_like,
    _is_cat,
    _is_unary,
    _register,
    _split_conv_over_pieces,
)
from clcdeploy.export.passes.trace import finish, to_graph_module

_MAX_ROUNDS = 64


def sink_concats(model: nn.Module, example: torch.Tensor, *, split_k: bool = False,
                 strided_only: bool = False, merge_gc: bool = False, split_k_min_pixels: int = 0) -> fx.GraphModule:
    """Return a copy of `model` with concats sunk through depthwise convs and adds (see module docstring)."""
    gm = to_graph_module(model)
    fake_mode = FakeTensorMode(allow_non_fake_inputs=True)
    fake_example = fake_mode.from_tensor(example)
    for _ in range(_MAX_ROUNDS):
        ShapeProp(gm, fake_mode=fake_mode).propagate(fake_example)
        changed = False
        for node in list(gm.graph.nodes):
            if getattr(node, "_erased", False) or not node.users:
                continue
            if merge_gc:
                changed |= _merge_convs_into_grouped(gm, node)
            elif _pixels(node.args[0] if node.args else None) >= split_k_min_pixels:
                changed |= (_depthwise_of_cat(gm, node, strided_only) or _add_of_cats(gm, node)
                            or (split_k and _dense_conv_of_cat(gm, node)))
        changed |= _dedupe_cats(gm)
        finish(gm)
        if not changed:
            break
    return gm


def _pixels(node: object) -> int:
    """H x W of a 4-d node's output (0 if unknown)."""
    shape = getattr(node.meta.get("tensor_meta"), "shape", None) if isinstance(node, fx.Node) else None
    return int(shape[2] * shape[3]) if shape is not None and len(shape) == 4 else 0


def _cat_pieces(node: object) -> list[fx.Node] | None:
    if not isinstance(node, fx.Node) or not _is_cat(node):
        return None
    pieces = list(node.args[0])
    return pieces if len(pieces) > 1 and all(_channels(p) is not None for p in pieces) else None


def _depthwise_of_cat(gm: fx.GraphModule, node: fx.Node, strided_only: bool) -> bool:
    conv = _conv(gm, node)
    if conv is None or not (conv.groups == conv.in_channels == conv.out_channels):
        return False
    if strided_only and max(conv.stride) == 1:
        return False
    pieces = _cat_pieces(node.args[0])
    if pieces is None:
        return False
    _split_conv_over_pieces(gm, node, conv, pieces, "c")  # one group per channel: every piece qualifies
    return True


def _add_of_cats(gm: fx.GraphModule, node: fx.Node) -> bool:
    if node.op != "call_function" or node.target not in (operator.add, torch.add) or len(node.args) != 2 \
            or node.kwargs:
        return False
    a, b = (_cat_pieces(arg) for arg in node.args)
    if a is None or b is None or [_channels(p) for p in a] != [_channels(p) for p in b]:
        return False
    with gm.graph.inserting_before(node):
        sums = [gm.graph.call_function(operator.add, (p, q)) for p, q in zip(a, b)]
        out = gm.graph.call_function(torch.cat, (sums, 1))
    node.replace_all_uses_with(out)
    gm.graph.erase_node(node)
    return True


def _dense_conv_of_cat(gm: fx.GraphModule, node: fx.Node) -> bool:
    conv = _conv(gm, node)
    if conv is None or conv.groups != 1:
        return False
    pieces = _cat_pieces(node.args[0])
    if pieces is None:
        return False
    total, start = None, 0
    with gm.graph.inserting_before(node):
        for i, piece in enumerate(pieces):
            size = _channels(piece)
            bias = conv.bias.detach() if (conv.bias is not None and i == 0) else None
            part = _conv_like(conv, size, conv.out_channels, 1, conv.weight.detach()[:, start:start + size], bias)
            term = gm.graph.call_module(_register(gm, node.target, f"k{i}", part), (piece,))
            total = term if total is None else gm.graph.call_function(operator.add, (total, term))
            start += size
    node.replace_all_uses_with(total)
    gm.graph.erase_node(node)
    return True


def _same_conv(a: nn.Conv2d, b: nn.Conv2d) -> bool:
    return (a.in_channels, a.out_channels, a.kernel_size, a.stride, a.padding, a.dilation, a.groups,
            a.bias is None) == (b.in_channels, b.out_channels, b.kernel_size, b.stride, b.padding, b.dilation,
                                b.groups, b.bias is None)


def _merge_convs_into_grouped(gm: fx.GraphModule, node: fx.Node) -> bool:
    """cat(act(conv_i(x_i))) with equal dense convs -> act(grouped_conv(cat(x_i)))."""
    if not _is_cat(node) or len(node.args[0]) < 2:
        return False
    pieces = list(node.args[0])
    acts, convs = [], []
    for piece in pieces:
        if len(piece.users) != 1:
            return False
        act = None
        if _is_unary(gm, piece):
            act, piece = piece, piece.args[0]
            if not isinstance(piece, fx.Node) or len(piece.users) != 1:
                return False
        conv = _conv(gm, piece)
        if conv is None or conv.groups != 1 or not isinstance(piece.args[0], fx.Node):
            return False
        acts.append(act)
        convs.append((piece, conv))
    first = convs[0][1]
    if not all(_same_conv(first, c) for _, c in convs[1:]):
        return False
    if any((a is None) != (acts[0] is None) for a in acts) or (
            acts[0] is not None and any((a.op, a.target, a.args[1:], a.kwargs) !=
                                        (acts[0].op, acts[0].target, acts[0].args[1:], acts[0].kwargs)
                                        for a in acts)):
        return False
    weight = torch.cat([c.weight.detach() for _, c in convs])
    bias = None if first.bias is None else torch.cat([c.bias.detach() for _, c in convs])
    n = len(convs)
    merged = _conv_like(first, n * first.in_channels, n * first.out_channels, n, weight, bias)
    graph = gm.graph
    with graph.inserting_before(node):
        inputs = graph.call_function(torch.cat, ([p.args[0] for p, _ in convs], 1))
        out = graph.call_module(_register(gm, convs[0][0].target, "merged", merged), (inputs,))
        if acts[0] is not None:
            out = graph.create_node(acts[0].op, acts[0].target, (out, *acts[0].args[1:]), dict(acts[0].kwargs))
    node.replace_all_uses_with(out)
    graph.erase_node(node)
    return True


def _dedupe_cats(gm: fx.GraphModule) -> bool:
    """Let identical concats (same pieces, same order) share one node."""
    seen: dict[tuple, fx.Node] = {}
    changed = False
    for node in list(gm.graph.nodes):
        if not _is_cat(node):
            continue
        key = tuple(node.args[0])
        if key in seen:
            node.replace_all_uses_with(seen[key])
            changed = True
        else:
            seen[key] = node
    return changed

