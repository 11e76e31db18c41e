"""`clcdeploy bench --arm64-instructions`: every artifact, standard or calling the fused IGC kernel, counted in
the virtual device's rootfs with the device's runners; timing-only options refused in one line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bench_fixtures import TINY_MODELS


def bench(*args):
    return subprocess.run([sys.executable, "-m", "clcdeploy", "bench", "--arm64-instructions", *args],
                          capture_output=True, text=True, timeout=1800)


@pytest.mark.parametrize("args, names", [
    (["--device", "127.0.0.1:5555"], "--device applies"),
    (["--rounds", "3", "--side-by-side"], "--rounds, --side-by-side apply"),
    (["--threads", "2"], "--threads applies"),
    (["--warmup", "0"], "--warmup applies"),
])
def test_timing_only_options_are_refused_in_one_line(args, names):
    done = bench(*args)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and names + " only to timing" in done.stderr


def test_the_cache_model_needs_arm64_instructions():
    done = subprocess.run([sys.executable, "-m", "clcdeploy", "bench", "--cache-model"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "--cache-model applies to --arm64-instructions only" in done.stderr


@pytest.mark.device
def test_every_artifact_is_counted(tiny_models_dir, fused_models_dir, tmp_path):
    standard = bench("--models", ",".join(TINY_MODELS), "--models-dir", str(tiny_models_dir), "--no-export",
                     "--json", "--out", str(tmp_path / "standard"))
    fused = bench("--models", "clcnet_tiny", "--models-dir", str(fused_models_dir), "--no-export", "--runs", "1",
                  "--cache-model", "--l2-kb", "1024", "--per-op", "--json", "--out", str(tmp_path / "fused"))
    assert standard.returncode == 0, standard.stderr
    assert fused.returncode == 0, fused.stderr
    document = json.loads(standard.stdout)
    assert document == json.loads((tmp_path / "standard/arm64_instructions.json").read_text())
    assert document["passes"] == 2
    counted = {(r["model"], r["format"]): r for r in document["results"]}
    assert set(counted) == {(m, f) for m in TINY_MODELS for f in ("pte", "tflite", "onnx")}
    for result in [*counted.values(), *json.loads(fused.stdout)["results"]]:
        assert result["instructions"] > 100_000 and 0 < result["memory_accesses"] < result["instructions"]
    assert all(r["fused_igc_kernel"] and r["l1_misses"] > 0 and r["dram_bytes"] > 0
               for r in json.loads(fused.stdout)["results"])
    assert all("dram_bytes" not in r for r in counted.values())  # without --cache-model
    assert all(r["outputs_finite"] is True and len(r["input_shape"]) == 4 for r in counted.values())
    assert json.loads(fused.stdout)["cache_model"]["l2_kb"] == 1024 and "cache_model" not in document
    reason = "calls clcdeploy's fused IGC kernel outside XNNPACK"  # why --per-op did not cut the fused .pte
    assert {r["format"]: r.get("per_operator_skipped") for r in json.loads(fused.stdout)["results"]} == {
        "pte": reason, "tflite": None, "onnx": None}
    report = (tmp_path / "fused/arm64_instructions.md").read_text()
    assert f"Not cut into XNNPACK operators: clcnet_tiny (pte) {reason}." in report
    assert all("per_operator_skipped" not in r and "per_operator" not in r for r in counted.values())
    report = (tmp_path / "standard/arm64_instructions.md").read_text()
    assert "| model | format | mult-adds | size | M instructions | instr. vs MobileNet |" in report
    assert "| mobilenet_v1_tiny | pte |" in report and "| 1.000x |" in report


def test_per_op_needs_pte_when_counting_and_when_timing():
    timing = subprocess.run([sys.executable, "-m", "clcdeploy", "bench", "--per-op", "--formats", "tflite"],
                            capture_output=True, text=True, timeout=120)
    counting = bench("--per-op", "--formats", "tflite,onnx")
    for done in (timing, counting):
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
        assert "--per-op profiles .pte programs per XNNPACK operator: add pte to --formats" in done.stderr


@pytest.mark.device
def test_per_op_cuts_every_pte_into_its_operators(tiny_models_dir, tmp_path):
    done = bench("--models", ",".join(TINY_MODELS), "--models-dir", str(tiny_models_dir), "--no-export",
                 "--formats", "pte", "--runs", "1", "--per-op", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "M instructions per inference, by XNNPACK operator type" in done.stdout
    results = json.loads((tmp_path / "arm64_instructions.json").read_text())["results"]
    assert sorted((r["model"], r["format"]) for r in results) == sorted((m, "pte") for m in TINY_MODELS)
    for result in results:
        profile = result["per_operator"]
        parts = profile["before_operators"]["instructions"] + sum(o["instructions"] for o in profile["operators"])
        assert abs(parts - result["instructions"]) <= 0.01 * result["instructions"]  # the same pass, counted twice
        assert any("Convolution" in o["type"] for o in profile["operators"])
    report = (tmp_path / "arm64_instructions.md").read_text()
    assert "## Per XNNPACK operator" in report and "| total |" in report


@pytest.mark.parametrize("args, message", [
    (["--l2-kb", "1024"], "--l2-kb sets the cache model's L2: add --cache-model"),
    (["--l2-kb", "512"], "--l2-kb sets the cache model's L2: add --cache-model"),  # the default, given
    (["--cache-model", "--l2-kb", "32"], "--l2-kb must be between 64 and 16384"),
])
def test_a_bad_l2_size_is_refused_in_one_line(args, message):
    done = bench(*args)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and message in done.stderr


@pytest.mark.device
def test_a_model_with_non_finite_outputs_is_named_and_fails_as_timing_does(tmp_path):
    """Counted as if fine, a broken kernel's instructions would pass for the model's."""
    import torch

    from clcdeploy.zoo import create_model

    state = create_model("clcnet_tiny").state_dict()
    next(v for k, v in state.items() if k.endswith("weight") and v.dim() == 4).fill_(float("nan"))
    torch.save(state, tmp_path / "nan.pt")
    export = subprocess.run([sys.executable, "-m", "clcdeploy", "export", "clcnet_tiny", "--formats", "pte,onnx",
                             "--weights", str(tmp_path / "nan.pt"), "--no-validate", "--out", str(tmp_path / "m")],
                            capture_output=True, text=True, timeout=600)
    assert export.returncode == 0, export.stderr
    done = bench("--models", "clcnet_tiny", "--models-dir", str(tmp_path / "m"), "--no-export", "--formats",
                 "pte,onnx", "--runs", "1", "--json")
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "non-finite outputs: clcnet_tiny/pte, clcnet_tiny/onnx"
    assert [r["outputs_finite"] for r in json.loads(done.stdout)["results"]] == [False, False]


def test_vs_mobilenet_compares_with_mobilenet_v1_at_the_same_input_size():
    from pathlib import Path

    from clcdeploy.bench.arm64_count import Counted, table_rows
    from clcdeploy.bench.artifacts import Artifact
    from clcdeploy.device.virtual.instructions import Counts

    def counted(model: str, size: int, instructions: int) -> Counted:
        artifact = Artifact(model, "pte", Path(f"{model}.pte"), 1, "", (1, 3, size, size), 1, 1)
        return Counted(artifact, Counts(instructions, instructions // 2))

    rows = table_rows([counted("mobilenet_v1_tiny", 32, 100), counted("mobilenet_v1", 224, 1000),
                       counted("clcnet_a", 224, 800), counted("clcnet_tiny", 32, 50), counted("clcnet_b", 96, 9)])
    assert [row["instr. vs MobileNet"] for row in rows] == ["1.000x", "1.000x", "0.800x", "0.500x", "-"]
