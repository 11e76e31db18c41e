"""`explicit_pool_padding`: padded pools rewritten into the forms the XNNPACK delegates of ExecuTorch and LiteRT
take, exactly (seed 004's zero-pad shortcuts, ShuffleNet's shortcut pools, the stem max pools)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from clcdeploy.export.passes import POOL_REWRITES, deployment_passes, explicit_pool_padding, pool_padding_for
from clcdeploy.zoo import create_model


def _padded_pools(model: nn.Module, kind=(nn.AvgPool2d, nn.MaxPool2d)) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, kind) and m.padding not in (0, (0, 0))]


def _excluding_pools(model: nn.Module) -> list[nn.Module]:
    return [m for m in _padded_pools(model, nn.AvgPool2d) if not m.count_include_pad]


def _pool_layers(model: nn.Module) -> list[str]:
    return [repr(m) for m in model.modules() if isinstance(m, (nn.AvgPool2d, nn.MaxPool2d, nn.ZeroPad2d))]


@pytest.mark.parametrize("count_include_pad", [False, True])
@pytest.mark.parametrize("size", [7, 8, 13])
@pytest.mark.parametrize("kernel, stride, padding", [(3, 2, 1), (3, 1, 1), (2, 2, 1), (5, 2, 2), ((3, 5), 2, (1, 2))])
def test_zero_padded_average_pool_equals_the_padded_pool(size, kernel, stride, padding, count_include_pad):
    model = nn.Sequential(nn.Conv2d(3, 4, 1),
                          nn.AvgPool2d(kernel, stride, padding, count_include_pad=count_include_pad)).eval()
    x = torch.randn(2, 3, size, size + 1)
    rewritten = explicit_pool_padding(model, x, ("zero-pad-average",))
    assert not _padded_pools(rewritten) and any(isinstance(m, nn.ZeroPad2d) for m in rewritten.modules())
    with torch.no_grad():
        torch.testing.assert_close(rewritten(x), model(x), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("size", [7, 8, 13])
@pytest.mark.parametrize("kernel, stride, padding", [(3, 2, 1), (3, 1, 1), (2, 2, 1), (5, 2, 2), ((3, 5), 2, (1, 2))])
def test_counting_pool_times_a_factor_equals_the_excluding_pool(size, kernel, stride, padding):
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.AvgPool2d(kernel, stride, padding, count_include_pad=False)).eval()
    x = torch.randn(2, 3, size, size + 1)
    rewritten = explicit_pool_padding(model, x, ("count-average-padding",))
    assert not _excluding_pools(rewritten) and len(_padded_pools(rewritten)) == 1
    with torch.no_grad():
        torch.testing.assert_close(rewritten(x), model(x), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("relu", [nn.ReLU(), nn.ReLU6()])
@pytest.mark.parametrize("size", [7, 8, 13])
@pytest.mark.parametrize("kernel, stride, padding", [(3, 2, 1), (3, 1, 1), (2, 2, 1), (5, 2, 2)])
def test_max_pool_of_a_relu_pads_with_zeros_exactly(size, kernel, stride, padding, relu):
    model = nn.Sequential(nn.Conv2d(3, 4, 1), relu, nn.MaxPool2d(kernel, stride, padding)).eval()
    x = torch.randn(2, 3, size, size + 1) - 1.0  # mostly negative before the ReLU: zeros in many windows
    rewritten = explicit_pool_padding(model, x, ("zero-pad-max-of-relu",))
    assert not _padded_pools(rewritten)
    with torch.no_grad():
        assert torch.equal(rewritten(x), model(x))


@pytest.mark.parametrize("layers", [
    [nn.AvgPool2d(3, 2, 0, count_include_pad=False)],
    [nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False)],
    [nn.AvgPool2d(3, 2, 1, divisor_override=4)],
    [nn.AvgPool2d(3, 2, 1)],                        # counting: LiteRT lowers it to PAD + AVERAGE_POOL_2D itself
    [nn.MaxPool2d(3, 2, 1)],                        # may see negative inputs: the -inf padding matters
    [nn.Conv2d(2, 2, 1), nn.MaxPool2d(3, 2, 1)],    # likewise
    [nn.ReLU(), nn.MaxPool2d(3, 2, 1, ceil_mode=True)],
    [nn.ReLU(), nn.MaxPool2d(3, 2, 1, dilation=2)],
])
def test_other_pools_are_left_alone(layers):
    model = nn.Sequential(*layers).eval()
    rewritten = explicit_pool_padding(model, torch.randn(1, 2, 9, 9), ("count-average-padding",
                                                                        "zero-pad-max-of-relu"))
    assert _pool_layers(rewritten) == _pool_layers(model)


def test_each_format_names_its_rewrites_and_unknown_ones_are_refused():
    assert pool_padding_for("onnx") == ()
    assert pool_padding_for("pte") == ("zero-pad-average",)
    assert set(pool_padding_for("tflite")) == {"count-average-padding", "zero-pad-max-of-relu"}
    assert set(pool_padding_for("pte")) | set(pool_padding_for("tflite")) == set(POOL_REWRITES)
    with pytest.raises(ValueError, match="unknown pool rewrite"):
        explicit_pool_padding(nn.Sequential(nn.AvgPool2d(3, 2, 1)), torch.randn(1, 2, 9, 9), ("zero-pad",))


@pytest.mark.parametrize("name, padded_pools", [("sk_pwgconv_dw_pwgconv_tiny", 4), ("shufflenet_v1_tiny", 4)])
@pytest.mark.parametrize("fmt, left", [("pte", 1), ("tflite", 3)])
def test_zoo_models_keep_only_the_pools_their_format_delegates(name, padded_pools, fmt, left):
    """The stem max pool (of a ReLU) stays padded for ExecuTorch, which delegates it; the three shortcut pools
    stay (or become) counting padded pools for LiteRT, which lowers them to PAD + AVERAGE_POOL_2D."""
    model = create_model(name).eval()
    x = torch.randn(1, 3, 32, 32)
    assert len(_padded_pools(model)) == padded_pools
    deployed = explicit_pool_padding(deployment_passes(model, x), x, pool_padding_for(fmt))
    kept = _padded_pools(deployed)
    assert len(kept) == left
    assert not _excluding_pools(deployed)
    with torch.no_grad():
        torch.testing.assert_close(deployed(x), model(x), rtol=1e-5, atol=1e-5)
