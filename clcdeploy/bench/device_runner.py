#!/usr/bin/env python3
"""clcdeploy's Python runner, pushed to the device and run there with its python3.

Standalone on purpose (standard library + numpy + the format's runtime): it must not import clcdeploy or
torch. It loads one artifact, runs `--warmup` untimed passes and then exactly `--runs` timed passes on a
fixed-seed random input, and prints one JSON object: load time, every pass in ms, peak RSS, whether the
outputs were finite, and the machine it ran on.
"""

import argparse
import ctypes
import importlib
import json
import platform
import resource
import sys
import time


def _onnx(path, threads, kernel_library=None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads > 0:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    if kernel_library:  # the model calls clcdeploy's custom op clcdeploy.IGC2
        options.register_custom_ops_library(kernel_library)
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})[0], "onnxruntime " + ort.__version__


def _tflite(path, threads, kernel_library=None):
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


def _pte(path, threads, kernel_library=None):  # the kernel library is loaded before (main)
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


LOADERS = {"onnx": _onnx, "tflite": _tflite, "pte": _pte}
# Imported before the load timer starts: the load time is the model's, not the Python import's.
RUNTIME_MODULES = {"onnx": "onnxruntime", "tflite": "ai_edge_litert.interpreter", "pte": "executorch.runtime"}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
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
        ctypes.CDLL(args.kernel_library, mode=ctypes.RTLD_GLOBAL)
    start = time.perf_counter()
    run, runtime = LOADERS[args.format](args.model, args.threads, args.kernel_library)
    load_ms = (time.perf_counter() - start) * 1e3
    finite = True
    for i in range(args.warmup):
        mark(f"warm-up pass {i + 1} of {args.warmup}")
        finite &= bool(np.isfinite(run(x)).all())
    times = []
    for i in range(args.runs):
        mark(f"timed pass {i + 1} of {args.runs}")
        start = time.perf_counter()
        y = run(x)
        times.append((time.perf_counter() - start) * 1e3)
        finite &= bool(np.isfinite(y).all())
        print(f"pass {i + 1} of {args.runs}: {times[-1]:.3f} ms", file=sys.stderr, flush=True)
    mark("done")
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({
        "runtime": runtime, "load_ms": load_ms, "times_ms": times, "peak_rss_mb": peak_kb / 1024.0,
        "outputs_finite": finite, "machine": platform.machine(), "python": platform.python_version(),
    }))


if __name__ == "__main__":
    main()
