"""Model weights for export: a user's state dict (`--weights`) or deterministic random weights."""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from clcdeploy.errors import WeightsError
from clcdeploy.files import sha256_file

RANDOM_SEED = 0
_MAX_NAMED = 6


def load_weights(model: nn.Module, path: str | Path) -> str:
    """Load a state dict (or a checkpoint holding one under `state_dict`/`model`) into `model`.

    Strips DataParallel's `module.` prefixes; batch-norm `num_batches_tracked` counters that older or converted
    checkpoints lack keep the model's values (as in PyTorch). Returns a description of the source for the
    manifest.
    """
    path = Path(path)
    if not path.exists():
        raise WeightsError(f"weights file {path} not found")
    if not path.is_file():
        raise WeightsError(f"weights file {path} is not a regular file (a directory or device?); pass the file "
                           f"holding the state dict")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises unpickling, zip and runtime errors alike
        raise _unreadable(path, exc) from None
    state = _unwrap(obj, path)
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    expected = model.state_dict()
    state.update({k: v for k, v in expected.items() if k.endswith(".num_batches_tracked") and k not in state})
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    misshaped = [
        f"{k} {tuple(state[k].shape)} != {tuple(expected[k].shape)}"
        for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    mistyped = [k for k in expected if k in state and _kind(state[k]) != _kind(expected[k])]
    retyped = f"keys of another dtype kind ({state[mistyped[0]].dtype} where the model has " \
              f"{expected[mistyped[0]].dtype})" if mistyped else ""
    problems = [f"{label}: {_names(keys)}" for label, keys in
                (("missing keys", missing), ("unexpected keys", unexpected), ("mis-shaped keys", misshaped),
                 (retyped, mistyped)) if keys]
    if problems:
        raise WeightsError(f"weights file {path} does not fit the model; " + "; ".join(problems))
    model.load_state_dict(state, strict=True)
    model.eval()
    return f"file {path.name} (sha256 {sha256_file(path)[:16]})"


def _kind(tensor: torch.Tensor) -> str:
    """floating, complex, bool or integer: loading casts across kinds too, and integer weights are truncated."""
    if tensor.is_floating_point():
        return "floating"
    return "complex" if tensor.is_complex() else "bool" if tensor.dtype == torch.bool else "integer"


def _unreadable(path: Path, exc: Exception) -> WeightsError:
    """torch.load's weights-only errors open with paragraphs about its defaults; the cause is further down."""
    text = str(exc)
    pickled = re.search(r"Unsupported global: GLOBAL (\S+)", text)
    if pickled:
        name = pickled.group(1)
        hint = " (a whole model saved with torch.save(model)?)" if _is_module_class(name) else ""
        return WeightsError(f"weights file {path} holds a pickled {name}{hint}, and clcdeploy loads only tensors "
                            f"(in dicts and lists) from weights files, running no code from them: save the "
                            f"state_dict() alone and pass that file")
    if path.stat().st_size == 0:
        return WeightsError(f"weights file {path} is empty; pass a file saved with torch.save(model.state_dict())")
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head == b"PK\x03\x04":
        return WeightsError(f"weights file {path} is not a readable PyTorch state dict: its zip archive is damaged "
                            f"or truncated ({_first_sentence(text)}); copy or save it again")
    if not head.startswith(b"\x80"):  # every pickle torch.save writes opens with a protocol opcode
        return WeightsError(f"weights file {path} is not a readable PyTorch state dict: it is not in torch.save's "
                            f"format (neither a zip archive nor a pickle); pass a file saved with "
                            f"torch.save(model.state_dict())")
    cause = re.search(r"WeightsUnpickler error:\s*([^\n]+)", text)
    return WeightsError(f"weights file {path} is not a readable PyTorch state dict "
                        f"({_first_sentence(cause.group(1) if cause else text) or type(exc).__name__})")


def _first_sentence(text: str) -> str:
    """The first sentence of `text`'s first line (at most 200 characters, cut at a word)."""
    lines = text.strip().splitlines()
    sentence = lines[0].split(". ")[0].rstrip(".") if lines else ""
    return sentence if len(sentence) <= 200 else sentence[:200].rsplit(" ", 1)[0] + " ..."


def _is_module_class(name: str) -> bool:
    """Whether `name` (module.Class) is an nn.Module class of a module already imported (nothing is imported)."""
    module_name, _, attr = name.rpartition(".")
    cls = getattr(sys.modules.get(module_name), attr, None)
    return isinstance(cls, type) and issubclass(cls, nn.Module)


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
