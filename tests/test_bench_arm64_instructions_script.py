"""scripts/bench_arm64_instructions.py: one line and exit code 2 for bad input; a tiny real run counts every
artifact in the virtual device and writes its tables."""

from __future__ import annotations

import re

import pytest

from script_loading import load_script


@pytest.fixture(scope="module")
def bench_arm64_instructions():
    return load_script("bench_arm64_instructions")


@pytest.mark.parametrize("argv, message", [
    (["--runtimes", "pte,coreml"], "unknown runtime coreml"),
    (["--variants", "floor9"], "unknown variant floor9"),
    (["--models", "mobilenet_v1", "--variants", "floor2"], "add clcnet_a to --models"),
    (["--passes", "0"], "--passes and --jobs must be at least 1"),
])
def test_bad_input_is_one_line_and_exit_code_2(bench_arm64_instructions, capsys, argv, message):
    assert bench_arm64_instructions.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("bench_arm64_instructions: error: ") and message in err


@pytest.mark.device
def test_a_tiny_run_counts_every_artifact(bench_arm64_instructions, tmp_path, capsys):
    out = tmp_path / "arm64.md"
    argv = ["--models", "mobilenet_v1,clcnet_a", "--variants", "floor2", "--runtimes", "pte,tflite", "--size", "32",
            "--passes", "1", "--markdown", str(out)]
    assert bench_arm64_instructions.main(argv) == 0
    text = out.read_text()
    assert text == capsys.readouterr().out.rstrip("\n") + "\n"
    rows = [line for line in text.splitlines() if line.endswith("x) |")]
    assert len(rows) == 6  # three entries, in the instruction and in the memory-access table
    for row in rows:
        cells = row.strip("| ").split(" | ")[1:]
        assert len(cells) == 2 and all(re.fullmatch(r"[\d.]+ \([\d.]+x\)", c) for c in cells)
        assert all(float(c.split()[0]) > 0.1 for c in cells)  # millions per inference
    mobilenet = rows[0].strip("| ").split(" | ")[1:]
    assert all(c.endswith("(1.000x)") for c in mobilenet)
    floor_rows = [line for line in text.splitlines() if line.startswith("| clcNet-A (export default) |")]
    ratios = floor_rows[-1].strip("| ").split(" | ")[1:]  # the last table: formulations / floor2
    assert all(re.fullmatch(r"[\d.]+; [\d.]+", r) for r in ratios)
