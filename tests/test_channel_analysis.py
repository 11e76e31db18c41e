"""The channel dependency graph, derived from module structure, checked against an empirical method that
shares none of its code: perturb one input channel of a block at a time and see which outputs move."""

import copy

import pytest
import torch
from torch import nn

from clcdeploy.analysis.channels import analyse_channels, analysis_blocks, channel_dependency
from clcdeploy.errors import AnalysisError
from clcdeploy.zoo import create_model, list_models, model_spec
from clcdeploy.zoo.layers import IGC


def _randomise_batchnorm(model: nn.Module) -> nn.Module:
    """Random BN statistics, so that no BN is an identity."""
    generator = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.normal_(0, 0.5, generator=generator)
            module.running_var.uniform_(0.5, 2.0, generator=generator)
            module.weight.data.uniform_(0.5, 1.5, generator=generator)
            module.bias.data.normal_(0, 0.2, generator=generator)
    return model.double().eval()


def _block_inputs(model: nn.Module, size: int) -> dict[str, torch.Tensor]:
    seen = {}

    def record(name):
        def hook(_module, inputs):
            seen.setdefault(name, inputs[0].clone())
        return hook

    handles = [b.register_forward_pre_hook(record(n)) for n, b in analysis_blocks(model)]
    with torch.no_grad():
        model(torch.randn(1, 3, size, size, dtype=torch.float64, generator=torch.Generator().manual_seed(1)))
    for h in handles:
        h.remove()
    return seen


def _without_relu(block: nn.Module) -> nn.Module:
    """A copy whose ReLUs are identities: a dead ReLU would hide a dependency from the perturbation."""
    block = copy.deepcopy(block)
    for name, module in list(block.named_modules()):
        if isinstance(module, (nn.ReLU, nn.ReLU6)):
            parent = block.get_submodule(name.rpartition(".")[0]) if "." in name else block
            setattr(parent, name.rpartition(".")[2], nn.Identity())
    return block


def empirical_dependency(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """[out, in]: True where perturbing an input channel changes an output channel."""
    block = _without_relu(block)
    channels = x.shape[1]
    noise = torch.randn(x.shape[1:], dtype=x.dtype, generator=torch.Generator().manual_seed(2))
    moved = x.repeat(channels, 1, 1, 1)  # batch element c has input channel c perturbed
    moved[torch.arange(channels), torch.arange(channels)] += noise
    with torch.no_grad():
        change = (block(moved) - block(x)).abs().flatten(2).amax(2)  # [in, out]
    # Float64: an absent dependency changes nothing beyond rounding (~1e-16); real ones can be as weak as
    # ~1e-9 (a single path through three small random weights), so the threshold sits between the two.
    return (change > 1e-12).T


TINY = [n for n in list_models() if model_spec(n).tiny]


def _check_against_perturbation(model: nn.Module, size: int) -> None:
    inputs = _block_inputs(_randomise_batchnorm(model), size)
    for block_name, block in analysis_blocks(model):
        derived, _ = channel_dependency(block, inputs[block_name].shape[1])
        empirical = empirical_dependency(block, inputs[block_name])
        assert torch.equal(derived, empirical), block_name


@pytest.mark.parametrize("name", TINY)
def test_derived_dependency_matches_perturbation(name):
    _check_against_perturbation(create_model(name), model_spec(name).input_size)


class _UserNet(nn.Module):
    """A user's own network from the zoo's layers, with partial channel receptive fields, so the exact
    interlace permutation shows in the dependency pattern (not just an all-true matrix)."""

    def __init__(self):
        super().__init__()
        self.blocks = nn.Sequential(
            nn.Sequential(IGC(3, 12, 3), nn.BatchNorm2d(12), nn.Conv2d(12, 12, 1, groups=6), nn.ReLU()),
            nn.Sequential(IGC(12, 24, 6, stride=2), nn.BatchNorm2d(24), nn.Conv2d(24, 16, 1, groups=4),
                          nn.BatchNorm2d(16), nn.ReLU()),
        )

    def forward(self, x):
        return self.blocks(x)


def test_partial_receptive_fields_match_perturbation():
    model = _UserNet()
    _check_against_perturbation(model, 9)  # odd size, stride 2
    crfs = [b.crf for b in analyse_channels(model, 9)]
    assert crfs == [2, 12]  # IGC groups of 1 read in pairs by the GC; block 2: 6 groups x CRF 2


@pytest.mark.parametrize("name, fcrf", [("clcnet_a", True), ("clcnet_b", True), ("clcnet_ap", False),
                                        ("mobilenet_v1", True), ("shufflenet_v1_2x", True)])
def test_fcrf_verdict_per_block(name, fcrf):
    blocks = analyse_channels(create_model(name), 64)
    assert blocks and all(b.fcrf == fcrf for b in blocks), [(b.name, b.crf, b.in_channels) for b in blocks]


def test_clcnet_ap_crf_is_half_the_input():
    # Without the interlace, GC group k only sees the IGC groups it reads: L/g2 channels of M.
    blocks = analyse_channels(create_model("clcnet_ap"), 64)
    assert [b.crf for b in blocks] == [b.in_channels // 2 for b in blocks]


def test_igc_with_larger_crf_and_fcrf_boundary():
    # g1*g2 == L keeps FCRF (Eq. 1); g2 one step larger loses it.
    def block(g1, g2):
        return nn.Sequential(IGC(16, 16, g1), nn.BatchNorm2d(16), nn.Conv2d(16, 16, 1, groups=g2))
    full, _ = channel_dependency(block(4, 4), 16)
    partial, _ = channel_dependency(block(4, 8), 16)
    assert full.all() and int(partial.sum(1).min()) == 8


def test_unknown_layer_is_reported():
    class Odd(nn.Module):
        def forward(self, x):
            return torch.roll(x, 1, 1)
    with pytest.raises(AnalysisError, match="roll"):
        channel_dependency(Odd(), 4)
