"""`count_pool_padding`: padded average pools that exclude their padding become pad + unpadded pool + a
constant factor, exactly, so LiteRT's XNNPACK delegate keeps them (seed 004's zero-pad shortcuts)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from clcdeploy.export.passes import count_pool_padding, deployment_passes
from clcdeploy.zoo import create_model


def _excluding_pools(model: nn.Module) -> list[nn.AvgPool2d]:
    return [m for m in model.modules() if isinstance(m, nn.AvgPool2d) and not m.count_include_pad
            and m.padding not in (0, (0, 0))]


@pytest.mark.parametrize("size", [7, 8, 13])
@pytest.mark.parametrize("kernel, stride, padding", [(3, 2, 1), (3, 1, 1), (2, 2, 1), (5, 2, 2), ((3, 5), 2, (1, 2))])
def test_rewritten_pool_equals_the_excluding_pool(size, kernel, stride, padding):
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.AvgPool2d(kernel, stride, padding, count_include_pad=False)).eval()
    x = torch.randn(2, 3, size, size + 1)
    rewritten = count_pool_padding(model, x)
    assert not _excluding_pools(rewritten)
    with torch.no_grad():
        torch.testing.assert_close(rewritten(x), model(x), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("pool", [nn.AvgPool2d(3, 2, 1), nn.AvgPool2d(3, 2, 0, count_include_pad=False),
                                  nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False)])
def test_other_pools_are_left_alone(pool):
    rewritten = count_pool_padding(nn.Sequential(pool).eval(), torch.randn(1, 2, 9, 9))
    assert [type(m) for m in rewritten.modules()][1:] == [nn.AvgPool2d]


def test_deployment_passes_remove_the_excluding_pools_of_zero_pad_shortcuts():
    model = create_model("sk_pwgconv_dw_pwgconv_tiny").eval()
    x = torch.randn(1, 3, 32, 32)
    assert len(_excluding_pools(model)) == 3
    deployed = deployment_passes(model, x)
    assert not _excluding_pools(deployed)
    with torch.no_grad():
        torch.testing.assert_close(deployed(x), model(x), rtol=1e-5, atol=1e-5)
