"""Is an input size usable for a model? Run it once (on the meta device: shapes only, no memory, no arithmetic)
and name the first layer that would misbehave."""

from __future__ import annotations

import copy
import weakref

import torch
from torch import nn

from clcdeploy.analysis.cost import example_input
from clcdeploy.errors import ClcDeployError, ConfigurationError, first_line

# The zoo's ImageNet models take 221 to 224 pixels; 2048 is far beyond any use of them and keeps one forward
# pass of the largest (SIC, ~1 G mult-adds at 221) within seconds and a few GB when export runs it for real.
MAX_INPUT_SIZE = 2048

# How far `_nearest_fitting` looks on either side of a size that does not fit (each probe: one meta pass).
_SEARCH_RADIUS = 64

# Per model: its structure (repr: layers, kernels, strides), its meta copy and what each size gave, so that a
# caller trying many sizes (scripts/bench_runtimes.py scans upwards) runs every size once.
_CHECKED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def check_input_size(model: nn.Module, name: str, size: int) -> None:
    """Raise a ConfigurationError unless `model` takes a `size` x `size` input with every strided layer
    (conv, pool) still getting a map at least as large as its stride; the message names the first that
    does not, or, when the size is not too small but its stages disagree (a stride-2 stage whose branches
    round differently), the nearest sizes that work."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ConfigurationError(f"input size must be a positive integer, got {size!r}")
    if size > MAX_INPUT_SIZE:
        raise ConfigurationError(f"input size {size} is too large for {name}: at most {MAX_INPUT_SIZE} is accepted "
                                 f"(the zoo's ImageNet models are built for 221 to 224); pass a smaller --input-size")
    shapes = _Shapes.of(model)
    problem = shapes.problem(size)
    if problem is None:
        return
    kind, detail = problem
    if kind == "too small":
        raise ConfigurationError(f"input size {size} is too small for {name}: {detail}{_larger(name)}")
    if kind == "checked":  # a layer that checks its input itself (e.g. ChannelNet-v3's classifier)
        raise ConfigurationError(f"input size {size} does not fit {name}: {detail}")
    below, above = _nearest_fitting(shapes, size)
    if below is None and above is None:
        hint = f"; no size within {_SEARCH_RADIUS} of {size} works, try its own ({_own_size(name)})"
    else:
        hint = "; sizes near it that work: " + " and ".join(str(s) for s in (below, above) if s is not None)
    raise ConfigurationError(f"input size {size} does not fit {name}: at this size its layers give maps that do not "
                             f"line up, e.g. the two paths of a stride-2 block ({first_line(detail, 120)}){hint}")


class _Shapes:
    """`model` on the meta device (itself, or a copy) and the answers so far, per input size."""

    def __init__(self, model: nn.Module) -> None:
        reference = next(model.parameters(), None)
        self.structure = repr(model)
        self.model = model if reference is not None and reference.is_meta else copy.deepcopy(model).to("meta")
        self.answers: dict[int, tuple[str, str] | None] = {}

    @classmethod
    def of(cls, model: nn.Module) -> "_Shapes":
        known = _CHECKED.get(model)
        if known is None or known.structure != repr(model):
            known = _CHECKED[model] = cls(model)
        return known

    def problem(self, size: int) -> tuple[str, str] | None:
        if size not in self.answers:
            self.answers[size] = _first_problem(self.model, size)
        return self.answers[size]


def _first_problem(model: nn.Module, size: int) -> tuple[str, str] | None:
    """None when `size` fits, else ("too small" | "checked" | "mismatch", what happened)."""
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
    except ConfigurationError as exc:
        return ("too small", too_small[0]) if too_small else ("checked", str(exc))
    except RuntimeError as exc:
        if too_small:
            return "too small", too_small[0]
        message = first_line(exc)
        smaller_than_kernel = "too small" in message or "greater than actual input size" in message
        return ("too small" if smaller_than_kernel else "mismatch"), message
    finally:
        for h in handles:
            h.remove()
    return ("too small", too_small[0]) if too_small else None


def _nearest_fitting(shapes: _Shapes, size: int) -> tuple[int | None, int | None]:
    """The largest fitting size below `size` and the smallest above it, each within `_SEARCH_RADIUS`."""
    below = next((s for s in range(size - 1, max(size - _SEARCH_RADIUS, 0), -1) if shapes.problem(s) is None), None)
    above = next((s for s in range(size + 1, min(size + _SEARCH_RADIUS, MAX_INPUT_SIZE) + 1)
                  if shapes.problem(s) is None), None)
    return below, above


def _zoo_size(name: str) -> int | None:
    """The input size the zoo builds `name` for (None: not a zoo model)."""
    from clcdeploy.zoo import model_spec

    try:
        return model_spec(name).input_size
    except ClcDeployError:
        return None


def _own_size(name: str) -> str:
    size = _zoo_size(name)
    return "the size it was built for" if size is None else str(size)


def _larger(name: str) -> str:
    """What to do about a too small input: the model's own size, where the zoo knows it."""
    size = _zoo_size(name)
    return "; pass a larger --input-size" + ("" if size is None else f" (its own is {size})")
