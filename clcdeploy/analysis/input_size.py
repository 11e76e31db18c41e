"""Is an input size usable for a model? Run it once and name the first layer that would misbehave."""

from __future__ import annotations

import torch
from torch import nn

from clcdeploy.analysis.cost import example_input
from clcdeploy.errors import ClcDeployError, ConfigurationError, first_line


def check_input_size(model: nn.Module, name: str, size: int) -> None:
    """Raise a ConfigurationError unless `model` takes a `size` x `size` input with every strided layer
    (conv, pool) still getting a map at least as large as its stride; the message names the first that
    does not."""
    if not isinstance(size, int) or size < 1:
        raise ConfigurationError(f"input size must be a positive integer, got {size!r}")
    too_small: list[str] = []
    module_names = {m: n for n, m in model.named_modules()}

    def hook(module: nn.Module, args: tuple) -> None:
        stride = getattr(module, "stride", 1)
        stride = max(stride) if isinstance(stride, tuple) else (stride or 1)
        if args and args[0].dim() == 4 and min(args[0].shape[-2:]) < stride and not too_small:
            too_small.append(f"{module_names[module]} gets a {tuple(args[0].shape[-2:])} map with stride {stride}")

    handles = [m.register_forward_pre_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d))]
    try:
        with torch.no_grad():
            model(example_input(model, 1, 3, size, size))
    except ConfigurationError as exc:  # a layer that checks its input itself (e.g. ChannelNet-v3's classifier)
        raise ConfigurationError(f"input size {size} does not fit {name}: {exc}") from None
    except RuntimeError as exc:
        if "can't allocate memory" in str(exc) or "overflow" in str(exc).lower():
            raise ConfigurationError(f"input size {size} is too large for {name}: one forward pass cannot allocate "
                                     f"its tensors here ({first_line(exc, 200)})") from None
        raise ConfigurationError(f"input size {size} is too small for {name}: {first_line(exc)}{_larger(name)}") \
            from None
    finally:
        for h in handles:
            h.remove()
    if too_small:
        raise ConfigurationError(f"input size {size} is too small for {name}: {too_small[0]}{_larger(name)}")


def _larger(name: str) -> str:
    """What to do about a too small input: the model's own size, where the zoo knows it."""
    from clcdeploy.zoo import model_spec

    try:
        return f"; pass a larger --input-size (its own is {model_spec(name).input_size})"
    except ClcDeployError:
        return "; pass a larger --input-size"
