"""Remove the channel permutations left by `lower_igc(variant="split")` (`shared/design/IGC_LOWERING.md`).

Rewrites, applied until none matches (channel counts come from shape propagation):
- strided channel slice `y[:, j::k]` pushed into its producer when every user of the producer is such a
  slice: a convolution emits rows `j::k` itself, a per-channel op (activation, pooling) or an add is
  applied per slice, a concat is sliced piecewise;
- a grouped (not depthwise) convolution reading a concat whose pieces align with its groups becomes one
  convolution per piece (the GC group reading `z_lo` is a dense conv on `z_lo`), concatenated;
- a per-channel activation of a concat (or interleave) used only there moves into the pieces (so runtimes fuse
  conv+ReLU);
- a dense convolution of an interleave (`lower_grouped`'s output) reads the concat of its parts with its weight
  columns permuted to match;
- a tensor read both in strided slices and whole (a residual stream: the next lowered IGC and the shortcut
  add) is read whole through an interleave of its slices, so the slices can move on; the slices of an
  interleave are its parts, so the stream runs as slices and an interleave stays only where a reader needs
  the whole tensor.
"""

from __future__ import annotations

import operator

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.fx.passes.shape_prop import ShapeProp

from clcdeploy.export.passes.trace import add_submodule, finish, to_graph_module

# Modules that act on each channel separately, so they commute with any channel selection.
_UNARY_MODULES = (nn.ReLU, nn.ReLU6, nn.Hardtanh, nn.Hardswish, nn.SiLU, nn.Sigmoid, nn.Identity,
                  nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d)
_UNARY_FUNCTIONS = {torch.relu, F.relu, F.relu6, F.hardtanh, F.hardswish, F.silu, torch.sigmoid}
_MAX_ROUNDS = 64


def eliminate_permutations(model: nn.Module, example: torch.Tensor) -> fx.GraphModule:
    """Return a copy of `model` with strided channel slices and group-aligned concats folded away."""
    gm = to_graph_module(model)
    fake_mode = FakeTensorMode(allow_non_fake_inputs=True)
    fake_example = fake_mode.from_tensor(example)
    for _ in range(_MAX_ROUNDS):
        ShapeProp(gm, fake_mode=fake_mode).propagate(fake_example)  # shapes only, no arithmetic
        changed = False
        for node in list(gm.graph.nodes):
            if getattr(node, "_erased", False) or (not node.users and node.op != "output"):
                continue
            changed |= (_push_slices(gm, node) or _slice_for_mixed_users(gm, node) or _slice_of_interleave(node)
                        or _split_grouped_conv(gm, node) or _unary_into_cat(gm, node)
                        or _dense_conv_of_interleave(gm, node))
        finish(gm)
        if not changed:
            break
    return gm


def _channel_slice(node: fx.Node) -> tuple[int, int] | None:
    """(start, step) if `node` is `x[:, start::step]` on an NCHW tensor, else None."""
    if node.op != "call_function" or node.target is not operator.getitem:
        return None
    index = node.args[1]
    if not (isinstance(index, tuple) and len(index) == 2 and index[0] == slice(None)):
        return None
    s = index[1]
    if not isinstance(s, slice) or s.stop is not None or not s.step or s.step < 2:
        return None
    return (s.start or 0), s.step


def _channels(node: fx.Node) -> int | None:
    meta = node.meta.get("tensor_meta") if isinstance(node, fx.Node) else None
    shape = getattr(meta, "shape", None)
    return int(shape[1]) if shape is not None and len(shape) == 4 else None


def _is_unary(gm: fx.GraphModule, node: fx.Node) -> bool:
    if node.op == "call_module":
        return isinstance(gm.get_submodule(node.target), _UNARY_MODULES)
    if node.op == "call_function" and node.target in _UNARY_FUNCTIONS:
        return len(node.args) >= 1 and all(not isinstance(a, fx.Node) for a in node.args[1:])
    return False


def _is_cat(node: fx.Node) -> bool:
    if node.op != "call_function" or node.target is not torch.cat:
        return False
    dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
    return dim == 1 and all(isinstance(p, fx.Node) for p in node.args[0])


def _conv(gm: fx.GraphModule, node: fx.Node) -> nn.Conv2d | None:
    if node.op != "call_module":
        return None
    module = gm.get_submodule(node.target)
    return module if type(module) is nn.Conv2d and module.padding_mode == "zeros" else None


def _push_slices(gm: fx.GraphModule, node: fx.Node) -> bool:
    """Replace the slice users of `node` by slices taken before `node` (see module docstring)."""
    slices = [(u, _channel_slice(u)) for u in node.users]
    if not slices or any(s is None or u.args[0] is not node for u, s in slices):
        return False
    steps = {s[1] for _, s in slices}
    if len(steps) != 1:
        return False
    (k,) = steps
    graph = gm.graph
    build = _slice_builder(gm, node, k)
    if build is None:
        return False
    made: dict[int, fx.Node] = {}
    for user, (start, _) in slices:
        if start not in made:
            with graph.inserting_before(user):
                made[start] = build(start)
        user.replace_all_uses_with(made[start])
    return True


def _slice_builder(gm: fx.GraphModule, node: fx.Node, k: int):
    """A function start -> node computing `node[:, start::k]` from node's inputs, or None if impossible."""
    graph = gm.graph

    def sliced(x: fx.Node, start: int) -> fx.Node:
        return graph.call_function(operator.getitem, (x, (slice(None), slice(start, None, k))))

    if _is_unary(gm, node):
        return lambda j: graph.create_node(node.op, node.target, (sliced(node.args[0], j), *node.args[1:]),
                                           dict(node.kwargs))
    if node.op == "call_function" and node.target in (operator.add, torch.add) and len(node.args) == 2 \
            and not node.kwargs and all(isinstance(a, fx.Node) and _channels(a) == _channels(node)
                                        for a in node.args):
        return lambda j: graph.call_function(operator.add, (sliced(node.args[0], j), sliced(node.args[1], j)))
    if _is_cat(node):
        pieces = node.args[0]
        if any((_channels(p) or 1) % k for p in pieces) or any(_channels(p) is None for p in pieces):
            return None
        return lambda j: graph.call_function(torch.cat, ([sliced(p, j) for p in pieces], 1))
    conv = _conv(gm, node)
    if conv is None:
        return None
    per_group = conv.out_channels // conv.groups
    depthwise = conv.groups == conv.in_channels == conv.out_channels
    if per_group % k and not depthwise:
        return None

    def build(j: int) -> fx.Node:
        rows = slice(j, None, k)
        weight = conv.weight.detach()[rows]
        if depthwise:  # channel c of a depthwise conv reads input c only: slice the input too
            part = _conv_like(conv, weight.shape[0], weight.shape[0], weight.shape[0], weight, _bias_rows(conv, rows))
            return graph.call_module(_register(gm, node.target, j, part), (sliced(node.args[0], j),))
        part = _conv_like(conv, conv.in_channels, weight.shape[0], conv.groups, weight, _bias_rows(conv, rows))
        return graph.call_module(_register(gm, node.target, j, part), (node.args[0],))

    return build


def _conv_like(conv: nn.Conv2d, cin: int, cout: int, groups: int, weight: torch.Tensor,
               bias: torch.Tensor | None) -> nn.Conv2d:
    """A conv with `conv`'s kernel size, stride, padding and dilation and the given shape and parameters."""
    part = nn.Conv2d(cin, cout, conv.kernel_size, conv.stride, conv.padding, conv.dilation, groups,
                     bias=bias is not None, dtype=weight.dtype, device=weight.device)
    with torch.no_grad():
        part.weight.copy_(weight)
        if bias is not None:
            part.bias.copy_(bias)
    return part.eval()


def _bias_rows(conv: nn.Conv2d, rows: slice) -> torch.Tensor | None:
    return None if conv.bias is None else conv.bias.detach()[rows]


def _register(gm: fx.GraphModule, target: str, tag: int | str, module: nn.Module) -> str:
    return add_submodule(gm, f"{target}_p{tag}", module)


def _split_grouped_conv(gm: fx.GraphModule, node: fx.Node) -> bool:
    """grouped conv(cat(pieces)) with pieces on group boundaries -> cat(conv_i(piece_i))."""
    conv = _conv(gm, node)
    if conv is None or conv.groups == 1 or not isinstance(node.args[0], fx.Node) or not _is_cat(node.args[0]):
        return False
    pieces = node.args[0].args[0]
    in_per_group = conv.in_channels // conv.groups
    sizes = [_channels(p) for p in pieces]
    if in_per_group == 1:
        return False  # a depthwise conv gains nothing: the concat would only move behind it
    if len(pieces) < 2 or any(s is None or s % in_per_group for s in sizes):
        return False
    _split_conv_over_pieces(gm, node, conv, pieces, "g")
    return True


def _split_conv_over_pieces(gm: fx.GraphModule, node: fx.Node, conv: nn.Conv2d, pieces: list[fx.Node],
                            tag: str) -> None:
    """Replace `node` = conv(cat(pieces)), pieces on group boundaries, by cat(conv_i(piece_i)): conv_i has
    the groups (weight rows, bias) that read piece i."""
    in_per_group, out_per_group = conv.in_channels // conv.groups, conv.out_channels // conv.groups
    outputs, first_group = [], 0
    with gm.graph.inserting_before(node):
        for i, piece in enumerate(pieces):
            size = _channels(piece)
            groups = size // in_per_group
            rows = slice(first_group * out_per_group, (first_group + groups) * out_per_group)
            part = _conv_like(conv, size, groups * out_per_group, groups, conv.weight.detach()[rows],
                              _bias_rows(conv, rows))
            outputs.append(gm.graph.call_module(_register(gm, node.target, f"{tag}{i}", part), (piece,)))
            first_group += groups
        out = gm.graph.call_function(torch.cat, (outputs, 1))
    node.replace_all_uses_with(out)
    gm.graph.erase_node(node)


def _unary_into_cat(gm: fx.GraphModule, node: fx.Node) -> bool:
    """act(cat(pieces)) with the cat used only there -> cat(act(piece)); the same for an interleave."""
    if not _is_unary(gm, node) or not isinstance(node.args[0], fx.Node):
        return False
    cat = node.args[0]
    if not (_is_cat(cat) or _is_interleave(cat)) or len(cat.users) != 1:
        return False
    with gm.graph.inserting_before(node):
        acts = [gm.graph.create_node(node.op, node.target, (p, *node.args[1:]), dict(node.kwargs))
                for p in cat.args[0]]
        out = gm.graph.call_function(cat.target, (acts, *cat.args[1:]))
    node.replace_all_uses_with(out)
    gm.graph.erase_node(node)
    return True


@fx.wrap
def interleave_channels(parts: list[torch.Tensor]) -> torch.Tensor:
    """The inverse of taking the strided slices `x[:, j::k]`, j < k = len(parts)."""
    return torch.stack(parts, dim=2).flatten(1, 2)


def _slice_for_mixed_users(gm: fx.GraphModule, node: fx.Node) -> bool:
    """`node` read both through strided slices (step k) and whole (e.g. a residual stream: the next block's
    lowered IGC and its shortcut add): the whole reads get `interleave(node[:, 0::k], ...)`, so that every
    user is a slice and the slices move on towards the producers; `_slice_of_interleave` undoes the
    interleave wherever its own users end up slicing it again."""
    slices = [_channel_slice(u) for u in node.users if u.args and u.args[0] is node]
    steps = {s[1] for s in slices if s is not None}
    whole = [u for u in node.users if _channel_slice(u) is None or u.args[0] is not node]
    if len(steps) != 1 or not whole:
        return False
    (k,) = steps
    channels = _channels(node)
    if channels is None or channels % k or _slice_builder(gm, node, k) is None:
        return False
    first = next(n for n in gm.graph.nodes if n in whole)
    with gm.graph.inserting_before(first):
        parts = [gm.graph.call_function(operator.getitem, (node, (slice(None), slice(j, None, k))))
                 for j in range(k)]
        full = gm.graph.call_function(interleave_channels, (parts,))
    for user in whole:
        user.replace_input_with(node, full)
    return True


def _is_interleave(node: fx.Node) -> bool:
    return node.op == "call_function" and node.target is interleave_channels


def _slice_of_interleave(node: fx.Node) -> bool:
    """`interleave_channels(parts)[:, j::k]` with k = len(parts) -> parts[j]."""
    if not _is_interleave(node):
        return False
    changed = False
    parts = node.args[0]
    for user in list(node.users):
        s = _channel_slice(user)
        if s is not None and user.args[0] is node and s[1] == len(parts) and s[0] < len(parts):
            user.replace_all_uses_with(parts[s[0]])
            changed = True
    return changed


def _dense_conv_of_interleave(gm: fx.GraphModule, node: fx.Node) -> bool:
    """dense conv(interleave(parts)) -> the conv with its input columns in part order, on cat(parts)."""
    conv = _conv(gm, node)
    source = node.args[0] if conv is not None else None
    if conv is None or conv.groups != 1 or not isinstance(source, fx.Node) or not _is_interleave(source):
        return False
    parts = source.args[0]
    k = len(parts)
    order = torch.arange(conv.in_channels).view(-1, k).t().flatten()  # cat position -> interleaved channel
    part = _conv_like(conv, conv.in_channels, conv.out_channels, 1, conv.weight.detach()[:, order],
                      _bias_rows(conv, slice(None)))
    with gm.graph.inserting_before(node):
        cat = gm.graph.call_function(torch.cat, (parts, 1))
        out = gm.graph.call_module(_register(gm, node.target, "i", part), (cat,))
    node.replace_all_uses_with(out)
    gm.graph.erase_node(node)
    return True
