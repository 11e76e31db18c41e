"""Torch-side definition of the fused IGC op `clcdeploy::igc2` (functional and `.out` variants).

The eager implementation is the reference (grouped conv + bias + interlace); at export time the op stays
one node in the graph, and ExecuTorch maps it to the C++ kernel registered as `clcdeploy::igc2.out`.
Weights are pre-packed as (9, 2, C): `packed[k, 0, c] = w[c, c % 2, k]` (own channel) and
`packed[k, 1, c] = w[c, 1 - c % 2, k]` (pair partner), k = kh*3 + kw; the bias is in the conv's channel
order. See `csrc/igc2.h`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

OP_NAMESPACE = "clcdeploy"
OP_NAME = "igc2"
QUALIFIED_OUT_NAME = f"{OP_NAMESPACE}::{OP_NAME}.out"
ONNX_DOMAIN, ONNX_OP_TYPE = OP_NAMESPACE, "IGC2"  # the node ONNX export writes; ONNX Runtime's custom op
# The .tflite custom op: LiteRT's converter keeps a stablehlo.custom_call as a CUSTOM op only when its target
# name starts with "custom_call."; the stride travels as its custom options, b"stride=<s>".
LITERT_CUSTOM_CODE = "custom_call.CLCDEPLOY_IGC2"

_lib = torch.library.Library(OP_NAMESPACE, "FRAGMENT")
_lib.define(f"{OP_NAME}(Tensor x, Tensor weight, Tensor bias, int stride) -> Tensor")
_lib.define(f"{OP_NAME}.out(Tensor x, Tensor weight, Tensor bias, int stride, *, Tensor(a!) out) -> Tensor(a!)")


def pack_weight(weight: torch.Tensor) -> torch.Tensor:
    """PyTorch IGC weight (C, 2, 3, 3) -> packed (9, 2, C): own-channel and partner-channel taps."""
    c = weight.shape[0]
    taps = weight.reshape(c, 2, 9)
    channel, own = torch.arange(c), torch.arange(c) % 2
    return torch.stack([taps[channel, own], taps[channel, 1 - own]]).permute(2, 0, 1).contiguous()


def unpack_weight(packed: torch.Tensor) -> torch.Tensor:
    """Packed (9, 2, C) -> PyTorch IGC weight (C, 2, 3, 3)."""
    c = packed.shape[2]
    channel, own = torch.arange(c), torch.arange(c) % 2
    taps = packed.new_empty(c, 2, 9)
    taps[channel, own] = packed[:, 0].t()
    taps[channel, 1 - own] = packed[:, 1].t()
    return taps.reshape(c, 2, 3, 3)


def _memory_format(x: torch.Tensor) -> torch.memory_format:
    channels_last = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
    return torch.channels_last if channels_last and not x.is_contiguous() else torch.contiguous_format


def _out_shape(x: torch.Tensor, stride: int) -> tuple[int, int, int, int]:
    n, c, h, w = x.shape
    return n, c, (h - 1) // stride + 1, (w - 1) // stride + 1


def _check(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, stride: int) -> None:
    """What every runtime's kernel refuses, refused here too (also while exporting), not first on a device."""
    if stride not in (1, 2):
        raise ValueError(f"igc2: stride must be 1 or 2, got {stride}")
    if x.dim() != 4 or x.shape[1] % 2:
        raise ValueError(f"igc2: x must be (N, C, H, W) with an even C, got {tuple(x.shape)}")
    c = x.shape[1]
    if tuple(weight.shape) != (9, 2, c) or tuple(bias.shape) != (c,):
        raise ValueError(f"igc2: weight must be packed (9, 2, {c}) (pack_weight) and bias ({c},), got "
                         f"{tuple(weight.shape)} and {tuple(bias.shape)}")


def _reference(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, stride: int) -> torch.Tensor:
    _check(x, weight, bias, stride)
    groups = x.shape[1] // 2
    y = F.conv2d(x, unpack_weight(weight), bias, stride, 1, groups=groups)
    n, c, h, w = y.shape
    y = y.view(n, groups, 2, h, w).transpose(1, 2).reshape(n, c, h, w)
    return y.contiguous(memory_format=_memory_format(x))


@torch.library.impl(_lib, OP_NAME, "CompositeExplicitAutograd")
def _igc2(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, stride: int) -> torch.Tensor:
    return _reference(x, weight, bias, stride)


@torch.library.impl(_lib, f"{OP_NAME}.out", "CompositeExplicitAutograd")
def _igc2_out(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, stride: int, *,
              out: torch.Tensor) -> torch.Tensor:
    return out.copy_(_reference(x, weight, bias, stride))


@torch.library.register_fake(f"{OP_NAMESPACE}::{OP_NAME}")
def _igc2_fake(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, stride: int) -> torch.Tensor:
    _check(x, weight, bias, stride)
    return x.new_empty(_out_shape(x, stride)).contiguous(memory_format=_memory_format(x))


def igc2(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, stride: int) -> torch.Tensor:
    """Fused IGC (CRF 2, 3x3, padding 1) with packed weights; see the module docstring."""
    return torch.ops.clcdeploy.igc2(x, weight, bias, stride)
