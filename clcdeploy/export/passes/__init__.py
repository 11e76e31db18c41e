"""Deployment rewrites: each pass maps an eval-mode module to an exactly equivalent `fx.GraphModule`.

`deployment_passes` applies them in order: dense topological layers, batch-norm folding, IGC lowering,
small-group lowering, permutation elimination and concat placement; `fused_igc_passes` is the opt-in
alternative with clcdeploy's fused IGC kernel (ExecuTorch, LiteRT, ONNX Runtime). `explicit_pool_padding`
puts padded pools in the form a format's delegate takes and `merge_small_groups` widens groups with few outputs
for XNNPACK; each format's `export` applies them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from clcdeploy.export.passes.channelwise_on_pixels import channelwise_on_pixels
from clcdeploy.export.passes.densify_topological import densify_topological
from clcdeploy.export.passes.eliminate_permutations import eliminate_permutations
from clcdeploy.export.passes.explicit_pool_padding import POOL_REWRITES, explicit_pool_padding, pool_padding_for
from clcdeploy.export.passes.fold_batchnorm import fold_batchnorm
from clcdeploy.export.passes.lower_igc import (
    DEFAULT_IGC_LOWERING, DEFAULT_IGC_LOWERINGS, IGC_LOWERINGS, SPLIT_K_MIN_PIXELS, lower_igc,
)
from clcdeploy.export.passes.lower_grouped import is_small_group_conv, lower_grouped_convs
from clcdeploy.export.passes.merge_groups import merge_small_groups, mergeable_convs
from clcdeploy.export.passes.recognise_igc import recognise_igc
from clcdeploy.export.passes.sink_concats import sink_concats
from clcdeploy.export.passes.trace import UntraceableError, recorded_calls
from clcdeploy.zoo.layers import IGC

__all__ = ["CHANNELWISE_LOWERINGS", "DEFAULT_CHANNELWISE", "DEFAULT_IGC_LOWERING", "DEFAULT_IGC_LOWERINGS",
           "HANDWRITTEN_IGC_LOWERINGS", "IGC_LOWERINGS", "POOL_REWRITES", "SMALL_GROUP_LOWERINGS",
           "TOPOLOGICAL_LOWERINGS",
           "channelwise_on_pixels", "deployment_passes", "densify_topological", "eliminate_permutations",
           "explicit_pool_padding", "fold_batchnorm", "fused_igc_passes", "lower_grouped_convs", "lower_igc",
           "merge_small_groups", "mergeable_convs", "pool_padding_for", "recognise_igc", "sink_concats"]


# How topologically subdivided convolutions (SIC models F, G, I) are exported: as one dense convolution each
# (the default, measured faster on every runtime), or as written (a channel gather and a grouped convolution).
TOPOLOGICAL_LOWERINGS = ("dense", "gather")
# ChannelNets' channel-wise convolutions and convolutional classifier: with the pixels as the channels of a
# depthwise convolution ("pixels"), or as written, one-channel convolutions over the (channels, pixels) plane
# ("plane"). Per format, the faster (BENCHMARKS.md section 5): ONNX Runtime runs the plane form well and
# the pixel form slowly (transposes around its NCHWc convolutions), XNNPACK the other way round.
CHANNELWISE_LOWERINGS = ("pixels", "plane")
DEFAULT_CHANNELWISE = {"onnx": "plane", "pte": "pixels", "tflite": "pixels"}
# A grouped convolution with groups of <= 2 channels followed by a channel shuffle with as many groups, as the
# sparse-kernel nets write clcNet's block: recognised as an IGC and lowered like one ("lowered", faster on
# every runtime), or left as written ("grouped").
HANDWRITTEN_IGC_LOWERINGS = ("lowered", "grouped")
# Spatial grouped convolutions with 2-4 channels per group between dense convolutions (seed 004's pw-gconv-pw
# nets, clcNet-Ap): as depthwise convolutions ("depthwise", faster on every runtime), or as written ("grouped").
SMALL_GROUP_LOWERINGS = ("depthwise", "grouped")


@dataclass(frozen=True)
class _TracedPlan:
    """What the traced rewrites do: the IGC lowering, and whether hand-written IGCs are recognised and small
    groups lowered."""

    igc_lowering: str
    recognise_igc: bool = True
    small_groups: bool = True


def deployment_passes(model: nn.Module, example: torch.Tensor, *, igc_lowering: str = DEFAULT_IGC_LOWERING,
                      topological: str = "dense", channelwise: str = "pixels",
                      handwritten_igc: str = "lowered", small_groups: str = "depthwise") -> nn.Module:
    """Densify topological layers (`topological` in TOPOLOGICAL_LOWERINGS), put channel-wise convolutions on
    the pixels (`channelwise` in CHANNELWISE_LOWERINGS), recognise hand-written IGCs (`handwritten_igc` in
    HANDWRITTEN_IGC_LOWERINGS), fold BN, lower IGC (`igc_lowering` in IGC_LOWERINGS) and small-group
    convolutions (`small_groups` in SMALL_GROUP_LOWERINGS), remove channel permutations, place concats.

    Padded pools are rewritten later, per format (`explicit_pool_padding`, applied by each format's export).

    `igc_lowering="grouped"` keeps IGCs as grouped conv + interlace (the naive export, for comparison).
    A model that fx cannot trace as a whole is rewritten child by child (each on the input it receives),
    so only the untraceable modules themselves stay unrewritten.
    """
    if handwritten_igc not in HANDWRITTEN_IGC_LOWERINGS:
        raise ValueError(f"unknown hand-written IGC lowering {handwritten_igc!r}; choose from "
                         f"{HANDWRITTEN_IGC_LOWERINGS}")
    if small_groups not in SMALL_GROUP_LOWERINGS:
        raise ValueError(f"unknown small-group lowering {small_groups!r}; choose from {SMALL_GROUP_LOWERINGS}")
    model = _layer_rewrites(model, example, topological, channelwise)
    plan = _TracedPlan(igc_lowering, handwritten_igc == "lowered", small_groups == "depthwise")
    return _traced_rewrites(model, example, plan)


def _layer_rewrites(model: nn.Module, example: torch.Tensor, topological: str, channelwise: str) -> nn.Module:
    """The module-level rewrites of zoo layers, before tracing."""
    if topological not in TOPOLOGICAL_LOWERINGS:
        raise ValueError(f"unknown topological lowering {topological!r}; choose from {TOPOLOGICAL_LOWERINGS}")
    if channelwise not in CHANNELWISE_LOWERINGS:
        raise ValueError(f"unknown channel-wise lowering {channelwise!r}; choose from {CHANNELWISE_LOWERINGS}")
    if topological == "dense":
        model = densify_topological(model)
    if channelwise == "pixels":
        model = channelwise_on_pixels(model, example)
    return model


def _traced_rewrites(model: nn.Module, example: torch.Tensor, plan: _TracedPlan) -> nn.Module:
    try:
        return _rewrite(model, example, plan)
    except UntraceableError:
        return _rewrite_children(model, example, plan)


def _rewrite(model: nn.Module, example: torch.Tensor, plan: _TracedPlan) -> nn.Module:
    igc_lowering = plan.igc_lowering
    gm = fold_batchnorm(recognise_igc(model) if plan.recognise_igc else model)
    gm = lower_igc(gm, variant=igc_lowering)
    if plan.small_groups:
        gm = lower_grouped_convs(gm)
    if igc_lowering.startswith("split") or plan.small_groups:
        gm = eliminate_permutations(gm, example)
    if igc_lowering in ("split-k", "split-late", "split-dw"):
        gm = sink_concats(gm, example, split_k=igc_lowering == "split-k",
                          strided_only=igc_lowering == "split-late")
    if igc_lowering == "split-k-gc":
        gm = sink_concats(gm, example, split_k=True, split_k_min_pixels=SPLIT_K_MIN_PIXELS)
    if igc_lowering in ("split-gc", "split-k-gc"):
        gm = sink_concats(gm, example, merge_gc=True)
    return gm


def _rewrite_children(model: nn.Module, example: torch.Tensor, plan: _TracedPlan) -> nn.Module:
    """A copy of `model` whose direct children are rewritten separately (recursively if needed)."""
    model = copy.deepcopy(model).eval()
    inputs = recorded_calls(model, example, [name for name, _ in model.named_children()])
    for name, child in list(model.named_children()):
        calls = inputs[name]
        if len(calls) != 1 or len(calls[0]) != 1 or not isinstance(calls[0][0], torch.Tensor):
            continue  # called never, several times, or with other arguments: leave as is
        if not any(True for _ in child.children()) and not isinstance(child, IGC):
            continue  # a leaf layer: nothing to rewrite on its own
        wrapped = nn.Sequential(child) if isinstance(child, IGC) else child
        setattr(model, name, _traced_rewrites(wrapped, calls[0][0], plan))
    return model


def fused_igc_passes(model: nn.Module, example: torch.Tensor, *, channels_last: bool = True,
                     topological: str = "dense", channelwise: str = "pixels") -> nn.Module:
    """The layer rewrites of `deployment_passes` (`topological`, `channelwise`), fold BN, then replace each
    CRF-2 IGC by clcdeploy's fused op `clcdeploy::igc2`.

    `channels_last` (for ExecuTorch): the network runs on a channels-last copy of its input, so the XNNPACK
    partitions around each fused op hand NHWC tensors over with no layout conversion (measured: NCHW hand-over
    makes clcNet-A 3x slower). False keeps NCHW: ONNX Runtime's CPU provider is NCHW, and litert-torch
    converts to NHWC itself.
    Such artifacts need clcdeploy's kernel library at run time (`clcdeploy.kernels.runtime`).
    IGCs the kernel cannot compute keep the standard lowering.
    """
    from clcdeploy.kernels.fuse import ChannelsLast, fuse_igc, pools_as_means

    model = _layer_rewrites(model, example, topological, channelwise)
    try:
        folded = fold_batchnorm(model)
    except UntraceableError:
        folded = copy.deepcopy(model).eval()  # BN stays a separate op; the fused op is still exact
    fused = fuse_igc(folded)
    if any((isinstance(m, IGC) and m.crf <= 2) or is_small_group_conv(m) for m in fused.modules()):
        # lower what the kernel does not cover
        fused = _traced_rewrites(fused, example, _TracedPlan(DEFAULT_IGC_LOWERING))
    return (ChannelsLast(pools_as_means(fused)) if channels_last else fused).eval()
