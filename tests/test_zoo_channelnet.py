"""ChannelNets (seeds/002): shapes, the channel-wise convolutions' lowering and connectivity, bad configs."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from clcdeploy.errors import ConfigurationError
from clcdeploy.zoo import create_model, list_models, model_spec
from clcdeploy.zoo.channelnet import GCWM, GM, ChannelWiseConv, ConvClassifier, DWSCWConv

CHANNELNETS = [n for n in list_models() if model_spec(n).family == "channelnet"]


def _randomise(module: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights and BN statistics, so no dependency hides behind a zero or a constant."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.rand(p.shape, generator=gen) + 0.5)
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen))
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
    return module.eval()


def _linearised(module: nn.Module) -> nn.Module:
    """A copy with every activation replaced by the identity: perturbations then always propagate."""
    module = copy.deepcopy(module)
    for name, child in list(module.named_modules()):
        if isinstance(child, (nn.ReLU, nn.ReLU6)):
            parent = module.get_submodule(name.rpartition(".")[0]) if "." in name else module
            setattr(parent, name.rpartition(".")[2], nn.Identity())
    return module


def _empirical_connectivity(module: nn.Module, in_channels: int, size: int) -> torch.Tensor:
    """[out, in]: does perturbing input channel c change output channel o anywhere?"""
    x = torch.randn(1, in_channels, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        base = module(x)
        columns = []
        for c in range(in_channels):
            bumped = x.clone()
            bumped[:, c] += 1.0
            diff = (module(bumped) - base).abs()
            columns.append(diff.reshape(diff.shape[0], diff.shape[1], -1).amax(dim=(0, 2)) > 1e-6)
    return torch.stack(columns, dim=1)


def _tiny():
    return _randomise(create_model("channelnet_tiny"))


def test_registry_has_the_three_versions_and_a_tiny_variant():
    assert {"channelnet_v1", "channelnet_v2", "channelnet_v3", "channelnet_tiny"} <= set(CHANNELNETS)
    assert model_spec("channelnet_tiny").tiny and model_spec("channelnet_tiny").input_size == 32
    assert all(model_spec(n).paper == "002_cce4fba1ebea6d39.txt" for n in CHANNELNETS)


@pytest.mark.parametrize("name", CHANNELNETS)
def test_forward_gives_one_logit_per_class(name):
    model = create_model(name)
    size = model_spec(name).input_size
    with torch.no_grad():
        out = model(torch.randn(1, 3, size, size))
    assert out.shape == (1, model.config["num_classes"])
    assert torch.isfinite(out).all()


def test_tiny_variant_exercises_every_special_layer():
    kinds = {type(m) for m in create_model("channelnet_tiny").modules()}
    assert {GM, GCWM, DWSCWConv, ConvClassifier} <= kinds
    fusions = [m for m in create_model("channelnet_tiny").modules() if isinstance(m, ChannelWiseConv)]
    assert {m.groups for m in fusions} == {1, 2}  # plain and group channel-wise convolutions


@pytest.mark.parametrize("channels,kernel,groups", [(16, 8, 2), (12, 3, 3), (16, 16, 1), (10, 3, 1), (9, 4, 1)])
def test_channel_wise_conv_equals_the_papers_3d_convolution(channels, kernel, groups):
    layer = _randomise(ChannelWiseConv(channels, kernel, groups))
    x = torch.randn(2, channels, 5, 3)
    before, after = layer.pad
    weight = layer.conv.weight.reshape(groups, 1, kernel, 1, 1)
    padded = F.pad(x.unsqueeze(1), (0, 0, 0, 0, before, after))
    reference = F.conv3d(padded, weight, stride=(groups, 1, 1)).reshape(2, channels, 5, 3)
    torch.testing.assert_close(layer(x), reference)


def test_conv_classifier_equals_the_papers_3d_convolution():
    layer = _randomise(ConvClassifier(in_channels=20, num_classes=6, spatial=3))
    x = torch.randn(2, 20, 3, 3)
    reference = F.conv3d(x.unsqueeze(1), layer.conv.weight.reshape(1, 1, 15, 3, 3)).reshape(2, 6)
    torch.testing.assert_close(layer(x), reference)


def test_channel_connectivity_of_the_special_layers_matches_perturbation():
    model = _tiny()
    special = [m for m in model.modules() if hasattr(m, "channel_connectivity")]
    assert len(special) == 4  # two group channel-wise convs, one channel-wise conv, the CCL
    for layer in special:
        in_channels = layer.in_channels if isinstance(layer, ConvClassifier) else layer.channels
        size = layer.spatial if isinstance(layer, ConvClassifier) else 3
        declared = layer.channel_connectivity()
        assert declared.dtype == torch.bool
        if isinstance(layer, ConvClassifier):
            x = torch.randn(1, in_channels, size, size)
            with torch.no_grad():
                base = layer(x)
                cols = []
                for c in range(in_channels):
                    bumped = x.clone()
                    bumped[:, c] += 1.0
                    cols.append((layer(bumped) - base).abs()[0] > 1e-6)
            empirical = torch.stack(cols, dim=1)
        else:
            empirical = _empirical_connectivity(layer, in_channels, size)
        assert torch.equal(declared, empirical), type(layer).__name__


def test_block_channel_dependency_matches_perturbation():
    """Every block of the tiny model, through the project's structural analysis, against perturbation."""
    from clcdeploy.analysis.channels import analyse_channels, channel_dependency

    model = _tiny()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        x = model.stem(x)
        for index, block in enumerate(model.blocks):
            in_channels, size = x.shape[1], x.shape[2]
            declared = channel_dependency(block, in_channels)
            if isinstance(declared, tuple):  # (matrix, computed-channels) in newer versions of the analysis
                declared = declared[0]
            empirical = _empirical_connectivity(_linearised(block), in_channels, size)
            assert torch.equal(declared, empirical), f"block {index} ({type(block).__name__})"
            x = block(x)
    verdicts = {b.name: b for b in analyse_channels(model, 32)}
    # GM and GCWM: the 1x1 group convs keep each output within its group (plus the residual channel).
    assert [verdicts[f"blocks.{i}"].kind for i in (6, 7, 8)] == ["GCWM", "GCWM", "GM"]
    gm = verdicts["blocks.8"]
    assert not gm.fcrf and gm.crf == gm.in_channels // 2


def test_group_channel_wise_convolutions_add_32_parameters_to_v1():
    """Table 3: ChannelNet-v1 has 32 parameters more than ChannelNet-v1(-) (two GCWMs -> GMs)."""
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(create_model("channelnet_v1")) - count(create_model("channelnet_v1", gcw_kernel=None)) == 32


def test_channel_wise_costs_follow_the_paper():
    from clcdeploy.analysis.cost import count_costs

    gcw = count_costs(ChannelWiseConv(512, 8, groups=2), 14, in_channels=512)
    assert (gcw.macs, gcw.params) == (8 * 512 * 14 * 14, 16)  # d_c * n * d_f^2, d_c * g
    cw = count_costs(ChannelWiseConv(1024, 16), 7, in_channels=1024)
    assert (cw.macs, cw.params) == (16 * 1024 * 7 * 7, 16)
    ccl = create_model("channelnet_v3").classifier
    assert ccl.conv.weight.numel() == 7 * 7 * 25  # Sec. 3.4: d_f x d_f x (m - n + 1)


@pytest.mark.parametrize(
    "name,overrides,word",
    [
        ("channelnet_v1", {"groups": 3}, "groups"),
        ("channelnet_v1", {"groups": 4, "gcw_kernel": 2}, "gcw_kernel"),
        ("channelnet_v1", {"width": 0}, "width"),
        ("channelnet_v2", {"dwscw_kernel": 0}, "dwscw_kernel"),
        ("channelnet_tiny", {"dwscw_kernel": 1000}, "dwscw_kernel"),
        ("channelnet_v3", {"num_classes": 2000}, "num_classes"),
        ("channelnet_v1", {"num_classes": 0}, "num_classes"),
        ("channelnet_v3", {"input_size": 0}, "input_size"),
        ("channelnet_v1", {"no_such_option": 1}, "no_such_option"),
    ],
)
def test_invalid_configuration_names_the_parameter(name, overrides, word):
    with pytest.raises(ConfigurationError, match=word):
        create_model(name, **overrides)


def test_conv_classifier_rejects_an_input_size_it_was_not_built_for():
    model = create_model("channelnet_tiny")
    with torch.no_grad(), pytest.raises(ConfigurationError, match="input_size"):
        model(torch.randn(1, 3, 64, 64))
    assert create_model("channelnet_tiny", input_size=64)(torch.randn(1, 3, 64, 64)).shape == (1, 10)
