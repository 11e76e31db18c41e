"""scripts/bench_igc2_kernel.py: one line and exit code 2 for bad input (checked before any work, or, for a -march
value the compiler rejects, naming the flag); a tiny real run prints one row per fused IGC."""

from __future__ import annotations

import re
import shutil

import pytest

from script_loading import load_script

needs_compiler = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")


@pytest.fixture(scope="module")
def bench_igc2_kernel():
    return load_script("bench_igc2_kernel")


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("bench_igc2_kernel: error: ")
    return err


@pytest.mark.parametrize("argv, message", [
    (["--model", "nope"], "unknown model 'nope': run `clcdeploy models`"),
    (["--rounds", "0"], "--rounds must be at least 1"),
    (["--offset", "3"], "--offset must be a multiple of 4"),
    (["--compiler", "no-such-compiler-here"], "no-such-compiler-here not found"),
    (["--model", "mobilenet_v1_tiny", "--size", "64"], "mobilenet_v1_tiny has no IGC"),
])
def test_bad_input_is_one_line_and_exit_code_2(bench_igc2_kernel, capsys, argv, message):
    assert bench_igc2_kernel.main(argv) == 2
    assert message in one_error_line(capsys)


def test_a_too_small_size_names_the_smallest_that_works(bench_igc2_kernel, capsys):
    from clcdeploy.analysis.input_size import check_input_size
    from clcdeploy.errors import ConfigurationError
    from clcdeploy.zoo import create_model

    assert bench_igc2_kernel.main(["--size", "1"]) == 2  # it used to print a table of 1x1 maps
    smallest = int(re.search(r"--size 1 is too small for clcnet_a: the smallest input size it takes is (\d+)$",
                             one_error_line(capsys).strip()).group(1))
    model = create_model("clcnet_a").eval()
    check_input_size(model, "clcnet_a", smallest)
    with pytest.raises(ConfigurationError):
        check_input_size(model, "clcnet_a", smallest - 1)


@needs_compiler
def test_a_march_the_compiler_rejects_is_named(bench_igc2_kernel, capsys):
    assert bench_igc2_kernel.main(["--march", "bogus", "--size", "32", "--rounds", "1"]) == 2
    assert "g++ rejected -march=bogus (" in one_error_line(capsys)


@needs_compiler
def test_a_tiny_run_prints_a_row_per_fused_igc(bench_igc2_kernel, capsys):
    assert bench_igc2_kernel.main(["--size", "32", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if re.match(r"\| \d+ \| ", line)]
    assert len(rows) == len(bench_igc2_kernel.igc_shapes("clcnet_a", 32)) > 0
    assert out.splitlines()[-1].startswith("| all |")
