"""A grouped convolution with 2-channel groups followed by a channel shuffle (clcNet's IGC written by hand, as
in the sparse-kernel nets of seed 004) is lowered like an IGC, also inside residual blocks, where the block
input feeds the lowered IGC's even/odd slices and the shortcut add."""

from __future__ import annotations

import operator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pte_checks import run_as_one_xnnpack_partition

from clcdeploy.export.passes import deployment_passes, recognise_igc
from clcdeploy.export.passes.eliminate_permutations import interleave_channels
from clcdeploy.zoo.layers import IGC, ChannelShuffle


class Block(nn.Module):
    """relu(x + BN(1x1 group conv(shuffle(BN(3x3 conv with 2-channel groups)(x)))))."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, groups=channels // 2, bias=False), nn.BatchNorm2d(channels),
            ChannelShuffle(channels, channels // 2),
            nn.Conv2d(channels, channels, 1, groups=2, bias=False), nn.BatchNorm2d(channels))
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(x + self.body(x))


def _net() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), Block(16), Block(16), nn.AdaptiveAvgPool2d(1),
                        nn.Flatten(), nn.Linear(16, 5))
    for bn in (m for m in net.modules() if isinstance(m, nn.BatchNorm2d)):
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.5, 0.5)
    return net.eval()


def test_shuffled_grouped_convs_become_igcs():
    net = _net()
    recognised = recognise_igc(net)
    assert sum(isinstance(m, IGC) for m in recognised.modules()) == 2
    assert not any(isinstance(m, ChannelShuffle) for m in recognised.modules())
    x = torch.randn(2, 3, 9, 7)
    with torch.no_grad():
        assert torch.allclose(recognised(x), net(x), atol=1e-6)


def test_residual_blocks_lower_without_tiny_groups_or_permutations():
    net, x = _net().double(), torch.randn(1, 3, 9, 7, dtype=torch.float64)
    deployed = deployment_passes(net, x)
    with torch.no_grad():
        assert torch.allclose(deployed(x), net(x), rtol=0, atol=1e-10)
    convs = [deployed.get_submodule(n.target) for n in deployed.graph.nodes if n.op == "call_module"
             and isinstance(deployed.get_submodule(n.target), nn.Conv2d)]
    assert all(c.groups in (1, c.in_channels) for c in convs)  # dense or depthwise, no 2-channel groups
    strided = [n for n in deployed.graph.nodes if n.target is operator.getitem
               and isinstance(n.args[1], tuple) and n.args[1][1].step]
    assert not strided
    # The residual stream runs as even/odd halves; only the last block's sum is interleaved back whole (for
    # the pool and the classifier, which read it whole).
    assert sum(n.target is interleave_channels for n in deployed.graph.nodes) == 1
    as_written = deployment_passes(net, x, handwritten_igc="grouped")
    assert any(isinstance(m, nn.Conv2d) and m.groups == 8 for m in as_written.modules())


def test_the_lowered_residual_net_is_one_xnnpack_partition(tmp_path: Path):
    net, x = _net(), torch.randn(1, 3, 16, 16)
    got = run_as_one_xnnpack_partition(deployment_passes(net, x), x, tmp_path / "net.pte")
    with torch.no_grad():
        assert np.abs(got - net(x).numpy()).max() < 1e-4
