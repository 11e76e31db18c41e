"""Fold each eval-mode BatchNorm2d into the convolution (or IGC) that feeds it."""

from __future__ import annotations

import torch
from torch import fx, nn

from clcdeploy.export.passes.trace import finish, to_graph_module
from clcdeploy.zoo.layers import IGC


def fold_batchnorm(model: nn.Module) -> fx.GraphModule:
    """Return a copy of `model` in which every `conv -> BN` (conv used only by that BN) is one conv with bias.

    An IGC's BN sits after the interlace: BN channel p scales conv channel `perm[p]`.
    """
    gm = to_graph_module(model)
    modules = dict(gm.named_modules())
    uses: dict[str, int] = {}
    for node in gm.graph.nodes:
        if node.op == "call_module":
            uses[node.target] = uses.get(node.target, 0) + 1
    for node in list(gm.graph.nodes):
        if node.op != "call_module" or not isinstance(modules[node.target], nn.BatchNorm2d):
            continue
        if modules[node.target].running_mean is None:
            continue  # no running statistics: BN normalises by batch statistics even in eval mode
        producer = node.args[0]
        if not (isinstance(producer, fx.Node) and producer.op == "call_module" and len(producer.users) == 1):
            continue
        conv_owner = modules[producer.target]
        if uses[producer.target] != 1 or uses[node.target] != 1:
            continue  # a module called twice cannot absorb one call site's BN
        if isinstance(conv_owner, IGC):
            perm = torch.tensor(conv_owner.channel_permutation())
            conv_owner.conv = _folded(conv_owner.conv, modules[node.target], perm)
        elif isinstance(conv_owner, nn.Conv2d) and conv_owner.padding_mode == "zeros":
            gm.add_submodule(producer.target, _folded(conv_owner, modules[node.target], None))
        else:
            continue
        node.replace_all_uses_with(producer)
        gm.graph.erase_node(node)
    return finish(gm)


def _folded(conv: nn.Conv2d, bn: nn.BatchNorm2d, perm: torch.Tensor | None) -> nn.Conv2d:
    """`conv` with `bn` folded in; `perm[p]` is the conv channel that BN channel p normalises."""
    with torch.no_grad():
        scale = torch.rsqrt(bn.running_var + bn.eps)
        if bn.affine:
            scale = scale * bn.weight
        shift = -bn.running_mean * scale + (bn.bias if bn.affine else 0.0)
        if perm is not None:  # move BN channel p to conv channel perm[p]
            scale, shift = scale.clone().index_copy_(0, perm, scale), shift.clone().index_copy_(0, perm, shift)
        folded = nn.Conv2d(
            conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
            conv.groups, bias=True, dtype=conv.weight.dtype, device=conv.weight.device,
        )
        folded.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
        bias = conv.bias if conv.bias is not None else torch.zeros_like(shift)
        folded.bias.copy_(bias * scale + shift)
    return folded.eval()
