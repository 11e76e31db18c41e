#!/usr/bin/env python3
"""clcdeploy's Python runner, pushed to the device and run there with its python3.

Standalone on purpose (standard library + numpy + the format's runtime): it must not import clcdeploy or
torch. It loads one artifact, runs `--warmup` untimed passes and then exactly `--runs` timed passes on a
fixed-seed random input, and prints one JSON object: load time, every pass in ms, peak RSS, whether the
outputs were finite, and the machine it ran on.

With several `--model` (all of one format and input shape) it times them side by side: each model's warm-up,
then `--runs` turns in which every model runs one pass, in a new random order each turn, so that all of them
see the same machine state. It then prints {"models": [one object per model, in the given order], ...}; peak
RSS is then the process's, with every model loaded.
"""

import argparse
import ctypes
import importlib
import json
import os
import platform
import random
import resource
import sys
import time


# ONNX Runtime's Linux builds (1.31 here) start Microsoft's 1DS telemetry, which writes a device id and an event
# store under the cache folder and tries HTTPS uploads, within the timed process: off, before anything imports it.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")


def _onnx(path, threads, kernel_library=None, side_by_side=False):
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads > 0:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    if side_by_side:
        # Every session has its own worker threads, which by default go on spinning after a run and would take
        # the cores from the next model's session. Spinning within a run stays on, as in an app.
        options.add_session_config_entry("session.force_spinning_stop", "1")
    if kernel_library:  # the model calls clcdeploy's custom op clcdeploy.IGC2
        options.register_custom_ops_library(kernel_library)
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})[0], "onnxruntime " + ort.__version__


def _tflite(path, threads, kernel_library=None, side_by_side=False):
    from ai_edge_litert.interpreter import Interpreter, load_delegate

    # kernel_library: clcdeploy's delegate for its custom op custom_call.CLCDEPLOY_IGC2 (XNNPACK takes the rest)
    delegates = [load_delegate(kernel_library, {"num_threads": str(max(threads, 1))})] if kernel_library else []
    interpreter = Interpreter(model_path=path, num_threads=threads if threads > 0 else None,
                              experimental_delegates=delegates)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]

    def run(x):
        interpreter.set_tensor(inp["index"], x)
        interpreter.invoke()
        return interpreter.get_tensor(out["index"])

    return run, "ai-edge-litert"


def _pte(path, threads, kernel_library=None, side_by_side=False):  # the kernel library is loaded before (main)
    from executorch.runtime import Runtime  # needs the executorch Python bindings (host only)
    import torch

    if threads > 0:
        try:
            from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool
            _unsafe_reset_threadpool(threads)
        except ImportError:
            pass
    method = Runtime.get().load_program(path).load_method("forward")
    return lambda x: method.execute([torch.from_numpy(x)])[0].numpy(), "executorch"


def mark_passes():
    """With CLCDEPLOY_PASS_MARKS=1: a write to file descriptor -3100, which fails and does nothing else, for
    clcdeploy's instruction counter (clcdeploy/device/virtual/insn_count.c) to snapshot its counts at."""
    if os.environ.get("CLCDEPLOY_PASS_MARKS") == "1":
        try:
            os.write(-3100, b"")
        except OSError:
            pass


LOADERS = {"onnx": _onnx, "tflite": _tflite, "pte": _pte}
# Imported before the load timer starts: the load time is the model's, not the Python import's.
RUNTIME_MODULES = {"onnx": "onnxruntime", "tflite": "ai_edge_litert.interpreter", "pte": "executorch.runtime"}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, action="append", help="repeat to time models side by side")
    parser.add_argument("--format", required=True, choices=sorted(LOADERS))
    parser.add_argument("--input-shape", required=True, help="comma-separated, e.g. 1,3,224,224")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="0: the runtime's default")
    parser.add_argument("--kernel-library", help="clcdeploy's kernel library for the model's runtime (custom "
                                                 "ExecuTorch kernels, ONNX Runtime custom ops, LiteRT delegate)")
    parser.add_argument("--progress", help="file to record each pass in as it starts (read if the link drops)")
    args = parser.parse_args(argv)
    progress = open(args.progress, "w", buffering=1) if args.progress else None

    def mark(stage):
        if progress:
            progress.write(stage + "\n")

    import numpy as np

    shape = [int(v) for v in args.input_shape.split(",")]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    mark("loading the model")
    importlib.import_module(RUNTIME_MODULES[args.format])
    if args.kernel_library:  # loaded before the timer too; a .pte's kernels register with the bindings' runtime
        if args.format == "pte":
            importlib.import_module("executorch.extension.pybindings.portable_lib")
        library = ctypes.CDLL(args.kernel_library, mode=ctypes.RTLD_GLOBAL)
        # one XNNPACK workspace per model, as pte_runner (its fused programs have many delegate calls)
        if args.format == "pte" and not library.clcdeploy_set_xnnpack_workspace_sharing(1):
            raise SystemExit("clcdeploy runner: ExecuTorch's XNNPACK backend did not take workspace sharing mode 1")
    models, several = [], len(args.model) > 1
    for path in args.model:
        start = time.perf_counter()
        run, runtime = LOADERS[args.format](path, args.threads, args.kernel_library, several)
        models.append({"path": path, "run": run, "runtime": runtime, "load_ms": (time.perf_counter() - start) * 1e3,
                       "times_ms": [], "outputs_finite": True})
    for model in models:
        for i in range(args.warmup):
            mark(f"warm-up pass {i + 1} of {args.warmup}" + (f" of {model['path']}" if several else ""))
            model["outputs_finite"] &= bool(np.isfinite(model["run"](x)).all())
    order = random.Random(1)  # a fixed seed: the same orders on every run
    mark_passes()
    for i in range(args.runs):
        turn = order.sample(models, len(models)) if several else models
        for model in turn:
            mark(f"timed pass {i + 1} of {args.runs}" + (f" of {model['path']}" if several else ""))
            start = time.perf_counter()
            y = model["run"](x)
            model["times_ms"].append((time.perf_counter() - start) * 1e3)
            model["outputs_finite"] &= bool(np.isfinite(y).all())
            print(f"pass {i + 1} of {args.runs}: {model['times_ms'][-1]:.3f} ms"
                  + (f" ({model['path']})" if several else ""), file=sys.stderr, flush=True)
    mark_passes()
    mark("done")
    process = {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
               "machine": platform.machine(), "python": platform.python_version()}
    results = [{key: m[key] for key in ("runtime", "load_ms", "times_ms", "outputs_finite")} for m in models]
    print(json.dumps({"models": results, **process} if several else {**results[0], **process}))


if __name__ == "__main__":
    main()
