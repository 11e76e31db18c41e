"""scripts/profile_arm64_ops.py: one line and exit code 2 for bad input; a tiny real run cuts every program into
its XNNPACK operators in the virtual device and writes the tables."""

from __future__ import annotations

import pytest

from script_loading import load_script


@pytest.fixture(scope="module")
def profile_arm64_ops():
    return load_script("profile_arm64_ops")


@pytest.mark.parametrize("argv, message", [
    (["--variants", "floor9"], "unknown variant floor9"),
    (["--models", "mobilenet_v1", "--variants", "floor2"], "add clcnet_a to --models"),
    (["--variants", "fused-nhwc"], "run clcdeploy's own kernel outside XNNPACK"),
    (["--size", "16"], "--size at least 32"),
])
def test_bad_input_is_one_line_and_exit_code_2(profile_arm64_ops, capsys, argv, message):
    assert profile_arm64_ops.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("profile_arm64_ops: error: ") and message in err


@pytest.mark.device
def test_a_tiny_run_profiles_every_program(profile_arm64_ops, tmp_path, capsys):
    out = tmp_path / "ops.md"
    argv = ["--models", "mobilenet_v1,clcnet_a", "--variants", "floor2", "--size", "32", "--markdown", str(out)]
    assert profile_arm64_ops.main(argv) == 0
    text = out.read_text()
    assert text == capsys.readouterr().out.rstrip("\n") + "\n"
    assert text.count("| operator | MobileNet-v1 1.0 | clcNet-A (export default) | floor: ") == 2  # no caches
    totals = [line for line in text.splitlines() if line.startswith("| total |")]
    assert len(totals) == 2
    operators = [int(cell.rsplit("(", 1)[1].rstrip(")")) for cell in totals[0].strip("| ").split(" | ")[1:]]
    assert operators[1] > operators[2] > operators[0] > 10  # the exact lowering has the most operators
    copies = next(line for line in text.splitlines() if line.startswith("| Copy (NC, X32) |"))
    mobilenet, exact, floor = copies.strip("| ").split(" | ")[1:]
    assert mobilenet == floor == "-" and exact != "-"  # only the exact lowering copies
