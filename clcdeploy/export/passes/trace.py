"""Symbolic tracing that keeps the zoo's permuting layers (IGC, ChannelShuffle) as single graph nodes."""

from __future__ import annotations

import copy

import torch
from torch import fx, nn

from clcdeploy.errors import ExportError
from clcdeploy.zoo.layers import IGC, ChannelShuffle, interlace


class UntraceableError(ExportError):
    """A module whose forward fx cannot trace (it branches on tensor shapes or values)."""


class ZooTracer(fx.Tracer):
    """fx tracer treating IGC and ChannelShuffle as leaves and `interlace` as an opaque call."""

    def __init__(self) -> None:
        super().__init__(autowrap_functions=(interlace,))

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return isinstance(m, (IGC, ChannelShuffle)) or super().is_leaf_module(m, module_qualified_name)


def to_graph_module(model: nn.Module) -> fx.GraphModule:
    """A traced, independent eval-mode copy of `model` (GraphModules are copied, not re-traced)."""
    if isinstance(model, fx.GraphModule):
        gm = copy.deepcopy(model)
    else:
        try:
            root = copy.deepcopy(model).eval()
            graph = ZooTracer().trace(root)
        except Exception as exc:  # fx raises many types for untraceable code
            raise UntraceableError(
                f"cannot trace {type(model).__name__} for the deployment rewrites ({exc}); "
                f"its forward must not branch on tensor values or shapes"
            ) from exc
        gm = fx.GraphModule(root, graph, type(model).__name__)
    gm.eval()
    for module in gm.modules():  # rewrites duplicate activation nodes; in-place ops on views would alias
        if getattr(module, "inplace", False):
            module.inplace = False
    return gm


def finish(gm: fx.GraphModule) -> fx.GraphModule:
    """Dead-code elimination, unused-module removal, lint and recompile after a rewrite."""
    gm.graph.eliminate_dead_code()
    gm.delete_all_unused_submodules()
    gm.graph.lint()
    gm.recompile()
    return gm


def unique_name(gm: fx.GraphModule, base: str) -> str:
    """A submodule path derived from `base` that `gm` does not use yet."""
    name, i = base, 0
    while _has_path(gm, name):
        i += 1
        name = f"{base}_{i}"
    return name


def add_submodule(gm: fx.GraphModule, base: str, module: nn.Module) -> str:
    """Add `module` to `gm` under a new path derived from `base` (dots nest it); returns the path."""
    name = unique_name(gm, base)
    gm.add_submodule(name, module)
    return name


def _has_path(gm: fx.GraphModule, path: str) -> bool:
    try:
        gm.get_submodule(path)
        return True
    except AttributeError:
        return False


def recorded_calls(model: nn.Module, example: torch.Tensor, names: list[str]) -> dict[str, list[tuple]]:
    """The positional arguments of every call of the submodules `names` while `model` runs on `example`."""
    calls: dict[str, list[tuple]] = {name: [] for name in names}

    def recorder(name: str):
        def hook(_module: nn.Module, args: tuple) -> None:
            calls[name].append(args)
        return hook

    handles = [model.get_submodule(name).register_forward_pre_hook(recorder(name)) for name in names]
    try:
        with torch.no_grad():
            model(example)
    finally:
        for handle in handles:
            handle.remove()
    return calls
