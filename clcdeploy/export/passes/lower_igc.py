"""Lower IGCs with channel receptive field <= 2 to depthwise convolutions (`shared/design/IGC_LOWERING.md`).

Variants (`variant=`):
- "split" (permutation-free): with `x_j = x[:, j::k]` (k = CRF) and `Lg` outputs per group,
  `z_f = sum_j DW(x_j; w[f::Lg, j])` and `concat(z_0, .., z_{Lg-1})` *is* the interlaced output. The strided
  slices are removed afterwards by `eliminate_permutations` when the producer of x can emit them directly.
- "split-late" (the export default), "split-k", "split-dw", "split-gc", "split-k-gc": "split" followed by
  `sink_concats`, which moves or removes the quarter-tensor concats the permutation-free form leaves.
- "swap" (clcNet paper Sec. 4.2, CRF 2 with Lg 2): `interlace(DW_a(x) + DW_b(swap(x)))`.
- "grouped": no lowering (grouped conv + interlace, the naive export).
IGCs with larger CRF keep the grouped conv + interlace in every variant.
"""

from __future__ import annotations

import operator

import torch
from torch import fx, nn

from clcdeploy.export.passes.eliminate_permutations import interleave_channels
from clcdeploy.export.passes.trace import add_submodule, finish, to_graph_module
from clcdeploy.zoo.layers import IGC, interlace

# "split-k" / "split-late": the split lowering followed by `sink_concats` (the block's quarter-tensor concats
# removed by split-K sums / moved behind stride-2 depthwise convs); here they lower exactly like "split".
# "split-k-gc": split-K on feature maps of at least SPLIT_K_MIN_PIXELS, "split-gc" (one concat, grouped GCs) on
# the smaller ones, where ONNX Runtime's per-node cost outweighs a copy of the small tensor.
IGC_LOWERINGS = ("split", "split-k", "split-late", "split-dw", "split-gc", "split-k-gc", "swap", "grouped")
SPLIT_K_MIN_PIXELS = 28 * 28  # measured best for 224x224 inputs (clcNet-A: split-K through the 28x28 stage)
# What `clcdeploy export` uses per format, measured fastest side by side (BENCHMARKS.md, section 3): ORT runs
# split-K sums (Conv with a fused Sum input) better than large concats, and fewer nodes better than split-K on
# small maps; XNNPACK (ExecuTorch, LiteRT) prefers fewer ops.
DEFAULT_IGC_LOWERING = "split-late"
DEFAULT_IGC_LOWERINGS = {"onnx": "split-k-gc", "pte": "split-late", "tflite": "split-late"}


@fx.wrap
def swap_pairs(x: torch.Tensor) -> torch.Tensor:
    """Exchange channels 2i and 2i+1 (the paper's swap), as a concat of two strided views."""
    pairs = x.unflatten(1, (-1, 2))
    return torch.cat([pairs[:, :, 1:], pairs[:, :, :1]], dim=2).flatten(1, 2)


def lower_igc(model: nn.Module, *, variant: str = "split") -> fx.GraphModule:
    """Return a copy of `model` with every IGC of CRF <= 2 replaced by depthwise convolutions."""
    if variant not in IGC_LOWERINGS:
        raise ValueError(f"unknown IGC lowering {variant!r}; choose one of {', '.join(IGC_LOWERINGS)}")
    gm = to_graph_module(model)
    if variant == "grouped":
        return gm
    for node in list(gm.graph.nodes):
        if node.op != "call_module":
            continue
        igc = gm.get_submodule(node.target)
        if not isinstance(igc, IGC) or igc.crf > 2 or igc.conv.padding_mode != "zeros":
            continue
        per_group = igc.conv.out_channels // igc.groups
        with gm.graph.inserting_before(node):
            if variant == "swap" and igc.crf == 2 and per_group == 2:
                out = _swap_lowering(gm, node, igc.conv)
            else:
                out = split_lowering(gm, node, igc.conv)
        node.replace_all_uses_with(out)
        gm.graph.erase_node(node)
    return finish(gm)


def _depthwise(conv: nn.Conv2d, weight: torch.Tensor, bias: torch.Tensor | None) -> nn.Conv2d:
    channels = weight.shape[0]
    dw = nn.Conv2d(channels, channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                   groups=channels, bias=bias is not None, dtype=weight.dtype, device=weight.device)
    with torch.no_grad():
        dw.weight.copy_(weight)
        if bias is not None:
            dw.bias.copy_(bias)
    return dw.eval()


def split_lowering(gm: fx.GraphModule, node: fx.Node, conv: nn.Conv2d, *, interlaced: bool = True) -> fx.Node:
    """The fields `z_f` of the grouped conv `conv` applied to node's input, joined as the IGC's interlaced
    output (a concat) or, with `interlaced=False`, as the grouped conv's own output (an interleave)."""
    graph, x = gm.graph, node.args[0]
    k = conv.in_channels // conv.groups
    per_group = conv.out_channels // conv.groups
    w = conv.weight.detach()  # (L, k, kh, kw)
    parts = [x] if k == 1 else [
        graph.call_function(operator.getitem, (x, (slice(None), slice(j, None, k)))) for j in range(k)
    ]
    fields = []
    for f in range(per_group):
        terms = []
        for j in range(k):
            bias = conv.bias.detach()[f::per_group] if (conv.bias is not None and j == 0) else None
            dw = _depthwise(conv, w[f::per_group, j:j + 1], bias)
            terms.append(graph.call_module(add_submodule(gm, f"{node.target}_dw{f}_{j}", dw), (parts[j],)))
        field = terms[0]
        for term in terms[1:]:
            field = graph.call_function(operator.add, (field, term))
        fields.append(field)
    if len(fields) == 1:
        return fields[0]
    if interlaced:
        return graph.call_function(torch.cat, (fields, 1))
    return graph.call_function(interleave_channels, (fields,))


def _swap_lowering(gm: fx.GraphModule, node: fx.Node, conv: nn.Conv2d) -> fx.Node:
    graph, x = gm.graph, node.args[0]
    w = conv.weight.detach()
    channel = torch.arange(conv.out_channels)
    direct = _depthwise(conv, w[channel, channel % 2].unsqueeze(1), None if conv.bias is None else conv.bias.detach())
    swapped = _depthwise(conv, w[channel, 1 - channel % 2].unsqueeze(1), None)
    a = graph.call_module(add_submodule(gm, f"{node.target}_dw_direct", direct), (x,))
    b_in = graph.call_function(swap_pairs, (x,))
    b = graph.call_module(add_submodule(gm, f"{node.target}_dw_swapped", swapped), (b_in,))
    return graph.call_function(interlace, (graph.call_function(operator.add, (a, b)), conv.groups))
