"""ChannelNets' channel-wise convolutions and convolutional classification layer, with the pixels as channels.

The zoo writes a channel-wise convolution as a convolution with ONE input channel over the (channels, pixels)
plane (`zoo/channelnet.py`). XNNPACK runs that one-channel convolution scalar: ChannelNet-v2's 0.8M mult-add
channel-wise convolution took 1.0 ms in LiteRT, and v3's classification layer 0.9 ms, as much as a tenth of
MobileNet-v1. The same maps with the pixels as the channels of a depthwise convolution over the channel
axis vectorise across pixels. Exact; the layout change is one transpose each way, as before.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from clcdeploy.export.passes.trace import recorded_calls
from clcdeploy.zoo.channelnet import ChannelWiseConv, ConvClassifier


def _pixel_major(x: torch.Tensor) -> torch.Tensor:
    """(n, c, h, w) -> (n, h*w, c, 1): pixels as channels, the channel axis as the image height."""
    n, c, h, w = x.shape
    return x.reshape(n, c, h * w).transpose(1, 2).unsqueeze(-1)


class ChannelWiseOnPixels(nn.Module):
    """`ChannelWiseConv` for feature maps of `pixels` positions: a depthwise convolution with `pixels` channels
    and one output per group (channel multiplier g), every pixel with the same taps."""

    def __init__(self, layer: ChannelWiseConv, pixels: int) -> None:
        super().__init__()
        self.groups, self.pad = layer.groups, layer.pad
        symmetric = self.pad[0] == self.pad[1]
        self.conv = nn.Conv2d(pixels, pixels * layer.groups, (layer.kernel_size, 1), stride=(layer.groups, 1),
                              padding=(self.pad[0], 0) if symmetric else 0, groups=pixels, bias=False,
                              dtype=layer.conv.weight.dtype, device=layer.conv.weight.device)
        self._explicit_pad = not symmetric
        with torch.no_grad():  # output channel p * g + i of the multiplier layout has group i's taps
            self.conv.weight.copy_(layer.conv.weight.repeat(pixels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        y = _pixel_major(x)
        if self._explicit_pad:
            y = F.pad(y, (0, 0, self.pad[0], self.pad[1]))
        y = self.conv(y)  # (n, pixels * g, c / g, 1): pixel p, group i, position j at [p * g + i, j]
        y = y.reshape(n, h * w, self.groups, c // self.groups).permute(0, 2, 3, 1).reshape(n, c, h, w)
        # With one group that reshape is a view with channels-last strides, which layers after it keep; a global
        # pool then restores them with an as_strided copy that XNNPACK does not take (a second partition).
        return y.contiguous()


class ConvClassifierOnPixels(nn.Module):
    """`ConvClassifier` as a depthwise convolution over the channel axis (each pixel its own taps) and a 1x1
    convolution that sums the pixels."""

    def __init__(self, layer: ConvClassifier) -> None:
        super().__init__()
        pixels = layer.spatial * layer.spatial
        self.num_classes = layer.num_classes
        like = {"dtype": layer.conv.weight.dtype, "device": layer.conv.weight.device}
        self.depthwise = nn.Conv2d(pixels, pixels, (layer.depth, 1), groups=pixels, bias=False, **like)
        self.sum = nn.Conv2d(pixels, 1, 1, bias=layer.conv.bias is not None, **like)
        with torch.no_grad():
            taps = layer.conv.weight[0, 0]  # (depth, pixels)
            self.depthwise.weight.copy_(taps.t().reshape(pixels, 1, layer.depth, 1))
            self.sum.weight.fill_(1.0)
            if layer.conv.bias is not None:
                self.sum.bias.copy_(layer.conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.sum(self.depthwise(_pixel_major(x))).reshape(x.shape[0], self.num_classes)


def channelwise_on_pixels(model: nn.Module, example: torch.Tensor) -> nn.Module:
    """A copy of `model` whose channel-wise convolutions and convolutional classifier run with the pixels as
    channels (`model` itself when it has none). `example` gives each layer's feature map size."""
    targets = [name for name, m in model.named_modules() if isinstance(m, (ChannelWiseConv, ConvClassifier))]
    if not targets:
        return model
    model = copy.deepcopy(model).eval()
    for name, calls in recorded_calls(model, example, targets).items():
        if not calls:
            continue  # not called on this input: nothing to size it by
        layer, (x, *_) = model.get_submodule(name), calls[0]
        replacement = (ChannelWiseOnPixels(layer, x.shape[2] * x.shape[3]) if isinstance(layer, ChannelWiseConv)
                       else ConvClassifierOnPixels(layer))
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, child, replacement)
    return model
