"""Sparse-kernel designs (seeds/004, "Penetrating the Fog"): the network layout of its Table 1 with every
block replaced by one sparse-kernel design, and the configurations of its Tables 2-4.

Layout (Table 1): Conv1 3x3/2 (3 -> W) + BN + ReLU, MaxPool 3x3/2, four stages of B blocks at 56, 28, 14, 7
(for 224 input); the first block of stages 2-4 downsamples (stride 2 on its spatial kernel) and doubles the
channels, so stage s has W * 2**(s-1) channels; global average pool, FC. `W` ("Width") is the number of
input channels of the first stage. Every block has an identity shortcut (Sec. 4.1, "identity mapping"; where
the block downsamples, a parameter-free one: 3x3/2 average pool and zero channels, or optionally a 1x1/2
conv + BN projection); BN follows every layer in a block, and ReLU comes only after the shortcut sum.

Designs (Sec. 3.2 and Table 4), named by their kernel sequence:

- ``standard``: 3x3 conv (Table 3 "Standard Convolution"; Table 4 "ResNet", whose InfoSize (3, 3, 64)
  says one 3x3 conv per unit)
- ``dw_pw``: 3x3 depthwise + 1x1 pointwise (also Table 4 "Xception", its separable convolution)
- ``gconv_pwgconv``: 3x3 GConv(M), channel shuffle, 1x1 PWGConv(N)
- ``pw_gconv_pw``: 1x1 -> 3x3 GConv(g) -> 1x1 bottleneck (Table 2; ResNet bottleneck g=1, ResNeXt g=16)
- ``pw_dw_pw``: 1x1 -> 3x3 DW -> 1x1 bottleneck
- ``pwgconv_dw_pwgconv``: 1x1 PWGConv(M), shuffle, 3x3 DW, 1x1 PWGConv(N) (ShuffleNet unit with M = N)

Bottleneck designs have K = ratio * F bottleneck channels (ratio 1/4, the paper's "normal practice", unless
a configuration says otherwise). A configuration can instead fix K: by default the fixed K is the first
stage's and doubles with the channels; with ``bottleneck_doubles=False`` it is the same in every block (the
Theorem 1 reading K = M * N of a design whose group numbers M, N are fixed, Sec. 3.3.4).

What the paper does not give: the number of blocks per stage B for Tables 3-4, and a layout for Table 2 that
reproduces both its Depth and #Params columns (no uniform-B, channel-doubling reading matches all rows of
Table 2). Each registered configuration therefore keeps the table's design, group numbers and Width (hence
its InfoSize) exactly and takes the blocks per stage that bring #Params within 5% of the table;
`tests/test_zoo_sparse_kernel.py` recomputes the counts, and `PAPER_TABLES` lists the paper's columns.
"""

from __future__ import annotations

import torch
from torch import nn

from clcdeploy.errors import ConfigurationError
from clcdeploy.zoo._registry import SEED_SPARSE_KERNEL, register_model
from clcdeploy.zoo.layers import ChannelShuffle, Classifier, check_divisible, conv_bn, conv_bn_relu

DESIGNS = ("standard", "dw_pw", "gconv_pwgconv", "pw_gconv_pw", "pw_dw_pw", "pwgconv_dw_pwgconv")


class ZeroPadShortcut(nn.Module):
    """Parameter-free identity shortcut of a downsampling block (ResNet option A): 3x3/2 average pool (the
    block's output grid), then zero channels appended up to `out_channels`."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        if out_channels < in_channels or out_channels % in_channels:
            raise ConfigurationError(
                f"zero_pad shortcut needs out_channels ({out_channels}) to be a multiple of in_channels "
                f"({in_channels}); use shortcut='projection'"
            )
        self.in_channels, self.out_channels = in_channels, out_channels
        self.pool = nn.AvgPool2d(3, stride, 1, count_include_pad=False) if stride != 1 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(x)
        copies = self.out_channels // self.in_channels
        return torch.cat([x] + [x * 0.0] * (copies - 1), 1) if copies > 1 else x

    def channel_connectivity(self) -> torch.Tensor:
        """[out, in]: output channel c < in_channels is input channel c; the appended zeros depend on nothing."""
        matrix = torch.zeros(self.out_channels, self.in_channels, dtype=torch.bool)
        matrix[: self.in_channels] = torch.eye(self.in_channels, dtype=torch.bool)
        return matrix


class SparseKernelBlock(nn.Module):
    """One block of the Table 1 layout: a sparse-kernel design with BN after each layer, the identity (or
    projection) shortcut, then ReLU."""

    def __init__(
        self, design: str, in_channels: int, out_channels: int, stride: int = 1, *, groups: int = 1,
        groups2: int = 1, bottleneck: int | None = None, shortcut: str = "zero_pad",
    ) -> None:
        super().__init__()
        if design not in DESIGNS:
            raise ConfigurationError(f"design must be one of {', '.join(DESIGNS)}, got {design!r}")
        cin, cout = in_channels, out_channels
        if design == "standard":
            layers = [conv_bn(cin, cout, 3, stride)]
        elif design == "dw_pw":
            layers = [conv_bn(cin, cin, 3, stride, groups=cin), conv_bn(cin, cout, 1)]
        elif design == "gconv_pwgconv":
            check_divisible(f"GConv(M={groups}) input", cin, groups)
            check_divisible(f"PWGConv(N={groups2}) output", cout, groups2)
            check_divisible(f"PWGConv(N={groups2}) input", cin, groups2)
            layers = [conv_bn(cin, cin, 3, stride, groups=groups), ChannelShuffle(cin, groups),
                      conv_bn(cin, cout, 1, groups=groups2)]
        else:
            mid = bottleneck if bottleneck is not None else cout // 4
            if mid < 1:
                raise ConfigurationError(f"bottleneck must be >= 1 channel, got {mid}")
            if design == "pw_gconv_pw":
                check_divisible(f"GConv(g={groups}) bottleneck", mid, groups)
                layers = [conv_bn(cin, mid, 1), conv_bn(mid, mid, 3, stride, groups=groups), conv_bn(mid, cout, 1)]
            elif design == "pw_dw_pw":
                layers = [conv_bn(cin, mid, 1), conv_bn(mid, mid, 3, stride, groups=mid), conv_bn(mid, cout, 1)]
            else:  # pwgconv_dw_pwgconv
                check_divisible(f"PWGConv(M={groups}) input", cin, groups)
                check_divisible(f"PWGConv(M={groups}) bottleneck", mid, groups)
                check_divisible(f"PWGConv(N={groups2}) bottleneck", mid, groups2)
                check_divisible(f"PWGConv(N={groups2}) output", cout, groups2)
                layers = [conv_bn(cin, mid, 1, groups=groups), ChannelShuffle(mid, groups),
                          conv_bn(mid, mid, 3, stride, groups=mid), conv_bn(mid, cout, 1, groups=groups2)]
        self.body = nn.Sequential(*layers)
        if shortcut not in ("zero_pad", "projection"):
            raise ConfigurationError(f"shortcut must be 'zero_pad' or 'projection', got {shortcut!r}")
        if stride == 1 and cin == cout:
            self.shortcut: nn.Module = nn.Identity()
        elif shortcut == "projection":
            self.shortcut = conv_bn(cin, cout, 1, stride)
        else:
            self.shortcut = ZeroPadShortcut(cin, cout, stride)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.body(x) + self.shortcut(x))


class SparseKernelNet(nn.Module):
    """The Table 1 network with every block a `design` (see the module docstring)."""

    def __init__(
        self, *, design: str = "dw_pw", width: int = 64, blocks: int | tuple[int, ...] = 2, groups: int = 1,
        groups2: int = 1, bottleneck_ratio: float = 0.25, bottleneck: int | None = None,
        bottleneck_doubles: bool = True, shortcut: str = "zero_pad", num_classes: int = 1000,
    ) -> None:
        super().__init__()
        if design not in DESIGNS:
            raise ConfigurationError(f"design must be one of {', '.join(DESIGNS)}, got {design!r}")
        if not isinstance(width, int) or width < 1:
            raise ConfigurationError(f"width must be a positive integer, got {width!r}")
        repeats = (blocks,) * 4 if isinstance(blocks, int) else tuple(blocks)
        if len(repeats) != 4 or any(not isinstance(b, int) or b < 1 for b in repeats):
            raise ConfigurationError(f"blocks must be a positive integer or four of them, got {blocks!r}")
        if bottleneck_ratio <= 0:
            raise ConfigurationError(f"bottleneck_ratio must be positive, got {bottleneck_ratio}")
        if bottleneck is not None and bottleneck < 1:
            raise ConfigurationError(f"bottleneck must be >= 1 channel, got {bottleneck}")
        self.config = dict(design=design, width=width, blocks=repeats, groups=groups, groups2=groups2,
                           bottleneck_ratio=bottleneck_ratio, bottleneck=bottleneck,
                           bottleneck_doubles=bottleneck_doubles, shortcut=shortcut, num_classes=num_classes)
        self.stem = nn.Sequential(*conv_bn_relu(3, width, 3, stride=2), nn.MaxPool2d(3, 2, 1))
        layers, cin = [], width
        for stage, count in enumerate(repeats):
            cout = width * 2 ** stage
            # `bottleneck` fixes the first stage's bottleneck width; it doubles with the channels unless
            # `bottleneck_doubles` is false.
            if bottleneck is None:
                mid = max(int(round(cout * bottleneck_ratio)), 1)
            else:
                mid = bottleneck * 2 ** stage if bottleneck_doubles else bottleneck
            for i in range(count):
                stride = 2 if stage > 0 and i == 0 else 1
                layers.append(SparseKernelBlock(design, cin, cout, stride, groups=groups, groups2=groups2,
                                                bottleneck=mid, shortcut=shortcut))
                cin = cout
        self.blocks = nn.Sequential(*layers)
        self.classifier = Classifier(cin, num_classes)

    @property
    def depth(self) -> int:
        """Weighted layers along the main path (block layers, Conv1 and the FC), as the paper counts Depth."""
        convs = sum(isinstance(m, nn.Conv2d) for b in self.blocks for m in b.body.modules())
        return convs + 2

    def forward(self, x):
        return self.classifier(self.blocks(self.stem(x)))


def sparse_kernel_net(**kwargs) -> SparseKernelNet:
    """Any design on the Table 1 layout; keyword arguments as for `SparseKernelNet`."""
    return SparseKernelNet(**kwargs)


# The paper's columns for each registered configuration: (table, row label, #Params in M, Width, InfoSize,
# Depth or None). Tests compare the built models against these.
PAPER_TABLES: dict[str, tuple[str, str, float, int, tuple[int, int, int], int | None]] = {}


def _register(name: str, table: str, label: str, params_m: float, width: int, depth: int | None,
              description: str, **config):
    """Register one table row as a builder named `name`."""

    def builder(**kwargs) -> SparseKernelNet:
        return SparseKernelNet(**{**config, "width": width, **kwargs})

    builder.__name__ = builder.__qualname__ = name
    builder.__doc__ = f"{label} ({table} of seeds/004): {description}"
    PAPER_TABLES[name] = (table, label, params_m, width, (3, 3, width), depth)
    register_model(paper=SEED_SPARSE_KERNEL, family="sparse_kernel",
                   description=f"{table}: {label}, width {width}, {params_m}M params")(builder)
    globals()[name] = builder
    return builder


# Table 2: the bottleneck-like PW+GConv(g)+PW with ratio 1:4. Blocks per stage fitted to #Params; the
# resulting depth differs from the paper's Depth column (see PAPER_TABLES and the tests).
_register("sk_t2_pw_gconv1_pw_w128", "Table 2", "PW+GConv(1)+PW", 13.9, 128, 98, "",
          design="pw_gconv_pw", groups=1, blocks=9)
_register("sk_t2_pw_gconv32_pw_w256", "Table 2", "PW+GConv(32)+PW", 13.9, 256, 98, "",
          design="pw_gconv_pw", groups=32, blocks=(5, 5, 5, 4))
_register("sk_t2_pw_gconv1_pw_w128_deep", "Table 2", "PW+GConv(1)+PW (deeper)", 28.4, 128, 194, "",
          design="pw_gconv_pw", groups=1, blocks=19)
_register("sk_t2_pw_gconv1_pw_w200", "Table 2", "PW+GConv(1)+PW", 28.4, 200, 98, "",
          design="pw_gconv_pw", groups=1, blocks=(6, 6, 6, 8))
_register("sk_t2_pw_gconv2_pw_w256", "Table 2", "PW+GConv(2)+PW", 28.4, 256, 98, "",
          design="pw_gconv_pw", groups=2, blocks=6)
_register("sk_t2_pw_gconv64_pw_w512", "Table 2", "PW+GConv(64)+PW", 28.4, 512, 98, "",
          design="pw_gconv_pw", groups=64, blocks=(2, 2, 4, 2))
# Table 3: the four designs of the scheme (and the standard convolution) on one layout.
_register("sk_t3_standard_w64", "Table 3", "Standard Convolution", 11.2, 64, None, "",
          design="standard", blocks=4)
_register("sk_t3_dw_pw_w72", "Table 3", "DW+PW", 0.8, 72, None, "", design="dw_pw", blocks=1)
_register("sk_t3_dw_pw_w280", "Table 3", "DW+PW", 11.2, 280, None, "", design="dw_pw", blocks=(2, 2, 1, 2))
_register("sk_t3_gconv4_pwgconv32_w128", "Table 3", "GConv(4)+PWGConv(32)", 11.2, 128, None, "",
          design="gconv_pwgconv", groups=4, groups2=32, blocks=4)
_register("sk_t3_gconv16_pwgconv16_w256", "Table 3", "GConv(16)+PWGConv(16)", 11.3, 256, None, "",
          design="gconv_pwgconv", groups=16, groups2=16, blocks=(3, 3, 5, 3))
_register("sk_t3_pw_dw_pw_w400", "Table 3", "PW+DW+PW", 11.0, 400, None, "", design="pw_dw_pw",
          blocks=(2, 1, 3, 1))
_register("sk_t3_pwgconv4_dw_pwgconv4_w560", "Table 3", "PWGConv(4)+DW+PWGConv(4)", 11.3, 560, None, "",
          design="pwgconv_dw_pwgconv", groups=4, groups2=4, blocks=(3, 3, 3, 2))
# Table 4: state-of-the-art units restored on the same layout, and the scheme's new designs.
_register("sk_t4_resnet_w64", "Table 4", "ResNet", 11.2, 64, None, "", design="standard", blocks=4)
_register("sk_t4_resnet_bottleneck_w192", "Table 4", "ResNet with bottleneck (1:4)", 11.3, 192, None, "",
          design="pw_gconv_pw", groups=1, blocks=3)
_register("sk_t4_resnext_w192", "Table 4", "ResNeXt (cardinality 16, 1:2)", 11.1, 192, None, "",
          design="pw_gconv_pw", groups=16, bottleneck_ratio=0.5, blocks=(2, 2, 3, 3))
_register("sk_t4_xception_w280", "Table 4", "Xception", 11.2, 280, None, "", design="dw_pw",
          blocks=(2, 2, 1, 2))
_register("sk_t4_shufflenet_w560", "Table 4", "ShuffleNet (4 groups)", 11.3, 560, None, "",
          design="pwgconv_dw_pwgconv", groups=4, groups2=4, blocks=(3, 3, 3, 2))
_register("sk_t4_gconv100_pwgconv2_w200", "Table 4", "GConv(100)+PWGConv(2)", 8.6, 200, None, "",
          design="gconv_pwgconv", groups=100, groups2=2, blocks=4)
# Theorem 1 / Sec. 3.3.4: the best efficiency needs K = M * N, here 100 * 2 = 200 bottleneck channels in every
# block (the design's M and N are fixed, so K is too; 700 / 4 = 175 would not even divide into M = 100
# groups). With the uniform B = 4 of the other Table 3-4 rows this gives 10.02M, -3.6% from the paper's
# 10.4M. (Letting K double with the channels instead, 200-400-800-1600, already gives 11.7M at B = 1.)
_register("sk_t4_pwgconv100_dw_pwgconv2_w700", "Table 4", "PWGConv(100)+DW+PWGConv(2)", 10.4, 700, None,
          "bottleneck M*N = 200 in every block", design="pwgconv_dw_pwgconv", groups=100, groups2=2,
          bottleneck=200, bottleneck_doubles=False, blocks=4)

# Rows whose #Params the Table 1 layout cannot reproduce within 5%, with the reason (none at present; the
# tests mark any entry as a strict xfail).
KNOWN_DEVIATIONS: dict[str, str] = {}


@register_model(paper=SEED_SPARSE_KERNEL, family="sparse_kernel", tiny=True, input_size=32,
                description="tiny PWGConv(2)+DW+PWGConv(2) net for tests (width 16, 1 block per stage)")
def sk_pwgconv_dw_pwgconv_tiny(**kwargs) -> SparseKernelNet:
    return SparseKernelNet(**{"design": "pwgconv_dw_pwgconv", "width": 16, "blocks": 1, "groups": 2,
                              "groups2": 2, "num_classes": 10, **kwargs})


@register_model(paper=SEED_SPARSE_KERNEL, family="sparse_kernel", tiny=True, input_size=32,
                description="tiny PW+GConv(8)+PW net for tests (width 32: 1, 2, 4, 8 channels per group)")
def sk_pw_gconv_pw_tiny(**kwargs) -> SparseKernelNet:
    return SparseKernelNet(**{"design": "pw_gconv_pw", "width": 32, "blocks": 1, "groups": 8, "num_classes": 10,
                              **kwargs})


@register_model(paper=SEED_SPARSE_KERNEL, family="sparse_kernel", tiny=True, input_size=32,
                description="tiny GConv(4)+PWGConv(4) net for tests (width 16, 1 block per stage)")
def sk_gconv_pwgconv_tiny(**kwargs) -> SparseKernelNet:
    return SparseKernelNet(**{"design": "gconv_pwgconv", "width": 16, "blocks": 1, "groups": 4, "groups2": 4,
                              "num_classes": 10, **kwargs})
