"""scripts/bench_topological.py: one line and exit code 2 for bad input; a tiny real run writes its table."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_topological.py"


@pytest.fixture(scope="module")
def bench_topological():
    spec = importlib.util.spec_from_file_location("bench_topological", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("argv, message", [
    (["--runtimes", "onnx,coreml"], "unknown runtime coreml"),
    (["--runs", "0"], "--runs, --repeat and --threads must be at least 1"),
    (["--models", "sic_c_tiny", "--runtimes", "onnx"], "sic_c_tiny has no topologically subdivided convolution"),
    (["--models", "sic_zz", "--runtimes", "onnx"], "sic_zz"),
])
def test_bad_input_is_one_line_and_exit_code_2(bench_topological, capsys, argv, message):
    assert bench_topological.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("bench_topological: error: ") and message in err


def test_a_tiny_run_times_both_forms_side_by_side(bench_topological, tmp_path, capsys):
    out = tmp_path / "topological.md"
    argv = ["--models", "sic_i_tiny", "--runtimes", "onnx,tflite", "--runs", "2", "--warmup", "0", "--repeat", "2",
            "--out", str(out)]
    assert bench_topological.main(argv) == 0
    table = out.read_text()
    assert table == capsys.readouterr().out.rstrip("\n") + "\n"
    rows = [line for line in table.splitlines() if line.startswith("| sic_i_tiny")]
    assert [row.split(" | ")[2] for row in rows] == ["ORT CPU", "LiteRT XNNPACK"]
    for row in rows:
        cells = row.strip("| ").split(" | ")
        gather, dense = float(cells[3]), float(cells[4])
        ratio, low, high = map(float, re.fullmatch(r"([\d.]+) \(([\d.]+)-([\d.]+)\)", cells[5]).groups())
        assert ratio == pytest.approx(dense / gather, rel=5e-3, abs=2e-3) and 0 < low <= high
        assert all(float(diff) < 1e-4 for diff in cells[6].split(" / "))
