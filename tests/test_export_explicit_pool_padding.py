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


@pytest.mark.parametrize("size", [7, 8, 13])
@pytest.mark.parametrize("kernel, stride, padding", [(3, 2, 1), (3, 1, 1), (2, 2, 1), (5, 2, 2), ((3, 5), 2, (1, 2))])
def test_zero_padded_average_pool_equals_the_counting_pool(size, kernel, stride, padding):
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.AvgPool2d(kernel, stride, padding)).eval()
    x = torch.randn(2, 3, size, size + 1)
    rewritten = explicit_pool_padding(model, x, ("zero-pad-counting-average",))
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


@pytest.mark.parametrize("fmt, layers", [
    ("tflite", [nn.AvgPool2d(3, 2, 0, count_include_pad=False)]),
    ("tflite", [nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False)]),
    ("tflite", [nn.AvgPool2d(3, 2, 1, divisor_override=4)]),
    ("tflite", [nn.AvgPool2d(3, 2, 1)]),  # counting: LiteRT lowers it to PAD + AVERAGE_POOL_2D itself
    ("pte", [nn.AvgPool2d(3, 2, 1, count_include_pad=False)]),  # ExecuTorch's XNNPACK takes the excluding pool
    ("pte", [nn.ReLU(), nn.MaxPool2d(3, 2, 1)]),                # ... and padded max pools
    ("tflite", [nn.MaxPool2d(3, 2, 1)]),                        # may see negative inputs: -inf padding matters
    ("tflite", [nn.Conv2d(2, 2, 1), nn.MaxPool2d(3, 2, 1)]),    # likewise
    ("tflite", [nn.ReLU(), nn.MaxPool2d(3, 2, 1, ceil_mode=True)]),
    ("tflite", [nn.ReLU(), nn.MaxPool2d(3, 2, 1, dilation=2)]),
    ("onnx", [nn.AvgPool2d(3, 2, 1), nn.AvgPool2d(3, 2, 1, count_include_pad=False), nn.ReLU(),
              nn.MaxPool2d(3, 2, 1)]),
])
def test_other_pools_are_left_alone(fmt, layers):
    model = nn.Sequential(*layers).eval()
    rewritten = explicit_pool_padding(model, torch.randn(1, 2, 9, 9), pool_padding_for(fmt))
    assert _pool_layers(rewritten) == _pool_layers(model)


def test_each_format_names_its_rewrites_and_unknown_ones_are_refused():
    assert pool_padding_for("onnx") == ()
    assert pool_padding_for("pte") == ("zero-pad-counting-average",)
    assert set(pool_padding_for("tflite")) == {"count-average-padding", "zero-pad-max-of-relu"}
    assert set(pool_padding_for("pte")) | set(pool_padding_for("tflite")) == set(POOL_REWRITES)
    with pytest.raises(ValueError, match="unknown pool rewrite"):
        explicit_pool_padding(nn.Sequential(nn.AvgPool2d(3, 2, 1)), torch.randn(1, 2, 9, 9), ("zero-pad",))


@pytest.mark.parametrize("name, fmt, kept, excluding", [
    # ExecuTorch delegates padded max pools and excluding average pools: only counting ones get a ZeroPad2d
    ("sk_pwgconv_dw_pwgconv_tiny", "pte", 4, 3), ("shufflenet_v1_tiny", "pte", 1, 0),
    # LiteRT: shortcut pools stay (or become) counting padded pools, lowered to PAD + AVERAGE_POOL_2D
    ("sk_pwgconv_dw_pwgconv_tiny", "tflite", 3, 0), ("shufflenet_v1_tiny", "tflite", 3, 0),
])
def test_zoo_models_keep_only_the_pools_their_format_delegates(name, fmt, kept, excluding):
    """Both models have a stem max pool of a ReLU and three padded 3x3/2 shortcut average pools."""
    model = create_model(name).eval()
    x = torch.randn(1, 3, 32, 32)
    assert len(_padded_pools(model)) == 4
    deployed = explicit_pool_padding(deployment_passes(model, x), x, pool_padding_for(fmt))
    assert len(_padded_pools(deployed)) == kept and len(_excluding_pools(deployed)) == excluding
    with torch.no_grad():
        torch.testing.assert_close(deployed(x), model(x), rtol=1e-5, atol=1e-5)
