"""Bad input gives one clear line and exit code 2; a wrong rewrite fails validation; nothing partial is left."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from clcdeploy.cli import main
from clcdeploy.export import pipeline, validate
from clcdeploy.export.passes import deployment_passes
from clcdeploy.export.weights import load_weights
from clcdeploy.zoo import create_model


def _run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str]:
    code = main(["export", *argv])
    err = capsys.readouterr().err.strip().splitlines()
    return code, err[-1] if err else ""


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "models"


def test_unknown_model(capsys, out) -> None:
    code, line = _run(capsys, "clcnet_z", "--out", str(out))
    assert code == 2 and "unknown model 'clcnet_z'" in line


def test_unknown_format(capsys, out) -> None:
    code, line = _run(capsys, "clcnet_tiny", "--formats", "onnx,coreml", "--out", str(out))
    assert code == 2 and "unknown format 'coreml'" in line and not out.exists()


def test_name_and_all_are_exclusive(capsys, out) -> None:
    code, line = _run(capsys, "clcnet_tiny", "--all", "--out", str(out))
    assert code == 2 and "exactly one" in line


def test_missing_weights_file(capsys, out, tmp_path) -> None:
    code, line = _run(capsys, "clcnet_tiny", "--weights", str(tmp_path / "nope.pt"), "--out", str(out))
    assert code == 2 and "not found" in line


def test_corrupt_weights_file(capsys, out, tmp_path) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00garbage" * 100)
    code, line = _run(capsys, "clcnet_tiny", "--weights", str(bad), "--out", str(out))
    assert code == 2 and "not a readable PyTorch state dict" in line and "In PyTorch 2.6" not in line


def test_a_whole_pickled_model_is_refused_with_what_to_save_instead(capsys, out, tmp_path) -> None:
    path = tmp_path / "model.pt"
    torch.save(create_model("clcnet_tiny"), path)
    code, line = _run(capsys, "clcnet_tiny", "--weights", str(path), "--out", str(out))
    assert code == 2 and not out.exists()
    assert "holds a pickled clcdeploy.zoo.clcnet.ClcNet" in line and "state_dict()" in line


def test_weights_file_without_a_state_dict(capsys, out, tmp_path) -> None:
    path = tmp_path / "list.pt"
    torch.save([1, 2, 3], path)
    code, line = _run(capsys, "clcnet_tiny", "--weights", str(path), "--out", str(out))
    assert code == 2 and "holds no state dict" in line


def test_mismatched_state_dict_names_every_bad_key(capsys, out, tmp_path) -> None:
    state = create_model("clcnet_tiny").state_dict()
    del state["stem.0.weight"]
    state["extra.weight"] = torch.zeros(1)
    state["classifier.fc.bias"] = torch.zeros(3)
    path = tmp_path / "mismatch.pt"
    torch.save(state, path)
    code, line = _run(capsys, "clcnet_tiny", "--weights", str(path), "--out", str(out))
    assert code == 2
    assert "missing keys: stem.0.weight" in line
    assert "unexpected keys: extra.weight" in line
    assert "mis-shaped keys: classifier.fc.bias (3,) != (10,)" in line


def test_checkpoint_with_module_prefix_loads(capsys, out, tmp_path) -> None:
    model = create_model("clcnet_tiny")
    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    path = tmp_path / "ckpt.pt"
    torch.save({"epoch": 3, "state_dict": state}, path)
    code, _ = _run(capsys, "clcnet_tiny", "--weights", str(path), "--formats", "onnx", "--out", str(out))
    assert code == 0
    assert '"weights": "file ckpt.pt (sha256 ' in (out / "clcnet_tiny" / "manifest.json").read_text()


def test_input_size_too_small(capsys, out) -> None:
    code, line = _run(capsys, "clcnet_tiny", "--input-size", "16", "--out", str(out))
    assert code == 2 and "input size 16 is too small for clcnet_tiny" in line
    assert line.endswith("; pass a larger --input-size (its own is 32)")


def test_output_folder_not_writable(capsys, tmp_path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    code, line = _run(capsys, "clcnet_tiny", "--out", str(blocker / "models"))
    assert code == 2 and f"models/clcnet_tiny cannot be made: {blocker} is a file, not a folder" in line


def _broken_passes(model, example, **kwargs):
    """The real passes, then one depthwise conv gets two of its channel weights swapped."""
    deployed = deployment_passes(model, example, **kwargs)
    dw = next(m for m in deployed.modules() if isinstance(m, torch.nn.Conv2d) and m.groups > 1)
    with torch.no_grad():
        dw.weight[[0, 1]] = dw.weight[[1, 0]].clone()
    return deployed


def test_broken_rewrite_fails_export_and_leaves_nothing(capsys, out, monkeypatch) -> None:
    monkeypatch.setattr(pipeline, "deployment_passes", _broken_passes)
    code, line = _run(capsys, "clcnet_tiny", "--formats", "onnx,tflite", "--out", str(out))
    assert code == 2
    assert "2 of 2 artifact(s) do not match PyTorch" in line and "onnx (onnxruntime)" in line
    assert "tflite (ai-edge-litert)" in line and "MISMATCH" in line
    assert not (out / "clcnet_tiny").exists()


def test_broken_rewrite_keeps_the_previous_export_intact(capsys, out, monkeypatch) -> None:
    assert main(["export", "clcnet_tiny", "--formats", "onnx", "--out", str(out)]) == 0
    folder = out / "clcnet_tiny"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    monkeypatch.setattr(pipeline, "deployment_passes", _broken_passes)
    code, _ = _run(capsys, "clcnet_tiny", "--formats", "onnx", "--out", str(out))
    assert code == 2
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_no_validate_keeps_a_mismatching_artifact(capsys, out, monkeypatch) -> None:
    monkeypatch.setattr(pipeline, "deployment_passes", _broken_passes)
    code, _ = _run(capsys, "clcnet_tiny", "--formats", "onnx", "--no-validate", "--out", str(out))
    assert code == 0
    text = (out / "clcnet_tiny" / "manifest.json").read_text()
    assert '"validated": false' in text


def test_all_with_weights_is_refused(capsys, out, tmp_path) -> None:
    code, line = _run(capsys, "--all", "--weights", str(tmp_path / "w.pt"), "--out", str(out))
    assert code == 2 and "--weights fits one model" in line


def _save_weights(path: Path, change) -> Path:
    torch.save({k: change(k, v) for k, v in create_model("clcnet_tiny").state_dict().items()}, path)
    return path


def test_checkpoints_without_num_batches_tracked_load_with_the_models_counters(tmp_path) -> None:
    model = create_model("clcnet_tiny")
    state = {k: v for k, v in model.state_dict().items() if not k.endswith(".num_batches_tracked")}
    torch.save(state, tmp_path / "old.pt")
    before = {k: v.clone() for k, v in model.state_dict().items() if k.endswith(".num_batches_tracked")}
    assert load_weights(model, tmp_path / "old.pt").startswith("file old.pt")
    assert before and all(torch.equal(model.state_dict()[k], v) for k, v in before.items())


def test_weights_in_other_floating_dtypes_load(tmp_path) -> None:
    path = _save_weights(tmp_path / "half.pt", lambda k, v: v.half() if v.is_floating_point() else v)
    assert load_weights(create_model("clcnet_tiny"), path).startswith("file half.pt")


def test_integer_weights_are_refused(capsys, out, tmp_path) -> None:
    path = _save_weights(tmp_path / "int8.pt", lambda k, v: v.to(torch.int8))
    code, line = _run(capsys, "clcnet_tiny", "--weights", str(path), "--out", str(out))
    assert code == 2 and not out.exists()
    assert "keys of another dtype kind (torch.int8 where the model has torch.float32): stem.0.weight" in line
    assert "num_batches_tracked" not in line  # int8 for int64 is the same kind


def _unreadable_weights(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f"{kind}.pt"
    if kind == "text":
        path.write_text("epoch 3, accuracy 0.7\n")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        torch.save(create_model("clcnet_tiny").state_dict(), path)
        path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])
    elif kind == "directory":
        path.mkdir()
    elif kind == "numpy":
        torch.save({"state_dict": create_model("clcnet_tiny").state_dict(), "np": np.zeros(3)}, path)
    return Path("/dev/null") if kind == "device" else path


@pytest.mark.parametrize("kind, message", [
    ("text", "is not a readable PyTorch state dict: it is not in torch.save's format (neither a zip archive nor a "
             "pickle); pass a file saved with torch.save(model.state_dict())"),
    ("empty", "is empty; pass a file saved with torch.save(model.state_dict())"),
    ("truncated", "is not a readable PyTorch state dict: its zip archive is damaged or truncated (PytorchStreamReader "
                  "failed reading zip archive: failed finding central directory); copy or save it again"),
    ("directory", "is not a regular file (a directory or device?); pass the file holding the state dict"),
    ("device", "is not a regular file"),
    ("numpy", "holds a pickled numpy."),  # then numpy's array constructor, named as numpy's version names it
])
def test_unreadable_weights_files_get_one_line_saying_what_is_wrong(capsys, out, tmp_path, kind, message) -> None:
    path = _unreadable_weights(tmp_path, kind)
    code, line = _run(capsys, "clcnet_tiny", "--weights", str(path), "--out", str(out))
    assert code == 2 and line.startswith(f"clcdeploy export: error: weights file {path} {message}"), line
    assert "whole model" not in line
    if kind == "numpy":
        assert line.endswith(", and clcdeploy loads only tensors (in dicts and lists) from weights files, running no "
                             "code from them: save the state_dict() alone and pass that file")


def test_nan_weights_are_named_as_the_cause(capsys, out, tmp_path) -> None:
    path = _save_weights(tmp_path / "nan.pt",
                         lambda k, v: torch.full_like(v, float("nan")) if k == "stem.0.weight" else v)
    code, line = _run(capsys, "clcnet_tiny", "--weights", str(path), "--out", str(out))
    assert code == 2 and not out.exists()
    assert "clcnet_tiny with weights file nan.pt" in line
    assert "gives non-finite outputs (NaN or inf) in PyTorch itself" in line


def test_a_non_finite_reference_is_not_blamed_on_the_artifact() -> None:
    x = np.zeros((1, 2), np.float32)
    check = validate.check_artifact("onnx", "onnxruntime", lambda path, x: x, Path("unused"), [x], [x + np.nan])
    assert check.line() == "onnx (onnxruntime): not compared: PyTorch's own outputs are non-finite (NaN or inf)"


def test_input_size_too_large_to_compute_is_too_large(capsys, out) -> None:
    code, line = _run(capsys, "clcnet_tiny", "--input-size", "99999999999", "--out", str(out))
    assert code == 2 and "input size 99999999999 is too large for clcnet_tiny" in line


def test_input_size_a_channelnet_v3_classifier_does_not_take_names_the_sizes_it_takes(capsys, out) -> None:
    code, line = _run(capsys, "channelnet_tiny", "--input-size", "33", "--out", str(out))
    assert code == 2 and "input size 33 does not fit channelnet_tiny" in line
    assert "the model takes inputs of 17 to 32 pixels" in line
