"""ShuffleNet v1 (Zhang et al. 2017) with g groups and scale s; the clcNet paper compares against 2x, g=3."""

from __future__ import annotations

import torch
from torch import nn

from clcdeploy.errors import ConfigurationError
from clcdeploy.zoo._registry import SEED_CLCNET, register_model
from clcdeploy.zoo.layers import ChannelShuffle, Classifier, check_divisible, conv_bn, conv_bn_relu

# Stage output channels at scale 1x, per group count (ShuffleNet v1 paper, Table 1).
_STAGE_CHANNELS = {1: (144, 288, 576), 2: (200, 400, 800), 3: (240, 480, 960), 4: (272, 544, 1088),
                   8: (384, 768, 1536)}
_STAGE_REPEATS = (4, 8, 4)
_STEM_CHANNELS = 24


class ShuffleUnit(nn.Module):
    """1x1 GConv + BN + ReLU, channel shuffle, 3x3 DW (stride) + BN, 1x1 GConv + BN; then add (stride 1)
    or concat with a 3x3 average-pooled shortcut (stride 2), and ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, groups: int,
                 first_groups: int | None = None) -> None:
        super().__init__()
        self.stride = stride
        branch_out = out_channels - in_channels if stride == 2 else out_channels
        if branch_out < 1:
            raise ConfigurationError(f"shuffle unit: output {out_channels} must exceed input {in_channels}")
        mid = out_channels // 4
        g_in = groups if first_groups is None else first_groups
        check_divisible("shuffle unit bottleneck", mid, groups)
        check_divisible("shuffle unit output", branch_out, groups)
        self.compress = conv_bn_relu(in_channels, mid, 1, groups=g_in)
        self.shuffle = ChannelShuffle(mid, g_in)
        self.depthwise = conv_bn(mid, mid, 3, stride, groups=mid)
        self.expand = conv_bn(mid, branch_out, 1, groups=groups)
        self.shortcut = nn.AvgPool2d(3, stride=2, padding=1) if stride == 2 else nn.Identity()
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        branch = self.expand(self.depthwise(self.shuffle(self.compress(x))))
        if self.stride == 2:
            return self.relu(torch.cat([self.shortcut(x), branch], 1))
        return self.relu(x + branch)


class ShuffleNetV1(nn.Module):
    def __init__(self, *, groups: int = 3, scale: float = 2.0, num_classes: int = 1000) -> None:
        super().__init__()
        if groups not in _STAGE_CHANNELS:
            raise ConfigurationError(f"groups must be one of {sorted(_STAGE_CHANNELS)}, got {groups}")
        if scale <= 0:
            raise ConfigurationError(f"scale must be positive, got {scale}")
        self.config = dict(groups=groups, scale=scale, num_classes=num_classes)
        stem = int(_STEM_CHANNELS * scale)
        self.stem = nn.Sequential(*conv_bn_relu(3, stem, 3, stride=2), nn.MaxPool2d(3, 2, 1))
        blocks, in_ch = [], stem
        for stage, (base, repeats) in enumerate(zip(_STAGE_CHANNELS[groups], _STAGE_REPEATS)):
            out_ch = int(base * scale)
            for i in range(repeats):
                # The first pointwise layer of stage 2 is not grouped: its input has too few channels.
                first_groups = 1 if stage == 0 and i == 0 else None
                blocks.append(ShuffleUnit(in_ch, out_ch, 2 if i == 0 else 1, groups, first_groups))
                in_ch = out_ch
        self.blocks = nn.Sequential(*blocks)
        self.classifier = Classifier(in_ch, num_classes)

    def forward(self, x):
        return self.classifier(self.blocks(self.stem(x)))


@register_model(paper=SEED_CLCNET, family="shufflenet", description="ShuffleNet v1 2x, g=3 (clcNet paper baseline)")
def shufflenet_v1_2x(**kwargs) -> ShuffleNetV1:
    return ShuffleNetV1(**{"groups": 3, "scale": 2.0, **kwargs})


@register_model(paper=SEED_CLCNET, family="shufflenet", tiny=True, input_size=32,
                description="tiny ShuffleNet v1 for tests (g=3, scale 0.25)")
def shufflenet_v1_tiny(**kwargs) -> ShuffleNetV1:
    return ShuffleNetV1(**{"groups": 3, "scale": 0.25, "num_classes": 10, **kwargs})
