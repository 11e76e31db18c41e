"""Plain-data summaries of zoo models (what `models` and `analyze` print, and the export manifest uses)."""

from __future__ import annotations

from dataclasses import asdict

import torch

from clcdeploy.analysis.channels import analyse_channels
from clcdeploy.analysis.cost import count_costs
from clcdeploy.analysis.information_field import analyse_information_field
from clcdeploy.analysis.input_size import check_input_size
from clcdeploy.zoo import create_model, list_models, model_spec


def zoo_summary(include_tiny: bool = False) -> list[dict]:
    """One record per registered model: name, family, input size, mult-adds, params, paper."""
    rows = []
    for name in list_models(include_tiny=include_tiny):
        spec = model_spec(name)
        with torch.device("meta"):  # shapes only: no weight initialisation, no arithmetic
            model = create_model(name)
        cost = count_costs(model, spec.input_size)
        rows.append(dict(name=name, family=spec.family, input_size=spec.input_size, macs=cost.macs,
                         params=cost.params, paper=spec.paper, tiny=spec.tiny, description=spec.description))
    return rows


def analyze_model(name: str, input_size: int | None = None) -> dict:
    """Totals, per-layer costs and per-block channel receptive fields of a zoo model."""
    spec = model_spec(name)
    size = spec.input_size if input_size is None else input_size
    model = create_model(name)
    check_input_size(model, name, size)
    cost = count_costs(model, size)
    blocks = analyse_channels(model, size)
    fields = {f.name: f for f in analyse_information_field(model, size)}
    return dict(
        name=name, input_size=size, macs=cost.macs, params=cost.params, paper=spec.paper,
        layers=[dict(asdict(layer), type=layer.kind) for layer in cost.layers],
        blocks=[dict(asdict(b), fcrf=b.fcrf, type=b.kind, information_field=list(fields[b.name].size))
                for b in blocks],
        fcrf=all(b.fcrf for b in blocks),
    )
