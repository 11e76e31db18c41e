"""Information field (seeds/004, Definition 1): derived from kernel sizes/strides/dilations and the channel
dependency graph, checked against the paper's InfoSize column and against the Jacobian of real blocks."""

import pytest
import torch
from torch import nn

from clcdeploy.analysis.channels import analyse_channels
from clcdeploy.analysis.information_field import analyse_information_field, information_field, spatial_field
from clcdeploy.errors import AnalysisError
from clcdeploy.zoo import create_model
from clcdeploy.zoo import sic
from clcdeploy.zoo.layers import ChannelShuffle
from clcdeploy.zoo.sparse_kernel import PAPER_TABLES, SparseKernelBlock


def _empirical_field(block: nn.Module, in_channels: int, size: int = 11) -> tuple[int, int, int]:
    """(height, width, channels) of the input an output activation at the centre depends on, read off the
    gradient of every output channel at that pixel (smallest channel count, largest spatial box)."""
    block = block.eval().double()
    for p in block.parameters():  # avoid accidental zeros
        nn.init.uniform_(p, 0.5, 1.5)
    # Positive weights and inputs keep every ReLU open, so no dependency hides behind a zero gradient.
    x = (torch.rand(1, in_channels, size, size, dtype=torch.float64) + 0.1).requires_grad_()
    y = block(x)
    cy, cx = y.shape[2] // 2, y.shape[3] // 2
    heights, widths, channels = [], [], []
    for c in range(y.shape[1]):
        (grad,) = torch.autograd.grad(y[0, c, cy, cx], x, retain_graph=True)
        mask = grad[0] != 0
        if not mask.any():
            continue
        rows, cols = mask.any(0).any(1).nonzero(), mask.any(0).any(0).nonzero()
        heights.append(int(rows.max() - rows.min() + 1))
        widths.append(int(cols.max() - cols.min() + 1))
        channels.append(int(mask.any(2).any(1).sum()))
    return max(heights), max(widths), min(channels)


@pytest.mark.parametrize("name", sorted(PAPER_TABLES))
def test_first_stage_blocks_have_the_papers_infosize(name):
    """Tables 2-4: InfoSize (3, 3, Width) with regard to the input of the first stage, for every design."""
    with torch.device("meta"):
        model = create_model(name)
    expected = PAPER_TABLES[name][4]
    width = model.config["width"]
    for index in range(model.config["blocks"][0]):
        field = information_field(model.blocks[index], width)
        assert field.size == expected, f"{name} block {index}: {field.size}, paper {expected}"


@pytest.mark.parametrize("design, extra", [
    ("standard", {}), ("dw_pw", {}), ("gconv_pwgconv", {"groups": 4, "groups2": 4}),
    ("pw_gconv_pw", {"groups": 4}), ("pw_dw_pw", {}), ("pwgconv_dw_pwgconv", {"groups": 2, "groups2": 2}),
])
@pytest.mark.parametrize("stride", [1, 2])
def test_derived_field_matches_the_jacobian_of_sparse_kernel_blocks(design, extra, stride):
    block = SparseKernelBlock(design, 16, 16 * stride, stride, **extra)
    derived = information_field(block, 16).size
    assert derived == _empirical_field(block, 16) == (3, 3, 16)


def test_designs_the_scheme_removes_have_a_smaller_field():
    """A lone depthwise conv sees one channel; GConv(M)+PWGConv(N) with M*N > C loses channels (Sec. 3)."""
    assert information_field(nn.Sequential(nn.Conv2d(16, 16, 3, padding=1, groups=16)), 16).size == (3, 3, 1)
    block = SparseKernelBlock("gconv_pwgconv", 16, 16, groups=4, groups2=8)
    assert information_field(block.body, 16).channels == _empirical_field(block.body, 16)[2] == 8
    no_shuffle = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1, groups=4), nn.Conv2d(16, 16, 1, groups=4))
    assert information_field(no_shuffle, 16).size == (3, 3, 4)


@pytest.mark.parametrize("layers, expected", [
    ([nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)], (5, 5)),
    ([nn.Conv2d(4, 4, 3, stride=2, padding=1), nn.Conv2d(4, 4, 3, padding=1)], (7, 7)),
    ([nn.Conv2d(4, 4, 3, padding=2, dilation=2)], (5, 5)),
    ([nn.Conv2d(4, 4, (1, 5), padding=(0, 2)), nn.AvgPool2d(2, 2)], (2, 6)),
    ([ChannelShuffle(4, 2), nn.Conv2d(4, 4, 1)], (1, 1)),
])
def test_spatial_extent_grows_with_kernels_strides_and_dilations(layers, expected):
    block = nn.Sequential(*layers)
    assert spatial_field(block) == expected
    assert _empirical_field(block, 4, size=15)[:2] == expected


@pytest.mark.parametrize("name", ["sic_c_tiny", "sic_i_tiny", "sic_j_tiny"])
def test_derived_field_matches_the_jacobian_of_sic_layers(name):
    model = create_model(name)
    for field, block in zip(analyse_information_field(model, 32), model.blocks):
        if isinstance(block, sic.ResidualLayer):
            assert field.size == _empirical_field(block, field.in_channels, size=12), field.name


def test_spatial_bottleneck_sees_one_stride_cell():
    layer = sic.make_layer("sb1", 8, bottleneck=2)
    assert information_field(layer, 8).size == (2, 2, 8)


def test_channel_extent_is_the_channel_receptive_field():
    for name in ("clcnet_tiny", "clcnet_ap_tiny", "sic_i_tiny", "sk_gconv_pwgconv_tiny"):
        model = create_model(name)
        fields = analyse_information_field(model, 32)
        assert [f.channels for f in fields] == [b.crf for b in analyse_channels(model, 32)], name


def test_global_layers_make_the_field_the_whole_input():
    assert spatial_field(nn.Sequential(nn.Conv2d(3, 3, 3), nn.AdaptiveAvgPool2d(1))) == (None, None)


def test_unknown_layers_are_reported():
    with pytest.raises(AnalysisError, match="Upsample"):
        spatial_field(nn.Sequential(nn.Upsample(scale_factor=2)))


def _usual_jacobian_field(block: nn.Module, in_channels: int, size: int = 11) -> tuple[int, int, int]:
    """As `_empirical_field`, but the channel count most output channels have (zero padding at the ends of the
    channel axis cuts the first and last outputs of a channel-wise convolution short, as at image borders)."""
    block = block.eval().double()
    for p in block.parameters():  # small positive weights: every ReLU6 open, none saturated
        nn.init.uniform_(p, 0.01, 0.02)
    x = (torch.rand(1, in_channels, size, size, dtype=torch.float64) * 0.1 + 0.01).requires_grad_()
    y = block(x)
    assert 0 < y.min() and y.max() < 6
    cy, cx = y.shape[2] // 2, y.shape[3] // 2
    heights, widths, channels = [], [], []
    for c in range(y.shape[1]):
        (grad,) = torch.autograd.grad(y[0, c, cy, cx], x, retain_graph=True)
        mask = grad[0] != 0
        assert mask.any(), c
        rows, cols = mask.any(0).any(1).nonzero(), mask.any(0).any(0).nonzero()
        heights.append(int(rows.max() - rows.min() + 1))
        widths.append(int(cols.max() - cols.min() + 1))
        channels.append(int(mask.any(2).any(1).sum()))
    counts = torch.tensor(channels)
    values, frequency = torch.unique(counts, return_counts=True)
    return max(heights), max(widths), int(values[frequency == frequency.max()].min())


def test_channelnet_blocks_match_the_jacobian():
    """ChannelNet's channel-wise convolutions are a Conv2d over a (channels, pixels) view; their kernel is not an
    image kernel (the field used to be 12x5 for a GCWM, 18x3 for a DWSCWConv)."""
    model = create_model("channelnet_tiny")
    kinds = set()
    for field, block in zip(analyse_information_field(model, 32), model.blocks):
        kinds.add(type(block).__name__)
        assert field.size == _usual_jacobian_field(block, field.in_channels), field.name
    assert {"GCWM", "GM", "DWSCWConv"} <= kinds


def test_a_channelwise_convolution_sees_its_kernel_of_channels_and_one_pixel():
    from clcdeploy.zoo.channelnet import ChannelWiseConv

    for kernel, groups in ((16, 1), (8, 2), (5, 1)):
        layer = ChannelWiseConv(32, kernel, groups)
        assert information_field(nn.Sequential(layer), 32).size == (1, 1, kernel)
