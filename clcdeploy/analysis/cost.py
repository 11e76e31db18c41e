"""Mult-add and parameter counting for any nn.Module at a given input size.

Convention (the papers'): multiply-adds of convolutions (any dimensionality, grouped or not) and fully
connected layers; parameters of all layers (BN affine parameters included, running statistics not).
Counting runs one real forward pass with hooks on the leaf layers, so it sees exactly what executes.

A module that convolves along the channel axis through a reshaped (channels, pixels) view (ChannelNet's
channel-wise convolutions, which declare `spatial_kernel()`) is one row: its own class as the type, its real
output shape and the mult-adds and parameters of the layers inside it; their reshaped shapes
(e.g. 2x256x196 for a 512x14x14 map) mean nothing to a reader.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclass
class LayerCost:
    name: str
    kind: str
    output_shape: tuple[int, ...]
    macs: int
    params: int


@dataclass
class CostReport:
    input_size: int
    macs: int
    params: int
    layers: list[LayerCost] = field(default_factory=list)


def example_input(model: nn.Module, *shape: int) -> torch.Tensor:
    """Zeros of `shape` with the model's dtype and device (a model on the meta device counts for free)."""
    reference = next(model.parameters(), torch.zeros(()))
    return torch.zeros(*shape, dtype=reference.dtype, device=reference.device)


def _layer_macs(module: nn.Module, output: torch.Tensor) -> int:
    if isinstance(module, _CONVS):
        per_output = (module.in_channels // module.groups) * math.prod(module.kernel_size)
        return output.numel() // output.shape[0] * per_output
    if isinstance(module, nn.Linear):
        return output.numel() // output.shape[-1] // output.shape[0] * module.in_features * module.out_features
    return 0


def _is_unit(module: nn.Module) -> bool:
    """Counted as one layer: a leaf, or a channel-axis convolution (see the module docstring)."""
    return next(module.children(), None) is None or callable(getattr(module, "spatial_kernel", None))


def count_costs(model: nn.Module, input_size: int, in_channels: int = 3) -> CostReport:
    """Mult-adds and parameters of `model` for one `in_channels` x `input_size` x `input_size` image."""
    layers: list[LayerCost] = []
    handles = []
    inner_macs: dict[str, int] = {}  # mult-adds of the leaves inside a unit that is not a leaf
    units = {name for name, module in model.named_modules() if _is_unit(module)}

    def enclosing_unit(name: str) -> str | None:
        if not name:
            return None
        parts = name.split(".")
        return next((p for p in ["", *(".".join(parts[:i]) for i in range(1, len(parts)))] if p in units), None)

    for name, module in model.named_modules():
        outer = enclosing_unit(name)
        if outer is not None:  # a layer inside a channel-axis convolution: counted into that row
            if next(module.children(), None) is None:
                def inner_hook(mod, _inputs, output, outer=outer):
                    if isinstance(output, torch.Tensor):
                        inner_macs[outer] = inner_macs.get(outer, 0) + _layer_macs(mod, output)
                handles.append(module.register_forward_hook(inner_hook))
            continue
        if name not in units:
            continue

        def hook(mod, _inputs, output, name=name):
            own_params = sum(p.numel() for p in mod.parameters())  # a leaf's own, or all of a unit's
            macs = _layer_macs(mod, output) if isinstance(output, torch.Tensor) else 0
            macs += inner_macs.pop(name, 0)
            shape = tuple(output.shape[1:]) if isinstance(output, torch.Tensor) else ()
            layers.append(LayerCost(name, type(mod).__name__, shape, macs, own_params))

        handles.append(module.register_forward_hook(hook))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(example_input(model, 1, in_channels, input_size, input_size))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return CostReport(
        input_size=input_size,
        macs=sum(layer.macs for layer in layers),
        params=sum(p.numel() for p in model.parameters()),
        layers=layers,
    )
