"""The concat-placing IGC lowerings ("split-k", "split-late", "split-dw", "split-gc", "split-k-gc") are exact and
have the intended structure: no concat left inside the network (split-K), none before a stride-2 depthwise conv
(late), split-K on large maps and one concat before grouped 1x1 convs on small ones (split-k-gc)."""

from __future__ import annotations

import operator
import random

import pytest
import torch
from torch import nn

from clcdeploy.export.passes import IGC_LOWERINGS, deployment_passes
from clcdeploy.export.weights import random_weights
from clcdeploy.zoo import create_model
from clcdeploy.zoo.clcnet import ClcNet
from clcdeploy.zoo.layers import IGC

ATOL = 1e-5
SINKING = ("split-k", "split-late", "split-dw", "split-gc", "split-k-gc")


def _diff(a: nn.Module, b: nn.Module, x: torch.Tensor) -> float:
    with torch.no_grad():
        return (a(x) - b(x)).abs().max().item()


@pytest.fixture(scope="module")
def tiny() -> tuple[nn.Module, torch.Tensor]:
    model = create_model("clcnet_tiny")
    random_weights(model)
    return model.double().eval(), torch.randn(2, 3, 32, 32, dtype=torch.float64)


@pytest.mark.parametrize("lowering", SINKING)
@pytest.mark.parametrize("seed", range(4))
def test_sinking_lowerings_are_exact_on_random_clcnets(lowering: str, seed: int) -> None:
    rng = random.Random(seed)
    model = ClcNet(*[rng.randint(0, 2) for _ in range(4)], width=rng.choice([0.125, 0.25]),
                   crf=rng.choice([1, 2, 2]), g2=rng.choice([1, 2, 2]), num_classes=7)
    random_weights(model, seed=seed)
    model.double().eval()
    x = torch.randn(2, 3, rng.choice([32, 37, 45]), 33, dtype=torch.float64)
    assert lowering in IGC_LOWERINGS
    assert _diff(model, deployment_passes(model, x, igc_lowering=lowering), x) <= ATOL


def _cat_users(deployed: torch.fx.GraphModule) -> list[torch.fx.Node]:
    """Nodes that read a concat."""
    return [u for n in deployed.graph.nodes if n.target is torch.cat for u in n.users]


def test_split_k_leaves_no_concat_before_a_convolution(tiny) -> None:
    model, x = tiny
    deployed = deployment_passes(model, x, igc_lowering="split-k")
    assert not _modules_of(deployed, IGC)
    convs_reading_cats = [u for u in _cat_users(deployed) if u.op == "call_module"
                          and isinstance(deployed.get_submodule(u.target), nn.Conv2d)]
    assert not convs_reading_cats
    assert all(c.groups == 1 or c.groups == c.in_channels for c in _modules_of(deployed, nn.Conv2d))


def test_split_late_moves_concats_behind_stride_2_depthwise_convs(tiny) -> None:
    model, x = tiny
    deployed = deployment_passes(model, x, igc_lowering="split-late")
    readers = [deployed.get_submodule(u.target) for u in _cat_users(deployed) if u.op == "call_module"]
    strided_dw = [m for m in readers if isinstance(m, nn.Conv2d) and m.groups == m.in_channels > 1
                  and m.stride != (1, 1)]
    assert readers and not strided_dw
    assert _diff(model, deployed, x) <= ATOL


@pytest.mark.parametrize("min_pixels", [0, 8 * 8, 10**9])
def test_split_k_gc_uses_split_k_on_large_maps_and_grouped_gcs_on_small_ones(tiny, monkeypatch, min_pixels) -> None:
    from clcdeploy.export import passes

    model, x = tiny
    monkeypatch.setattr(passes, "SPLIT_K_MIN_PIXELS", min_pixels)
    deployed = deployment_passes(model, x, igc_lowering="split-k-gc")
    assert _diff(model, deployed, x) <= ATOL
    pixels = {n: n.meta["tensor_meta"].shape[2] * n.meta["tensor_meta"].shape[3] for n in _shapes(deployed, x)}
    convs = {n: deployed.get_submodule(n.target) for n in deployed.graph.nodes
             if n.op == "call_module" and isinstance(deployed.get_submodule(n.target), nn.Conv2d)}
    gcs_reading_cats = [n for n, conv in convs.items() if n.args[0].target is torch.cat]
    dense_1x1 = {n for n, conv in convs.items() if conv.kernel_size == (1, 1) and conv.groups == 1}
    split_k_sums = [n for n in deployed.graph.nodes if n.target is operator.add and set(n.args) <= dense_1x1]
    # large maps: quarter 1x1 convs summed (split-K), no concat; small maps: one concat before grouped 1x1s
    assert all(pixels[n.args[0]] < min_pixels and convs[n].groups == 2 for n in gcs_reading_cats)
    assert all(pixels[n] >= min_pixels for n in split_k_sums)
    assert bool(gcs_reading_cats) == (min_pixels > 0) and bool(split_k_sums) == (min_pixels < 10**9)


def _shapes(gm: torch.fx.GraphModule, x: torch.Tensor) -> list[torch.fx.Node]:
    """The 4-d nodes of `gm`, with their shapes recorded in `meta`."""
    from torch.fx.passes.shape_prop import ShapeProp

    ShapeProp(gm).propagate(x)
    return [n for n in gm.graph.nodes if getattr(n.meta.get("tensor_meta"), "shape", None) is not None
            and len(n.meta["tensor_meta"].shape) == 4]


def _modules_of(gm: nn.Module, kind: type) -> list[nn.Module]:
    return [m for m in gm.modules() if isinstance(m, kind)]


def test_export_uses_each_formats_default_lowering(tmp_path) -> None:
    from clcdeploy.export.passes import DEFAULT_IGC_LOWERINGS
    from clcdeploy.export.pipeline import export_model

    manifest = export_model("clcnet_tiny", ["onnx", "tflite"], tmp_path)
    for fmt, entry in manifest.formats.items():
        assert entry.validated and entry.extra["igc_lowering"] == DEFAULT_IGC_LOWERINGS[fmt]
    assert manifest.igc_lowering == ("per-format" if DEFAULT_IGC_LOWERINGS["onnx"] != DEFAULT_IGC_LOWERINGS["tflite"]
                                     else DEFAULT_IGC_LOWERINGS["onnx"])
