"""The model registry: one-line `@register_model` builders, looked up by name."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Callable

from torch import nn

from clcdeploy.errors import ConfigurationError, UnknownModelError

SEED_CLCNET = "001_83a6dd6bd18db7e3.txt"
SEED_CHANNELNETS = "002_cce4fba1ebea6d39.txt"
SEED_SIC = "003_25066adab681e7c7.txt"
SEED_SPARSE_KERNEL = "004_41d68caf3c6e4699.txt"

# What a reader calls each paper (`clcdeploy models` prints it; the seed file stays in `ModelSpec.paper`).
PAPER_NAMES = {
    SEED_CLCNET: "clcNet (Zhang 2018)",
    SEED_CHANNELNETS: "ChannelNets (Gao et al. 2018)",
    SEED_SIC: "SIC layers (Wang et al. 2016)",
    SEED_SPARSE_KERNEL: "Penetrating the Fog (ICLR 2019 submission)",
}


@dataclass(frozen=True)
class ModelSpec:
    """What the zoo knows about a registered model besides how to build it."""

    name: str
    builder: Callable[..., nn.Module]
    input_size: int
    paper: str
    family: str
    tiny: bool
    description: str

    @property
    def paper_name(self) -> str:
        """The paper as a reader knows it, e.g. "clcNet (Zhang 2018)" (the seed file name if unknown)."""
        return PAPER_NAMES.get(self.paper, self.paper)


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(
    *, input_size: int = 224, paper: str, family: str, tiny: bool = False, description: str = ""
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register the decorated builder under its function name."""

    def decorate(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        name = builder.__name__
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} registered twice")
        _REGISTRY[name] = ModelSpec(name, builder, input_size, paper, family, tiny, description)
        return builder

    return decorate


def model_spec(name: str) -> ModelSpec:
    """The registry entry for `name`, or an `UnknownModelError` that suggests close names."""
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name.lower().replace("-", "_"), _REGISTRY, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else "run `clcdeploy models` for the list"
        raise UnknownModelError(f"unknown model {name!r}: {hint}") from None


def create_model(name: str, **overrides) -> nn.Module:
    """Build the registered model `name`; keyword `overrides` replace the builder's defaults."""
    spec = model_spec(name)
    try:
        model = spec.builder(**overrides)
    except TypeError as exc:
        if "unexpected keyword argument" not in str(exc):
            raise
        raise ConfigurationError(f"{name}: {exc}; see the model's builder for its parameters") from None
    model.eval()
    return model


def list_models(include_tiny: bool = True) -> list[str]:
    """Registered model names, sorted; without the tiny test variants unless asked."""
    return sorted(n for n, s in _REGISTRY.items() if include_tiny or not s.tiny)
