"""Exported tiny artifacts shared by the bench tests (exported once per test session)."""

from pathlib import Path

import pytest

TINY_MODELS = ("mobilenet_v1_tiny", "clcnet_tiny")


@pytest.fixture(scope="session")
def tiny_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from clcdeploy.export.pipeline import export_model

    folder = tmp_path_factory.mktemp("models")
    for name in TINY_MODELS:
        export_model(name, formats=("onnx", "tflite", "pte"), out_dir=folder)
    return folder


@pytest.fixture(scope="session")
def fused_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """clcnet_tiny exported with --fused-igc-formats pte,onnx,tflite (every artifact calls clcdeploy's fused IGC
    kernel)."""
    from clcdeploy.export.pipeline import export_model

    folder = tmp_path_factory.mktemp("fused-models")
    export_model("clcnet_tiny", formats=("pte", "onnx", "tflite"), out_dir=folder,
                 fused_igc=("pte", "onnx", "tflite"))
    return folder
