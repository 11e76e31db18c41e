"""Per-operator ARM64 counts of a .pte (clcdeploy.bench.arm64_ops): calls line up with XNNPACK's operators or the
attribution is refused; in the virtual device, the operators' counts add up to the pass and follow their work."""

from __future__ import annotations

import pytest
import torch

from clcdeploy.bench import arm64_ops
from clcdeploy.device.errors import VirtualDeviceError
from clcdeploy.device.virtual import instructions
from clcdeploy.device.virtual.instructions import Counts
from clcdeploy.device.virtual.rootfs import RUNNER_PATH, build_rootfs


def _calls(*functions: str) -> tuple[tuple[str, Counts], ...]:
    return tuple((f, Counts(100 * (i + 1), 10)) for i, f in enumerate(functions))


def test_a_concatenation_takes_a_call_per_input_and_a_reshape_none():
    ops = ["Transpose", "GEMM", "Copy", "Static Reshape (NC)", "Add"]
    assert arm64_ops.calls_per_operator(ops, 5) == [1, 1, 2, 0, 1]
    attributed = arm64_ops.attribute(ops, _calls("2d", "2d", "1d", "1d", "1d"), Counts(7, 1))
    assert [(op, c.instructions) for op, c in attributed.operators] == [
        ("Transpose", 100), ("GEMM", 200), ("Copy", 300 + 400), ("Static Reshape (NC)", 0), ("Add", 500)]
    assert attributed.by_type()["Copy"] == (Counts(700, 20), 1)


@pytest.mark.parametrize("ops, calls", [
    (["GEMM", "Add"], 3),  # a call too many and no concatenation to give it to
    (["GEMM", "Copy", "Copy"], 4),  # one call over, which two concatenations cannot share
    (["GEMM", "Add", "Add"], 2),  # too few calls
])
def test_calls_that_do_not_add_up_are_refused(ops, calls):
    with pytest.raises(VirtualDeviceError, match="cannot attribute them"):
        arm64_ops.calls_per_operator(ops, calls)


def test_calls_that_do_not_line_up_with_the_operators_are_refused():
    ops = ["DW", "Add", "DW", "Add", "DW", "Add"]
    with pytest.raises(VirtualDeviceError, match="DW operators call 3d, 1d"):
        arm64_ops.attribute(ops, _calls("3d", "1d", "3d", "1d", "1d", "3d"), Counts(0, 0))


def test_transposes_may_call_different_entry_points():
    """XNNPACK picks a transpose's kernel by the tensor's shape (ShuffleNet's channel shuffles)."""
    ops = ["Transpose (ND, X32)"] * 3
    attributed = arm64_ops.attribute(ops, _calls("2d", "1d", "2d"), Counts(0, 0))
    assert attributed.by_type()["Transpose (ND, X32)"][1] == 3


class SmallAndLargeGemm(torch.nn.Module):
    """A stem, then two 1x1 convolutions on its output, one with 8x the outputs (and mult-adds) of the other,
    concatenated and added to themselves: IGEMM, GEMM, GEMM, a two-input concatenation, an add."""

    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 16, 3, padding=1)
        self.small = torch.nn.Conv2d(16, 16, 1)
        self.large = torch.nn.Conv2d(16, 128, 1)

    def forward(self, x):
        h = torch.relu(self.stem(x))
        y = torch.cat([self.small(h), self.large(h)], dim=1)
        return y + y


@pytest.mark.device
def test_operators_add_up_to_the_pass_and_follow_their_work(tmp_path):
    from clcdeploy.export import executorch_format

    rootfs = build_rootfs(log=lambda _: None)
    torch.manual_seed(0)
    pte = tmp_path / "gemms.pte"
    with torch.no_grad():
        executorch_format.export(SmallAndLargeGemm().eval(), torch.randn(1, 3, 32, 32), pte)
    operators = arm64_ops.xnnpack_operators(pte, (1, 3, 32, 32))
    profile = arm64_ops.count_operators(rootfs, pte, operators, caches=True)

    names = [op for op, _ in profile.operators]
    gemms = [counts for op, counts in profile.operators if op.endswith("GEMM") and "Fully Connected" in op]
    assert len(gemms) == 2 and any("Copy" in op for op in names) and any("Add" in op for op in names)
    small, large = sorted(gemms, key=lambda c: c.instructions)
    assert 4.0 < large.instructions / small.instructions < 12.0  # 8x the mult-adds

    whole = instructions.count_per_pass(rootfs, lambda n: [str(rootfs / RUNNER_PATH), "--model_path", str(pte),
                                                           "--cpu_threads=1", f"--num_executions={n}", "--warmup=1"],
                                        passes=1, caches=True)
    parts = profile.before
    for _, counts in profile.operators:
        parts = parts + counts
    assert abs(parts.instructions - whole.instructions) <= 0.002 * whole.instructions
    assert abs(parts.memory_accesses - whole.memory_accesses) <= 0.002 * whole.memory_accesses
    assert parts.dram_bytes > 0 and profile.before.instructions > 1_000
