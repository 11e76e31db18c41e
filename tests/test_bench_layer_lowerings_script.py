"""scripts/bench_layer_lowerings.py: one line and exit code 2 for bad input; a tiny real run writes its table."""

from __future__ import annotations

import re

import pytest

from script_loading import load_script


@pytest.fixture(scope="module")
def bench_layer_lowerings():
    return load_script("bench_layer_lowerings")


@pytest.mark.parametrize("argv, message", [
    (["--kind", "topological", "--runtimes", "onnx,coreml"], "unknown runtime coreml"),
    (["--kind", "channelwise", "--runs", "0"], "--runs, --repeat and --threads must be at least 1"),
    (["--kind", "topological", "--models", "sic_c_tiny", "--runtimes", "onnx"],
     "sic_c_tiny has no topologically subdivided convolution"),
    (["--kind", "channelwise", "--models", "sic_i_tiny", "--runtimes", "onnx"],
     "sic_i_tiny has no channel-wise convolution"),
    (["--kind", "topological", "--models", "sic_zz", "--runtimes", "onnx"], "sic_zz"),
    (["--kind", "handwritten-igc", "--models", "mobilenet_v1_tiny", "--runtimes", "onnx"],
     "mobilenet_v1_tiny has no channel shuffle"),
    (["--kind", "small-groups", "--models", "mobilenet_v1_tiny", "--runtimes", "onnx"],
     "mobilenet_v1_tiny has no grouped convolution with 2-4 channels per group"),

    (["--kind", "topological", "--models", "sic_i_tiny", "--runtimes", "onnx", "--size", "4"],
     "--size 4 is too small for sic_i_tiny: the smallest input size it takes is "),
])
def test_bad_input_is_one_line_and_exit_code_2(bench_layer_lowerings, capsys, argv, message):
    assert bench_layer_lowerings.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("bench_layer_lowerings: error: ") and message in err


def test_the_smallest_size_named_for_a_too_small_one_is_the_smallest_that_runs(bench_layer_lowerings, capsys):
    argv = ["--kind", "topological", "--models", "sic_i_tiny", "--runtimes", "onnx", "--runs", "1", "--warmup", "0",
            "--repeat", "1"]
    assert bench_layer_lowerings.main([*argv, "--size", "4"]) == 2  # it used to fail deep in PyTorch
    smallest = int(capsys.readouterr().err.rsplit(" ", 1)[1])
    assert bench_layer_lowerings.main([*argv, "--size", str(smallest - 1)]) == 2
    assert bench_layer_lowerings.main([*argv, "--size", str(smallest)]) == 0


@pytest.mark.parametrize("kind, model, header", [
    ("topological", "sic_i_tiny", "| model | mult-adds computed: gather / dense | runtime | gather ms | dense ms |"),
    ("channelwise", "channelnet_tiny",
     "| model | mult-adds computed: plane / pixels | runtime | plane ms | pixels ms |"),
    ("small-groups", "sk_pw_gconv_pw_tiny",
     "| model | mult-adds computed: grouped / depthwise | runtime | grouped ms | depthwise ms |"),
    ("merged-groups", "sk_pwgconv_dw_pwgconv_tiny",
     "| model | mult-adds computed: separate / merged | runtime | separate ms | merged ms |"),
])
def test_a_tiny_run_times_both_forms_side_by_side(bench_layer_lowerings, tmp_path, capsys, kind, model, header):
    out = tmp_path / f"{kind}.md"
    argv = ["--kind", kind, "--models", model, "--runtimes", "onnx,tflite", "--runs", "2", "--warmup", "0",
            "--repeat", "2", "--out", str(out)]
    assert bench_layer_lowerings.main(argv) == 0
    table = out.read_text()
    assert table == capsys.readouterr().out.rstrip("\n") + "\n"
    assert table.splitlines()[2].startswith(header)
    rows = [line for line in table.splitlines() if line.startswith(f"| {model} ")]
    assert [row.split(" | ")[2] for row in rows] == ["ORT CPU", "LiteRT XNNPACK"]
    for row in rows:
        cells = row.strip("| ").split(" | ")
        old, new = float(cells[3]), float(cells[4])
        ratio, low, high = map(float, re.fullmatch(r"([\d.]+) \(([\d.]+)-([\d.]+)\)", cells[5]).groups())
        assert ratio == pytest.approx(new / old, rel=5e-3, abs=2e-3) and 0 < low <= high
        assert all(float(diff) < 1e-4 for diff in cells[6].split(" / "))
