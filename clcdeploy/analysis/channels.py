"""Channel dependency graph: which input channels of a block each output channel depends on.

Derived from the module structure, not by running the block: the block is traced with torch.fx, and a
boolean dependency matrix D (channels of a value x input channels of the block) is propagated through the
graph. Grouped convolutions contribute their block-diagonal group pattern, permuting layers (IGC interlace,
channel shuffle) their `channel_permutation()`, per-channel layers (BN, activations, pooling) nothing, and
modules that mix channels in their own way their `channel_connectivity()` matrix ([out, in] booleans).

Channels that reach a block's output without passing any convolution (e.g. the average-pooled shortcut
a ShuffleNet stride-2 unit concatenates) are pass-through: the block does not compute them, so the
channel receptive field is taken over the computed channels only.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

import torch
import torch.fx
from torch import nn

from clcdeploy.analysis.cost import example_input
from clcdeploy.errors import AnalysisError

# Layers that act on every channel separately: the dependency passes through unchanged.
_PER_CHANNEL = (
    nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.ReLU, nn.ReLU6, nn.Hardswish, nn.Hardsigmoid,
    nn.SiLU, nn.Sigmoid, nn.Identity, nn.Dropout, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool2d, nn.Flatten,
)
_PER_CHANNEL_FUNCTIONS = {
    torch.relu, torch.nn.functional.relu, torch.nn.functional.relu6, torch.sigmoid, torch.flatten,
    torch.nn.functional.adaptive_avg_pool2d, torch.nn.functional.avg_pool2d, torch.nn.functional.max_pool2d,
}
_ELEMENTWISE_BINARY = {operator.add, operator.mul, operator.sub, torch.add, torch.mul, torch.sub}


@dataclass(frozen=True)
class _Dependency:
    """Per value: [channels, block inputs] dependency, and which channels a convolution computed."""

    matrix: torch.Tensor
    computed: torch.Tensor


@dataclass(frozen=True)
class BlockChannels:
    """Channel receptive field of one block: `crf` is the smallest number of block input channels that any
    output channel depends on; the block has a full channel receptive field (FCRF) when that is all of them."""

    name: str
    kind: str
    in_channels: int
    out_channels: int
    crf: int
    passthrough_channels: int = 0

    @property
    def fcrf(self) -> bool:
        return self.crf == self.in_channels


class _Tracer(torch.fx.Tracer):
    def is_leaf_module(self, module: nn.Module, qualname: str) -> bool:
        if hasattr(module, "channel_permutation") or hasattr(module, "channel_connectivity"):
            return True
        return super().is_leaf_module(module, qualname)


def _group_pattern(out_channels: int, in_channels: int, groups: int) -> torch.Tensor:
    """[out, in] dependency of a grouped linear map: output group k reads input group k only."""
    out_group = torch.arange(out_channels) // (out_channels // groups)
    in_group = torch.arange(in_channels) // (in_channels // groups)
    return out_group[:, None] == in_group[None, :]


def _compose(pattern: torch.Tensor, dependency: torch.Tensor) -> torch.Tensor:
    return (pattern.to(torch.int64) @ dependency.to(torch.int64)) > 0


def _mixed(pattern: torch.Tensor, dependency: _Dependency) -> _Dependency:
    matrix = _compose(pattern, dependency.matrix)
    return _Dependency(matrix, torch.ones(matrix.shape[0], dtype=torch.bool))


def _module_pattern(module: nn.Module, dependency: _Dependency, target: str) -> _Dependency:
    if hasattr(module, "channel_connectivity"):
        return _mixed(module.channel_connectivity(), dependency)
    if hasattr(module, "channel_permutation"):
        conv = getattr(module, "conv", None)  # an IGC: grouped conv, then the interlace
        if conv is not None:
            dependency = _mixed(_group_pattern(conv.out_channels, conv.in_channels, conv.groups), dependency)
        order = torch.tensor(module.channel_permutation())
        return _Dependency(dependency.matrix[order], dependency.computed[order])
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        return _mixed(_group_pattern(module.out_channels, module.in_channels, module.groups), dependency)
    if isinstance(module, nn.Linear):
        return _mixed(torch.ones(module.out_features, dependency.matrix.shape[0], dtype=torch.bool), dependency)
    if isinstance(module, _PER_CHANNEL):
        return dependency
    raise AnalysisError(
        f"channel analysis does not know layer {target!r} ({type(module).__name__}); give it a "
        f"channel_connectivity() method returning its [out, in] dependency matrix"
    )


def _binary(a, b) -> _Dependency:
    if not isinstance(a, _Dependency):
        return b
    if not isinstance(b, _Dependency):
        return a
    if a.matrix.shape[0] == 1 or b.matrix.shape[0] == 1 or a.matrix.shape == b.matrix.shape:
        return _Dependency(a.matrix | b.matrix, a.computed | b.computed)
    raise AnalysisError(
        f"cannot combine channel dependencies of {a.matrix.shape[0]} and {b.matrix.shape[0]} channels"
    )


def channel_dependency(block: nn.Module, in_channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Boolean [out_channels, in_channels] matrix, True where an output channel depends on an input
    channel, and a boolean [out_channels] vector, True for channels that a convolution computed."""
    try:
        graph = _Tracer().trace(block)
    except Exception as exc:  # fx cannot trace data-dependent control flow
        raise AnalysisError(f"cannot trace {type(block).__name__} for channel analysis: {exc}") from None
    modules = dict(block.named_modules())
    values: dict[str, object] = {}
    for node in graph.nodes:
        arg = lambda a: values[a.name] if isinstance(a, torch.fx.Node) else a  # noqa: E731
        args = [torch.fx.node.map_arg(a, arg) for a in node.args]
        if node.op == "placeholder":
            values[node.name] = _Dependency(
                torch.eye(in_channels, dtype=torch.bool), torch.zeros(in_channels, dtype=torch.bool)
            )
        elif node.op == "call_module":
            values[node.name] = _module_pattern(modules[node.target], args[0], node.target)
        elif node.op == "call_function" and node.target in _ELEMENTWISE_BINARY:
            values[node.name] = _binary(args[0], args[1])
        elif node.op == "call_function" and node.target is torch.cat:
            dim = args[1] if len(args) > 1 else node.kwargs.get("dim", 0)
            if dim != 1:
                raise AnalysisError(f"channel analysis supports concatenation along channels only, got dim={dim}")
            parts = list(args[0])
            values[node.name] = _Dependency(
                torch.cat([p.matrix for p in parts]), torch.cat([p.computed for p in parts])
            )
        elif node.op in ("call_function", "call_method") and (
            node.target in _PER_CHANNEL_FUNCTIONS or node.target in ("relu", "relu_", "contiguous", "flatten")
        ):
            values[node.name] = args[0]
        elif node.op == "output":
            result = args[0]
            return result.matrix, result.computed
        else:
            raise AnalysisError(
                f"channel analysis does not know operation {node.target!r} in {type(block).__name__}"
            )
    raise AnalysisError(f"{type(block).__name__} has no output")


def analysis_blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The blocks to analyse: the children of `model.blocks` when the model has it, else its children."""
    container = getattr(model, "blocks", None)
    if isinstance(container, nn.Module):
        return [(f"blocks.{name}", child) for name, child in container.named_children()]
    return list(model.named_children())


def block_input_channels(model: nn.Module, blocks: list[tuple[str, nn.Module]], input_size: int) -> dict[str, int]:
    """Channels entering each block, read off one forward pass at `input_size`."""
    seen: dict[str, int] = {}

    def record(name: str):
        def hook(_module, inputs) -> None:  # a pre-hook that returned a value would replace the inputs
            seen.setdefault(name, inputs[0].shape[1])
        return hook

    handles = [block.register_forward_pre_hook(record(name)) for name, block in blocks]
    try:
        with torch.no_grad():
            model.eval()(example_input(model, 1, 3, input_size, input_size))
    finally:
        for handle in handles:
            handle.remove()
    return seen


def analyse_channels(model: nn.Module, input_size: int) -> list[BlockChannels]:
    """Channel receptive field and FCRF verdict of every block of `model`."""
    blocks = analysis_blocks(model)
    in_channels = block_input_channels(model, blocks, input_size)
    report = []
    for name, block in blocks:
        dependency, computed = channel_dependency(block, in_channels[name])
        fields = dependency[computed].sum(1) if computed.any() else dependency.sum(1)
        report.append(BlockChannels(
            name, type(block).__name__, in_channels[name], dependency.shape[0], int(fields.min()),
            passthrough_channels=int((~computed).sum()),
        ))
    return report
