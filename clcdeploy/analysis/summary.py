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
    """One record per registered model: name, family, input size, mult-adds, params, paper (its seed file) and
    paper_name (as a reader knows it)."""
    rows = []
    for name in list_models(include_tiny=include_tiny):
        spec = model_spec(name)
        with torch.device("meta"):  # shapes only: no weight initialisation, no arithmetic
            model = create_model(name)
        cost = count_costs(model, spec.input_size)
        rows.append(dict(name=name, family=spec.family, input_size=spec.input_size, macs=cost.macs,
                         params=cost.params, paper=spec.paper, paper_name=spec.paper_name, tiny=spec.tiny,
                         description=spec.description))
    return rows


def analyze_model(name: str, input_size: int | None = None) -> dict:
    """Totals, per-layer costs and per-block channel receptive fields of a zoo model.

    Sizes and costs come from the model on the meta device (shapes only: any accepted input size is answered
    at once, without memory); the channel graph, which does not depend on the input size, from a real model
    at its own size."""
    spec = model_spec(name)
    size = spec.input_size if input_size is None else input_size
    model = create_model(name)
    with torch.device("meta"):
        shapes = create_model(name)
    check_input_size(shapes, name, size)
    cost = count_costs(shapes, size)
    blocks = analyse_channels(model, spec.input_size)
    fields = {f.name: f for f in analyse_information_field(model, spec.input_size)}
    return dict(
        name=name, input_size=size, macs=cost.macs, params=cost.params, paper=spec.paper,
        layers=[_renamed(asdict(layer)) for layer in cost.layers],
        blocks=[dict(_renamed(asdict(b)), fcrf=b.fcrf, information_field=list(fields[b.name].size))
                for b in blocks],
        fcrf=all(b.fcrf for b in blocks),
    )


def _renamed(record: dict) -> dict:
    """`kind` (the layer's class) as `type`, the name the JSON output has always used, once."""
    return {("type" if key == "kind" else key): value for key, value in record.items()}
