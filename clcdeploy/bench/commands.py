"""CLI: `clcdeploy bench` (no torch import unless artifacts must be exported)."""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from pathlib import Path

from clcdeploy.device.virtual.instructions import L2_KB, check_l2_kb
from clcdeploy.errors import BenchError
from clcdeploy.files import check_output_folder
from clcdeploy.versions import package_versions

DEFAULT_MODELS = "mobilenet_v1,shufflenet_v1_2x,clcnet_a,clcnet_b"  # the paper's Table 6
DEFAULT_RUNS, DEFAULT_WARMUP = 10, 3
MAX_THREADS = 256
MAX_SECONDS = 7 * 24 * 3600  # --cooldown and --timeout: beyond a week is a typo (and overflows the clocks)
COUNT_PASSES = 2  # --arm64-instructions: passes counted per artifact (one is enough; two show a steady state)
# Options that only timing uses, with their defaults: --arm64-instructions refuses them.
TIMING_ONLY = {"device": None, "runner": "auto", "runner_bin": None, "apk": None, "rounds": 1, "side_by_side": False,
               "cpu_mask": None, "cooldown": 0.0, "warmup": None}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "bench", help="time exported models on the host or on ADB devices (warm-up + timed passes)",
        description="Benchmark exported artifacts: push them to each device, run warm-up and then exactly "
                    "--runs timed passes per model and format (in each of --rounds rounds), and print the clcNet "
                    "paper's Table 6 layout. Thermal hygiene: --cooldown sleeps before every model, --cpu-mask "
                    "pins the runner with taskset on the device (e.g. f0 = the big cores of many big.LITTLE "
                    "phones), --threads fixes the runtime's thread count.")
    p.add_argument("--device", action="append", metavar="SERIAL",
                   help="ADB serial (host:port or USB serial), repeatable, or 'all'; default: the host")
    p.add_argument("--models", default=DEFAULT_MODELS, help=f"comma-separated (default {DEFAULT_MODELS})")
    p.add_argument("--formats", default="pte,tflite,onnx", help="comma-separated subset of pte,tflite,onnx")
    p.add_argument("--runs", type=int, help=f"timed passes per model and format (default {DEFAULT_RUNS}; "
                   f"{COUNT_PASSES} with --arm64-instructions, whose counts do not vary)")
    p.add_argument("--warmup", type=int, help=f"untimed passes first (default {DEFAULT_WARMUP})")
    p.add_argument("--rounds", type=int, default=1,
                   help="run every model and format this many times (warm-up and --runs passes each), in "
                        "alternating order, and pool the passes; report.md shows each artifact's round averages "
                        "(default 1)")
    p.add_argument("--side-by-side", action="store_true",
                   help="time the models of each format in one runner process, one pass of each per turn in a new "
                        "order every turn (python runner, pte_runner), so that a machine whose speed drifts slows "
                        "them all alike; default: one model after the other, as the paper")
    p.add_argument("--threads", type=int, default=0, help="runtime threads (default: the runtime's choice)")
    p.add_argument("--cpu-mask", metavar="HEX", help="taskset CPU mask for the runner on the device")
    p.add_argument("--cooldown", type=float, default=0.0, metavar="S", help="seconds of idle before each model")
    p.add_argument("--runner", default="auto", help="auto, python, app, executor_runner, benchmark_model, "
                   "onnxruntime_perf_test, pte_runner, ort_runner (default auto)")
    p.add_argument("--runner-bin", type=Path, metavar="PATH", help="native runner binary to push to the device")
    p.add_argument("--apk", type=Path, help="demo app APK to install first (--runner app)")
    p.add_argument("--models-dir", type=Path, default=Path("models"), help="where exported artifacts are")
    p.add_argument("--no-export", action="store_true", help="fail instead of exporting missing artifacts")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds allowed per model run on the device")
    p.add_argument("--out", type=Path, help="write results.json, results.csv, report.md, latency_vs_macs.png")
    p.add_argument("--json", action="store_true", help="print results.json's content instead of the table")
    p.add_argument("--arm64-instructions", action="store_true",
                   help="instead of timing: count the ARM64 instructions and loads/stores of one inference of each "
                        "artifact in the virtual device's rootfs (the runtimes' aarch64 builds under qemu-user, one "
                        "thread, one warm-up); deterministic, but not a latency. Needs root and qemu-user; writes "
                        "arm64_instructions.json/.md with --out")
    p.add_argument("--cache-model", action="store_true",
                   help="with --arm64-instructions: also run every memory access through a model of a 32 KB L1 / "
                        "512 KB L2 data cache and report L1 misses and DRAM traffic per inference (slower)")
    p.add_argument("--l2-kb", type=int, default=None, metavar="KB",
                   help=f"with --cache-model: the modelled L2's size (default {L2_KB}; Cortex-A53 and A7 clusters "
                        f"have 128 KB-2 MB)")
    p.add_argument("--per-op", action="store_true",
                   help="where each .pte's time goes: after the timed runs, one more run of it in clcdeploy's "
                        "pte_runner with ExecuTorch's event tracer (ETDump), summarised per XNNPACK operator type "
                        "(report.md, results.json). With --arm64-instructions: the instructions per operator type")
    p.set_defaults(handler=run_bench)


def _check_args(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """Refuse bad or contradictory options (BenchError), fill in the defaults of --runs and --warmup, and return
    the models and formats."""
    from clcdeploy.bench.artifacts import FORMATS

    if args.cache_model and not args.arm64_instructions:
        raise BenchError("--cache-model applies to --arm64-instructions only: add --arm64-instructions")
    if args.l2_kb is not None and not args.cache_model:
        raise BenchError("--l2-kb sets the cache model's L2: add --cache-model (with --arm64-instructions)")
    args.l2_kb = L2_KB if args.l2_kb is None else args.l2_kb
    try:
        check_l2_kb(args.l2_kb)
    except ValueError as exc:
        raise BenchError(str(exc)) from None
    if args.arm64_instructions:
        given = [name for name, default in TIMING_ONLY.items() if getattr(args, name) != default]
        if given or args.threads > 1:
            names = ", ".join("--" + n.replace("_", "-") for n in given + (["threads"] if args.threads > 1 else []))
            verb = "apply" if ", " in names else "applies"
            raise BenchError(f"{names} {verb} only to timing: --arm64-instructions counts in the virtual device's "
                             f"rootfs, at one thread, after one warm-up pass")
    args.runs = args.runs if args.runs is not None else COUNT_PASSES if args.arm64_instructions else DEFAULT_RUNS
    args.warmup = args.warmup if args.warmup is not None else DEFAULT_WARMUP
    if args.runs < 1:
        raise BenchError(f"--runs must be at least 1, got {args.runs}")
    if args.rounds < 1:
        raise BenchError(f"--rounds must be at least 1, got {args.rounds}")
    for flag, value in (("--warmup", args.warmup), ("--threads", args.threads), ("--cooldown", args.cooldown)):
        if value < 0:
            raise BenchError(f"{flag} must not be negative, got {value:g}")
    if args.threads > MAX_THREADS:  # runtimes create every thread up front (pte_runner's limit is the same)
        raise BenchError(f"--threads {args.threads} is more than {MAX_THREADS}: give the device's core count or "
                         f"fewer")
    if not (math.isfinite(args.cooldown) and args.cooldown <= MAX_SECONDS):
        raise BenchError(f"--cooldown is the seconds of idle before each model, at most {MAX_SECONDS}, got "
                         f"{args.cooldown:g}")
    if not (args.timeout > 0 and math.isfinite(args.timeout) and args.timeout <= MAX_SECONDS):
        raise BenchError(f"--timeout is the seconds allowed per model run, more than 0 and at most {MAX_SECONDS}, "
                         f"got {args.timeout:g}")
    if args.cpu_mask and not re.fullmatch(r"(0x)?[0-9a-fA-F]+", args.cpu_mask):
        raise BenchError(f"--cpu-mask must be a hexadecimal CPU mask like f0, got {args.cpu_mask!r}")
    if args.cpu_mask and int(args.cpu_mask, 16) == 0:
        raise BenchError("--cpu-mask 0 selects no CPU: set a bit per CPU to run on (1 = cpu0, f0 = cpu4-cpu7)")
    if args.cpu_mask:
        args.cpu_mask = format(int(args.cpu_mask, 16), "x")  # toybox's taskset (Android 6 on) refuses "0x"
    formats = _unique(f.strip() for f in args.formats.split(","))
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise BenchError(f"unknown format {', '.join(unknown) or '(none)'}; choose from {', '.join(FORMATS)}")
    if args.per_op and "pte" not in formats:
        raise BenchError("--per-op profiles .pte programs per XNNPACK operator: add pte to --formats")
    models = _unique(m.strip() for m in args.models.split(","))
    if not models:
        raise BenchError("--models is empty")
    pathlike = [m for m in models if "/" in m or m in (".", "..")]
    if pathlike:
        raise BenchError(f"--models takes model names, not paths ({', '.join(pathlike)}): for artifacts in another "
                         f"folder pass --models-dir FOLDER")
    _check_runner_options(args, formats)
    if args.apk is not None and args.runner != "app":
        raise BenchError(f"--apk installs the demo app for --runner app, not for --runner {args.runner}: add "
                         f"--runner app (the app runs .pte and .tflite)")
    if args.apk is not None and not args.apk.is_file():
        raise BenchError(f"APK {args.apk} is not a readable file")
    return models, formats


def _unique(names) -> list[str]:
    """Non-empty names in their first order, each once (a repeated name would run twice and pool as rounds)."""
    return list(dict.fromkeys(name for name in names if name))


def _check_runner_options(args: argparse.Namespace, formats: list[str]) -> None:
    """A runner that cannot run a format, time side by side or use --runner-bin is refused before any work."""
    from clcdeploy.bench.runners import CPU_MASK_APP, NATIVE_RUNNERS, RUNNER_FORMATS

    if args.runner_bin is not None and args.runner not in NATIVE_RUNNERS:
        raise BenchError(f"--runner-bin is the binary of a native runner ({', '.join(NATIVE_RUNNERS)}): add --runner "
                         f"NAME, or drop --runner-bin for --runner {args.runner}")
    if args.runner_bin is not None and not (args.runner_bin.is_file() and args.runner_bin.stat().st_mode & 0o444):
        raise BenchError(f"runner binary {args.runner_bin} is not a readable file")
    runs = RUNNER_FORMATS.get(args.runner)
    if runs is not None and not set(formats) <= set(runs):
        raise BenchError(f"--runner {args.runner} runs only {', '.join(runs)} artifacts, not "
                         f"{', '.join(f for f in formats if f not in runs)}: pass --formats {','.join(runs)}, or "
                         f"--runner auto")
    if args.cpu_mask and args.runner == "app":
        raise BenchError(CPU_MASK_APP)
    if args.side_by_side and args.runner not in ("auto", "python", "pte_runner"):
        raise BenchError(f"--side-by-side times several models in one process, which --runner {args.runner} cannot: "
                         f"use --runner auto, python or pte_runner, or drop --side-by-side")


def _check_models_known(models: list[str], models_dir: Path) -> None:
    """Unknown names fail fast: a name is known if it has exported artifacts or is in the zoo."""
    unknown = [m for m in models if not (models_dir / m / "manifest.json").is_file()]
    if not unknown:
        return
    try:
        from clcdeploy.zoo import model_spec
    except ImportError:  # no torch here: only exported models can be benchmarked
        raise BenchError(f"no exported artifacts for {', '.join(unknown)} in {models_dir}") from None
    for name in unknown:
        model_spec(name)  # raises UnknownModelError with suggestions


def _serials(devices: list[str] | None) -> list[str | None]:
    from clcdeploy.bench.device_lock import device_key

    if not devices:
        return [None]
    devices = _unique(devices)  # the same device twice would run two benchmarks on it at once
    if "all" in devices and len(devices) > 1:
        raise BenchError("--device all already means every reachable ADB device: give it alone, or name devices")
    named: dict[str, str] = {}
    for serial in devices:
        same = named.setdefault(device_key(serial), serial)
        if same != serial:
            raise BenchError(f"--device {same} and --device {serial} name the same device: give it once")
    if devices == ["all"]:
        from clcdeploy.device import list_devices

        found = [d.serial for d in list_devices() if d.transport != "local" and d.state == "device"]
        if not found:
            raise BenchError("--device all: no ADB device is reachable (see `clcdeploy devices`)")
        return found
    return list(devices)


BENCH_TOOLS = ("clcdeploy", "adb-shell", "onnxruntime", "ai-edge-litert", "executorch")


def run_bench(args: argparse.Namespace) -> int:
    models, formats = _check_args(args)
    _check_models_known(models, args.models_dir)
    if args.out:
        check_output_folder(args.out)  # unwritable: say so before the work (the results' writes create it)
    return _bench(args, models, formats)


def _bench(args: argparse.Namespace, models: list[str], formats: list[str]) -> int:
    from clcdeploy.bench.artifacts import ensure_artifacts, missing_artifacts
    from clcdeploy.bench.report import print_table, results_document, write_outputs
    from clcdeploy.bench.runners import make_runner
    from clcdeploy.bench.session import (BenchOptions, bench_devices, check_devices_reachable,
                                         check_kernel_library_reachable)
    from clcdeploy.bench.stability import unsteady_warning

    log = (lambda msg: print(msg, file=sys.stderr)) if args.json else print
    serials = [] if args.arm64_instructions else _serials(args.device)

    def runner_factory():
        return None if args.runner == "auto" else make_runner(args.runner, args.runner_bin, args.apk)

    runner = runner_factory()  # a runner named without what it needs is refused before the exports (minutes)
    if not args.no_export and missing_artifacts(args.models_dir, models, formats):
        check_devices_reachable(serials)  # before the exports, which take minutes
    artifacts = ensure_artifacts(args.models_dir, models, formats, export_missing=not args.no_export, log=log)
    if args.arm64_instructions:
        return _count_arm64(args, list(artifacts.values()), log)
    options = BenchOptions(models, formats, args.runs, args.warmup, args.threads, args.cpu_mask, args.cooldown,
                           args.timeout, args.rounds, args.side_by_side, args.per_op)
    check_kernel_library_reachable(serials, artifacts, runner)  # also validates the runner choice
    runs = bench_devices(serials, artifacts, options, runner_factory, log=log)
    errors = [r.error for r in runs if r.error]
    if errors and not any(r.measurements for r in runs):  # nothing to report: keep what --out holds
        raise BenchError("; ".join(errors))
    command, tools = ["clcdeploy", *sys.argv[1:]], package_versions(BENCH_TOOLS)
    if args.out:
        write_outputs(args.out, runs, vars(options), command, tools)
    if args.json:
        print(json.dumps(results_document(runs, vars(options), command, tools), indent=2))
    else:
        print_table(runs)
        if args.out:
            print(f"results in {args.out}/ (results.json, results.csv, report.md, latency_vs_macs.png)")
    warning = unsteady_warning([m for r in runs for m in r.measurements], rounds=args.rounds,
                               side_by_side=args.side_by_side, threads=args.threads)
    if warning:
        print(warning, file=sys.stderr)
    flagged = [m for r in runs for m in r.measurements if m.outputs_finite is False]
    if flagged:
        print("non-finite outputs: " + ", ".join(f"{m.model}/{m.format} on {m.device}" for m in flagged),
              file=sys.stderr)
    if errors:
        raise BenchError("; ".join(errors) + (f" (what was measured is in {args.out}/results.json, marked "
                                              f"incomplete)" if args.out else ""))
    return 1 if flagged else 0


def _count_arm64(args: argparse.Namespace, artifacts: list, log) -> int:
    from clcdeploy.bench.arm64_count import count_artifacts, document, non_finite_lines, print_table, write_outputs

    counted = count_artifacts(artifacts, passes=args.runs, jobs=os.cpu_count() or 1, timeout=args.timeout,
                              caches=args.cache_model, l2_kb=args.l2_kb, per_op=args.per_op, log=log)
    command, tools = ["clcdeploy", *sys.argv[1:]], package_versions(BENCH_TOOLS)
    if args.out:
        write_outputs(args.out, counted, args.runs, command, tools, args.l2_kb)
    if args.json:
        print(json.dumps(document(counted, args.runs, command, tools, args.l2_kb), indent=2))
    else:
        print_table(counted)
        if args.out:
            print(f"results in {args.out}/ (arm64_instructions.json, arm64_instructions.md)")
    flagged = non_finite_lines(counted)
    for line in flagged:
        print(line, file=sys.stderr)
    return 1 if flagged else 0
