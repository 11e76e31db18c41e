"""ARM64 instruction counting in the virtual device's rootfs (qemu-user + clcdeploy's QEMU plugin): a pass is
counted the same whatever the number of passes, counts follow the work, and a failing program, or one that does
not mark its passes, is one error."""

from __future__ import annotations

import pytest
import torch

from clcdeploy.device.errors import VirtualDeviceError
from clcdeploy.device.virtual import instructions
from clcdeploy.device.virtual.rootfs import RUNNER_PATH, build_rootfs

pytestmark = pytest.mark.device


@pytest.fixture(scope="module")
def rootfs():
    return build_rootfs(log=lambda _: None)


@pytest.fixture(scope="module")
def conv_ptes(tmp_path_factory):
    """One small conv net exported at 16x16 and at 32x32 input (4x the pixels, so about 4x the work)."""
    from clcdeploy.export import executorch_format

    folder = tmp_path_factory.mktemp("insn")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Conv2d(16, 16, 3, padding=1, groups=16), torch.nn.Conv2d(16, 32, 1)).eval()
    paths = {}
    for size in (16, 32):
        paths[size] = folder / f"net{size}.pte"
        with torch.no_grad():
            executorch_format.export(net, torch.randn(1, 3, size, size), paths[size])
    return paths


def _pte_runner(rootfs, model):
    return lambda n: [str(rootfs / RUNNER_PATH), "--model_path", str(model), "--cpu_threads=1",
                      f"--num_executions={n}", "--warmup=1"]


def _python_with_marks(rootfs, script: str) -> list[str]:
    """argv running `script` in the rootfs's Python, with a `mark()` that makes a pass mark."""
    prelude = ("import os\n"
               "def mark():\n"
               "    try:\n"
               f"        os.write({instructions.MARK_FD}, b'')\n"
               "    except OSError:\n"
               "        pass\n")
    return [str(rootfs / "usr/bin/python3"), "-c", prelude + script]


def test_one_pass_counts_the_same_whatever_the_number_of_passes(rootfs, conv_ptes):
    one = instructions.count_per_pass(rootfs, _pte_runner(rootfs, conv_ptes[16]), passes=1)
    three = instructions.count_per_pass(rootfs, _pte_runner(rootfs, conv_ptes[16]), passes=3)
    assert one.instructions > 10_000 and one.memory_accesses > 1_000
    assert abs(one.instructions - three.instructions) <= 0.01 * three.instructions
    assert abs(one.memory_accesses - three.memory_accesses) <= 0.01 * three.memory_accesses


def test_counts_follow_the_work_of_a_pass(rootfs, conv_ptes):
    small = instructions.count_per_pass(rootfs, _pte_runner(rootfs, conv_ptes[16]), passes=1)
    large = instructions.count_per_pass(rootfs, _pte_runner(rootfs, conv_ptes[32]), passes=1)
    assert 2.5 < large.instructions / small.instructions < 5.0
    assert 2.5 < large.memory_accesses / small.memory_accesses < 5.0


def test_a_failing_program_is_one_clear_error(rootfs):
    with pytest.raises(VirtualDeviceError, match=r"sh failed under instruction counting \(exit 3\)"):
        instructions.count(rootfs, [str(rootfs / "bin/sh"), "-c", "echo broken >&2; exit 3"])


def test_a_program_without_pass_marks_is_refused(rootfs):
    with pytest.raises(VirtualDeviceError, match="true made 0 pass marks, not 2"):
        instructions.count_per_pass(rootfs, lambda n: [str(rootfs / "bin/true")])


def test_a_folder_that_is_not_the_rootfs_is_refused(tmp_path):
    with pytest.raises(VirtualDeviceError, match="is not the virtual device's rootfs"):
        instructions.count(tmp_path, ["/bin/true"])


def test_a_program_that_runs_too_long_is_one_clear_error(rootfs):
    with pytest.raises(VirtualDeviceError, match=r"sh did not finish within 1 s under instruction counting"):
        instructions.count(rootfs, [str(rootfs / "bin/sh"), "-c", "while :; do :; done"], timeout=1)


def test_the_cache_model_sees_a_copy_as_three_passes_over_dram(rootfs):
    """Copying N bytes (between two marks) reads the source, fills the destination's lines (write-allocate) and
    writes them back: about 3N bytes of DRAM traffic (less the dirty lines still in the 512 KB L2 at the second
    mark) and 2N/64 L1 misses."""
    script = "b = bytearray(16 << 20)\nmark(); c = bytes(b); mark()\n"
    run = instructions.count(rootfs, _python_with_marks(rootfs, script), caches=True)
    copy, copied = run.marks[1] - run.marks[0], 16 << 20
    assert 2.9 < copy.dram_bytes / copied < 3.05
    assert 1.95 < copy.l1_misses / (copied / 64) < 2.05
    assert copy.l2_misses <= copy.l1_misses <= copy.memory_accesses


def test_a_working_set_between_the_l2_sizes_fits_only_the_larger(rootfs):
    """Scanning a 1 MB buffer four times (between two marks, just after writing it) reads it from DRAM every time
    with a 512 KB L2, and finds it in a 2 MB one."""
    script = "b = bytearray(b'y' * (1 << 20))\nmark()\nfor _ in range(4):\n    b.find(b'x')\nmark()\n"
    argv = _python_with_marks(rootfs, script)
    small, large = (instructions.count(rootfs, argv, caches=True, l2_kb=kb) for kb in (512, 2048))
    scanned = 4 << 20
    # reads, plus the write-back of the just-written lines the first scan evicts: 1.075x measured
    assert 0.95 < (small.marks[1] - small.marks[0]).dram_bytes / scanned < 1.2
    assert (large.marks[1] - large.marks[0]).dram_bytes < 0.1 * scanned


def test_counts_without_the_cache_model_have_no_cache_numbers(rootfs, conv_ptes):
    plain = instructions.count_per_pass(rootfs, _pte_runner(rootfs, conv_ptes[16]), passes=1)
    cached = instructions.count_per_pass(rootfs, _pte_runner(rootfs, conv_ptes[16]), passes=1, caches=True)
    assert plain.l1_misses is None and plain.dram_bytes is None
    assert cached.instructions == pytest.approx(plain.instructions, rel=0.01)
    assert cached.l1_misses > 0 and cached.dram_bytes is not None
