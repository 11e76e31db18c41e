"""The fused IGC kernel's C++ core on every SIMD target it is compiled for: x86 baseline (SSE), AVX2,
this machine (-march=native, AVX-512 here) and aarch64 NEON (cross-compiled, run under qemu user mode).
`tests/native/igc2_check.cpp` compares the NHWC and NCHW paths with a direct evaluation of the IGC."""

from __future__ import annotations

import platform
import shutil
import subprocess
from pathlib import Path

import pytest

from clcdeploy.kernels.build import CSRC

CHECK = Path(__file__).with_name("native") / "igc2_check.cpp"
X86 = platform.machine() in ("x86_64", "AMD64")


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return {flag for line in text.splitlines() if line.startswith("flags") for flag in line.split(":")[1].split()}


def _build_and_run(compiler: str, flags: list[str], tmp_path: Path, runner: list[str]) -> str:
    if shutil.which(compiler) is None:
        pytest.skip(f"{compiler} is not installed (scripts/setup.sh installs it)")
    binary = tmp_path / "igc2_check"
    subprocess.run([compiler, "-O3", "-std=c++17", "-Wno-psabi", *flags, f"-I{CSRC}", str(CHECK),
                    str(CSRC / "igc2_core.cpp"), "-o", str(binary)], check=True, capture_output=True, text=True)
    done = subprocess.run([*runner, str(binary)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.parametrize("target,flags,cpu_flag", [
    ("x86-64 baseline", ["-march=x86-64"], None),
    ("AVX2", ["-march=haswell"], "avx2"),
    ("native", ["-march=native"], None),
])
def test_host_kernel_matches_the_igc_definition(tmp_path, target, flags, cpu_flag):
    if not X86 and target != "native":
        pytest.skip("x86 targets")
    if cpu_flag and cpu_flag not in _cpu_flags():
        pytest.skip(f"this CPU has no {cpu_flag}")
    assert "worst" in _build_and_run("g++", flags, tmp_path, [])


def test_aarch64_neon_kernel_matches_the_igc_definition(tmp_path):
    qemu = shutil.which("qemu-aarch64-static") or shutil.which("qemu-aarch64")
    if qemu is None:
        pytest.skip("qemu-user-static is not installed (scripts/setup.sh installs it)")
    out = _build_and_run("aarch64-linux-gnu-g++", ["-static", "-march=armv8-a"], tmp_path, [qemu])
    assert "worst" in out
