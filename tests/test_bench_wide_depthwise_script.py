"""scripts/bench_wide_depthwise.py: one line and exit code 2 for bad input; a tiny real run prints its two
medians and nothing else (the converters' warnings and log lines are silenced)."""

from __future__ import annotations

import re
import warnings

import pytest

from script_loading import load_script


@pytest.fixture(scope="module")
def bench_wide_depthwise():
    return load_script("bench_wide_depthwise")


@pytest.mark.parametrize("argv", [["--channels", "0"], ["--channels", "-3"], ["--size", "0"], ["--runs", "0"]])
def test_bad_input_is_one_line_and_exit_code_2(bench_wide_depthwise, capsys, argv):
    assert bench_wide_depthwise.main(argv) == 2
    err = capsys.readouterr().err
    assert err == "bench_wide_depthwise: error: --channels, --size and --runs must be at least 1\n"


def test_a_tiny_run_prints_two_medians_and_no_warnings(bench_wide_depthwise, capfd):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert bench_wide_depthwise.main(["--channels", "2", "--size", "4", "--runs", "2"]) == 0
    out, err = capfd.readouterr()
    assert [str(w.message) for w in caught] == [] and err == ""
    lines = out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["two 3x3 depthwise + add", "one 3x6 depthwise, stride (1, 2)"]
    assert all(re.search(r": \d+\.\d us \(median, 1 thread, 2 channels, 4x4\)$", line) for line in lines)
