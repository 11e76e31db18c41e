"""SIC layers, topological subdivisioning and the spatial bottleneck (seeds/003): models A-K must reproduce
the paper's per-stage complexity ratios (Tables 3, 5, 6) and its Table 2, recomputed from the built layers."""

from fractions import Fraction

import pytest
import torch
import torch.nn.functional as F

from clcdeploy.analysis.cost import count_costs
from clcdeploy.errors import ConfigurationError
from clcdeploy.zoo import _registry, create_model, list_models, model_spec
from clcdeploy.zoo import sic
from clcdeploy.zoo.sic import MODELS, DepthwiseDeconv, ResidualLayer, TopologicalConv, Transition, topological_index

# Table 1: spatial size of stages 2-4 at the paper's 221x221 input.
STAGE_SIZES = (36, 18, 6)


def _stage_layer_costs(model):
    """Per stage: (all mult-adds, mult-adds of the channel-mixing convs) of its substituted layers, each
    layer counted with `count_costs` at the stage's resolution (identical layers are counted once)."""
    totals, cache, stage = [], {}, -1
    for block in model.blocks:
        if isinstance(block, Transition):
            stage += 1
            totals.append([0, 0])
            continue
        assert isinstance(block, ResidualLayer)
        channels = block.body[0].in_channels if hasattr(block.body[0], "in_channels") else block.body[0].channels
        key = (repr(block), STAGE_SIZES[stage])
        if key not in cache:
            report = count_costs(block, STAGE_SIZES[stage], in_channels=channels)
            mixing = sum(layer.macs for layer, module in zip(report.layers, _leaf_convs_in_call_order(block, report))
                         if module is not None and module.groups != module.in_channels)
            cache[key] = (report.macs, mixing)
        totals[stage][0] += cache[key][0]
        totals[stage][1] += cache[key][1]
    return totals


def _leaf_convs_in_call_order(block, report):
    modules = dict(block.named_modules())
    return [modules[layer.name] if layer.kind == "Conv2d" else None for layer in report.layers]


@pytest.fixture(scope="module")
def stage_costs():
    return {letter: _stage_layer_costs(sic._paper_model(letter)) for letter in MODELS}


@pytest.mark.parametrize("letter", [l for l in MODELS if l not in ("a", "j", "k")])
def test_channel_mixing_cost_matches_paper_complexity_ratio_exactly(letter, stage_costs):
    """The paper's ratios count the channel-mixing convolutions (n^2 terms); they hold exactly per stage."""
    for stage, (base, model) in enumerate(zip(stage_costs["a"], stage_costs[letter])):
        assert Fraction(model[1], base[1]) == MODELS[letter]["complexity"], f"model {letter.upper()} stage {stage + 2}"


@pytest.mark.parametrize("letter", [l for l in MODELS if l != "a"])
def test_total_cost_is_near_paper_complexity_ratio(letter, stage_costs):
    """The intra-channel convolutions (and the padded bottleneck layers of J and K) only add to the paper's
    approximate ("~") complexity: the ratio over the three stages is at most 25% above it."""
    model = sum(stage[0] for stage in stage_costs[letter])
    base = sum(stage[0] for stage in stage_costs["a"])
    nominal = float(MODELS[letter]["complexity"])
    assert nominal <= model / base <= 1.25 * nominal


def test_spatial_bottleneck_halves_the_sic_cost_as_in_table_6(stage_costs):
    """J replaces every other SIC layer by two bottleneck layers (-25%), K all of them (-50%); Table 6."""
    c, j, k = (sum(s[0] for s in stage_costs[x]) for x in "cjk")
    assert j / c == pytest.approx(0.75, abs=0.06)
    assert k / c == pytest.approx(0.5, abs=0.08)


def test_model_c_splits_sic_computation_as_table_2(stage_costs):
    """Table 2: intra-channel convolution 6.6%, 3.4%, 1.7% of the SIC layer in stages 2, 3, 4."""
    shares = [1 - mixing / total for total, mixing in stage_costs["c"]]
    assert [round(100 * s, 1) for s in shares] == [6.6, 3.4, 1.7]


def test_layer_counts_per_stage_follow_tables_3_5_6():
    expected = dict(a=2, b=2, c=4, d=4, e=6, f=4, g=4, h=4, i=8, j=6, k=8)
    for letter, count in expected.items():
        assert len(MODELS[letter]["pattern"]) == count


def test_registered_models_name_seed_003():
    for letter in MODELS:
        spec = model_spec(f"sic_{letter}")
        assert spec.paper == _registry.SEED_SIC and spec.input_size == 221 and not spec.tiny
    assert {"sic_c_tiny", "sic_i_tiny", "sic_j_tiny"} <= set(list_models(include_tiny=True))


@pytest.mark.parametrize("letter", ["a", "k"])
def test_paper_models_run_at_221(letter):
    model = create_model(f"sic_{letter}")
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 221, 221)).shape == (1, 1000)


@pytest.mark.parametrize("name", ["sic_c_tiny", "sic_i_tiny", "sic_j_tiny"])
def test_tiny_models_run_and_are_cheap(name):
    model = create_model(name)
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    cost = count_costs(model, 32)
    assert cost.params < 100_000 and cost.macs < 20_000_000


def test_topological_index_follows_algorithm_3():
    rows = topological_index((4, 8), (2, 3))
    assert len(rows) == 32 and all(len(r) == 6 for r in rows)
    # Output (j1, j2) = (3, 7) wraps around in both dimensions.
    assert sorted(rows[3 * 8 + 7]) == sorted(((3 + i1) % 4) * 8 + (7 + i2) % 8 for i1 in range(2) for i2 in range(3))


def test_topological_conv_equals_masked_dense_convolution():
    torch.manual_seed(0)
    layer = TopologicalConv((2, 4, 2), (2, 3, 1), kernel_size=3)
    x = torch.randn(1, 16, 5, 5)
    dense = torch.zeros(16, 16, 3, 3)
    for out, inputs in enumerate(topological_index((2, 4, 2), (2, 3, 1))):
        for slot, channel in enumerate(inputs):
            dense[out, channel] = layer.conv.weight[out, slot]
    assert torch.allclose(layer(x), F.conv2d(x, dense, padding=1), atol=1e-5)
    assert torch.equal(layer.channel_connectivity(), dense.abs().sum((2, 3)) > 0)
    # Its cost is the dense cost times c / n.
    assert count_costs(layer, 5, in_channels=16).macs == 16 * 6 * 9 * 25


def test_depthwise_deconv_equals_transposed_convolution():
    torch.manual_seed(0)
    layer = DepthwiseDeconv(6, 2)
    x = torch.randn(1, 6, 3, 4)
    expected = F.conv_transpose2d(x, layer.transposed_weight(), stride=2, groups=6)
    assert torch.allclose(layer(x), expected, atol=1e-6)


@pytest.mark.parametrize("kwargs, word", [
    (dict(pattern=("sic", "conv")), "pattern"),
    (dict(pattern=("topo",)), "topology"),
    (dict(pattern=("topo",), topology={128: ((8, 8), (4, 4)), 256: ((16, 16), (8, 8)), 512: ((16, 32), (8, 8))}),
     "multiply"),
    (dict(pattern=("sic",), kernel_size=4), "kernel_size"),
    (dict(pattern=("grouped",), groups=3), "groups"),
    (dict(pattern=("sb0",), bottleneck=1), "bottleneck"),
    (dict(pattern=("topo",), topology={128: ((8, 16), (9, 8))}), "neighbourhood"),
])
def test_bad_configurations_name_the_parameter(kwargs, word):
    with pytest.raises(ConfigurationError, match=word):
        sic.SICNet(**kwargs)
