"""Deployment rewrites: each pass maps an eval-mode module to an exactly equivalent `fx.GraphModule`.

`deployment_passes` applies them in order: batch-norm folding, IGC lowering, permutation elimination.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from clcdeploy.export.passes.eliminate_permutations import eliminate_permutations
from clcdeploy.export.passes.fold_batchnorm import fold_batchnorm
from clcdeploy.export.passes.lower_igc import IGC_LOWERINGS, lower_igc
from clcdeploy.export.passes.trace import UntraceableError
from clcdeploy.zoo.layers import IGC

__all__ = ["IGC_LOWERINGS", "deployment_passes", "eliminate_permutations", "fold_batchnorm", "lower_igc"]


def deployment_passes(model: nn.Module, example: torch.Tensor, *, igc_lowering: str = "split") -> nn.Module:
    """Fold BN, lower IGC (`igc_lowering` in IGC_LOWERINGS), then remove channel permutations.

    `igc_lowering="grouped"` keeps IGCs as grouped conv + interlace (the naive export, for comparison).
    A model that fx cannot trace as a whole is rewritten child by child (each on the input it receives),
    so only the untraceable modules themselves stay unrewritten.
    """
    try:
        return _rewrite(model, example, igc_lowering)
    except UntraceableError:
        return _rewrite_children(model, example, igc_lowering)


def _rewrite(model: nn.Module, example: torch.Tensor, igc_lowering: str) -> nn.Module:
    gm = fold_batchnorm(model)
    gm = lower_igc(gm, variant=igc_lowering)
    if igc_lowering == "split":
        gm = eliminate_permutations(gm, example)
    return gm


def _rewrite_children(model: nn.Module, example: torch.Tensor, igc_lowering: str) -> nn.Module:
    """A copy of `model` whose direct children are rewritten separately (recursively if needed)."""
    model = copy.deepcopy(model).eval()
    inputs: dict[str, list] = {}

    def recorder(name: str):
        def hook(module: nn.Module, args: tuple) -> None:
            inputs.setdefault(name, []).append(args)
        return hook

    handles = [child.register_forward_pre_hook(recorder(name)) for name, child in model.named_children()]
    try:
        with torch.no_grad():
            model(example)
    finally:
        for handle in handles:
            handle.remove()
    for name, child in list(model.named_children()):
        calls = inputs.get(name, [])
        if len(calls) != 1 or len(calls[0]) != 1 or not isinstance(calls[0][0], torch.Tensor):
            continue  # called never, several times, or with other arguments: leave as is
        if not any(True for _ in child.children()) and not isinstance(child, IGC):
            continue  # a leaf layer: nothing to rewrite on its own
        wrapped = nn.Sequential(child) if isinstance(child, IGC) else child
        setattr(model, name, deployment_passes(wrapped, calls[0][0], igc_lowering=igc_lowering))
    return model
