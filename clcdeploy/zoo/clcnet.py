"""clcNet (seeds/001, Table 2): a MobileNet-like network built from channel-local convolution blocks.

CLC block: IGC 3x3 (M -> L, g1 groups, stride s) -> BN -> GC 1x1 (L -> N, g2 groups) -> BN -> ReLU,
with L = M, g2 = 2 and g1 = M / crf (crf = 2: the IGC's channel receptive field).
"""

from __future__ import annotations

from torch import nn

from clcdeploy.errors import ConfigurationError
from clcdeploy.zoo._registry import SEED_CLCNET, register_model
from clcdeploy.zoo.layers import IGC, Classifier, check_divisible, conv_bn_relu


class CLCBlock(nn.Module):
    """One CLC block. `interlace=False` replaces the IGC by a plain grouped conv (clcNet-Ap's ablation)."""

    def __init__(
        self, in_channels: int, out_channels: int, stride: int, g1: int, g2: int, *,
        mid_channels: int | None = None, interlace: bool = True,
    ) -> None:
        super().__init__()
        mid = in_channels if mid_channels is None else mid_channels
        check_divisible("IGC (g1) input", in_channels, g1)
        check_divisible("IGC (g1) output", mid, g1)
        check_divisible("GC (g2) input", mid, g2)
        check_divisible("GC (g2) output", out_channels, g2)
        if interlace and g1 * g2 > mid:
            raise ConfigurationError(
                f"g1*g2 = {g1}*{g2} = {g1 * g2} > L = {mid}: the block would lose its full channel "
                f"receptive field (paper Eq. 1); lower g1 or g2"
            )
        if interlace:
            self.igc: nn.Module = IGC(in_channels, mid, g1, kernel_size=3, stride=stride)
        else:
            self.igc = nn.Conv2d(in_channels, mid, 3, stride, 1, groups=g1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.gc = nn.Conv2d(mid, out_channels, 1, groups=g2, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.bn2(self.gc(self.bn1(self.igc(x)))))


# (in, out, stride) of the fixed blocks and the stage each repeated block belongs to, per Table 2.
_BASE_CHANNELS = (32, 64, 128, 256, 512, 1024)


class ClcNet(nn.Module):
    """clcNet with block repetitions (a, b, c, d) as in Table 2."""

    def __init__(
        self, a: int = 1, b: int = 1, c: int = 5, d: int = 2, *, width: float = 1.0, g2: int = 2,
        crf: int = 2, g1: int | None = None, interlace: bool = True, num_classes: int = 1000,
    ) -> None:
        super().__init__()
        for label, count in zip("abcd", (a, b, c, d)):
            if not isinstance(count, int) or count < 0:
                raise ConfigurationError(f"repetition {label} must be a non-negative integer, got {count!r}")
        if width <= 0:
            raise ConfigurationError(f"width must be positive, got {width}")
        if crf < 1:
            raise ConfigurationError(f"crf must be >= 1, got {crf}")
        c32, c64, c128, c256, c512, c1024 = (max(int(round(ch * width)), 1) for ch in _BASE_CHANNELS)
        plan = [(c32, c64, 1), (c64, c128, 2)] + [(c128, c128, 1)] * a + [(c128, c256, 2)]
        plan += [(c256, c256, 1)] * b + [(c256, c512, 2)] + [(c512, c512, 1)] * c
        plan += [(c512, c1024, 2)] + [(c1024, c1024, 1)] * d

        self.config = dict(a=a, b=b, c=c, d=d, width=width, g2=g2, crf=crf, g1=g1, interlace=interlace,
                           num_classes=num_classes)
        self.stem = conv_bn_relu(3, c32, 3, stride=2)
        blocks = []
        for in_ch, out_ch, stride in plan:
            if g1 is None:
                check_divisible(f"crf (block {in_ch}->{out_ch})", in_ch, crf)
            groups = in_ch // crf if g1 is None else g1
            blocks.append(CLCBlock(in_ch, out_ch, stride, groups, g2, interlace=interlace))
        self.blocks = nn.Sequential(*blocks)
        self.classifier = Classifier(c1024, num_classes)

    def forward(self, x):
        return self.classifier(self.blocks(self.stem(x)))


def clcnet(a: int = 1, b: int = 1, c: int = 5, d: int = 2, **kwargs) -> ClcNet:
    """clcNet with any (a, b, c, d); keyword arguments as for `ClcNet`."""
    return ClcNet(a, b, c, d, **kwargs)


@register_model(paper=SEED_CLCNET, family="clcnet", description="clcNet-A (1,1,5,2)")
def clcnet_a(**kwargs) -> ClcNet:
    return ClcNet(**{"a": 1, "b": 1, "c": 5, "d": 2, **kwargs})


@register_model(paper=SEED_CLCNET, family="clcnet", description="clcNet-B (1,1,7,3)")
def clcnet_b(**kwargs) -> ClcNet:
    return ClcNet(**{"a": 1, "b": 1, "c": 7, "d": 3, **kwargs})


@register_model(paper=SEED_CLCNET, family="clcnet", description="clcNet-A with GC instead of IGC (FCRF ablation)")
def clcnet_ap(**kwargs) -> ClcNet:
    return ClcNet(**{"a": 1, "b": 1, "c": 5, "d": 2, "interlace": False, **kwargs})


@register_model(paper=SEED_CLCNET, family="clcnet", tiny=True, input_size=32,
                description="tiny clcNet for tests (width 1/8, one block per stage)")
def clcnet_tiny(**kwargs) -> ClcNet:
    return ClcNet(**{"a": 1, "b": 1, "c": 1, "d": 1, "width": 0.125, "num_classes": 10, **kwargs})


@register_model(paper=SEED_CLCNET, family="clcnet", tiny=True, input_size=32,
                description="tiny clcNet-Ap for tests")
def clcnet_ap_tiny(**kwargs) -> ClcNet:
    return ClcNet(**{"a": 1, "b": 1, "c": 1, "d": 1, "width": 0.125, "num_classes": 10, "interlace": False,
                     **kwargs})
