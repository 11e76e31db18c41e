"""Layers shared by the zoo: interlaced grouped convolution (IGC), grouped 1x1 convolution (GC),
channel shuffle, and the conv-BN-ReLU helper.

The interlace is pinned in `shared/design/IGC_LOWERING.md`: with `g` groups of `Lg = L/g` outputs each,
output channel `i*Lg + f` (group i, member f) moves to position `f*g + i`; this is the channel shuffle
permutation with `g` groups. Layers that permute channels expose `channel_permutation()` so the channel
dependency analysis reads the permutation from the module rather than re-deriving it.
"""

from __future__ import annotations

import torch
from torch import nn

from clcdeploy.errors import ConfigurationError


def check_divisible(name: str, channels: int, groups: int) -> None:
    """Raise a ConfigurationError naming `name` unless `groups` divides `channels`."""
    if groups < 1:
        raise ConfigurationError(f"{name}: groups must be >= 1, got {groups}")
    if channels < 1 or channels % groups:
        raise ConfigurationError(f"{name}: {channels} channels are not divisible by {groups} groups")


def interlace(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Channel interlace (= channel shuffle) of an NCHW tensor with `groups` groups."""
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


def interlace_permutation(channels: int, groups: int) -> list[int]:
    """`perm` with `interlace(x)[:, p] == x[:, perm[p]]`."""
    per_group = channels // groups
    return [(p % groups) * per_group + p // groups for p in range(channels)]


class ChannelShuffle(nn.Module):
    """ShuffleNet's channel shuffle (the same permutation as the IGC interlace)."""

    def __init__(self, channels: int, groups: int) -> None:
        super().__init__()
        check_divisible("channel shuffle", channels, groups)
        self.channels, self.groups = channels, groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return interlace(x, self.groups)

    def channel_permutation(self) -> list[int]:
        return interlace_permutation(self.channels, self.groups)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, groups={self.groups}"


class IGC(nn.Module):
    """Interlaced grouped convolution: grouped KxK conv (no bias) followed by the interlace.

    Its channel receptive field is `in_channels / groups`.
    """

    def __init__(
        self, in_channels: int, out_channels: int, groups: int, kernel_size: int = 3, stride: int = 1
    ) -> None:
        super().__init__()
        check_divisible("IGC input", in_channels, groups)
        check_divisible("IGC output", out_channels, groups)
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2, groups=groups,
            bias=False,
        )

    @property
    def groups(self) -> int:
        return self.conv.groups

    @property
    def crf(self) -> int:
        return self.conv.in_channels // self.conv.groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return interlace(self.conv(x), self.conv.groups)

    def channel_permutation(self) -> list[int]:
        return interlace_permutation(self.conv.out_channels, self.conv.groups)


def conv_bn(in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel_size, stride, kernel_size // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_ch),
    )


def conv_bn_relu(in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(*conv_bn(in_ch, out_ch, kernel_size, stride, groups), nn.ReLU(inplace=True))


class Classifier(nn.Module):
    """Global average pooling followed by a fully connected layer."""

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(x), 1))
