"""Information field (seeds/004, Definition 1): the part of a block's input tensor that one output activation
is computed from, as (height, width, channels): what `clcdeploy analyze` prints as "info field", e.g. 3x3x256.

Like the paper's, it is the field of an activation away from the borders (zero padding at the image edges, or
at the ends of the channel axis, only cuts it short there; the paper: "for one output tensor, sizes of
information fields for all activations are usually the same").

The channel extent reuses the channel dependency graph (`channels.channel_dependency`): the number of input
channels most computed output channels depend on (ties: the smaller). It equals the block's channel receptive
field (the smallest such number) unless some outputs see fewer channels only because of padding, as the last
outputs of a channel-wise convolution with 'SAME' padding do (8 of its 16 weights fall outside the channels).
The spatial extent is the receptive field grown along every path of the traced block: a layer with kernel k,
stride s and dilation d turns (field r, jump j) into (r + (k - 1) * d * j, j * s); a pixel shuffle by r
divides the jump by r (each output pixel still comes from one input pixel); element-wise joins (residual
sums, concatenations) take the larger field of their inputs. Global pooling and fully connected layers make
the field the whole input (reported as None). A module that convolves along channels through a reshaped view
(ChannelNet's channel-wise convolutions) is one step with the window its `spatial_kernel()` declares (stride
1; None: the whole input): its Conv2d's kernel runs over channels and pixels, not over the image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import torch
import torch.fx
from torch import nn

from clcdeploy.analysis.channels import analysis_blocks, block_input_channels, channel_dependency
from clcdeploy.errors import AnalysisError

_POINTWISE_MODULES = (
    nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.ReLU, nn.ReLU6, nn.Hardswish, nn.Hardsigmoid, nn.SiLU,
    nn.Sigmoid, nn.Identity, nn.Dropout, nn.Flatten,
)
_GLOBAL_MODULES = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Linear)


@dataclass(frozen=True)
class _Field:
    """Receptive field `size` (input pixels, None = global) and `jump` (input pixels per output pixel)."""

    size: int | None
    jump: Fraction

    def through(self, kernel: int, stride: int, dilation: int) -> "_Field":
        if self.size is None:
            return self
        size = self.size + (kernel - 1) * dilation * self.jump
        return _Field(int(math.ceil(size)), self.jump * stride)


@dataclass(frozen=True)
class BlockInformationField:
    """Information field of one block: `height` x `width` input pixels (None: the whole input) and
    `channels` input channels, out of `in_channels`."""

    name: str
    kind: str
    in_channels: int
    height: int | None
    width: int | None
    channels: int

    @property
    def size(self) -> tuple[int | None, int | None, int]:
        """The paper's InfoSize triple (height, width, channels)."""
        return (self.height, self.width, self.channels)


@dataclass(frozen=True)
class _Field2d:
    """Vertical and horizontal fields of one value in the traced block."""

    v: _Field
    h: _Field


def _pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


def _merge(fields: list[_Field]) -> _Field:
    if any(f.size is None for f in fields):
        return _Field(None, fields[0].jump)
    return _Field(max(f.size for f in fields), max(f.jump for f in fields))


def _module_field(module: nn.Module, field: _Field2d, target: str) -> _Field2d:
    """Fields after `module`."""
    if not isinstance(field, _Field2d):
        raise AnalysisError(f"information field: layer {target!r} does not act on the block's input")
    if callable(getattr(module, "spatial_kernel", None)):
        return _Field2d(*_declared_fields(module, field.v, field.h))
    return _Field2d(*_module_fields(module, field.v, field.h, target))


def _module_fields(module: nn.Module, v: _Field, h: _Field, target: str) -> tuple[_Field, _Field]:
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.MaxPool2d, nn.AvgPool2d)):
        k, s, d = (_pair(getattr(module, a, 1)) for a in ("kernel_size", "stride", "dilation"))
        if isinstance(module, nn.AvgPool2d):
            d = (1, 1)
        return v.through(k[0], s[0], d[0]), h.through(k[-1], s[-1], d[-1])
    if isinstance(module, (nn.ConvTranspose2d,)):
        k, s, d = _pair(module.kernel_size), _pair(module.stride), _pair(module.dilation)
        # An output pixel sees ceil(k_eff / s) input pixels of the (coarser) input grid.
        grow = [max(math.ceil(((kk - 1) * dd + 1) / ss), 1) for kk, ss, dd in zip(k, s, d)]
        return (_Field(v.through(grow[0], 1, 1).size, v.jump / s[0]),
                _Field(h.through(grow[1], 1, 1).size, h.jump / s[1]))
    if isinstance(module, nn.PixelShuffle):
        r = module.upscale_factor
        return _Field(v.size, v.jump / r), _Field(h.size, h.jump / r)
    if isinstance(module, _POINTWISE_MODULES):
        return v, h
    if isinstance(module, _GLOBAL_MODULES):
        return _Field(None, v.jump), _Field(None, h.jump)
    raise AnalysisError(f"information field does not know layer {target!r} ({type(module).__name__})")


def _declared_fields(module: nn.Module, v: _Field, h: _Field) -> tuple[_Field, _Field]:
    """Fields after a module that declares its spatial window (`spatial_kernel()`)."""
    kernel = module.spatial_kernel()
    if kernel is None:
        return _Field(None, v.jump), _Field(None, h.jump)
    return v.through(kernel[0], 1, 1), h.through(kernel[1], 1, 1)


class _Tracer(torch.fx.Tracer):
    """Keeps modules that declare `spatial_kernel()` whole (their insides work on a reshaped view)."""

    def is_leaf_module(self, module: nn.Module, qualname: str) -> bool:
        return callable(getattr(module, "spatial_kernel", None)) or super().is_leaf_module(module, qualname)


def spatial_field(block: nn.Module) -> tuple[int | None, int | None]:
    """(height, width) of the input area one output activation of `block` depends on, from its layers'
    kernel sizes, strides and dilations (None: the whole input)."""
    try:
        graph = _Tracer().trace(block)
    except Exception as exc:
        raise AnalysisError(f"cannot trace {type(block).__name__} for the information field: {exc}") from None
    modules = dict(block.named_modules())
    values: dict[str, object] = {}
    for node in graph.nodes:
        def value(a):
            return values.get(a.name) if isinstance(a, torch.fx.Node) else a

        args = [torch.fx.node.map_arg(a, value) for a in node.args]
        flat: list[_Field2d] = []
        torch.fx.node.map_aggregate(args, lambda a: flat.append(a) if isinstance(a, _Field2d) else None)
        if node.op == "placeholder":
            values[node.name] = _Field2d(_Field(1, Fraction(1)), _Field(1, Fraction(1)))
        elif node.op == "call_module":
            values[node.name] = _module_field(modules[node.target], args[0], node.target)
        elif node.op in ("call_function", "call_method"):
            name = getattr(node.target, "__name__", str(node.target))
            if name in ("conv2d", "max_pool2d", "avg_pool2d", "interpolate", "pixel_shuffle", "conv_transpose2d",
                        "linear", "adaptive_avg_pool2d"):
                raise AnalysisError(f"information field does not know the functional {name!r}; use a module")
            # Shape, indexing, permutation and element-wise operations keep every pixel's own field.
            values[node.name] = _Field2d(_merge([f.v for f in flat]), _merge([f.h for f in flat])) if flat else None
        elif node.op == "get_attr":
            values[node.name] = None
        elif node.op == "output":
            result = args[0]
            if not isinstance(result, _Field2d):
                raise AnalysisError(f"{type(block).__name__}: output does not depend on the input")
            return result.v.size, result.h.size
    raise AnalysisError(f"{type(block).__name__} has no output")


def information_field(block: nn.Module, in_channels: int, name: str = "") -> BlockInformationField:
    """Information field of one block taking `in_channels` channels (see the module docstring)."""
    matrix, computed = channel_dependency(block, in_channels)
    rows = matrix[computed] if computed.any() else matrix
    height, width = spatial_field(block)
    return BlockInformationField(name, type(block).__name__, in_channels, height, width, _usual(rows.sum(1)))


def _usual(counts: torch.Tensor) -> int:
    """The most common value of `counts` (ties: the smaller)."""
    values, frequency = torch.unique(counts, return_counts=True)
    return int(values[frequency == frequency.max()].min())


def analyse_information_field(model: nn.Module, input_size: int) -> list[BlockInformationField]:
    """Information field of every block of `model` (the children of `model.blocks`, as the channel analysis)."""
    blocks = analysis_blocks(model)
    in_channels = block_input_channels(model, blocks, input_size)
    return [information_field(block, in_channels[name], name) for name, block in blocks]
