"""Benchmark formulations: the exact ones equal the model, the floors have the documented structure."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from clcdeploy.export.weights import random_weights
from clcdeploy.kernels.fuse import FusedIGC2
from clcdeploy.kernels.variants import VARIANTS, DepthwiseFloor, deploy_variant
from clcdeploy.zoo import create_model
from clcdeploy.zoo.layers import IGC


@pytest.fixture(scope="module")
def tiny():
    model = create_model("clcnet_tiny")
    random_weights(model)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        return model, x, model(x)


@pytest.mark.parametrize("variant", ["standard", "swap", "grouped", "fused", "fused-nhwc"])
def test_exact_variants_match_model(tiny, variant):
    model, x, expected = tiny
    with torch.no_grad():
        got = deploy_variant(model, x, variant)(x)
    assert (got - expected).abs().max().item() < 1e-4


@pytest.mark.parametrize("variant,count,kernel", [("floor2", 2, (3, 3)), ("floor1", 1, (3, 3)), ("floor0", 1, (1, 1))])
def test_floors_have_depthwise_convs_and_no_igc(tiny, variant, count, kernel):
    model, x, _ = tiny
    deploy = deploy_variant(model, x, variant)
    floors = [m for m in deploy.modules() if isinstance(m, DepthwiseFloor)]
    assert floors and all(len(f.convs) == count for f in floors)
    assert all(c.groups == c.in_channels and c.kernel_size == kernel for f in floors for c in f.convs)
    assert not any(isinstance(m, (IGC, nn.BatchNorm2d)) for m in deploy.modules())
    assert deploy(x).shape == (2, 10)


def test_fused_variant_replaces_every_igc(tiny):
    model, x, _ = tiny
    deploy = deploy_variant(model, x, "fused")
    assert sum(isinstance(m, FusedIGC2) for m in deploy.modules()) == sum(isinstance(m, IGC) for m in model.modules())


def test_unknown_variant_is_rejected(tiny):
    with pytest.raises(ValueError, match="unknown variant"):
        deploy_variant(tiny[0], tiny[1], "nope")
    assert "floor1" in VARIANTS
