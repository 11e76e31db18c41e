"""`clcdeploy export --fused-igc`: the .pte calls the fused IGC kernel (validated against PyTorch with the
kernel library loaded automatically), ONNX keeps the standard passes unless `--fused-igc-formats` names it
(then the custom node clcdeploy.IGC2, validated by ONNX Runtime with clcdeploy's custom-op library), and the
manifest and report say which artifacts need a kernel library."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from clcdeploy.cli import main
from clcdeploy.zoo import create_model
from clcdeploy.zoo.layers import IGC

pytest.importorskip("executorch")


@pytest.fixture(scope="module")
def fused_export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, str]:
    out = tmp_path_factory.mktemp("models")
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["export", "clcnet_tiny", "--formats", "onnx,pte", "--fused-igc", "--out", str(out), "--json"])
    assert code == 0, stderr.getvalue()
    return out / "clcnet_tiny", json.loads(stdout.getvalue()), stderr.getvalue()


def test_fused_pte_matches_pytorch_and_calls_the_kernel_per_igc(fused_export) -> None:
    _, manifest, _ = fused_export
    pte = manifest["formats"]["pte"]
    assert pte["validated"] and pte["max_abs_diff"] <= 1e-4
    igcs = sum(isinstance(m, IGC) for m in create_model("clcnet_tiny").modules())
    assert pte["delegation"]["custom_op_calls"] == {"clcdeploy::igc2.out": igcs}
    assert pte["extra"]["igc_lowering"] == "fused-igc2-nhwc"


def test_custom_op_calls_are_exempt_from_the_delegation_checks(fused_export) -> None:
    _, manifest, _ = fused_export
    pte = manifest["formats"]["pte"]
    assert pte["delegation"]["delegate_calls"].get("XnnpackBackend", 0) >= 1
    assert pte["delegation"]["ops_outside_delegate"] == 0
    assert pte["delegation"]["convolutions_outside_delegate"] == 0
    assert not pte["delegation_failures"]


def test_manifest_and_report_name_the_artifacts_needing_the_kernel_library(fused_export) -> None:
    folder, manifest, report = fused_export
    assert manifest["formats"]["pte"]["extra"]["needs_kernel_library"] is True
    assert manifest["formats"]["onnx"]["extra"]["needs_kernel_library"] is False
    assert json.loads((folder / "manifest.json").read_text()) == manifest
    assert "clcnet_tiny.pte calls clcdeploy's fused IGC kernel" in report
    assert "clcnet_tiny.onnx calls" not in report


def test_onnx_keeps_the_standard_operators(fused_export) -> None:
    _, manifest, _ = fused_export
    onnx = manifest["formats"]["onnx"]
    assert onnx["validated"] and onnx["op_histogram"].get("Conv", 0) > 0
    assert not any(op.startswith("igc2") for op in onnx["op_histogram"])


def test_default_export_needs_no_kernel_library(tmp_path: Path) -> None:
    from clcdeploy.export.pipeline import export_model

    manifest = export_model("clcnet_tiny", ["pte"], tmp_path)
    pte = manifest.formats["pte"]
    assert pte.validated and pte.extra["needs_kernel_library"] is False
    assert not pte.delegation["custom_op_calls"]


def test_fused_onnx_matches_pytorch_with_one_igc2_node_per_igc(tmp_path: Path, capsys) -> None:
    code = main(["export", "clcnet_tiny", "--formats", "onnx", "--fused-igc-formats", "onnx", "--out",
                 str(tmp_path), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    onnx_entry = json.loads(captured.out)["formats"]["onnx"]
    assert onnx_entry["validated"] and onnx_entry["max_abs_diff"] <= 1e-4
    igcs = sum(isinstance(m, IGC) for m in create_model("clcnet_tiny").modules())
    histogram = onnx_entry["op_histogram"]
    assert histogram["IGC2"] == igcs and "Concat" not in histogram and "Add" not in histogram
    assert onnx_entry["extra"]["needs_kernel_library"] is True
    assert onnx_entry["extra"]["igc_lowering"] == "fused-igc2-nchw"
    assert "clcnet_tiny.onnx calls clcdeploy's fused IGC kernel" in captured.err


@pytest.mark.parametrize("args, message", [
    (["--formats", "onnx", "--fused-igc"], "applies to pte and tflite, and neither is exported"),
    (["--formats", "onnx", "--fused-igc-formats", "pte"], "pte is not among the exported formats"),
    (["--formats", "onnx", "--fused-igc-formats", "dlc"], "unknown format 'dlc'"),
    (["--formats", "onnx", "--fused-igc-formats", ""], "unknown format (none given)"),
])
def test_fused_igc_for_formats_not_exported_or_unknown_is_refused(capsys, tmp_path: Path, args,
                                                                               message) -> None:
    code = main(["export", "clcnet_tiny", *args, "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "clcnet_tiny").exists()


def test_fused_igc_for_a_model_without_igc_exports_the_standard_artifact(tmp_path: Path, capsys) -> None:
    code = main(["export", "mobilenet_v1_tiny", "--formats", "pte", "--fused-igc", "--out", str(tmp_path), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "  mobilenet_v1_tiny has no IGC the fused kernel computes: pte exported with the standard passes" \
        in captured.err.splitlines()
    pte = json.loads(captured.out)["formats"]["pte"]
    assert pte["extra"]["igc_lowering"] == "none (no IGC)" and not pte["extra"]["needs_kernel_library"]
    assert pte["delegation"]["ops_outside_delegate"] == 0 and sum(pte["delegation"]["delegate_calls"].values()) == 1


def test_a_fused_pte_has_no_op_outside_its_partitions_after_the_last_igc(tmp_path: Path) -> None:
    """clcNet-A's last IGC feeds the global pool on channels-last activations, where the pool's decomposition
    ended in an as_strided copy that XNNPACK does not take (one op outside, one partition more)."""
    from clcdeploy.export.pipeline import export_model

    manifest = export_model("clcnet_a", formats=("pte",), out_dir=tmp_path, input_size=64, fused_igc=True)
    delegation = manifest.formats["pte"].delegation
    igcs = sum(isinstance(m, IGC) for m in create_model("clcnet_a").modules())
    assert delegation["ops_outside_delegate"] == 0, delegation
    assert delegation["custom_op_calls"] == {"clcdeploy::igc2.out": igcs}
    assert delegation["delegate_calls"] == {"XnnpackBackend": igcs + 1}  # one partition before each IGC, one after
