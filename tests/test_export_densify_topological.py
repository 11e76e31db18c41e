"""The dense lowering of topologically subdivided convolutions (SIC models F, G, I): exact, zero outside each
output's neighbourhood, and what the export writes by default (the gather form stays available)."""

from __future__ import annotations

import pytest
import torch

from clcdeploy.export.passes import deployment_passes, densify_topological
from clcdeploy.export.passes.densify_topological import dense_conv
from clcdeploy.export.weights import random_weights
from clcdeploy.zoo import create_model
from clcdeploy.zoo.sic import TopologicalConv


@pytest.mark.parametrize("dims, neighbours, kernel_size", [
    ((8,), (3,), 3), ((4, 8), (2, 3), 1), ((4, 8), (4, 8), 1), ((2, 4, 2), (2, 3, 1), 3), ((3, 3), (1, 1), 3),
])
def test_dense_conv_is_the_topological_conv(dims, neighbours, kernel_size):
    torch.manual_seed(0)
    layer = TopologicalConv(dims, neighbours, kernel_size=kernel_size).double()
    dense = dense_conv(layer)
    x = torch.randn(2, layer.channels, 7, 6, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(dense(x), layer(x), rtol=0, atol=1e-12)
    # Nonzero exactly where the layer connects an output to an input (random taps are never zero).
    assert torch.equal(dense.weight.abs().sum((2, 3)) > 0, layer.channel_connectivity())
    assert dense.groups == 1 and dense.in_channels == dense.out_channels == layer.channels


def test_densify_replaces_every_topological_layer_of_a_sic_net_and_leaves_the_model_alone():
    model = create_model("sic_i_tiny")
    random_weights(model, input_size=33)
    model = model.double()
    dense = densify_topological(model)
    assert not any(isinstance(m, TopologicalConv) for m in dense.modules())
    assert any(isinstance(m, TopologicalConv) for m in model.modules())
    x = torch.randn(1, 3, 33, 33, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(dense(x), model(x), rtol=0, atol=1e-12)
    plain = create_model("sic_c_tiny")
    assert densify_topological(plain) is plain


def test_export_passes_gather_only_when_asked():
    model = create_model("sic_i_tiny")
    random_weights(model, input_size=33)
    x = torch.randn(1, 3, 33, 33)

    def gathers(module) -> int:
        return sum(node.target in (torch.index_select, "index_select") for node in module.graph.nodes)

    dense, gathered = (deployment_passes(model, x, topological=form) for form in ("dense", "gather"))
    assert gathers(dense) == 0 and gathers(gathered) == sum(isinstance(m, TopologicalConv) for m in model.modules())
    with torch.no_grad():
        assert torch.allclose(dense(x), gathered(x), atol=1e-5)
    with pytest.raises(ValueError, match="unknown topological lowering 'sparse'"):
        deployment_passes(model, x, topological="sparse")
