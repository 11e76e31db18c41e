"""Spatial grouped convolutions with 2-4 channels per group between dense convolutions (seed 004's pw-gconv-pw
blocks, and clcNet-Ap's paths) are exported as depthwise convolutions: exact, no small groups, slice or
interleave left, one XNNPACK partition; elsewhere (a shuffle behind, a residual stream in front, more channels
per group) they stay."""

from __future__ import annotations

import copy
import operator
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from pte_checks import run_as_one_xnnpack_partition

from clcdeploy.export import tflite_format
from clcdeploy.export.passes import deployment_passes, eliminate_permutations, fold_batchnorm, lower_grouped_convs
from clcdeploy.export.passes.eliminate_permutations import interleave_channels
from clcdeploy.export.weights import random_weights
from clcdeploy.zoo import create_model
from clcdeploy.zoo.layers import ChannelShuffle


def _randomised(net: nn.Module, seed: int, input_size: int | None = None) -> nn.Module:
    random_weights(net, seed=seed, input_size=input_size)  # random BN statistics: folding them is tested too
    return net.eval()


def _pw_gconv_pw(per_group: int, out_per_group: int, stride: int = 1, bias: bool = True) -> nn.Module:
    """1x1 conv -> BN -> ReLU -> 3x3 grouped conv -> ReLU -> 1x1 conv, 12 channels in the middle."""
    groups = 12 // per_group
    return _randomised(nn.Sequential(
        nn.Conv2d(5, 12, 1), nn.BatchNorm2d(12), nn.ReLU(),
        nn.Conv2d(12, groups * out_per_group, 3, stride, padding=1, groups=groups, bias=bias), nn.ReLU(),
        nn.Conv2d(groups * out_per_group, 7, 1)), seed=per_group * 10 + out_per_group + stride)


def _convs(gm: nn.Module) -> list[nn.Conv2d]:
    return [m for m in gm.modules() if type(m) is nn.Conv2d]


def _lowered(net: nn.Module, x: torch.Tensor) -> nn.Module:
    return eliminate_permutations(lower_grouped_convs(fold_batchnorm(net)), x)


@pytest.mark.parametrize(("per_group", "out_per_group", "stride", "bias"),
                         [(2, 2, 1, True), (3, 3, 2, False), (4, 4, 1, True), (2, 4, 2, True), (4, 2, 1, False)])
def test_small_groups_become_depthwise_convolutions_exactly(per_group, out_per_group, stride, bias):
    net = _pw_gconv_pw(per_group, out_per_group, stride, bias).double()
    x = torch.randn(2, 5, 9, 8, dtype=torch.float64)
    lowered = _lowered(net, x)
    with torch.no_grad():
        assert torch.allclose(lowered(x), net(x), rtol=0, atol=1e-10)
    assert all(c.groups in (1, c.in_channels) for c in _convs(lowered))  # dense or depthwise only
    assert sum(c.groups > 1 for c in _convs(lowered)) == per_group * out_per_group
    # The producer emits the slices, the consumer reads the parts: no strided slice or interleave is left.
    assert not any(n.target is operator.getitem or n.target is interleave_channels for n in lowered.graph.nodes)


def test_grouped_convs_stay_where_lowering_would_not_pay():
    x = torch.randn(1, 8, 6, 6)
    eight_per_group = nn.Sequential(nn.Conv2d(8, 16, 1), nn.Conv2d(16, 16, 3, padding=1, groups=2),
                                    nn.Conv2d(16, 4, 1)).eval()
    pointwise = nn.Sequential(nn.Conv2d(8, 16, 1), nn.Conv2d(16, 16, 1, groups=8), nn.Conv2d(16, 4, 1)).eval()
    from_input = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=4), nn.Conv2d(8, 4, 1)).eval()
    shuffled = nn.Sequential(nn.Conv2d(8, 16, 1), nn.Conv2d(16, 16, 3, padding=1, groups=4),
                             ChannelShuffle(16, 4), nn.Conv2d(16, 4, 1)).eval()
    for net in (eight_per_group, pointwise, from_input, shuffled):
        lowered = lower_grouped_convs(net)
        assert [c.groups for c in _convs(lowered)] == [c.groups for c in _convs(net)]


def _tiny_pw_gconv_pw() -> nn.Module:
    # 8 groups of 1, 2, 4 and 8 bottleneck channels in the four stages
    return _randomised(create_model("sk_pw_gconv_pw_tiny"), seed=0, input_size=32)  # logits of order one


def _per_group(gm: nn.Module) -> list[int]:
    """Input channels per group of the spatial grouped (not depthwise) convolutions."""
    return sorted(c.in_channels // c.groups for c in _convs(gm)
                  if 1 < c.groups < c.in_channels and c.kernel_size != (1, 1))


def test_the_export_default_lowers_a_sparse_kernel_net_and_the_option_keeps_it():
    net, x = _tiny_pw_gconv_pw(), torch.randn(1, 3, 32, 32)
    assert _per_group(net) == [2, 4, 8]
    deployed = deployment_passes(net, x)
    assert _per_group(deployed) == [8]
    with torch.no_grad():
        assert torch.allclose(deployed(x), net(x), rtol=0, atol=1e-5)
    as_written = deployment_passes(net, x, small_groups="grouped")
    assert _per_group(as_written) == [2, 4, 8]
    with pytest.raises(ValueError, match="small-group lowering"):
        deployment_passes(net, x, small_groups="dense")


def test_the_lowered_sparse_kernel_net_runs_in_one_xnnpack_partition(tmp_path: Path):
    net, x = _tiny_pw_gconv_pw(), torch.randn(1, 3, 32, 32)
    deployed = deployment_passes(net, x)
    with torch.no_grad():
        expected = net(x).numpy()
    tflite = tmp_path / "net.tflite"
    assert np.abs(run_as_one_xnnpack_partition(deployed, x, tmp_path / "net.pte") - expected).max() < 1e-4
    tflite_format.export(deployed, x, tflite)
    assert np.abs(tflite_format.run(tflite, x.numpy()) - expected).max() < 1e-4


def test_clcnet_ap_runs_as_two_parallel_paths_without_small_groups(tmp_path: Path):
    """clcNet-Ap (no interlace): each grouped 3x3 conv with 2-channel groups feeds a 2-group 1x1 conv, so the
    network splits into two paths of depthwise and dense convolutions."""
    net = _randomised(create_model("clcnet_ap_tiny"), seed=0, input_size=32)
    x = torch.randn(1, 3, 32, 32)
    exact, x64 = copy.deepcopy(net).double(), x.double()
    deployed = deployment_passes(exact, x64)
    with torch.no_grad():
        assert torch.allclose(deployed(x64), exact(x64), rtol=0, atol=1e-10)
    assert all(c.groups in (1, c.in_channels) for c in _convs(deployed))
    assert not any(n.target is operator.getitem or n.target is interleave_channels for n in deployed.graph.nodes)
    as_written = deployment_passes(net, x, small_groups="grouped")
    assert any(1 < c.groups < c.in_channels and c.kernel_size == (3, 3) for c in _convs(as_written))
    got = run_as_one_xnnpack_partition(deployment_passes(net, x), x, tmp_path / "clcnet_ap_tiny.pte")
    with torch.no_grad():
        assert np.abs(got - net(x).numpy()).max() < 1e-4


class _UnevenConcat(nn.Module):
    """relu(cat(6 channels, 10 channels)) -> 3x3 conv with 2-channel groups -> 2-group 1x1 conv: the concat's
    pieces do not match the consumer's groups, so they must not be taken as its paths."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 6, 1), nn.Conv2d(3, 10, 1)
        self.small = nn.Conv2d(16, 16, 3, padding=1, groups=8)
        self.gc = nn.Conv2d(16, 8, 1, groups=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gc(self.small(torch.relu(torch.cat([self.a(x), self.b(x)], 1))))


def test_a_concat_that_does_not_match_the_consumer_groups_is_not_split():
    net = _randomised(_UnevenConcat(), seed=3).double()
    x = torch.randn(1, 3, 7, 7, dtype=torch.float64)
    deployed = deployment_passes(net, x)
    with torch.no_grad():
        assert torch.allclose(deployed(x), net(x), rtol=0, atol=1e-10)
    assert any(c.groups == 2 and c.out_channels == 8 for c in _convs(deployed))  # no paths split
