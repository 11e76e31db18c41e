"""Mult-add and parameter counting for any nn.Module at a given input size.

Convention (the papers'): multiply-adds of convolutions (any dimensionality, grouped or not) and fully
connected layers; parameters of all layers (BN affine parameters included, running statistics not).
Counting runs one real forward pass with hooks on the leaf layers, so it sees exactly what executes.
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


def count_costs(model: nn.Module, input_size: int, in_channels: int = 3) -> CostReport:
    """Mult-adds and parameters of `model` for one `in_channels` x `input_size` x `input_size` image."""
    layers: list[LayerCost] = []
    handles = []
    for name, module in model.named_modules():
        if next(module.children(), None) is not None:  # only leaves do work
            continue

        def hook(mod, _inputs, output, name=name):
            own_params = sum(p.numel() for p in mod.parameters(recurse=False))
            macs = _layer_macs(mod, output) if isinstance(output, torch.Tensor) else 0
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
