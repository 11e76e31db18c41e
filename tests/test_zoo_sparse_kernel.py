"""Sparse-kernel designs (seeds/004): the Table 2-4 configurations must reproduce the paper's #Params, and
the designs must build, run and reject bad configurations."""

import pytest
import torch

from clcdeploy.errors import ConfigurationError
from clcdeploy.zoo import _registry, create_model, list_models, model_spec
from clcdeploy.zoo.sparse_kernel import KNOWN_DEVIATIONS, PAPER_TABLES, SparseKernelBlock, SparseKernelNet


def _params_on_meta(name: str) -> int:
    with torch.device("meta"):  # no memory, no init: only the shapes matter for counting
        model = create_model(name)
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=KNOWN_DEVIATIONS[n])) if n in KNOWN_DEVIATIONS
    else n
    for n in sorted(PAPER_TABLES)
])
def test_table_configuration_reproduces_paper_params(name):
    table, label, params_m, width, _, _ = PAPER_TABLES[name]
    model_params = _params_on_meta(name)
    assert model_params == pytest.approx(params_m * 1e6, rel=0.05), (
        f"{name} ({table} {label}): {model_params / 1e6:.2f}M params, paper {params_m}M"
    )


def test_every_table_row_is_registered_with_its_width_and_seed():
    assert len(PAPER_TABLES) == 6 + 7 + 7
    for name, (_, _, _, width, _, _) in PAPER_TABLES.items():
        spec = model_spec(name)
        assert spec.paper == _registry.SEED_SPARSE_KERNEL and spec.family == "sparse_kernel"
        with torch.device("meta"):
            assert create_model(name).config["width"] == width
    assert {"sk_pwgconv_dw_pwgconv_tiny", "sk_gconv_pwgconv_tiny"} <= set(list_models(include_tiny=True))


@pytest.mark.parametrize("name", ["sk_pwgconv_dw_pwgconv_tiny", "sk_gconv_pwgconv_tiny"])
def test_tiny_models_run_and_are_cheap(name):
    from clcdeploy.analysis.cost import count_costs

    spec = model_spec(name)
    assert spec.tiny and spec.input_size == 32
    model = create_model(name)
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert count_costs(model, 32).params < 200_000


@pytest.mark.parametrize("design, extra", [
    ("standard", {}), ("dw_pw", {}), ("gconv_pwgconv", {"groups": 4, "groups2": 4}),
    ("pw_gconv_pw", {"groups": 2}), ("pw_dw_pw", {}), ("pwgconv_dw_pwgconv", {"groups": 2, "groups2": 2}),
])
@pytest.mark.parametrize("shortcut", ["zero_pad", "projection"])
def test_every_design_builds_a_working_network(design, extra, shortcut):
    model = SparseKernelNet(design=design, width=16, blocks=(1, 2, 1, 1), shortcut=shortcut, num_classes=7,
                            **extra).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 32, 32)).shape == (1, 7)
    assert len(model.blocks) == 5


def test_zero_pad_shortcut_keeps_the_input_and_appends_zeros():
    block = SparseKernelBlock("dw_pw", 8, 16, stride=2).eval()
    x = torch.randn(1, 8, 8, 8)
    short = block.shortcut(x)
    assert short.shape == (1, 16, 4, 4)
    assert torch.equal(short[:, 8:], torch.zeros(1, 8, 4, 4))
    assert torch.allclose(short[:, :8], torch.nn.functional.avg_pool2d(x, 3, 2, 1, count_include_pad=False))


def _bottlenecks(model: SparseKernelNet) -> list[int]:
    """The depthwise (bottleneck) width of every block of a PWGConv+DW+PWGConv net."""
    return [next(m for m in b.body.modules() if isinstance(m, torch.nn.Conv2d) and m.groups == m.in_channels
                 and m.kernel_size == (3, 3)).in_channels for b in model.blocks]


def test_fixed_bottleneck_doubles_with_the_channels_unless_told_not_to():
    kwargs = dict(design="pwgconv_dw_pwgconv", width=16, blocks=1, groups=2, groups2=2, bottleneck=8)
    assert _bottlenecks(SparseKernelNet(**kwargs)) == [8, 16, 32, 64]
    assert _bottlenecks(SparseKernelNet(**kwargs, bottleneck_doubles=False)) == [8, 8, 8, 8]


def test_pwgconv100_row_keeps_k_equal_m_times_n_in_every_block():
    """Theorem 1 (K = M * N = 100 * 2) with the uniform B = 4 of Table 1 gives 10.02M, paper 10.4M."""
    with torch.device("meta"):
        model = create_model("sk_t4_pwgconv100_dw_pwgconv2_w700")
    assert _bottlenecks(model) == [200] * 16 and model.config["blocks"] == (4, 4, 4, 4)


def test_depth_counts_block_layers_plus_conv1_and_fc():
    assert SparseKernelNet(design="pw_dw_pw", width=16, blocks=8).depth == 3 * 32 + 2


@pytest.mark.parametrize("kwargs, word", [
    (dict(design="dw"), "design"),
    (dict(design="gconv_pwgconv", width=30, groups=4), "GConv(M=4)"),
    (dict(design="pwgconv_dw_pwgconv", width=64, groups=3), "PWGConv(M=3)"),
    (dict(blocks=(1, 2, 3)), "blocks"),
    (dict(blocks=0), "blocks"),
    (dict(width=0), "width"),
    (dict(shortcut="conv"), "shortcut"),
])
def test_bad_configurations_name_the_parameter(kwargs, word):
    with pytest.raises(ConfigurationError, match=word.replace("(", r"\(").replace(")", r"\)")):
        SparseKernelNet(**kwargs)


def test_overrides_reach_the_builder():
    model = create_model("sk_gconv_pwgconv_tiny", width=32, num_classes=3)
    assert model.config["width"] == 32 and model.classifier.fc.out_features == 3
