"""MobileNet-v1 (Howard et al. 2017), the clcNet paper's main baseline: depthwise separable blocks."""

from __future__ import annotations

from torch import nn

from clcdeploy.errors import ConfigurationError
from clcdeploy.zoo._registry import SEED_CLCNET, register_model
from clcdeploy.zoo.layers import Classifier, conv_bn_relu

# (out_channels, stride) of the 13 depthwise separable blocks at width 1.0.
_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
           (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))


class DepthwiseSeparable(nn.Module):
    """Depthwise 3x3 conv + BN + ReLU, then pointwise 1x1 conv + BN + ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.depthwise = conv_bn_relu(in_channels, in_channels, 3, stride, groups=in_channels)
        self.pointwise = conv_bn_relu(in_channels, out_channels, 1)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


class MobileNetV1(nn.Module):
    def __init__(self, *, width: float = 1.0, num_classes: int = 1000) -> None:
        super().__init__()
        if width <= 0:
            raise ConfigurationError(f"width must be positive, got {width}")
        self.config = dict(width=width, num_classes=num_classes)
        scale = lambda ch: max(int(ch * width), 1)  # noqa: E731
        in_ch = scale(32)
        self.stem = conv_bn_relu(3, in_ch, 3, stride=2)
        blocks = []
        for out_ch, stride in _BLOCKS:
            blocks.append(DepthwiseSeparable(in_ch, scale(out_ch), stride))
            in_ch = scale(out_ch)
        self.blocks = nn.Sequential(*blocks)
        self.classifier = Classifier(in_ch, num_classes)

    def forward(self, x):
        return self.classifier(self.blocks(self.stem(x)))


@register_model(paper=SEED_CLCNET, family="mobilenet", description="1.0 MobileNet-224 (clcNet paper baseline)")
def mobilenet_v1(**kwargs) -> MobileNetV1:
    return MobileNetV1(**kwargs)


@register_model(paper=SEED_CLCNET, family="mobilenet", tiny=True, input_size=32,
                description="tiny MobileNet-v1 for tests (width 1/8)")
def mobilenet_v1_tiny(**kwargs) -> MobileNetV1:
    return MobileNetV1(**{"width": 0.125, "num_classes": 10, **kwargs})
