"""ChannelNets' channel-wise layers with the pixels as channels: exact against the zoo's form for every
kernel, stride and padding the layers take, and what the export writes per format."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from clcdeploy.export.passes import channelwise_on_pixels, deployment_passes
from clcdeploy.export.passes.channelwise_on_pixels import ChannelWiseOnPixels, ConvClassifierOnPixels
from clcdeploy.export.pipeline import export_model
from clcdeploy.export.weights import random_weights
from clcdeploy.zoo import create_model
from clcdeploy.zoo.channelnet import ChannelWiseConv, ConvClassifier


@pytest.mark.parametrize("channels, kernel, groups", [(16, 3, 1), (16, 16, 1), (16, 8, 2), (24, 5, 4), (12, 4, 1)])
def test_channel_wise_conv_on_pixels_is_exact(channels, kernel, groups):
    torch.manual_seed(0)
    layer = ChannelWiseConv(channels, kernel, groups).double()
    x = torch.randn(2, channels, 3, 5, dtype=torch.float64)
    on_pixels = ChannelWiseOnPixels(layer, pixels=15)
    with torch.no_grad():
        assert torch.allclose(on_pixels(x), layer(x), rtol=0, atol=1e-12)
    assert on_pixels.conv.groups == 15 and on_pixels.conv.in_channels == 15  # a depthwise convolution


def test_conv_classifier_on_pixels_is_exact():
    torch.manual_seed(0)
    layer = ConvClassifier(in_channels=20, num_classes=7, spatial=3).double()
    x = torch.randn(2, 20, 3, 3, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(ConvClassifierOnPixels(layer)(x), layer(x), rtol=0, atol=1e-12)


def _one_channel_convs(module: nn.Module) -> int:
    return sum(isinstance(m, nn.Conv2d) and m.in_channels == 1 for m in module.modules())


def test_channelnet_layers_are_replaced_and_the_network_is_unchanged():
    model = create_model("channelnet_tiny", input_size=64)  # a 2x2 final map: the classifier sees 4 pixels
    random_weights(model, input_size=64)
    model = model.double()
    x = torch.randn(1, 3, 64, 64, dtype=torch.float64)
    on_pixels = channelwise_on_pixels(model, x)
    assert _one_channel_convs(model) == 4 and _one_channel_convs(on_pixels) == 0  # 2 GCWM, DWSCW, classifier
    with torch.no_grad():
        assert torch.allclose(on_pixels(x), model(x), rtol=0, atol=1e-12)
    plain = create_model("mobilenet_v1_tiny")
    assert channelwise_on_pixels(plain, torch.randn(1, 3, 32, 32)) is plain
    with pytest.raises(ValueError, match="unknown channel-wise lowering 'rows'"):
        deployment_passes(model, x, channelwise="rows")


def test_export_picks_the_form_per_format(tmp_path: Path):
    """XNNPACK (.pte, .tflite) gets the pixel form, ONNX Runtime the plane form (BENCHMARKS.md section 5)."""
    manifest = export_model("channelnet_tiny", ["onnx", "pte", "tflite"], tmp_path)
    assert all(entry.validated for entry in manifest.formats.values())
    assert {fmt: e.extra["channelwise_layers"] for fmt, e in manifest.formats.items()} == {
        "onnx": "plane", "pte": "pixels", "tflite": "pixels"}
    assert manifest.formats["pte"].delegation["delegate_calls"] == {"XnnpackBackend": 1}
    assert manifest.formats["tflite"].delegation["delegate_partitions"] == 1
    assert "channelwise_layers" not in export_model("mobilenet_v1_tiny", ["onnx"], tmp_path).formats["onnx"].extra


def test_v2s_pooled_classifier_stays_in_the_xnnpack_partition(tmp_path: Path):
    """The pixel form's channel-wise convolution must not hand a channels-last view to the global pool: its
    decomposition would restore that layout with an as_strided copy outside the delegate (a second partition)."""
    manifest = export_model("channelnet_tiny", ["pte", "tflite"], tmp_path, input_size=64,  # a 2x2 final map
                            model_kwargs={"version": 2, "input_size": 64})
    assert all(entry.validated for entry in manifest.formats.values())
    assert manifest.formats["pte"].delegation["delegate_calls"] == {"XnnpackBackend": 1}
    assert manifest.formats["pte"].delegation["ops_outside_delegate"] == 0
    assert manifest.formats["tflite"].delegation["delegate_partitions"] == 1
