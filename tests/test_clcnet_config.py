"""clcNet configurations: Table 2 structure, overrides, and invalid configurations naming the parameter."""

import pytest
import torch

from clcdeploy.errors import ConfigurationError, UnknownModelError
from clcdeploy.zoo import create_model
from clcdeploy.zoo.clcnet import CLCBlock
from clcdeploy.zoo.layers import IGC, interlace, interlace_permutation


def test_clcnet_a_follows_table_2():
    model = create_model("clcnet_a")
    blocks = list(model.blocks)
    assert len(blocks) == 5 + 1 + 1 + 5 + 2  # five fixed blocks plus a, b, c, d repetitions
    first = blocks[0]
    assert (first.igc.conv.in_channels, first.gc.out_channels, first.igc.groups, first.gc.groups) == (32, 64, 16, 2)
    last = blocks[-1]
    assert (last.igc.conv.in_channels, last.igc.groups, last.gc.groups) == (1024, 512, 2)
    assert all(isinstance(b.igc, IGC) and b.igc.crf == 2 for b in blocks)


def test_custom_configuration_and_crf_override():
    model = create_model("clcnet_a", a=0, b=2, c=1, d=0, width=0.5, crf=4)
    assert len(model.blocks) == 5 + 0 + 2 + 1 + 0
    assert all(b.igc.crf == 4 for b in model.blocks)
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 1000)


@pytest.mark.parametrize("overrides, word", [
    (dict(c=-1), "repetition c"),
    (dict(crf=3), "not divisible"),
    (dict(g2=3), "divisible"),
    (dict(g1=32, g2=4), r"g1\*g2 = 32\*4 = 128 > L = 32"),
    (dict(width=0), "width"),
    (dict(depth=3), "depth"),
])
def test_invalid_configuration_names_the_parameter(overrides, word):
    with pytest.raises(ConfigurationError, match=word):
        create_model("clcnet_a", **overrides)


def test_unknown_model_suggests_close_names():
    with pytest.raises(UnknownModelError, match="clcnet_a"):
        create_model("clcnet_aa")


def test_interlace_moves_group_member_to_field():
    # 3 groups of 2: channel i*2+f goes to position f*3+i.
    x = torch.arange(6.0).view(1, 6, 1, 1)
    assert interlace(x, 3).flatten().tolist() == [0, 2, 4, 1, 3, 5]
    assert interlace_permutation(6, 3) == [0, 2, 4, 1, 3, 5]


def test_ablated_block_has_no_interlace():
    block = CLCBlock(8, 8, 1, 4, 2, interlace=False)
    assert not isinstance(block.igc, IGC) and block.igc.groups == 4
