"""`clcdeploy bench --per-op` when timing: after the timed runs, one more run of each .pte in clcdeploy's pte_runner
with ExecuTorch's event tracer, summarised per XNNPACK operator type. Checked on this host against what ExecuTorch's
Python runtime traces in the same programs (through an ADB device and in the arm64 bundle:
test_bench_pte_runner_bundle.py)."""

import collections
import json
import re
import subprocess
import sys

from clcdeploy.bench.operator_profile import OUTSIDE_OPERATORS, UNNAMED_KERNELS


def bench(*args):
    return subprocess.run([sys.executable, "-m", "clcdeploy", "bench", "--no-export", "--runs", "3", "--warmup", "1",
                           "--per-op", *args], capture_output=True, text=True, timeout=900)


def python_runtime_events(pte, input_shape) -> collections.Counter:
    """The events of one inference of `pte` in ExecuTorch's Python runtime, by name without its ' #n'."""
    import tempfile
    from pathlib import Path

    import torch
    from executorch.devtools import Inspector
    from executorch.extension.pybindings import portable_lib

    from clcdeploy.kernels.runtime import prepare_pte

    prepare_pte(pte)
    module = portable_lib._load_for_executorch(str(pte), enable_etdump=True, debug_buffer_size=0)
    module.forward((torch.zeros(input_shape),))
    with tempfile.TemporaryDirectory() as tmp:
        module.write_etdump_result_to_file(str(Path(tmp) / "dump.etdp"))
        blocks = Inspector(etdump_path=str(Path(tmp) / "dump.etdp")).event_blocks
    return collections.Counter(re.sub(r" #\d+$", "", e.name) for block in blocks if block.name == "Execute"
                               for e in block.events)


def test_every_pte_is_profiled_per_operator_type_and_the_other_formats_are_not(tiny_models_dir, tmp_path):
    done = bench("--models", "mobilenet_v1_tiny,clcnet_tiny", "--models-dir", str(tiny_models_dir), "--formats",
                 "pte,onnx", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    rows = json.loads((tmp_path / "results.json").read_text())["results"]
    assert [(r["model"], r["format"], "operators" in r["extra"]) for r in rows] == [
        ("mobilenet_v1_tiny", "pte", True), ("mobilenet_v1_tiny", "onnx", False),
        ("clcnet_tiny", "pte", True), ("clcnet_tiny", "onnx", False)]
    for row in (r for r in rows if r["format"] == "pte"):
        operators = row["extra"]["operators"]
        traced = python_runtime_events(tiny_models_dir / row["model"] / f"{row['model']}.pte", row["input_shape"])
        # the XNNPACK operators ExecuTorch's Python runtime runs, type by type; one delegate call
        assert {op: e["count"] for op, e in operators.items() if op != OUTSIDE_OPERATORS} == {
            op: n for op, n in traced.items() if op not in ("Method::execute", "DELEGATE_CALL")}
        assert operators[OUTSIDE_OPERATORS]["count"] == traced["DELEGATE_CALL"] == 1
        assert all(e["ms"] >= 0 for e in operators.values()) and operators["Convolution (NHWC, F32) DWConv"]["ms"] > 0
        assert f"{row['model']} pte on local, time per operator type (--per-op): " in done.stdout
    report = (tmp_path / "report.md").read_text()
    assert "## Where the time goes (--per-op)" in report
    assert "| operator type | mobilenet_v1_tiny | clcnet_tiny |" in report
    dwconv = {row["model"]: row["extra"]["operators"]["Convolution (NHWC, F32) DWConv"]["count"] for row in rows
              if row["format"] == "pte"}
    assert re.search(rf"\| Convolution \(NHWC, F32\) DWConv \| [\d.e-]+ \({dwconv['mobilenet_v1_tiny']}\) \d+% \| "
                     rf"[\d.e-]+ \({dwconv['clcnet_tiny']}\) \d+% \|", report), report


def test_the_fused_kernels_calls_are_one_row(fused_models_dir):
    done = bench("--models", "clcnet_tiny", "--models-dir", str(fused_models_dir), "--formats", "pte", "--json")
    assert done.returncode == 0, done.stderr
    [row] = json.loads(done.stdout)["results"]
    traced = python_runtime_events(fused_models_dir / "clcnet_tiny/clcnet_tiny.pte", row["input_shape"])
    operators = row["extra"]["operators"]
    assert row["runner"] == "pte_runner" and row["extra"]["fused_igc_kernel"]
    assert operators[UNNAMED_KERNELS]["count"] == traced["clcdeploy::igc2.out"] > 0
    assert operators[OUTSIDE_OPERATORS]["count"] == traced["DELEGATE_CALL"] > 1  # a partition between kernel calls
