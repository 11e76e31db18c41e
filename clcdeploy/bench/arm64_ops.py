"""Per-operator ARM64 counts of an ExecuTorch `.pte`: where one inference's instructions and DRAM traffic go,
operator by operator, in the virtual device's pte_runner under qemu-user.

XNNPACK runs every operator through the pthreadpool entry points that ExecuTorch's libexecutorch_threadpool.so
exports, even at one thread; pte_runner has the counting plugin mark each of those calls
(`instructions.count_calls`), so what runs from one call to the next is one operator (plus the few instructions
that dispatch the next). The operators' names come from an ETDump of the same program on this host: the same
XNNPACK subgraph, run by the host's build. A concatenation is one operator there but one call per input; a
static reshape of contiguous data makes no call.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from clcdeploy.device.errors import VirtualDeviceError
from clcdeploy.device.virtual import instructions, rootfs as device_rootfs
from clcdeploy.device.virtual.instructions import Counts

THREADPOOL_LIBRARY = f"{device_rootfs.EXECUTORCH_PREFIX}/lib/libexecutorch_threadpool.so"
ENTRY_POINT_PREFIX = "pthreadpool_parallelize"
BEFORE_OPERATORS = "before the first operator (input copy, reshape and setup of the XNNPACK runtime)"
NO_CALL = ("Static Reshape",)  # operator types that make no call (a reshape of contiguous data is a no-op)
PER_INPUT = ("Copy",)  # the type XNNPACK names a concatenation by: one copy call per input
SHAPE_DEPENDENT = ("Transpose",)  # types whose entry point depends on the tensor's shape


@dataclass(frozen=True)
class OperatorCounts:
    """One inference: the counts before the first operator, and each operator's (type, counts) in order."""

    before: Counts
    operators: tuple[tuple[str, Counts], ...]

    def by_type(self) -> dict[str, tuple[Counts, int]]:
        """Operator type -> (summed counts, number of operators), the most instructions first."""
        sums: dict[str, tuple[Counts, int]] = {}
        for name, counts in self.operators:
            total, n = sums.get(name, (None, 0))
            sums[name] = (counts if total is None else total + counts, n + 1)
        return dict(sorted(sums.items(), key=lambda item: -item[1][0].instructions))


def entry_points(rootfs: Path) -> list[str]:
    """The pthreadpool entry points exported by the rootfs's ExecuTorch threadpool library."""
    try:
        listing = subprocess.run(["nm", "-D", "--defined-only", str(rootfs / THREADPOOL_LIBRARY)],
                                 capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise VirtualDeviceError(f"cannot list the functions of {THREADPOOL_LIBRARY} (is binutils' nm "
                                 f"installed? apt-get install binutils): {exc}") from None
    names = [line.split()[-1] for line in listing.splitlines() if line.strip()]
    return [name for name in names if name.startswith(ENTRY_POINT_PREFIX)]


def xnnpack_operators(pte: Path, input_shape: tuple[int, ...]) -> list[str]:
    """The XNNPACK operator types of one inference of `pte`, in execution order (an ETDump on this host)."""
    from clcdeploy.export.quiet import quiet_output

    with quiet_output():  # the host runtimes' import and Inspector chatter (torchao, cpuinfo, warnings)
        import torch
        from executorch.devtools import Inspector
        from executorch.extension.pybindings import portable_lib

        from clcdeploy.kernels.runtime import prepare_pte

        prepare_pte(pte)
        portable_lib._unsafe_reset_threadpool(1)
        module = portable_lib._load_for_executorch(str(pte), enable_etdump=True, debug_buffer_size=0)
        module.forward((torch.zeros(input_shape),))
        with tempfile.TemporaryDirectory(prefix="clcdeploy-etdump-") as tmp:
            dump = Path(tmp) / "ops.etdp"
            module.write_etdump_result_to_file(str(dump))
            events = [e for block in Inspector(etdump_path=str(dump)).event_blocks for e in block.events]
    return [re.sub(r" #\d+$", "", e.name) for e in events if e.is_delegated_op]


def calls_per_operator(operators: list[str], n_calls: int) -> list[int]:
    """How many marked calls each operator makes: none for NO_CALL types, one for most, and the calls left over
    shared evenly among the PER_INPUT ones (concatenations). Raises VirtualDeviceError if they do not add up."""
    calls = [0 if op.startswith(NO_CALL) else 1 for op in operators]
    concats = [i for i, op in enumerate(operators) if op.startswith(PER_INPUT)]
    extra = n_calls - sum(calls)
    if extra < 0 or (extra and not concats) or (concats and extra % len(concats)):
        raise VirtualDeviceError(f"{n_calls} pthreadpool calls do not match the {len(operators)} XNNPACK operators "
                                 f"of the program ({len(concats)} concatenations): cannot attribute them")
    for i in concats:
        calls[i] += extra // len(concats)
    return calls


def attribute(operators: list[str], calls: tuple[tuple[str, Counts], ...], before: Counts) -> OperatorCounts:
    """Each operator's counts: the spans of its calls. Checks that every operator type with three or more
    operators always calls the same entry point (a misaligned attribution would mix them), except the
    SHAPE_DEPENDENT ones."""
    per_operator = calls_per_operator(operators, len(calls))
    result, entries, position = [], {}, 0
    for op, n in zip(operators, per_operator):
        mine = calls[position:position + n]
        position += n
        for function, _ in mine:
            entries.setdefault(op, Counter())[function] += 1
        total = before - before  # zero, with the same counters as the others
        for _, counts in mine:
            total = total + counts
        result.append((op, total))
    for op, functions in entries.items():
        if operators.count(op) >= 3 and len(functions) > 1 and not op.startswith(SHAPE_DEPENDENT):
            raise VirtualDeviceError(f"{op} operators call {', '.join(functions)}: the calls do not line up with "
                                     f"the operators, cannot attribute them")
    return OperatorCounts(before, tuple(result))


def count_operators(rootfs: Path, pte: Path, operators: list[str], *, caches: bool = False,
                    l2_kb: int = instructions.L2_KB, timeout: float = 3600.0) -> OperatorCounts:
    """Per-operator counts of one inference of `pte` (after one warm-up) in the rootfs's pte_runner at one
    thread; `operators` from xnnpack_operators (which uses the host's ExecuTorch runtime: call it from one thread).
    Raises VirtualDeviceError if counting fails or the calls cannot be attributed."""
    argv = [str(rootfs / device_rootfs.RUNNER_PATH), "--model_path", str(pte), "--cpu_threads=1",
            "--num_executions=1", "--warmup=1"]
    run = instructions.count_calls(rootfs, argv, entry_points(rootfs), timeout=timeout, caches=caches, l2_kb=l2_kb)
    return attribute(operators, run.calls, run.before)


def measures(profiles: list[OperatorCounts]) -> list[tuple[str, str, float]]:
    """(Counts attribute, title, unit) of what the profiles counted: DRAM traffic only with the cache model."""
    if not profiles:
        return []
    found = [("instructions", "M instructions", 1e6), ("memory_accesses", "M memory accesses", 1e6)]
    caches = profiles[0].before.dram_bytes is not None
    return found + ([("dram_bytes", "MB of DRAM traffic (cache model)", 1e6)] if caches else [])


def table_rows(profiles: list[OperatorCounts], attribute: str, unit: float) -> list[list[str]]:
    """[row label, one cell per profile]: the time before the first operator, every operator type (the measure
    summed over its operators, their number in parentheses), and the total."""
    sums = [p.by_type() for p in profiles]
    types = list(dict.fromkeys(t for s in sums for t in s))
    rows = [[BEFORE_OPERATORS, *(f"{getattr(p.before, attribute) / unit:.2f}" for p in profiles)]]
    for t in types:
        cells = []
        for s in sums:
            counts, n = s.get(t, (None, 0))
            cells.append(f"{getattr(counts, attribute) / unit:.2f} ({n})" if counts is not None else "-")
        rows.append([t, *cells])
    totals = [getattr(p.before, attribute) + sum(getattr(c, attribute) for _, c in p.operators) for p in profiles]
    rows.append(["total", *(f"{v / unit:.2f} ({len(p.operators)})" for v, p in zip(totals, profiles))])
    return rows


def markdown_tables(labels: list[str], profiles: list[OperatorCounts]) -> list[str]:
    """One markdown table per measure: operator types down, `labels` (one per profile) across."""
    lines = []
    for attribute, title, unit in measures(profiles):
        lines += ["", f"**{title} per inference, by XNNPACK operator type** (operators in parentheses)", "",
                  "| operator | " + " | ".join(labels) + " |", "| --- |" + " --- |" * len(labels)]
        lines += ["| " + " | ".join(row) + " |" for row in table_rows(profiles, attribute, unit)]
    return lines


def as_json(profile: OperatorCounts) -> dict:
    """The profile with every counter, per operator in execution order."""
    return {"before_operators": profile.before.as_dict(),
            "operators": [{"type": name, **counts.as_dict()} for name, counts in profile.operators]}
