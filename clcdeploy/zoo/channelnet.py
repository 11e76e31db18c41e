"""ChannelNets (seeds/002, Gao, Wang & Ji 2018): MobileNet-v1 with channel-wise convolutions (Table 4).

A channel-wise convolution slides one shared 1-D kernel of size `d_c` along the channel axis at every
spatial position (`d_c` parameters, `d_c * n * d_f^2` mult-adds). Three uses, one per version:

- v1: the six 512->512 depthwise separable layers become GCWM, GCWM, GM. GM = two depthwise separable
  layers whose 1x1 convolutions are 1x1 *group* convolutions (g = 2), plus a residual connection; GCWM
  additionally fuses the groups with a *group channel-wise convolution* (g independent channel-wise
  convolutions over all n channels, stride g, n/g outputs each, d_c = 8) after its second group conv.
- v2: the last DWSConv (1024 -> 1024) becomes a *depth-wise separable channel-wise convolution*
  (depthwise 3x3, then one channel-wise convolution with stride 1, d_c = 16).
- v3: global pooling + FC becomes the *convolutional classification layer* (CCL): one 3-D convolution with
  kernel d_f x d_f x (m - n + 1) and no padding, whose m - n + 1 sliding positions are the n class logits.

Lowering: every channel-wise convolution is a plain `nn.Conv2d` with ONE input channel that treats the
channel axis as the image height and the flattened spatial positions as the width: (N, C, H, W) is viewed as
(N, 1, C, H*W) and convolved with a (d_c, 1) kernel (the CCL: a (d_c, H*W) kernel, no padding). This is
exactly the 3-D convolution of the paper (and of the authors' code, `tf.layers.conv3d` over an expanded
axis), so the generic counter sees its true cost (output elements x d_c), while exporters get only Conv2d,
reshape and (for even kernels) pad, which ONNX, ExecuTorch/XNNPACK and TFLite all lower; Conv3d does not
delegate to XNNPACK. These modules are leaves for the channel analysis (`channel_connectivity()`) and declare
the spatial window they really read (`spatial_kernel()`: 1x1 for a channel-wise convolution, the whole map for
the CCL), because their Conv2d's kernel runs over channels and flattened pixels, not over the image: the
information field and the per-layer cost table use it to treat each as one layer with its real output shape.

Details the paper leaves open (see the module docstrings): DWSConv has no BN/activation between its
depthwise and 1x1 convolutions (paper Sec. 4.2), activations are ReLU6 (MobileNet, authors' code), the
group channel-wise convolution has no BN of its own (Table 3: it adds 32 parameters), the residual adds
after the block's last activation, and even kernels pad as TensorFlow's 'SAME' (extra zero at the end).
"""

from __future__ import annotations


import torch
import torch.nn.functional as F
from torch import nn

from clcdeploy.errors import ConfigurationError
from clcdeploy.zoo._registry import SEED_CHANNELNETS, register_model
from clcdeploy.zoo.layers import Classifier, check_divisible


def _same_padding(length: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow 'SAME' padding (before, after) of a 1-D axis: ceil(length / stride) outputs."""
    out = -(-length // stride)
    total = max((out - 1) * stride + kernel - length, 0)
    return total // 2, total - total // 2


class ChannelWiseConv(nn.Module):
    """`groups` independent channel-wise convolutions over all `channels` inputs, each with kernel
    `kernel_size`, stride `groups` and `channels / groups` outputs, concatenated (group-major).

    `groups = 1` is the plain channel-wise convolution (stride 1) of the depth-wise separable channel-wise
    convolution; `groups = g` is the paper's group channel-wise convolution. Output channel
    `i * channels/groups + j` is `sum_t w_i[t] * x[j * groups - pad + t]` (zero outside [0, channels)).
    """

    def __init__(self, channels: int, kernel_size: int, groups: int = 1) -> None:
        super().__init__()
        check_divisible("channel-wise conv channels", channels, groups)
        if kernel_size < 1:
            raise ConfigurationError(f"channel-wise conv kernel_size must be >= 1, got {kernel_size}")
        if groups > 1 and kernel_size < groups:
            raise ConfigurationError(
                f"group channel-wise conv kernel_size {kernel_size} < groups {groups}: an output group "
                f"would not see every input group (the paper requires d_c >= g)"
            )
        self.channels, self.kernel_size, self.groups = channels, kernel_size, groups
        self.pad = _same_padding(channels, kernel_size, groups)
        symmetric = self.pad[0] == self.pad[1]
        self.conv = nn.Conv2d(1, groups, (kernel_size, 1), stride=(groups, 1),
                              padding=(self.pad[0], 0) if symmetric else 0, bias=False)
        self._explicit_pad = not symmetric

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        y = x.reshape(n, 1, c, h * w)
        if self._explicit_pad:
            y = F.pad(y, (0, 0, self.pad[0], self.pad[1]))
        return self.conv(y).reshape(n, c, h, w)

    def channel_connectivity(self) -> torch.Tensor:
        per_group = self.channels // self.groups
        start = torch.arange(per_group) * self.groups - self.pad[0]  # first input of output j
        src = torch.arange(self.channels)
        window = (src[None, :] >= start[:, None]) & (src[None, :] < start[:, None] + self.kernel_size)
        return window.repeat(self.groups, 1)  # every group has the same window, its own weights

    def spatial_kernel(self) -> tuple[int, int]:
        """The (height, width) input window of one output pixel: its own pixel (it convolves along channels)."""
        return (1, 1)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, kernel_size={self.kernel_size}, groups={self.groups}"


class ConvClassifier(nn.Module):
    """Convolutional classification layer: a d_f x d_f x (m - n + 1) convolution without padding over the
    final (m, d_f, d_f) feature map; output k depends on channels k .. k + m - n. Returns (N, n) logits."""

    def __init__(self, in_channels: int, num_classes: int, spatial: int) -> None:
        super().__init__()
        if not 1 <= num_classes <= in_channels:
            raise ConfigurationError(
                f"num_classes must be between 1 and the {in_channels} final channels for the convolutional "
                f"classification layer (its depth is m - n + 1), got {num_classes}; use channelnet_v2 for more"
            )
        self.in_channels, self.num_classes, self.spatial = in_channels, num_classes, spatial
        self.depth = in_channels - num_classes + 1
        self.conv = nn.Conv2d(1, 1, (self.depth, spatial * spatial), bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        if h * w != self.spatial * self.spatial:
            low, high = _input_sizes(self.spatial)
            raise ConfigurationError(
                f"the convolutional classification layer was built for {self.spatial}x{self.spatial} feature "
                f"maps but got {h}x{w}: the model takes inputs of {low} to {high} pixels (set by its input_size)"
            )
        return self.conv(x.reshape(n, 1, c, h * w)).reshape(n, self.num_classes)

    def channel_connectivity(self) -> torch.Tensor:
        out = torch.arange(self.num_classes)[:, None]
        src = torch.arange(self.in_channels)[None, :]
        return (src >= out) & (src < out + self.depth)

    def spatial_kernel(self) -> None:
        """Every logit reads the whole d_f x d_f map (None: the whole input)."""
        return None

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, num_classes={self.num_classes}, kernel=({self.depth}, " \
               f"{self.spatial}, {self.spatial})"


def _conv_bn_relu6(in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel_size, stride, kernel_size // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU6(inplace=True),
    )


class DWSConv(nn.Module):
    """Depthwise separable convolution as trained in ChannelNets: depthwise 3x3 (no BN/activation, Sec. 4.2),
    1x1 (group) convolution, optionally a group channel-wise convolution, then BN + ReLU6."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, groups: int = 1,
                 fusion_kernel: int | None = None) -> None:
        super().__init__()
        check_divisible("1x1 group conv input (groups)", in_channels, groups)
        check_divisible("1x1 group conv output (groups)", out_channels, groups)
        self.depthwise = nn.Conv2d(in_channels, in_channels, 3, stride, 1, groups=in_channels, bias=False)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, groups=groups, bias=False)
        self.fusion = ChannelWiseConv(out_channels, fusion_kernel, groups) if fusion_kernel else nn.Identity()
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU6(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.fusion(self.pointwise(self.depthwise(x)))))


class GM(nn.Module):
    """Group module (Fig. 3a): two depthwise separable layers whose 1x1 convolutions are 1x1 group
    convolutions, plus a residual connection (added after the second layer's activation)."""

    def __init__(self, channels: int, groups: int, fusion_kernel: int | None = None) -> None:
        super().__init__()
        self.layer1 = DWSConv(channels, channels, 1, groups)
        self.layer2 = DWSConv(channels, channels, 1, groups, fusion_kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layer2(self.layer1(x))


class GCWM(GM):
    """Group channel-wise module (Fig. 3b): GM with a group channel-wise convolution (kernel
    `fusion_kernel`, `groups` groups) right after the second 1x1 group convolution, before its BN."""

    def __init__(self, channels: int, groups: int, fusion_kernel: int) -> None:
        super().__init__(channels, groups, fusion_kernel)


class DWSCWConv(nn.Module):
    """Depth-wise separable channel-wise convolution (Sec. 3.3): depthwise 3x3, one channel-wise convolution
    (stride 1, `kernel_size` weights), then BN + ReLU6 like the DWSConv it replaces."""

    def __init__(self, channels: int, kernel_size: int, stride: int = 1) -> None:
        super().__init__()
        if kernel_size > channels:
            raise ConfigurationError(
                f"dwscw_kernel {kernel_size} is larger than the {channels} channels it convolves over")
        self.depthwise = nn.Conv2d(channels, channels, 3, stride, 1, groups=channels, bias=False)
        self.channelwise = ChannelWiseConv(channels, kernel_size, groups=1)
        self.bn = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU6(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.channelwise(self.depthwise(x))))


def _final_spatial(input_size: int, strides: int = 5) -> int:
    """Feature map side after the stem and the four stride-2 layers (each 3x3, padding 1: ceil halving)."""
    for _ in range(strides):
        input_size = (input_size + 1) // 2
    return input_size


def _input_sizes(spatial: int, strides: int = 5) -> tuple[int, int]:
    """The smallest and largest input sizes that give `spatial` x `spatial` final maps (and every strided layer
    a map at least as large as its stride)."""
    return max((spatial - 1) * 2 ** strides + 1, 2 ** (strides - 1) + 1), spatial * 2 ** strides


class ChannelNet(nn.Module):
    """ChannelNet-v1/v2/v3 (Table 4). `version` picks the replacements; the rest are overrides:
    `width` (channel multiplier), `groups` (g of GM/GCWM), `gcw_kernel` (d_c of the group channel-wise
    convolutions), `dwscw_kernel` (d_c of the depth-wise separable channel-wise convolution), `input_size`
    (fixes d_f of the v3 classification layer), `num_classes`."""

    def __init__(
        self, *, version: int = 1, width: float = 1.0, groups: int = 2, gcw_kernel: int | None = 8,
        dwscw_kernel: int = 16, num_classes: int = 1000, input_size: int = 224,
    ) -> None:
        super().__init__()
        if version not in (1, 2, 3):
            raise ConfigurationError(f"version must be 1, 2 or 3, got {version!r}")
        if not isinstance(width, (int, float)) or width <= 0:
            raise ConfigurationError(f"width must be positive, got {width!r}")
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ConfigurationError(f"num_classes must be a positive integer, got {num_classes!r}")
        if not isinstance(input_size, int) or input_size < 1:
            raise ConfigurationError(f"input_size must be a positive integer, got {input_size!r}")
        if not isinstance(groups, int) or groups < 1:
            raise ConfigurationError(f"groups must be a positive integer, got {groups!r}")
        if gcw_kernel is not None and (not isinstance(gcw_kernel, int) or gcw_kernel < 1):
            raise ConfigurationError(f"gcw_kernel must be a positive integer or None, got {gcw_kernel!r}")
        if not isinstance(dwscw_kernel, int) or dwscw_kernel < 1:
            raise ConfigurationError(f"dwscw_kernel must be a positive integer, got {dwscw_kernel!r}")
        c32, c64, c128, c256, c512, c1024 = (
            max(int(round(ch * width)), 1) for ch in (32, 64, 128, 256, 512, 1024))
        check_divisible(f"groups (GM/GCWM at {c512} channels)", c512, groups)
        if gcw_kernel is not None and gcw_kernel < groups:
            raise ConfigurationError(
                f"gcw_kernel {gcw_kernel} < groups {groups}: the group channel-wise convolution would not "
                f"fuse every group (the paper requires d_c >= g)")
        self.config = dict(version=version, width=width, groups=groups, gcw_kernel=gcw_kernel,
                           dwscw_kernel=dwscw_kernel, num_classes=num_classes, input_size=input_size)

        self.stem = _conv_bn_relu6(3, c32, 3, stride=2)
        blocks: list[nn.Module] = [
            DWSConv(c32, c64, 1), DWSConv(c64, c128, 2), DWSConv(c128, c128, 1),
            DWSConv(c128, c256, 2), DWSConv(c256, c256, 1), DWSConv(c256, c512, 2),
            *(GCWM(c512, groups, gcw_kernel) if gcw_kernel else GM(c512, groups) for _ in range(2)),
            GM(c512, groups), DWSConv(c512, c1024, 2),
            DWSConv(c1024, c1024, 1) if version == 1 else DWSCWConv(c1024, dwscw_kernel),
        ]
        self.blocks = nn.Sequential(*blocks)
        if version == 3:
            self.classifier: nn.Module = ConvClassifier(c1024, num_classes, _final_spatial(input_size))
        else:
            self.classifier = Classifier(c1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.blocks(self.stem(x)))


@register_model(paper=SEED_CHANNELNETS, family="channelnet",
                description="ChannelNet-v1: MobileNet with 2 GCWM + 1 GM (g=2, d_c=8) at 512 channels")
def channelnet_v1(**kwargs) -> ChannelNet:
    return ChannelNet(**{**kwargs, "version": 1})


@register_model(paper=SEED_CHANNELNETS, family="channelnet",
                description="ChannelNet-v2: v1 with the last DWSConv replaced by a DWSCWConv (d_c=16)")
def channelnet_v2(**kwargs) -> ChannelNet:
    return ChannelNet(**{**kwargs, "version": 2})


@register_model(paper=SEED_CHANNELNETS, family="channelnet",
                description="ChannelNet-v3: v2 with the convolutional classification layer (7x7x25)")
def channelnet_v3(**kwargs) -> ChannelNet:
    return ChannelNet(**{**kwargs, "version": 3})


@register_model(paper=SEED_CHANNELNETS, family="channelnet", tiny=True, input_size=32,
                description="tiny ChannelNet-v3 for tests (width 1/8, 10 classes): GM, GCWM, DWSCW, CCL")
def channelnet_tiny(**kwargs) -> ChannelNet:
    """`version=2` gives the tiny v2 (pooling and a fully connected classifier instead of the CCL)."""
    return ChannelNet(**{"width": 0.125, "num_classes": 10, "input_size": 32, "version": 3, **kwargs})
