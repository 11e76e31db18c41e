"""Fused IGC op: torch reference vs the zoo's IGC, graph structure of exports, and the C++ ExecuTorch kernel."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clcdeploy.export.weights import random_weights
from clcdeploy.kernels.fuse import ChannelsLast, FusedIGC2, fusable, fuse_igc
from clcdeploy.kernels.ops import igc2, pack_weight, unpack_weight
from clcdeploy.zoo import create_model
from clcdeploy.zoo.layers import IGC


def _igc(channels: int, stride: int, seed: int) -> IGC:
    torch.manual_seed(seed)
    igc = IGC(channels, channels, channels // 2, stride=stride).eval()
    igc.conv.bias = torch.nn.Parameter(torch.randn(channels))
    return igc


def test_pack_unpack_round_trip():
    w = torch.randn(12, 2, 3, 3)
    assert torch.equal(unpack_weight(pack_weight(w)), w)
    packed = pack_weight(w)  # (9, 2, C): tap, own channel / pair partner, conv output channel
    assert packed[1 * 3 + 2, 0, 9].item() == w[9, 1, 1, 2].item()  # channel 9 = 2*4 + 1 reads x[9] ...
    assert packed[1 * 3 + 2, 1, 9].item() == w[9, 0, 1, 2].item()  # ... and its partner x[8]
    assert packed[0, 0, 4].item() == w[4, 0, 0, 0].item()


@pytest.mark.parametrize("channels,stride,size", [(4, 1, 5), (6, 2, 7), (32, 2, 8), (34, 1, 9)])
def test_fused_module_matches_igc(channels, stride, size):
    igc = _igc(channels, stride, seed=channels + stride)
    x = torch.randn(2, channels, size, size + 1)
    with torch.no_grad():
        assert (FusedIGC2(igc)(x) - igc(x)).abs().max().item() < 1e-5
        nhwc = FusedIGC2(igc)(x.contiguous(memory_format=torch.channels_last))
    assert nhwc.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("stride, weight_shape, message", [
    (3, (9, 2, 4), "stride must be 1 or 2"),
    (1, (4, 2, 3, 3), r"weight must be packed \(9, 2, 4\)"),  # unpacked: as many elements, wrong layout
])
def test_the_op_refuses_what_every_runtime_kernel_refuses(stride, weight_shape, message):
    """Eagerly and while exporting, not first on the device."""
    x, bias = torch.zeros(1, 4, 5, 5), torch.zeros(4)
    with pytest.raises(ValueError, match=message):
        igc2(x, torch.zeros(weight_shape), bias, stride)
    with pytest.raises(Exception, match=message):
        torch.export.export(_Op(torch.zeros(weight_shape), bias, stride), (x,))


class _Op(torch.nn.Module):
    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, stride: int) -> None:
        super().__init__()
        self.register_buffer("weight", weight)
        self.register_buffer("bias", bias)
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return igc2(x, self.weight, self.bias, self.stride)


def test_only_crf2_igcs_are_fusable():
    assert fusable(_igc(8, 1, 0))
    assert not fusable(IGC(12, 12, 4))  # CRF 3
    assert not fusable(torch.nn.Conv2d(8, 8, 3, groups=4))


def test_export_graph_contains_custom_op_per_igc():
    model = create_model("clcnet_tiny")
    random_weights(model)
    igcs = sum(isinstance(m, IGC) for m in model.modules())
    fused = fuse_igc(model)
    program = torch.export.export(fused.eval(), (torch.randn(1, 3, 32, 32),), strict=False)
    calls = [n for n in program.graph.nodes if n.target is torch.ops.clcdeploy.igc2.default]
    assert igcs > 0 and len(calls) == igcs
    assert not any(isinstance(m, IGC) for m in fused.modules())


@pytest.fixture(scope="module")
def tiny_pte(tmp_path_factory):
    pytest.importorskip("executorch")
    from clcdeploy.export import executorch_format
    from clcdeploy.export.passes import fold_batchnorm

    model = create_model("clcnet_tiny")
    random_weights(model)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        expected = model(x)
    folder = tmp_path_factory.mktemp("pte")
    paths = {}
    for layout in ("nchw", "nhwc"):
        deploy = fuse_igc(fold_batchnorm(model))
        deploy = ChannelsLast(deploy) if layout == "nhwc" else deploy
        paths[layout] = folder / f"{layout}.pte"
        executorch_format.export(deploy.eval(), x, paths[layout])
    plain = folder / "plain.pte"
    executorch_format.export(fold_batchnorm(model), x, plain)
    return paths, plain, x, expected


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_executorch_kernel_matches_pytorch(tiny_pte, layout):
    from executorch.runtime import Runtime

    from clcdeploy.kernels.runtime import prepare_pte

    paths, _, x, expected = tiny_pte
    assert prepare_pte(paths[layout])  # builds the C++ library if needed and loads it
    method = Runtime.get().load_program(paths[layout]).load_method("forward")
    got = method.execute((x,))[0]
    assert np.abs(got.numpy() - expected.numpy()).max() < 1e-4


def test_artifacts_needing_the_kernel_are_identified(tiny_pte):
    from clcdeploy.kernels.runtime import pte_operators, pte_uses_fused_igc

    paths, plain, _, _ = tiny_pte
    assert pte_uses_fused_igc(paths["nchw"]) and pte_uses_fused_igc(paths["nhwc"])
    assert not pte_uses_fused_igc(plain)
    assert "clcdeploy::igc2.out" in pte_operators(paths["nhwc"])


def test_loading_the_kernel_library_gives_each_model_its_own_xnnpack_workspace():
    """The library sets the mode and reads it back from the backend; an unknown mode is refused."""
    from clcdeploy.kernels.runtime import PER_MODEL_WORKSPACE, _loaded, load_executorch_kernels

    library = _loaded[str(load_executorch_kernels())]
    assert [library.clcdeploy_set_xnnpack_workspace_sharing(mode) for mode in (0, 2, 3, -1)] == [1, 1, 0, 0]
    assert library.clcdeploy_set_xnnpack_workspace_sharing(PER_MODEL_WORKSPACE) == 1


IGC_SHAPES = [(96, 9, 10, 1), (96, 9, 10, 2), (34, 7, 5, 1), (64, 1, 1, 1), (64, 2, 3, 2), (32, 12, 13, 1)]


class _FusedIGCs(torch.nn.Module):
    """Fused IGCs on NHWC inputs of shapes that reach every kernel path (`IGC_SHAPES`: full vector blocks,
    the scalar channel tail, border and interior columns, strides 1 and 2, 1x1 and 2x3 maps)."""

    def __init__(self, igcs: list[IGC]) -> None:
        super().__init__()
        self.fused = torch.nn.ModuleList(FusedIGC2(igc) for igc in igcs)

    def forward(self, *xs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        # a 1x1 map is NHWC as it is (converting it would make the delegate pass an input through)
        outs = (f(x if x.shape[-2:] == (1, 1) else x.to(memory_format=torch.channels_last))
                for f, x in zip(self.fused, xs))
        return tuple(y.permute(0, 2, 3, 1).reshape(-1) for y in outs)  # NHWC memory order, flattened


def test_executorch_kernel_paths_match_the_igc(tmp_path):
    pytest.importorskip("executorch")
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower
    from executorch.runtime import Runtime

    from clcdeploy.kernels.runtime import prepare_pte

    igcs = [_igc(c, stride, seed=i) for i, (c, _, _, stride) in enumerate(IGC_SHAPES)]
    torch.manual_seed(0)
    xs = tuple(torch.randn(1, c, h, w) for c, h, w, _ in IGC_SHAPES)
    program = torch.export.export(_FusedIGCs(igcs).eval(), xs, strict=False)
    path = tmp_path / "igc_shapes.pte"
    path.write_bytes(to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()]).to_executorch().buffer)
    assert prepare_pte(path)
    got = Runtime.get().load_program(path).load_method("forward").execute(xs)
    with torch.no_grad():
        expected = [igc(x).permute(0, 2, 3, 1).reshape(-1) for igc, x in zip(igcs, xs)]
    for shape, g, e in zip(IGC_SHAPES, got, expected):
        assert (g - e).abs().max().item() < 1e-4, shape
