"""Rewrite each average pool that leaves its zero padding out of the count (`count_include_pad=False`) as
explicit zero padding, an unpadded average pool and a constant per-position factor `k*k / valid` (exact up
to rounding).

Why: litert-torch lowers the excluding pool to StableHLO `reduce_window` ops (a window sum and a window
count) that LiteRT's XNNPACK delegate leaves out, splitting the graph; PAD + AVERAGE_POOL_2D + MUL stay in
one partition. The padding is explicit because ExecuTorch's XNNPACK partitioner delegates an average pool
with padding only when it excludes the padding (which is what this pass removes). ONNX Runtime runs either
form. The factor depends on the input size, which the shape propagation of `example` provides.
"""

from __future__ import annotations

import operator

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.fx.passes.shape_prop import ShapeProp

from clcdeploy.export.passes.trace import finish, to_graph_module, unique_name


def _excludes_padding(module: nn.Module) -> bool:
    """An AvgPool2d whose count leaves its (nonzero) padding out, in the form this pass rewrites."""
    return (isinstance(module, nn.AvgPool2d) and not module.count_include_pad and not module.ceil_mode
            and module.divisor_override is None and nn.modules.utils._pair(module.padding) != (0, 0))


def count_pool_padding(model: nn.Module, example: torch.Tensor) -> fx.GraphModule:
    """Return a copy of `model` in which every padded `AvgPool2d(count_include_pad=False)` call is
    `ZeroPad2d` + unpadded `AvgPool2d` followed by a multiplication with a constant [1, 1, H, W] factor."""
    gm = to_graph_module(model)
    sites = [n for n in gm.graph.nodes if n.op == "call_module" and _excludes_padding(gm.get_submodule(n.target))]
    if not sites:
        return gm
    fake_mode = FakeTensorMode(allow_non_fake_inputs=True)
    ShapeProp(gm, fake_mode=fake_mode).propagate(fake_mode.from_tensor(example))  # shapes only
    for node in sites:
        pool = gm.get_submodule(node.target)
        meta = node.args[0].meta["tensor_meta"]
        height, width = meta.shape[-2:]
        kernel = nn.modules.utils._pair(pool.kernel_size)
        with torch.no_grad():  # valid (non-padding) inputs under each window
            valid = F.avg_pool2d(torch.ones(1, 1, height, width, dtype=torch.float64), kernel, pool.stride,
                                 pool.padding, count_include_pad=True, divisor_override=1)
            factor = (kernel[0] * kernel[1] / valid).to(meta.dtype)
        pad_h, pad_w = nn.modules.utils._pair(pool.padding)
        base = node.target.replace(".", "_")
        pad_name, pool_name = unique_name(gm, base + "_pad"), unique_name(gm, base + "_unpadded")
        gm.add_submodule(pad_name, nn.ZeroPad2d((pad_w, pad_w, pad_h, pad_h)))
        gm.add_submodule(pool_name, nn.AvgPool2d(kernel, pool.stride, 0))
        factor_name = unique_name(gm, base + "_padding_factor")
        gm.register_buffer(factor_name, factor)
        with gm.graph.inserting_after(node):
            padded = gm.graph.call_module(pad_name, node.args, node.kwargs)
        with gm.graph.inserting_after(padded):
            pooled = gm.graph.call_module(pool_name, (padded,))
        with gm.graph.inserting_after(pooled):
            factor_node = gm.graph.get_attr(factor_name)
        with gm.graph.inserting_after(factor_node):
            scaled = gm.graph.call_function(operator.mul, (pooled, factor_node))
        node.replace_all_uses_with(scaled)
        gm.graph.erase_node(node)
    return finish(gm)
