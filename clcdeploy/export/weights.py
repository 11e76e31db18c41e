"""Model weights for export: a user's state dict (`--weights`) or deterministic random weights."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from clcdeploy.errors import WeightsError, first_line
from clcdeploy.files import sha256_file

RANDOM_SEED = 0
_MAX_NAMED = 6


def load_weights(model: nn.Module, path: str | Path) -> str:
    """Load a state dict (or a checkpoint holding one under `state_dict`/`model`) into `model`.

    Strips DataParallel's `module.` prefixes. Returns a description of the source for the manifest.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file {path} not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises unpickling, zip and runtime errors alike
        raise _unreadable(path, exc) from None
    state = _unwrap(obj, path)
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    misshaped = [
        f"{k} {tuple(state[k].shape)} != {tuple(expected[k].shape)}"
        for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    problems = [f"{label}: {_names(keys)}" for label, keys in
                (("missing keys", missing), ("unexpected keys", unexpected), ("mis-shaped keys", misshaped)) if keys]
    if problems:
        raise WeightsError(f"weights file {path} does not fit the model; " + "; ".join(problems))
    model.load_state_dict(state, strict=True)
    model.eval()
    return f"file {path.name} (sha256 {sha256_file(path)[:16]})"


def _unreadable(path: Path, exc: Exception) -> WeightsError:
    """torch.load's weights-only errors open with paragraphs about its defaults; the cause is further down."""
    text = str(exc)
    pickled = re.search(r"Unsupported global: GLOBAL (\S+)", text)
    if pickled:
        return WeightsError(f"weights file {path} holds a pickled {pickled.group(1)}, not only tensors (a whole "
                            f"model saved with torch.save(model)?): save its state_dict() and pass that file "
                            f"(clcdeploy does not run code from weights files)")
    cause = re.search(r"WeightsUnpickler error:\s*([^\n]+)", text)
    return WeightsError(f"weights file {path} is not a readable PyTorch state dict "
                        f"({cause.group(1).strip() if cause else first_line(exc, 200)})")


def random_weights(model: nn.Module, seed: int = RANDOM_SEED, input_size: int | None = None) -> str:
    """Give `model` deterministic random weights and randomised batch-norm statistics.

    He-normal convolutions and linear layers; random BN affine parameters. With `input_size`, the BN
    running statistics are first measured on random images (so every layer's output is of order one,
    which keeps logits in a range where the 1e-4 validation tolerance means something) and then
    randomly perturbed; without it they are drawn at random.
    """
    gen = torch.Generator().manual_seed(seed)
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                fan_in = module.weight[0].numel()
                module.weight.normal_(0.0, math.sqrt(2.0 / fan_in), generator=gen)
                if module.bias is not None:
                    module.bias.uniform_(-0.1, 0.1, generator=gen)
        for bn in norms:
            if bn.affine:
                bn.weight.uniform_(0.5, 1.5, generator=gen)
                bn.bias.uniform_(-0.2, 0.2, generator=gen)
            if bn.running_mean is not None:
                bn.running_mean.uniform_(-0.2, 0.2, generator=gen)
                bn.running_var.uniform_(0.5, 1.5, generator=gen)
        if input_size is not None and norms:
            _calibrate(model, norms, input_size, gen)
    model.eval()
    return f"random (seed {seed}, randomised batch-norm statistics; for latency only, meaningless for accuracy)"


def _calibrate(model: nn.Module, norms: list[nn.Module], input_size: int, gen: torch.Generator) -> None:
    """Measure BN running statistics on random images, then perturb them (mean by 0.1 std, var by ±20%)."""
    momenta = [bn.momentum for bn in norms]
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over the calibration batch
    batch = 4 if input_size <= 64 else 2
    images = torch.randn(batch, 3, input_size, input_size, generator=gen)
    model.train()
    try:
        model(images)
    finally:
        model.eval()
        for bn, momentum in zip(norms, momenta):
            bn.momentum = momentum
    for bn in norms:
        if bn.running_mean is None:
            continue
        # Nearly constant channels (e.g. after a mostly-dead ReLU) would be divided by a tiny std, which
        # amplifies float32 rounding far beyond what trained networks show; floor the variance.
        bn.running_var.clamp_(min=0.1 * float(bn.running_var.mean()) + 1e-3)
        std = bn.running_var.sqrt()
        bn.running_mean.add_(0.1 * std * torch.randn(std.shape, generator=gen))
        bn.running_var.mul_(torch.empty(std.shape).uniform_(0.8, 1.25, generator=gen))
    _unit_logits(model, images)


def _unit_logits(model: nn.Module, images: torch.Tensor) -> None:
    """Scale the last conv/linear layer so the model's outputs on `images` have unit standard deviation.

    Absolute validation tolerances then mean the same thing for every model.
    """
    called: list[nn.Module] = []
    handles = [m.register_forward_hook(lambda module, args, out: called.append(module))
               for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        out = model(images)
    finally:
        for handle in handles:
            handle.remove()
    std = float(out.std()) if isinstance(out, torch.Tensor) and out.numel() > 1 else 0.0
    if called and std > 0:
        last = called[-1]
        last.weight.div_(std)
        if last.bias is not None:
            last.bias.div_(std)


def _unwrap(obj: object, path: Path) -> Mapping[str, torch.Tensor]:
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not obj or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    ):
        raise WeightsError(
            f"weights file {path} holds no state dict (expected a dict of tensors, or a checkpoint with one "
            f"under 'state_dict' or 'model')"
        )
    return obj


def _names(keys: list[str]) -> str:
    shown = ", ".join(keys[:_MAX_NAMED])
    return shown + (f" and {len(keys) - _MAX_NAMED} more" if len(keys) > _MAX_NAMED else "")
