#!/usr/bin/env python
"""Per-operator ARM64 profile of ExecuTorch (XNNPACK) programs: instructions, memory accesses and (with --caches)
DRAM traffic of one inference, summed per XNNPACK operator type, counted in the virtual device.

The ARM64 counterpart of the per-op profiles of scripts/bench_runtimes.py --profile: the same artifacts (exported
and checked as there), run once after a warm-up in the virtual device's pte_runner at one thread under
qemu-user with clcdeploy's counting plugin, each XNNPACK operator cut out by its pthreadpool calls
(`clcdeploy.bench.arm64_ops`). Deterministic: no repetitions needed, and the processes may run in parallel.

    .venv/bin/python scripts/profile_arm64_ops.py [--models mobilenet_v1,clcnet_a] [--variants floor2]
        [--size 224] [--caches [--l2-kb 512]] [--jobs 2] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_runtimes import (CLCNET_A_VARIANTS, Entry, build_entries, check_known, command_line,  # noqa: E402
                            exported, publish)

import clcdeploy  # noqa: E402
from clcdeploy.bench.arm64_ops import (OperatorCounts, count_operators, markdown_tables,  # noqa: E402
                                      xnnpack_operators)
from clcdeploy.device.errors import VirtualDeviceError  # noqa: E402
from clcdeploy.device.virtual import instructions  # noqa: E402
from clcdeploy.errors import print_usage_error  # noqa: E402
from clcdeploy.kernels.variants import CUSTOM_OP  # noqa: E402


def profile_all(entries: list[Entry], size: int, caches: bool, l2_kb: int, jobs: int,
                rootfs: Path) -> list[OperatorCounts]:
    shape = (1, 3, size, size)
    operators = [xnnpack_operators(e.paths["pte"], shape) for e in entries]  # the host runtime, one at a time

    def one(entry: Entry, names: list[str]) -> OperatorCounts:
        result = count_operators(rootfs, entry.paths["pte"], names, caches=caches, l2_kb=l2_kb)
        print(f"profiled {entry.model}/{entry.variant}: {len(result.operators)} operators", file=sys.stderr)
        return result

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(one, entries, operators))


def markdown(entries: list[Entry], profiles: list[OperatorCounts], command: str, size: int) -> str:
    lines = [f"ARM64, ExecuTorch XNNPACK (pte_runner, 1 thread, Cortex-A53 model under qemu-user), one inference "
             f"at {size}x{size}; `{command}`", *markdown_tables([e.label for e in entries], profiles)]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="mobilenet_v1,clcnet_a")
    parser.add_argument("--variants", default="floor2", help="clcNet-A formulations besides the export default "
                        "(standard operators only; empty for none)")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--caches", action="store_true", help="also DRAM traffic, through the plugin's data cache "
                        "model (32 KB L1, 512 KB L2)")
    parser.add_argument("--l2-kb", type=int, default=instructions.L2_KB, help="with --caches: the modelled L2's "
                        "size in KB (default 512)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="emulated processes at a time")
    parser.add_argument("--keep", type=Path, default=None, help="keep the artifacts in this folder")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the tables to this file")
    return parser.parse_args(argv)


usage_error = functools.partial(print_usage_error, "profile_arm64_ops")  # one line on stderr, exit code 2


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    models = [m for m in args.models.split(",") if m]
    variants = [v for v in args.variants.split(",") if v]
    try:
        check_known(("model", models, clcdeploy.list_models()), ("variant", variants, CLCNET_A_VARIANTS))
        if variants and "clcnet_a" not in models:
            raise ValueError("--variants are clcNet-A formulations: add clcnet_a to --models or pass --variants ''")
        if set(variants) & set(CUSTOM_OP):
            raise ValueError(f"--variants {', '.join(sorted(set(variants) & set(CUSTOM_OP)))} run clcdeploy's own "
                             f"kernel outside XNNPACK, which this profile cannot cut into operators")
    except ValueError as exc:
        return usage_error(str(exc))
    if args.jobs < 1 or args.size < 32:
        return usage_error("--jobs must be at least 1, --size at least 32")
    try:
        instructions.check_l2_kb(args.l2_kb)
        rootfs = instructions.counting_rootfs(log=lambda m: print(m, file=sys.stderr))
    except (ValueError, VirtualDeviceError) as exc:
        return usage_error(str(exc))
    entries = build_entries(models, variants)
    with exported(entries, ["pte"], args.size, args.keep):
        profiles = profile_all(entries, args.size, args.caches, args.l2_kb, args.jobs, rootfs)
    text = markdown(entries, profiles, command_line(argv), args.size)
    publish(text, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
