"""Count the ARM64 instructions a program in the virtual device's rootfs executes (QEMU plugin insn_count.c).

Emulated time says little about a phone, but the instruction stream is the real one: the same aarch64 builds
of ONNX Runtime, LiteRT and ExecuTorch, whose XNNPACK picks its NEON kernels for the emulated Cortex-A53. The
counts are deterministic (to a few instructions; ORT to 0.1%), so formulations can be compared exactly
on a shared, noisy machine. Memory accesses are counted as QEMU performs them (a vector load or store may be
several), not in bytes. With `caches=True` they also go through a data cache model (insn_count.c).

Runs qemu-user's dynamic `qemu-aarch64` (the static one, used through binfmt_misc, cannot load plugins)
with `-L rootfs`, in a private mount namespace whose /proc/cpuinfo shows the emulated CPU, as the device's.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Mapping

from clcdeploy.device.errors import VirtualDeviceError
from clcdeploy.device.native import compile_atomically, require_compiler
from clcdeploy.device.paths import cache_dir
from clcdeploy.device.virtual import emulation

PLUGIN_SOURCE = Path(__file__).with_name("insn_count.c")
QEMU_DYNAMIC = "qemu-aarch64"  # Debian package qemu-user
CPUINFO = "etc/clcdeploy/cpuinfo"  # the emulated CPU's /proc/cpuinfo, written by rootfs._install_identity
MARKS_ENV = "CLCDEPLOY_PASS_MARKS"  # set to 1, clcdeploy's runners mark the start and end of their timed passes
MARK_FD = -3100  # a mark is a write(2) to this file descriptor (insn_count.c; the runners have their own copy)
CALL_MARKS_ENV = "CLCDEPLOY_CALL_MARKS"  # name,name,...: pte_runner has the counter mark every call of these
MARK = -1  # the kind of a pass mark among a run's events; a call's kind is its function's index in the list


LINE_BYTES = 64  # the cache model's line (insn_count.c)
L2_KB = 512  # the cache model's default L2 size (a Cortex-A53 cluster's is 128 KB-2 MB)


def cache_model(l2_kb: int = L2_KB) -> dict[str, int]:
    """The data cache hierarchy insn_count.c models, for reports."""
    return {"l1_kb": 32, "l1_ways": 4, "l2_kb": l2_kb, "l2_ways": 16, "line_bytes": LINE_BYTES}


@dataclass(frozen=True)
class Counts:
    instructions: int
    memory_accesses: int
    # With the cache model only (count(..., caches=True)): a 32 KB L1 / l2_kb L2 data cache, see insn_count.c.
    l1_misses: int | None = None
    l2_misses: int | None = None
    l2_writebacks: int | None = None

    @property
    def dram_bytes(self) -> int | None:
        """Bytes read into and written back from the modelled L2: the DRAM traffic."""
        return None if self.l2_misses is None else (self.l2_misses + self.l2_writebacks) * LINE_BYTES

    def _map(self, f: Callable[[int, int], int], other: Counts | None = None) -> Counts:
        values = []
        for name in ("instructions", "memory_accesses", "l1_misses", "l2_misses", "l2_writebacks"):
            mine, theirs = getattr(self, name), getattr(other, name) if other is not None else 0
            values.append(None if mine is None or theirs is None else f(mine, theirs))
        return Counts(*values)

    def __sub__(self, other: Counts) -> Counts:
        return self._map(lambda a, b: a - b, other)

    def __add__(self, other: Counts) -> Counts:
        return self._map(lambda a, b: a + b, other)

    def per(self, n: int) -> Counts:
        return self._map(lambda a, _: round(a / n))

    def as_dict(self) -> dict[str, int]:
        """The counters that were counted, and the DRAM traffic if the cache model ran (for JSON documents)."""
        values = {k: v for k, v in asdict(self).items() if v is not None}
        return values | ({"dram_bytes": self.dram_bytes} if self.dram_bytes is not None else {})


def build_plugin(*, log: Callable[[str], None] = print) -> Path:
    """Compile insn_count.c for the host (cached by source hash) and return the shared library."""
    require_compiler("gcc")
    source = PLUGIN_SOURCE.read_bytes()
    out = cache_dir() / "native" / f"insn_count-{hashlib.sha256(source).hexdigest()[:16]}.so"
    if out.exists():
        return out
    return compile_atomically(out, lambda tmp: ["gcc", "-shared", "-fPIC", "-O2", "-fvisibility=hidden", "-o", tmp,
                                                str(PLUGIN_SOURCE)],
                              f"the instruction-counting QEMU plugin {PLUGIN_SOURCE.name}", log)


def check_host() -> None:
    """Raise VirtualDeviceError if this host cannot count (not root, no qemu-user)."""
    if not emulation.is_root():
        raise VirtualDeviceError("counting ARM64 instructions needs root (a private mount namespace for the "
                                 "emulated CPU's /proc/cpuinfo)")
    if shutil.which(QEMU_DYNAMIC) is None:
        raise VirtualDeviceError(f"{QEMU_DYNAMIC} not found: apt-get install qemu-user (the static build in "
                                 f"qemu-user-static cannot load plugins)")


def check_can_count(rootfs: Path) -> None:
    """Raise VirtualDeviceError saying what is missing for counting (root, qemu-user, the rootfs)."""
    check_host()
    if not (rootfs / CPUINFO).is_file():
        raise VirtualDeviceError(f"{rootfs} is not the virtual device's rootfs (no {CPUINFO}); build it with "
                                 f"`clcdeploy device start`")


def counting_rootfs(*, log: Callable[[str], None] = print) -> Path:
    """The virtual device's rootfs, built or brought up to date (with its current pte_runner), once this host is
    known to be able to count in it. Raises VirtualDeviceError saying what is missing."""
    from clcdeploy.device.virtual import rootfs

    check_host()  # before building the rootfs, which needs the same
    path = rootfs.build_rootfs(log=log)
    check_can_count(path)
    return path


def check_l2_kb(l2_kb: int) -> None:
    """Raise ValueError unless `l2_kb` is an L2 size the cache model takes."""
    if not 64 <= l2_kb <= 16384:
        raise ValueError(f"--l2-kb must be between 64 and 16384 (KB), got {l2_kb}")


@dataclass(frozen=True)
class CountedRun:
    """What a whole process executed, and (kind, counters) at each of its marks and, with watched calls
    (CALL_MARKS_ENV), calls, in order (see insn_count.c)."""

    total: Counts
    events: tuple[tuple[int, Counts], ...]
    stdout: str = ""  # what the program printed (a runner's outputs' finiteness, among others)

    @property
    def marks(self) -> tuple[Counts, ...]:
        return tuple(counts for kind, counts in self.events if kind == MARK)


def count(rootfs: Path, argv: list[str], *, env: Mapping[str, str] | None = None, timeout: float = 3600.0,
          caches: bool = False, l2_kb: int = L2_KB, plugin: Path | None = None) -> CountedRun:
    """Run `argv` (argv[0] an arm64 program, as a host path inside `rootfs`) under the counting plugin, with
    its data cache model if `caches`. Raises VirtualDeviceError if it fails."""
    check_can_count(rootfs)
    plugin = plugin or build_plugin()
    with tempfile.TemporaryDirectory(prefix="clcdeploy-insn-") as tmp:
        result = Path(tmp) / "counts.json"
        options = f"{plugin},out={result}" + (f",caches=1,l2_kb={l2_kb}" if caches else "")
        qemu = [QEMU_DYNAMIC, "-L", str(rootfs), "-cpu", emulation.QEMU_CPU, "-plugin", options, *argv]
        # The bind mount lives and dies with the namespace; `exec` keeps the exit code the program's.
        script = f"mount --bind {shlex.quote(str(rootfs / CPUINFO))} /proc/cpuinfo && exec {shlex.join(qemu)}"
        try:
            proc = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                                  env=emulation.device_env(dict(env or {})), capture_output=True, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            raise VirtualDeviceError(f"{Path(argv[0]).name} did not finish within {timeout:.0f} s under "
                                     f"instruction counting (emulation runs it 10-50x slower than this host)") from None
        if proc.returncode != 0 or not result.exists():
            tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
            raise VirtualDeviceError(f"{Path(argv[0]).name} failed under instruction counting "
                                     f"(exit {proc.returncode}): {tail}")
        data = json.loads(result.read_text())

    def counts(values: list[int]) -> Counts:
        named = dict(zip(data["counters"], values))
        if not data["caches"]:
            named = {k: v for k, v in named.items() if k in ("instructions", "memory_accesses")}
        return Counts(**named)

    if not data["events_complete"]:
        raise VirtualDeviceError(f"{Path(argv[0]).name} made more marked calls than the counter could keep")
    return CountedRun(counts(data["total"]), tuple((kind, counts(values)) for kind, values in data["events"]),
                      proc.stdout)


@dataclass(frozen=True)
class PassCounts:
    """The counts of one inference pass, and what the runner printed."""

    per_pass: Counts
    stdout: str


def count_per_pass(rootfs: Path, argv_for: Callable[[int], list[str]], *, passes: int = 2,
                   env: Mapping[str, str] | None = None, timeout: float = 3600.0, caches: bool = False,
                   l2_kb: int = L2_KB) -> Counts:
    """Instructions of one inference pass: `argv_for(passes)` (a clcdeploy runner doing `passes` timed passes)
    run with CLCDEPLOY_PASS_MARKS=1, the counts between its two marks divided by `passes`. Loading, warm-up and
    start-up are outside the marks: they vary by a few million instructions from run to run in Python."""
    return count_passes(rootfs, argv_for, passes=passes, env=env, timeout=timeout, caches=caches,
                        l2_kb=l2_kb).per_pass


def count_passes(rootfs: Path, argv_for: Callable[[int], list[str]], *, passes: int = 2,
                 env: Mapping[str, str] | None = None, timeout: float = 3600.0, caches: bool = False,
                 l2_kb: int = L2_KB) -> PassCounts:
    """`count_per_pass`, with the runner's output."""
    if passes < 1:
        raise ValueError("passes must be at least 1")
    run = count(rootfs, argv_for(passes), env={**(env or {}), MARKS_ENV: "1"}, timeout=timeout, caches=caches,
                l2_kb=l2_kb)
    if len(run.marks) != 2:
        raise VirtualDeviceError(f"{Path(argv_for(passes)[0]).name} made {len(run.marks)} pass marks, not 2 (is it "
                                 f"a clcdeploy runner? they mark their timed passes when {MARKS_ENV}=1)")
    return PassCounts((run.marks[1] - run.marks[0]).per(passes), run.stdout)


@dataclass(frozen=True)
class CallCounts:
    """One pass, cut at every call of the watched functions: what ran from the pass's start mark to the first call
    (`before`), and from each call to the next one (or to the end mark) with the name of the function called."""

    before: Counts
    calls: tuple[tuple[str, Counts], ...]


def count_calls(rootfs: Path, argv: list[str], functions: list[str], *, env: Mapping[str, str] | None = None,
                timeout: float = 3600.0, caches: bool = False, l2_kb: int = L2_KB) -> CallCounts:
    """Counts of the one timed pass of `argv` (pte_runner with --num_executions=1) cut at every call of
    `functions` (dynamic symbols its libraries export, registered by the runner through CALL_MARKS_ENV)."""
    run = count(rootfs, argv, env={**(env or {}), MARKS_ENV: "1", CALL_MARKS_ENV: ",".join(functions)},
                timeout=timeout, caches=caches, l2_kb=l2_kb)
    kinds = [kind for kind, _ in run.events]
    if len(run.marks) != 2:
        raise VirtualDeviceError(f"{Path(argv[0]).name} made {len(run.marks)} pass marks, not 2 (does it support "
                                 f"{CALL_MARKS_ENV}? pte_runner does)")
    start, end = kinds.index(MARK), len(kinds) - 1 - kinds[::-1].index(MARK)
    window = run.events[start:end + 1]
    cuts = [counts for _, counts in window]
    spans = [later - earlier for earlier, later in zip(cuts, cuts[1:])]
    return CallCounts(spans[0], tuple((functions[kind], span) for (kind, _), span in zip(window[1:-1], spans[1:])))

