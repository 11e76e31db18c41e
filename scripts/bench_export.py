#!/usr/bin/env python
"""Export-speed benchmark (issue 3): time `clcdeploy export MODEL` for all formats with validation, in a
fresh process, and compare with the budget (60 s for clcnet_a on the project machine).

    .venv/bin/python scripts/bench_export.py [--model clcnet_a] [--formats onnx,pte,tflite] [--budget 60]

Prints the wall time of the whole process (imports included) and the per-stage seconds from the manifest;
exits 1 when over budget. Not a test: timings depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from clcdeploy.export.commands import IGC_LOWERING_NAMES

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="clcnet_a")
    parser.add_argument("--formats", default="onnx,pte,tflite")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds (default 60)")
    parser.add_argument("--igc-lowering", default=None, help="default: each format's own (as `clcdeploy export`)",
                        choices=IGC_LOWERING_NAMES)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench_export_") as out:
        command = [sys.executable, "-m", "clcdeploy", "export", args.model, "--formats", args.formats,
                   "--out", out, "--json"] + (["--igc-lowering", args.igc_lowering] if args.igc_lowering else [])
        start = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
        wall = time.perf_counter() - start
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            sys.stderr.write(done.stderr)
            return done.returncode
        manifest = json.loads(done.stdout)

    result = {
        "model": args.model,
        "formats": args.formats.split(","),
        "igc_lowering": args.igc_lowering,
        "wall_seconds": round(wall, 2),
        # CPU time of the export process: what the wall time would be on an otherwise idle machine
        # (the work is mostly single-threaded); the wall time includes waiting for cores others use.
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
        "budget_seconds": args.budget,
        "within_budget": wall <= args.budget,
        "cpus": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "per_format": {
            fmt: {"export_seconds": e["export_seconds"], "validate_seconds": e["validate_seconds"],
                  "max_abs_diff": e["max_abs_diff"]}
            for fmt, e in manifest["formats"].items()
        },
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        lowering = args.igc_lowering or "per-format default"
        print(f"{args.model} ({args.formats}, lowering {lowering}): {wall:.1f} s wall, "
              f"{result['cpu_seconds']:.1f} s CPU in a fresh process (budget {args.budget:.0f} s, "
              f"load average {result['load_average_1min']} on {result['cpus']} CPUs)")
        for fmt, row in result["per_format"].items():
            print(f"  {fmt:7s} export {row['export_seconds']:6.1f} s   validate {row['validate_seconds']:5.2f} s   "
                  f"max abs diff {row['max_abs_diff']:.1e}")
    return 0 if result["within_budget"] else 1


if __name__ == "__main__":
    sys.exit(main())
