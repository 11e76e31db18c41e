"""Grouped convolutions with fewer than 8 outputs per group are exported to XNNPACK (.pte, .tflite) with their
groups merged into block-diagonal ones: exact, channel order kept, IGCs and full-tile groups left alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx as onnx_lib
import pytest
import torch
from ai_edge_litert import schema_py_generated as schema
from torch import nn

from clcdeploy.export import executorch_format, onnx_format, tflite_format
from clcdeploy.export.delegation import executorch_report
from clcdeploy.export.passes import deployment_passes, merge_small_groups
from clcdeploy.export.pipeline import export_model
from clcdeploy.zoo import create_model


def _grouped(cin: int, cout: int, groups: int, kernel: int = 1) -> nn.Conv2d:
    torch.manual_seed(cin + cout + groups + kernel)
    return nn.Conv2d(cin, cout, kernel, padding=kernel // 2, groups=groups).eval()


@pytest.mark.parametrize(("cin", "cout", "groups", "kernel", "merged_groups"), [
    (24, 24, 12, 1, 3),    # 2 outputs per group: 4 groups at a time
    (20, 20, 10, 3, 5),    # 10 groups: the largest divisor within the tile is 2
    (14, 28, 7, 1, 7),     # 4 outputs per group, 7 groups: 7 is prime, nothing to merge with
    (24, 12, 12, 3, 2),    # 1 output per group: 6 at a time
])
def test_merged_groups_compute_the_same(cin, cout, groups, kernel, merged_groups):
    conv = _grouped(cin, cout, groups, kernel).double()
    merged = merge_small_groups(nn.Sequential(conv))
    assert merged[0].groups == merged_groups
    x = torch.randn(2, cin, 5, 6, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(merged(x), conv(x), rtol=0, atol=1e-12)
    if merged_groups == groups:
        assert merged[0] is conv  # nothing merged: the model itself comes back


def test_full_tiles_depthwise_dense_and_igcs_are_left_alone():
    net = nn.Sequential(_grouped(16, 16, 2), _grouped(16, 16, 16, 3), _grouped(16, 8, 1)).eval()
    assert merge_small_groups(net) is net
    clcnet = create_model("clcnet_tiny").eval()
    x = torch.randn(1, 3, 32, 32)
    naive = deployment_passes(clcnet, x, igc_lowering="grouped")  # IGCs kept whole, 2 outputs per group
    merged = merge_small_groups(naive)
    igc_convs = [m for m in merged.modules() if isinstance(m, nn.Conv2d) and m.in_channels // m.groups == 2]
    assert igc_convs and all(c.out_channels // c.groups == 2 for c in igc_convs)


def _tflite_filter_depths(path: Path) -> list[int]:
    """Input channels per group of every CONV_2D filter in the .tflite."""
    model = schema.Model.GetRootAsModel(path.read_bytes(), 0)
    graph = model.Subgraphs(0)
    depths = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        if model.OperatorCodes(op.OpcodeIndex()).BuiltinCode() == schema.BuiltinOperator.CONV_2D:
            depths.append(int(graph.Tensors(op.Inputs(1)).ShapeAsNumpy()[-1]))
    return depths


def test_the_xnnpack_exports_merge_and_onnx_does_not(tmp_path: Path):
    net = nn.Sequential(nn.Conv2d(3, 24, 1), nn.ReLU(), _grouped(24, 12, 12, 3), nn.ReLU(),
                        nn.Conv2d(12, 4, 1)).eval()
    x = torch.randn(1, 3, 12, 12)
    with torch.no_grad():
        expected = net(x).numpy()
    tflite, pte, onnx = tmp_path / "net.tflite", tmp_path / "net.pte", tmp_path / "net.onnx"
    tflite_format.export(net, x, tflite)
    assert sorted(_tflite_filter_depths(tflite)) == [3, 12, 12]  # 2 groups of 12 inputs, not 12 of 2
    assert np.abs(tflite_format.run(tflite, x.numpy()) - expected).max() < 1e-5
    executorch_format.export(net, x, pte)
    assert executorch_report(pte)["delegate_calls"] == {"XnnpackBackend": 1}
    assert np.abs(executorch_format.run(pte, x.numpy()) - expected).max() < 1e-5
    onnx_format.export(net, x, onnx)
    groups = [a.i for n in onnx_lib.load(str(onnx)).graph.node if n.op_type == "Conv" for a in n.attribute
              if a.name == "group"]
    assert 12 in groups


def test_the_manifest_counts_the_merged_convolutions_per_format(tmp_path: Path):
    manifest = export_model("sk_gconv_pwgconv_tiny", ["onnx", "pte", "tflite"], tmp_path)
    merged = {fmt: entry.extra.get("merged_group_convs") for fmt, entry in manifest.formats.items()}
    assert merged["onnx"] is None and merged["pte"] == merged["tflite"] > 0
    assert all(entry.validated for entry in manifest.formats.values())
    assert "merged_group_convs" not in export_model("mobilenet_v1_tiny", ["pte"], tmp_path).formats["pte"].extra
