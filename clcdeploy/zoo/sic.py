"""Single intra-channel convolution (SIC) layers, topological subdivisioning and the spatial "bottleneck"
(seeds/003, Wang et al.): the baseline network of its Table 1 and models A-K of Tables 3, 5 and 6.

Network (Table 1, 221x221 input): 7x7/2 conv (64, no padding) -> 108; then three stages, each a max pool
(3x3/3, 2x2/2, 3x3/3 -> 36, 18, 6), a 1x1 conv doubling the channels (128, 256, 512) and the stage's layers
(the only part the models change); a 1x1 conv to 1024, 6x6 average pool, FC 2048 (dropout 0.2), FC 1000.
BN follows every convolution; every layer with equal input and output channels has a residual connection,
added before the ReLU.

Layers (each one residual unit):

- ``standard``  (k, n): k x k conv                                              model A
- ``unravelled`` [k, b, n]: k x k depthwise with b filters per channel, 1x1 projection bn -> n   model B
- ``sic``       <k, n>: k x k depthwise (one filter per channel), 1x1 projection        models C, D, E
- ``topo``      k x k conv with s-dimensional topological subdivisioning (Algorithm 3)  models F, G
- ``grouped``   k x k conv with 4 groups (AlexNet-style grouping, no shuffle)          model H
- ``sic_topo``  SIC layer whose projection uses 2D topological subdivisioning          model I
- ``sb0``/``sb1`` spatial bottleneck: k x k depthwise with stride k (no / one pixel padding), 1x1
  projection, k x k depthwise deconvolution with stride k (cropped back for ``sb1``)      models J, K

Models L-O (Table 7) are defined only in the paper's supplemental material and are not registered.

Export-friendly lowering: the topological layer gathers each output channel's c neighbours with one
`index_select` and applies a grouped conv with n groups of c channels (MACs c*k*k per output, the paper's
c/n ratio); the depthwise deconvolution with kernel = stride = k is a grouped 1x1 conv (n -> n*k*k, n groups)
followed by a pixel shuffle, which is the same linear map without overlapping kernels.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import torch
from torch import nn

from clcdeploy.errors import ConfigurationError
from clcdeploy.zoo._registry import SEED_SIC, register_model
from clcdeploy.zoo.layers import check_divisible, conv_bn_relu

LAYER_KINDS = ("standard", "unravelled", "sic", "topo", "grouped", "sic_topo", "sb0", "sb1")


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels)


def topological_index(dims: tuple[int, ...], neighbours: tuple[int, ...]) -> list[list[int]]:
    """For each output channel (row-major over `dims`), its input channels: the `neighbours` box starting at
    its own position, wrapping around (Algorithm 3: input ((j_i + i_i - 2) % d_i + 1) in 1-based indices)."""
    if len(dims) != len(neighbours) or not dims:
        raise ConfigurationError(f"topology: dims {dims} and neighbours {neighbours} need the same length >= 1")
    for d, c in zip(dims, neighbours):
        if not 1 <= c <= d:
            raise ConfigurationError(f"topology: neighbourhood {c} must be between 1 and its dimension {d}")
    strides = [math.prod(dims[i + 1:]) for i in range(len(dims))]
    rows = []
    for out in itertools.product(*(range(d) for d in dims)):
        rows.append([
            sum(((j + i) % d) * st for j, i, d, st in zip(out, offs, dims, strides))
            for offs in itertools.product(*(range(c) for c in neighbours))
        ])
    return rows


class TopologicalConv(nn.Module):
    """k x k convolution (n -> n channels) with topological subdivisioning: channels arranged as a tensor
    `dims`, each output connected to the `neighbours` box of inputs at its position (paper Algorithm 3)."""

    def __init__(self, dims: tuple[int, ...], neighbours: tuple[int, ...], kernel_size: int = 1) -> None:
        super().__init__()
        rows = topological_index(tuple(dims), tuple(neighbours))
        self.channels, self.fan_in = len(rows), len(rows[0])
        self.dims, self.neighbours = tuple(dims), tuple(neighbours)
        self.register_buffer("index", torch.tensor([c for row in rows for c in row], dtype=torch.long),
                             persistent=False)
        self.conv = nn.Conv2d(self.channels * self.fan_in, self.channels, kernel_size, padding=kernel_size // 2,
                              groups=self.channels, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x.index_select(1, self.index))

    def channel_connectivity(self) -> torch.Tensor:
        """[out, in] booleans: the neighbourhood of every output channel."""
        matrix = torch.zeros(self.channels, self.channels, dtype=torch.bool)
        matrix[torch.arange(self.channels).repeat_interleave(self.fan_in), self.index] = True
        return matrix

    def extra_repr(self) -> str:
        return f"dims={self.dims}, neighbours={self.neighbours}"


class DepthwiseDeconv(nn.Module):
    """Depthwise transposed convolution with kernel = stride = k (each input pixel becomes a k x k patch
    scaled per channel), as a grouped 1x1 conv to k*k channels per input channel and a pixel shuffle."""

    def __init__(self, channels: int, kernel_size: int) -> None:
        super().__init__()
        self.channels, self.kernel_size = channels, kernel_size
        self.expand = nn.Conv2d(channels, channels * kernel_size ** 2, 1, groups=channels, bias=False)
        self.shuffle = nn.PixelShuffle(kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.expand(x))

    def channel_connectivity(self) -> torch.Tensor:
        return torch.eye(self.channels, dtype=torch.bool)

    def transposed_weight(self) -> torch.Tensor:
        """The equivalent `conv_transpose2d` weight [channels, 1, k, k] (groups = channels)."""
        k = self.kernel_size
        return self.expand.weight.reshape(self.channels, 1, k, k)


class Crop(nn.Module):
    """Remove `pixels` from every border (undoes the padding of a padded spatial bottleneck)."""

    def __init__(self, channels: int, pixels: int) -> None:
        super().__init__()
        self.channels, self.pixels = channels, pixels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.pixels
        return x[:, :, p:-p, p:-p]

    def channel_connectivity(self) -> torch.Tensor:
        return torch.eye(self.channels, dtype=torch.bool)


class ResidualLayer(nn.Module):
    """One of the paper's layers: `body` (convs with BN), residual add, ReLU. `kind` names the layer type."""

    def __init__(self, kind: str, body: nn.Module) -> None:
        super().__init__()
        self.kind = kind
        self.body = body
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.body(x) + x)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}"


def make_layer(kind: str, channels: int, *, kernel_size: int = 3, filters: int = 4, groups: int = 4,
               topology: tuple[tuple[int, ...], tuple[int, ...]] | None = None, bottleneck: int = 2) -> ResidualLayer:
    """One residual layer of `kind` (see the module docstring) on `channels` channels."""
    n, k = channels, kernel_size
    if kind not in LAYER_KINDS:
        raise ConfigurationError(f"layer kind must be one of {', '.join(LAYER_KINDS)}, got {kind!r}")
    if k < 1 or k % 2 == 0 and kind not in ("sb0", "sb1"):
        raise ConfigurationError(f"kernel_size must be a positive odd number, got {k}")
    if kind in ("topo", "sic_topo"):
        if topology is None:
            raise ConfigurationError(f"topology (dims, neighbours) is required for {kind!r} layers")
        if math.prod(topology[0]) != n:
            raise ConfigurationError(f"topology dims {topology[0]} must multiply to the {n} channels")
    pad = k // 2
    if kind == "standard":
        body = nn.Sequential(nn.Conv2d(n, n, k, 1, pad, bias=False), _bn(n))
    elif kind == "grouped":
        check_divisible("grouped layer (groups)", n, groups)
        body = nn.Sequential(nn.Conv2d(n, n, k, 1, pad, groups=groups, bias=False), _bn(n))
    elif kind == "unravelled":
        if filters < 1:
            raise ConfigurationError(f"filters (b) must be >= 1, got {filters}")
        body = nn.Sequential(nn.Conv2d(n, n * filters, k, 1, pad, groups=n, bias=False), _bn(n * filters),
                             nn.Conv2d(n * filters, n, 1, bias=False), _bn(n))
    elif kind == "sic":
        body = nn.Sequential(nn.Conv2d(n, n, k, 1, pad, groups=n, bias=False), _bn(n),
                             nn.Conv2d(n, n, 1, bias=False), _bn(n))
    elif kind == "sic_topo":
        body = nn.Sequential(nn.Conv2d(n, n, k, 1, pad, groups=n, bias=False), _bn(n),
                             TopologicalConv(*topology, kernel_size=1), _bn(n))
    elif kind == "topo":
        body = nn.Sequential(TopologicalConv(*topology, kernel_size=k), _bn(n))
    else:  # spatial bottleneck, kernel and stride `bottleneck`
        s = bottleneck
        if s < 2:
            raise ConfigurationError(f"bottleneck (kernel = stride) must be >= 2, got {s}")
        crop = 1 if kind == "sb1" else 0
        layers = [nn.Conv2d(n, n, s, s, crop, groups=n, bias=False), _bn(n), nn.Conv2d(n, n, 1, bias=False), _bn(n),
                  DepthwiseDeconv(n, s), _bn(n)]
        body = nn.Sequential(*layers, Crop(n, crop)) if crop else nn.Sequential(*layers)
    return ResidualLayer(kind, body)


class Transition(nn.Module):
    """Between stages: max pool, then a 1x1 conv + BN + ReLU changing the channel count."""

    def __init__(self, in_channels: int, out_channels: int, pool: int) -> None:
        super().__init__()
        self.pool = nn.MaxPool2d(pool, pool)
        self.conv = conv_bn_relu(in_channels, out_channels, 1)

    def forward(self, x):
        return self.conv(self.pool(x))


class SICHead(nn.Module):
    """1x1 conv to 1024 (BN, ReLU), global average pool, FC 2048 + ReLU + dropout, FC to the classes."""

    def __init__(self, in_channels: int, channels: int, hidden: int, num_classes: int, dropout: float = 0.2) -> None:
        super().__init__()
        self.conv = conv_bn_relu(in_channels, channels, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Linear(channels, hidden)
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x):
        x = torch.flatten(self.pool(self.conv(x)), 1)
        return self.fc2(self.dropout(self.relu(self.fc1(x))))


# Table 4: (dims, neighbours) per stage, 2D and 3D topologies.
TOPOLOGY_2D = {128: ((8, 16), (4, 8)), 256: ((16, 16), (8, 8)), 512: ((16, 32), (8, 16))}
TOPOLOGY_3D = {128: ((4, 8, 4), (2, 5, 3)), 256: ((8, 8, 4), (4, 5, 3)), 512: ((8, 8, 8), (4, 5, 6))}

# Models A-K: the layers of every stage and the paper's complexity relative to A (Tables 3, 5, 6).
MODELS: dict[str, dict] = {
    "a": dict(pattern=("standard",) * 2, complexity=Fraction(1), label="A: baseline (3,n) x2"),
    "b": dict(pattern=("unravelled",) * 2, complexity=Fraction(4, 9), label="B: unravelled [3,4,n] x2"),
    "c": dict(pattern=("sic",) * 4, complexity=Fraction(2, 9), label="C: SIC <3,n> x4"),
    "d": dict(pattern=("sic",) * 4, kernel_size=5, complexity=Fraction(2, 9), label="D: SIC <5,n> x4"),
    "e": dict(pattern=("sic",) * 6, complexity=Fraction(1, 3), label="E: SIC <3,n> x6"),
    "f": dict(pattern=("topo",) * 4, topology="2d", complexity=Fraction(1, 2), label="F: 2D topology x4"),
    "g": dict(pattern=("topo",) * 4, topology="3d", complexity=Fraction(15, 32), label="G: 3D topology x4"),
    "h": dict(pattern=("grouped",) * 4, complexity=Fraction(1, 2), label="H: 4 groups x4"),
    "i": dict(pattern=("sic_topo",) * 8, topology="2d", complexity=Fraction(1, 9), label="I: SIC + 2D topology x8"),
    "j": dict(pattern=("sic", "sb0", "sb1") * 2, complexity=Fraction(1, 6),
              label="J: every other SIC -> 2 spatial bottlenecks (6 layers)"),
    "k": dict(pattern=("sb0", "sb1") * 4, complexity=Fraction(1, 9),
              label="K: all SIC -> spatial bottlenecks (8 layers)"),
}


class SICNet(nn.Module):
    """The Table 1 network; `pattern` is the sequence of layer kinds in every stage."""

    def __init__(
        self, *, pattern: tuple[str, ...] = ("sic",) * 4, kernel_size: int = 3, filters: int = 4, groups: int = 4,
        topology: str | dict | None = None, bottleneck: int = 2, widths: tuple[int, int, int] = (128, 256, 512),
        stem_channels: int = 64, stem_kernel: int = 7, stem_stride: int = 2, stem_padding: int = 0,
        pools: tuple[int, int, int] = (3, 2, 3), head_channels: int = 1024, hidden: int = 2048,
        num_classes: int = 1000,
    ) -> None:
        super().__init__()
        pattern = tuple(pattern)
        bad = [kind for kind in pattern if kind not in LAYER_KINDS]
        if bad or not pattern:
            raise ConfigurationError(f"pattern must be non-empty layer kinds from {', '.join(LAYER_KINDS)}, got {bad}")
        if len(widths) != len(pools):
            raise ConfigurationError(f"widths {widths} and pools {pools} must have one entry per stage")
        if any(w < 1 for w in widths) or any(p < 1 for p in pools):
            raise ConfigurationError("widths and pools must be positive")
        tables = {"2d": TOPOLOGY_2D, "3d": TOPOLOGY_3D}
        if isinstance(topology, str):
            if topology not in tables:
                raise ConfigurationError("topology must be '2d', '3d' or a {channels: (dims, neighbours)} dict")
            topology = tables[topology]
        self.config = dict(pattern=pattern, kernel_size=kernel_size, filters=filters, groups=groups,
                           topology=topology, bottleneck=bottleneck, widths=tuple(widths), pools=tuple(pools),
                           num_classes=num_classes)
        self.stem = conv_bn_relu(3, stem_channels, stem_kernel, stem_stride)
        self.stem[0].padding = (stem_padding, stem_padding)
        blocks, cin = [], stem_channels
        for width, pool in zip(widths, pools):
            blocks.append(Transition(cin, width, pool))
            stage_topology = None
            if topology is not None:
                if width not in topology:
                    raise ConfigurationError(f"topology has no entry for {width} channels")
                stage_topology = topology[width]
            for kind in pattern:
                blocks.append(make_layer(kind, width, kernel_size=kernel_size, filters=filters, groups=groups,
                                         topology=stage_topology, bottleneck=bottleneck))
            cin = width
        self.blocks = nn.Sequential(*blocks)
        self.classifier = SICHead(cin, head_channels, hidden, num_classes)

    def forward(self, x):
        return self.classifier(self.blocks(self.stem(x)))


def _paper_model(letter: str, **kwargs) -> SICNet:
    spec = {k: v for k, v in MODELS[letter].items() if k not in ("complexity", "label")}
    return SICNet(**{**spec, **kwargs})


def _register_letter(letter: str):
    def builder(**kwargs) -> SICNet:
        return _paper_model(letter, **kwargs)

    name = f"sic_{letter}"
    builder.__name__ = builder.__qualname__ = name
    builder.__doc__ = f"Model {MODELS[letter]['label']} (seeds/003)."
    description = f"model {MODELS[letter]['label']}, ~{MODELS[letter]['complexity']} of A per stage"
    register_model(paper=SEED_SIC, family="sic", input_size=221, description=description)(builder)
    globals()[name] = builder


for _letter in MODELS:
    _register_letter(_letter)

# Tiny variants: 32x32 input, 3x3/1 stem, 2x2 pools (even sizes for the spatial bottleneck), widths 16-64.
_TINY = dict(widths=(16, 32, 64), stem_channels=8, stem_kernel=3, stem_stride=1, stem_padding=1, pools=(2, 2, 2),
             head_channels=64, hidden=32, num_classes=10)
_TINY_TOPOLOGY_2D = {16: ((4, 4), (2, 2)), 32: ((4, 8), (2, 4)), 64: ((8, 8), (4, 4))}


@register_model(paper=SEED_SIC, family="sic", tiny=True, input_size=32, description="tiny model C (SIC) for tests")
def sic_c_tiny(**kwargs) -> SICNet:
    return SICNet(**{**_TINY, "pattern": ("sic",) * 2, **kwargs})


@register_model(paper=SEED_SIC, family="sic", tiny=True, input_size=32,
                description="tiny model I (SIC + 2D topology) for tests")
def sic_i_tiny(**kwargs) -> SICNet:
    return SICNet(**{**_TINY, "pattern": ("sic_topo",) * 2, "topology": _TINY_TOPOLOGY_2D, **kwargs})


@register_model(paper=SEED_SIC, family="sic", tiny=True, input_size=32,
                description="tiny model J (SIC + spatial bottlenecks) for tests")
def sic_j_tiny(**kwargs) -> SICNet:
    return SICNet(**{**_TINY, "pattern": ("sic", "sb0", "sb1"), **kwargs})
