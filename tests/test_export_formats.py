"""Tiny models through ONNX, ExecuTorch and TFLite with validation; manifest contents; delegation."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from clcdeploy.cli import main
from clcdeploy.export.delegation import MIN_GROUP_CHANNELS
from clcdeploy.export.pipeline import export_model
from clcdeploy.zoo import list_models


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("models")
    import contextlib
    import io

    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(["export", "clcnet_tiny", "--out", str(out), "--json"])
    assert code == 0
    return out / "clcnet_tiny", json.loads(stdout.getvalue())


def test_export_writes_all_three_artifacts_and_the_manifest(tiny_export: tuple[Path, dict]) -> None:
    folder, manifest = tiny_export
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["clcnet_tiny.onnx", "clcnet_tiny.pte", "clcnet_tiny.tflite", "manifest.json"]
    assert json.loads((folder / "manifest.json").read_text()) == manifest


def test_every_format_matches_pytorch_within_1e_4(tiny_export: tuple[Path, dict]) -> None:
    _, manifest = tiny_export
    assert set(manifest["formats"]) == {"onnx", "pte", "tflite"}
    for entry in manifest["formats"].values():
        assert entry["validated"] and 0.0 <= entry["max_abs_diff"] <= 1e-4


def test_manifest_records_model_files_and_tools(tiny_export: tuple[Path, dict]) -> None:
    folder, manifest = tiny_export
    assert manifest["model"] == "clcnet_tiny" and manifest["config"]["crf"] == 2
    assert manifest["input_shape"] == [1, 3, 32, 32]
    assert manifest["params"] > 0
    assert manifest["weights"].startswith("random")
    assert {"torch", "executorch", "litert-torch", "onnxruntime"} <= set(manifest["tools"])
    for entry in manifest["formats"].values():
        data = (folder / entry["file"]).read_bytes()
        assert entry["bytes"] == len(data) and entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["export_seconds"] > 0
    tflite = manifest["formats"]["tflite"]
    assert tflite["input_layout"] == "NHWC" and tflite["input_shape"] == [1, 32, 32, 3]
    assert manifest["formats"]["pte"]["input_shape"] == [1, 3, 32, 32]


def test_clcnet_is_fully_delegated_with_depthwise_igcs(tiny_export: tuple[Path, dict]) -> None:
    _, manifest = tiny_export
    pte, tflite, onnx = (manifest["formats"][f] for f in ("pte", "tflite", "onnx"))
    assert pte["delegation"]["delegate_calls"].get("XnnpackBackend", 0) >= 1
    assert pte["delegation"]["convolutions_outside_delegate"] == 0
    assert pte["delegation"]["ops_outside_delegate"] == 0
    assert tflite["op_histogram"]["DEPTHWISE_CONV_2D"] >= 2 * 9  # >= two per IGC, nine blocks
    assert not [g for g in tflite["delegation"]["grouped_conv2d"] if g["group_channels"] < MIN_GROUP_CHANNELS]
    assert tflite["delegation"]["delegate_partitions"] >= 1
    assert tflite["delegation"]["ops_outside_delegate"] == 0
    assert "TRANSPOSE" not in tflite["op_histogram"] and "GATHER" not in tflite["op_histogram"]
    assert {"Transpose", "Gather", "Slice"}.isdisjoint(onnx["op_histogram"])
    assert all(not e["delegation_failures"] for e in manifest["formats"].values())


def test_naive_grouped_export_fails_the_delegation_requirements(tmp_path: Path) -> None:
    manifest = export_model("clcnet_tiny", ["tflite"], tmp_path, igc_lowering="grouped")
    entry = manifest.formats["tflite"]
    assert entry.validated
    assert any(g["group_channels"] == 2 for g in entry.delegation["grouped_conv2d"])
    assert any("grouped CONV_2D" in f and "(first: 4 channels in 2 groups of 2)" in f
               for f in entry.delegation_failures), entry.delegation_failures


def test_models_without_igc_record_none_as_their_igc_lowering(tmp_path: Path) -> None:
    manifest = export_model("mobilenet_v1_tiny", ["onnx"], tmp_path)
    assert manifest.igc_lowering == manifest.formats["onnx"].extra["igc_lowering"] == "none (no IGC)"


def test_clcnet_ap_exports_through_onnx(tmp_path: Path) -> None:
    manifest = export_model("clcnet_ap_tiny", ["onnx"], tmp_path)
    assert manifest.formats["onnx"].validated


@pytest.mark.parametrize("name", ["mobilenet_v1_tiny", "shufflenet_v1_tiny", "channelnet_tiny"])
def test_other_tiny_families_export_through_onnx_and_tflite(name: str, tmp_path: Path) -> None:
    if name not in list_models():
        pytest.skip(f"{name} is not registered yet")
    manifest = export_model(name, ["onnx", "tflite"], tmp_path)
    assert all(e.validated for e in manifest.formats.values())


def test_exporting_one_format_keeps_the_manifest_entries_of_the_others(tmp_path: Path) -> None:
    export_model("clcnet_tiny", ["onnx"], tmp_path, model_kwargs={"c": 0, "d": 0})
    manifest = export_model("clcnet_tiny", ["tflite"], tmp_path, model_kwargs={"c": 0, "d": 0})
    assert set(manifest.formats) == {"onnx", "tflite"}
