"""Issue 8's families (seeds 003 and 004) through ONNX, ExecuTorch and TFLite with validation, on tiny
variants (the full-size runs are in BENCHMARKS.md section 5)."""

from __future__ import annotations

from pathlib import Path

from clcdeploy.export.pipeline import export_model


def test_sparse_kernel_net_exports_validated_and_fully_delegated(tmp_path: Path) -> None:
    """Zero-pad shortcuts (3x3/2 average pool excluding padding), PWGConv, shuffle and depthwise layers."""
    manifest = export_model("sk_pwgconv_dw_pwgconv_tiny", ["onnx", "pte", "tflite"], tmp_path)
    assert all(entry.validated for entry in manifest.formats.values())
    pte, tflite = manifest.formats["pte"].delegation, manifest.formats["tflite"].delegation
    assert pte["ops_outside_delegate"] == 0
    # Only the stem max pool's -inf padding (PADV2) stays outside, as for ShuffleNet.
    assert tflite["ops_outside_delegate_histogram"] == {"PADV2": 1}


def test_sic_net_with_topological_subdivisioning_exports_validated(tmp_path: Path) -> None:
    """SIC layers whose projection gathers each output's channel neighbourhood (`index_select`), seed 003.
    The gather itself runs outside XNNPACK in .pte and .tflite (BENCHMARKS.md section 5)."""
    manifest = export_model("sic_i_tiny", ["onnx", "pte", "tflite"], tmp_path)
    assert set(manifest.formats) == {"onnx", "pte", "tflite"}
    assert all(entry.validated for entry in manifest.formats.values())
    assert manifest.formats["pte"].delegation["convolutions_outside_delegate"] == 0
