"""Rewrite padded pools into the forms each runtime's XNNPACK delegate takes (exact up to rounding).

`pool_padding_for(fmt)` names the rewrites a format needs; the format's `export` applies them:
- "zero-pad-counting-average" (ExecuTorch): a padded average pool that counts its padding (PyTorch's default)
  becomes `ZeroPad2d` + the unpadded pool. ExecuTorch's XNNPACK partitioner delegates a padded average pool
  only when it excludes the padding (XNNPACK's own semantics), so ShuffleNet's shortcut pools ran outside the
  delegate and split its program into four partitions.
- "count-average-padding" (LiteRT): an average pool that excludes its padding becomes the counting pool times
  a constant per-position factor `k*k / valid`. litert-torch lowers the excluding pool to StableHLO
  `reduce_window` ops (a window sum and a window count) that LiteRT's XNNPACK delegate leaves out, splitting
  the graph; the counting pool is PAD + AVERAGE_POOL_2D, which stays in the delegate. (An explicit
  `ZeroPad2d` would work too, but litert-torch may run it in NCHW between two transposes.)
- "zero-pad-max-of-relu" (LiteRT): a padded max pool whose input comes straight from a ReLU pads with zeros
  instead of -inf. litert-torch writes a max pool's padding as PADV2 with the lowest float, which LiteRT's
  XNNPACK delegate leaves out; a zero PAD is delegated. Exact because every window holds at least one input
  and the inputs are >= 0, so a zero never exceeds the true maximum.
ONNX Runtime runs every form and gets none.
"""

from __future__ import annotations

import operator

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.fx.passes.shape_prop import ShapeProp

from clcdeploy.export.passes.trace import UntraceableError, add_submodule, finish, to_graph_module, unique_name

POOL_REWRITES = ("zero-pad-counting-average", "count-average-padding", "zero-pad-max-of-relu")
_FORMAT_POOL_REWRITES = {"onnx": (), "pte": ("zero-pad-counting-average",),
                         "tflite": ("count-average-padding", "zero-pad-max-of-relu")}
_NON_NEGATIVE_MODULES = (nn.ReLU, nn.ReLU6)
_NON_NEGATIVE_FUNCTIONS = {torch.relu, F.relu, F.relu6}


def pool_padding_for(fmt: str) -> tuple[str, ...]:
    """The pool rewrites the format `fmt` ("onnx", "pte", "tflite") needs."""
    return _FORMAT_POOL_REWRITES[fmt]


def explicit_pool_padding(model: nn.Module, example: torch.Tensor, rewrites: tuple[str, ...]) -> nn.Module:
    """`model` with the pool `rewrites` (from POOL_REWRITES) applied; `model` itself when no pool needs one.
    Every rewrite keeps the pool's arithmetic exact up to rounding; only its form changes.

    A model fx cannot trace keeps its pools (they stay correct, only possibly outside the delegate).
    """
    unknown = set(rewrites) - set(POOL_REWRITES)
    if unknown:
        raise ValueError(f"unknown pool rewrite(s) {sorted(unknown)}; choose from {', '.join(POOL_REWRITES)}")
    if not rewrites or not any(_padded(m) for m in model.modules()):
        return model
    try:
        gm = to_graph_module(model)
    except UntraceableError:
        return model
    sites = [(node, form) for node in gm.graph.nodes if (form := _rewrite_form(gm, node, rewrites))]
    if not sites:
        return model
    fake_mode = FakeTensorMode(allow_non_fake_inputs=True)
    ShapeProp(gm, fake_mode=fake_mode).propagate(fake_mode.from_tensor(example))  # shapes only
    for node, form in sites:
        _rewrite(gm, node, form)
    return finish(gm)


def _padded(module: nn.Module) -> bool:
    return (isinstance(module, (nn.AvgPool2d, nn.MaxPool2d)) and not module.ceil_mode
            and nn.modules.utils._pair(module.padding) != (0, 0))


def _rewrite_form(gm: fx.GraphModule, node: fx.Node, rewrites: tuple[str, ...]) -> str | None:
    """The rewrite (one of `rewrites`) that applies to `node`, if any."""
    if node.op != "call_module":
        return None
    pool = gm.get_submodule(node.target)
    if not _padded(pool):
        return None
    if isinstance(pool, nn.AvgPool2d):
        if pool.divisor_override is not None:
            return None
        if "zero-pad-counting-average" in rewrites and pool.count_include_pad:
            return "zero-pad-counting-average"
        if "count-average-padding" in rewrites and not pool.count_include_pad:
            return "count-average-padding"
        return None
    if "zero-pad-max-of-relu" in rewrites and _max_pool_of_relu(gm, node, pool):
        return "zero-pad-max-of-relu"
    return None


def _max_pool_of_relu(gm: fx.GraphModule, node: fx.Node, pool: nn.MaxPool2d) -> bool:
    if pool.return_indices or nn.modules.utils._pair(pool.dilation) != (1, 1):
        return False
    source = node.args[0] if node.args else None
    if not isinstance(source, fx.Node):
        return False
    if source.op == "call_module":
        return isinstance(gm.get_submodule(source.target), _NON_NEGATIVE_MODULES)
    return source.op == "call_function" and source.target in _NON_NEGATIVE_FUNCTIONS


def _rewrite(gm: fx.GraphModule, node: fx.Node, form: str) -> None:
    pool = gm.get_submodule(node.target)
    kernel = nn.modules.utils._pair(pool.kernel_size)
    base = node.target.replace(".", "_")
    if form == "count-average-padding":
        replacement = nn.AvgPool2d(kernel, pool.stride, pool.padding, count_include_pad=True)
        inputs = node.args
    else:
        pad_h, pad_w = nn.modules.utils._pair(pool.padding)
        pad_name = add_submodule(gm, base + "_pad", nn.ZeroPad2d((pad_w, pad_w, pad_h, pad_h)))
        with gm.graph.inserting_before(node):
            inputs = (gm.graph.call_module(pad_name, node.args),)
        replacement = (nn.AvgPool2d(kernel, pool.stride, 0) if isinstance(pool, nn.AvgPool2d)
                       else nn.MaxPool2d(kernel, pool.stride, 0))
    pool_name = add_submodule(gm, base + "_rewritten", replacement)
    with gm.graph.inserting_before(node):
        result = gm.graph.call_module(pool_name, inputs)
        if form == "count-average-padding":
            factor_name = unique_name(gm, base + "_padding_factor")
            gm.register_buffer(factor_name, _padding_factor(pool, node.args[0].meta["tensor_meta"]))
            result = gm.graph.call_function(operator.mul, (result, gm.graph.get_attr(factor_name)))
    node.replace_all_uses_with(result)
    gm.graph.erase_node(node)


def _padding_factor(pool: nn.AvgPool2d, meta) -> torch.Tensor:
    """k*k / (valid inputs under the window) at each output position: turns a padding-counting average into
    the padding-excluding one."""
    height, width = meta.shape[-2:]
    kernel = nn.modules.utils._pair(pool.kernel_size)
    with torch.no_grad():
        valid = F.avg_pool2d(torch.ones(1, 1, height, width, dtype=torch.float64), kernel, pool.stride,
                             pool.padding, count_include_pad=True, divisor_override=1)
        return (kernel[0] * kernel[1] / valid).to(meta.dtype)
