"""Each deployment rewrite is exact (max abs diff <= 1e-5) over random clcNet configurations and user modules."""

from __future__ import annotations

import random

import pytest
import torch
from torch import nn

from clcdeploy.export.passes import deployment_passes, eliminate_permutations, fold_batchnorm, lower_igc
from clcdeploy.export.weights import random_weights
from clcdeploy.zoo import create_model
from clcdeploy.zoo.clcnet import ClcNet
from clcdeploy.zoo.layers import IGC, ChannelShuffle

ATOL = 1e-5  # the bound; the comparison runs in float64 so only a wrong rewrite can exceed it


def _random_clcnet(rng: random.Random) -> tuple[nn.Module, int]:
    crf = rng.choice([1, 2, 2, 4])
    g2 = rng.choice([1, 2, 2, 4])
    reps = [rng.randint(0, 2) for _ in range(4)]
    width = rng.choice([0.125, 0.25])
    interlace = rng.random() < 0.8
    if interlace:  # keep the full channel receptive field (g1*g2 <= L) for the smallest block
        g2 = min(g2, crf * 2)
    model = ClcNet(*reps, width=width, crf=crf, g2=g2, interlace=interlace, num_classes=7)
    random_weights(model, seed=rng.randint(0, 1000))
    return model.double().eval(), rng.choice([32, 33, 37, 40, 45])


def _diff(a: nn.Module, b: nn.Module, x: torch.Tensor) -> float:
    with torch.no_grad():
        return (a(x) - b(x)).abs().max().item()


class UserNet(nn.Module):
    """A user's own module from zoo layers, with a forward that is not a Sequential chain."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 12, 3, 2, 1)
        self.bn0 = nn.BatchNorm2d(12)
        self.pool = nn.MaxPool2d(3, 1, 1)
        self.igc = IGC(12, 12, groups=6, stride=2)  # CRF 2, stride 2
        self.bn1 = nn.BatchNorm2d(12)
        self.gc = nn.Conv2d(12, 24, 1, groups=3, bias=False)  # three groups of four channels
        self.igc4 = IGC(24, 24, groups=6)  # CRF 4: stays grouped + interlace
        self.igc_wide = IGC(24, 48, groups=12)  # CRF 2, four outputs per group
        self.shuffle = ChannelShuffle(48, 4)
        self.head = nn.Linear(48, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pool(torch.relu(self.bn0(self.stem(x))))
        y = self.gc(self.bn1(self.igc(y)))
        y = torch.relu(y) + 0.5 * y  # two users of one tensor
        y = self.shuffle(self.igc_wide(self.igc4(y)))
        return self.head(y.mean((2, 3)))


@pytest.mark.parametrize("seed", range(8))
def test_each_pass_is_exact_on_random_clcnets(seed: int) -> None:
    rng = random.Random(seed)
    model, size = _random_clcnet(rng)
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    folded = fold_batchnorm(model)
    assert _diff(model, folded, x) <= ATOL
    for variant in ("split", "swap"):
        lowered = lower_igc(folded, variant=variant)
        assert _diff(model, lowered, x) <= ATOL
    unpermuted = eliminate_permutations(lower_igc(folded), x)
    assert _diff(model, unpermuted, x) <= ATOL
    assert _diff(model, lower_igc(model), x) <= ATOL  # lowering without folding first


def test_passes_are_exact_on_a_user_module_with_stride_2_and_odd_sizes() -> None:
    model = UserNet()
    random_weights(model, seed=3)
    model.double().eval()
    for size in (17, 23):
        x = torch.randn(1, 3, size, size, dtype=torch.float64)
        assert _diff(model, deployment_passes(model, x), x) <= ATOL
        assert _diff(model, deployment_passes(model, x, igc_lowering="swap"), x) <= ATOL


def _modules(gm: nn.Module, kind: type) -> list[nn.Module]:
    return [m for m in gm.modules() if isinstance(m, kind)]


def test_fold_batchnorm_removes_every_batchnorm_after_a_conv() -> None:
    model = create_model("clcnet_tiny")
    folded = fold_batchnorm(model)
    assert not _modules(folded, nn.BatchNorm2d)
    assert _modules(model, nn.BatchNorm2d)  # the original is untouched


def test_split_lowering_leaves_only_depthwise_and_dense_convs_on_clcnet() -> None:
    model = create_model("clcnet_tiny")
    random_weights(model)
    x = torch.randn(1, 3, 32, 32)
    deployed = deployment_passes(model, x)
    convs = _modules(deployed, nn.Conv2d)
    assert not _modules(deployed, IGC)
    assert all(c.groups == 1 or c.groups == c.in_channels == c.out_channels for c in convs)
    code = deployed.code
    assert "getitem" not in code and "interlace" not in code  # no strided slice, no permutation left
    assert _diff(model, deployed, x) <= ATOL


def test_large_crf_igc_keeps_grouped_conv_and_interlace() -> None:
    model = nn.Sequential(IGC(16, 16, groups=4), nn.ReLU())  # CRF 4
    lowered = lower_igc(model)
    assert len(_modules(lowered, IGC)) == 1
    x = torch.randn(1, 16, 9, 9)
    assert _diff(model, lowered, x) == 0.0


def test_swap_lowering_uses_two_depthwise_convs_and_an_interlace() -> None:
    model = nn.Sequential(IGC(8, 8, groups=4, stride=2))
    lowered = lower_igc(model, variant="swap")
    convs = _modules(lowered, nn.Conv2d)
    assert len(convs) == 2 and all(c.groups == 8 for c in convs)
    assert "interlace" in lowered.code and "swap_pairs" in lowered.code
    x = torch.randn(1, 8, 11, 11)
    assert _diff(model, lowered, x) <= ATOL


def test_a_wrong_rewrite_is_detected_by_the_exactness_check() -> None:
    """Guard for the tests above: swapping two depthwise weights must change the output."""
    model = nn.Sequential(IGC(8, 8, groups=4))
    random_weights(model)
    lowered = lower_igc(model)
    dws = _modules(lowered, nn.Conv2d)
    with torch.no_grad():
        dws[0].weight[[0, 1]] = dws[0].weight[[1, 0]].clone()
    assert _diff(model, lowered, torch.randn(1, 8, 7, 7)) > ATOL


class BranchyNet(nn.Module):
    """fx cannot trace this forward (it branches on a shape); its children can be rewritten one by one."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1), nn.BatchNorm2d(8), nn.ReLU(), IGC(8, 8, groups=4),
                                  nn.BatchNorm2d(8))
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        if y.shape[-1] > 4:
            y = y[..., ::2]
        return self.head(y.mean((2, 3)))


def test_untraceable_model_is_rewritten_child_by_child() -> None:
    model = BranchyNet()
    random_weights(model, seed=5)
    model.double().eval()
    x = torch.randn(1, 3, 11, 11, dtype=torch.float64)
    deployed = deployment_passes(model, x)
    assert not _modules(deployed, IGC) and not _modules(deployed, nn.BatchNorm2d)
    assert _diff(model, deployed, x) <= ATOL
