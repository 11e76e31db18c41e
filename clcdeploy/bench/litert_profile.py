"""Per-operator profile of a .tflite model on LiteRT's CPU (XNNPACK) path, through the LiteRT C API.

The ai-edge-litert Python API has no profiler, but the wheel's `libLiteRt.so` exports the C API of LiteRT's
CompiledModel, which has one: compile with the runtime option `enable_profiling = true`, start the profiler,
run, and read the events back (`litert/c/litert_compiled_model.h`, `litert_profiler.h`,
`litert_profiler_event.h` in google-ai-edge/LiteRT). The XNNPACK delegate reports each of its operators as
an event (type DELEGATE_PROFILED_OPERATOR_INVOKE_EVENT, tag = XNNPACK's operator name, e.g.
"Convolution (NHWC, F32) IGEMM"); operators the delegate left to the interpreter report as
OPERATOR_INVOKE_EVENT with the TFLite op name. The delegate's own node is an interpreter event as well and
is left out, since its operators are counted one by one. The interpreter's whole `Invoke` is a DEFAULT event;
what it spends outside the operators (dispatch between them, the delegate's own work) is reported as
`OUTSIDE_OPERATORS`.

The CompiledModel runs the same XNNPACK delegate as the `Interpreter` that clcdeploy validates and times with
(and no clcdeploy custom op delegate: models exported with `--fused-igc` cannot be profiled here).
"""

from __future__ import annotations

import collections
import ctypes
from pathlib import Path
from typing import NamedTuple

import numpy as np

# litert_profiler_event.h: LiteRtProfilerEventType
DEFAULT_EVENT = 1
OPERATOR_INVOKE_EVENT = 1 << 1
DELEGATE_PROFILED_OPERATOR_INVOKE_EVENT = 1 << 3
DELEGATE_NODE_TAGS = ("TfLiteXNNPackDelegate", "DelegateKernel")  # the delegate's node, not an operator
INVOKE_TAG = "Invoke"  # the DEFAULT event around one whole inference
OUTSIDE_OPERATORS = "LiteRT invoke, outside its operators"
CPU_ACCELERATOR = 1  # kLiteRtHwAcceleratorCpu
FLOAT32 = 1  # kLiteRtElementTypeFloat32
LOCK_WRITE = 1  # kLiteRtTensorBufferLockModeWrite
_MEMORY_USAGE = ctypes.c_size_t * 3


class RankedTensorType(ctypes.Structure):
    """litert_model_types.h's LiteRtRankedTensorType (element type, then litert_layout.h's LiteRtLayout)."""

    _fields_ = [("element_type", ctypes.c_int), ("rank", ctypes.c_uint, 7), ("has_strides", ctypes.c_uint, 1),
                ("dimensions", ctypes.c_int32 * 8), ("strides", ctypes.c_uint32 * 8)]


class ProfiledEventData(ctypes.Structure):
    """litert_profiler_event.h's ProfiledEventData."""

    _fields_ = [("tag", ctypes.c_char_p), ("event_type", ctypes.c_int), ("start_us", ctypes.c_uint64),
                ("elapsed_us", ctypes.c_uint64), ("begin_memory", _MEMORY_USAGE), ("end_memory", _MEMORY_USAGE),
                ("metadata1", ctypes.c_uint64), ("metadata2", ctypes.c_uint64), ("event_source", ctypes.c_int)]


class HostBuffer(NamedTuple):
    """A LiteRT tensor buffer in host memory and the tensor it holds."""

    handle: ctypes.c_void_p
    shape: tuple[int, ...]
    element_type: int


class LiteRtError(RuntimeError):
    """A LiteRT C API call returned an error status."""


def profile_tflite(path: Path, x: np.ndarray, *, runs: int = 30, warmup: int = 5,
                   threads: int = 1) -> dict[str, tuple[float, int]]:
    """Run the .tflite at `path` on `x` (NCHW float32, fed as NHWC like `tflite_format.run`) `warmup` times,
    then `runs` times profiled; return operator name -> (ms per inference summed over its nodes, nodes),
    most expensive first, and `OUTSIDE_OPERATORS` -> (the rest of the invoke's time, 1)."""
    with _CompiledModel(Path(path), threads) as model:
        model.write_input(np.ascontiguousarray(x.transpose(0, 2, 3, 1), dtype=np.float32))
        for _ in range(warmup):
            model.run()
        events = model.profiled_runs(runs)
    total, count = collections.Counter(), collections.Counter()
    invoke_ms = 0.0
    for tag, event_type, elapsed_us in events:
        if event_type == DEFAULT_EVENT and tag == INVOKE_TAG:
            invoke_ms += elapsed_us / 1e3 / runs
        elif event_type == DELEGATE_PROFILED_OPERATOR_INVOKE_EVENT or (
                event_type == OPERATOR_INVOKE_EVENT and not tag.startswith(DELEGATE_NODE_TAGS)):
            total[tag] += elapsed_us / 1e3 / runs
            count[tag] += 1
    if invoke_ms:
        total[OUTSIDE_OPERATORS] = max(invoke_ms - sum(total.values()), 0.0)
        count[OUTSIDE_OPERATORS] = runs
    return {op: (ms, round(count[op] / runs)) for op, ms in total.most_common()}


def _library() -> ctypes.CDLL:
    import ai_edge_litert

    lib = ctypes.CDLL(str(Path(ai_edge_litert.__file__).with_name("libLiteRt.so")))
    for name in ("LiteRtCreateEnvironment", "LiteRtCreateModelFromFile", "LiteRtCreateOptions",
                 "LiteRtSetOptionsHardwareAccelerators", "LiteRtCreateOpaqueOptions", "LiteRtAddOpaqueOptions",
                 "LiteRtCreateCompiledModel", "LiteRtGetModelSignature", "LiteRtGetNumSignatureInputs",
                 "LiteRtGetNumSignatureOutputs", "LiteRtGetSignatureInputTensorByIndex",
                 "LiteRtGetSignatureOutputTensorByIndex", "LiteRtGetRankedTensorType",
                 "LiteRtGetCompiledModelInputBufferRequirements", "LiteRtGetCompiledModelOutputBufferRequirements",
                 "LiteRtCreateManagedTensorBufferFromRequirements",
                 "LiteRtLockTensorBuffer", "LiteRtUnlockTensorBuffer", "LiteRtRunCompiledModel",
                 "LiteRtCompiledModelGetProfiler", "LiteRtStartProfiler", "LiteRtStopProfiler",
                 "LiteRtResetProfiler", "LiteRtGetNumProfilerEvents", "LiteRtGetProfilerEvents"):
        getattr(lib, name).restype = ctypes.c_int  # LiteRtStatus
    for name in ("LiteRtDestroyTensorBuffer", "LiteRtDestroyCompiledModel", "LiteRtDestroyOptions",
                 "LiteRtDestroyModel", "LiteRtDestroyEnvironment"):
        getattr(lib, name).restype = None
        getattr(lib, name).argtypes = [ctypes.c_void_p]
    return lib


_LIBC = ctypes.CDLL(None)
_LIBC.strdup.restype, _LIBC.strdup.argtypes = ctypes.c_void_p, [ctypes.c_char_p]
_FREE = ctypes.cast(_LIBC.free, ctypes.c_void_p)  # the opaque options' payload destructor: C's own free


class _CompiledModel:
    """One LiteRT CompiledModel on the CPU accelerator with profiling on, its single input and its outputs as
    host buffers (signature 0)."""

    def __init__(self, path: Path, threads: int) -> None:
        self.lib = _library()
        self.handles: list[tuple[str, ctypes.c_void_p]] = []  # destroyed in reverse order
        try:
            self._compile(path, threads)
        except BaseException:
            self.__exit__()
            raise

    def _compile(self, path: Path, threads: int) -> None:
        self.env = self._create("LiteRtDestroyEnvironment", "LiteRtCreateEnvironment", 0, None)
        self.model = self._create("LiteRtDestroyModel", "LiteRtCreateModelFromFile", self.env, str(path).encode())
        options = self._create("LiteRtDestroyOptions", "LiteRtCreateOptions")
        self._check("LiteRtSetOptionsHardwareAccelerators", options, CPU_ACCELERATOR)
        # Opaque options are TOML strings, owned (and freed) by LiteRT once added.
        for identifier, toml in ((b"runtime_options_string", "enable_profiling = true\n"),
                                 (b"xnnpack", f"num_threads = {threads}\n")):
            payload = ctypes.c_void_p(_LIBC.strdup(toml.encode()))
            opaque = ctypes.c_void_p()
            self._check("LiteRtCreateOpaqueOptions", identifier, payload, _FREE, ctypes.byref(opaque))
            self._check("LiteRtAddOpaqueOptions", options, opaque)
        self.compiled = self._create("LiteRtDestroyCompiledModel", "LiteRtCreateCompiledModel",
                                     self.env, self.model, options)
        signature = ctypes.c_void_p()
        self._check("LiteRtGetModelSignature", self.model, ctypes.c_size_t(0), ctypes.byref(signature))
        self.inputs = self._buffers(signature, "Input")
        self.outputs = self._buffers(signature, "Output")
        if len(self.inputs) != 1 or self.inputs[0].element_type != FLOAT32:
            raise LiteRtError(f"{path.name}: profiling needs one float32 input; the model's inputs differ")

    def __enter__(self) -> _CompiledModel:
        return self

    def __exit__(self, *_exc) -> None:
        for destroy, handle in reversed(self.handles):
            getattr(self.lib, destroy)(handle)
        self.handles.clear()

    def write_input(self, data: np.ndarray) -> None:
        buffer, shape, _ = self.inputs[0]
        if data.shape != shape:
            raise LiteRtError(f"input of shape {data.shape} given, the model takes {shape}")
        host = ctypes.c_void_p()
        self._check("LiteRtLockTensorBuffer", buffer, ctypes.byref(host), LOCK_WRITE)
        ctypes.memmove(host, data.ctypes.data, data.nbytes)
        self._check("LiteRtUnlockTensorBuffer", buffer)

    def run(self) -> None:
        ins = (ctypes.c_void_p * len(self.inputs))(*(b.handle for b in self.inputs))
        outs = (ctypes.c_void_p * len(self.outputs))(*(b.handle for b in self.outputs))
        self._check("LiteRtRunCompiledModel", self.compiled, ctypes.c_size_t(0), ctypes.c_size_t(len(ins)), ins,
                    ctypes.c_size_t(len(outs)), outs)

    def profiled_runs(self, runs: int) -> list[tuple[str, int, int]]:
        """Run `runs` times with the profiler on; return its events as (tag, event type, elapsed µs)."""
        profiler = ctypes.c_void_p()
        self._check("LiteRtCompiledModelGetProfiler", self.compiled, ctypes.byref(profiler))
        self._check("LiteRtResetProfiler", profiler)
        self._check("LiteRtStartProfiler", profiler)
        for _ in range(runs):
            self.run()
        self._check("LiteRtStopProfiler", profiler)
        n = ctypes.c_int()
        self._check("LiteRtGetNumProfilerEvents", profiler, ctypes.byref(n))
        events = (ProfiledEventData * n.value)()
        self._check("LiteRtGetProfilerEvents", profiler, n, events)
        # The tags belong to the profiler, which the compiled model owns: copy them now.
        return [(e.tag.decode(errors="replace"), e.event_type, e.elapsed_us) for e in events]

    def _buffers(self, signature: ctypes.c_void_p, kind: str) -> list[HostBuffer]:
        """Host tensor buffers for the signature's inputs or outputs."""
        n = ctypes.c_size_t()
        self._check(f"LiteRtGetNumSignature{kind}s", signature, ctypes.byref(n))
        buffers = []
        for i in range(n.value):
            tensor, requirements = ctypes.c_void_p(), ctypes.c_void_p()
            tensor_type = RankedTensorType()
            self._check(f"LiteRtGetSignature{kind}TensorByIndex", signature, ctypes.c_size_t(i),
                        ctypes.byref(tensor))
            self._check("LiteRtGetRankedTensorType", tensor, ctypes.byref(tensor_type))
            self._check(f"LiteRtGetCompiledModel{kind}BufferRequirements", self.compiled, ctypes.c_size_t(0),
                        ctypes.c_size_t(i), ctypes.byref(requirements))  # owned by the compiled model
            buffer = self._create("LiteRtDestroyTensorBuffer", "LiteRtCreateManagedTensorBufferFromRequirements",
                                  self.env, ctypes.byref(tensor_type), requirements)
            shape = tuple(tensor_type.dimensions[:tensor_type.rank])
            buffers.append(HostBuffer(buffer, shape, tensor_type.element_type))
        return buffers

    def _create(self, destroy: str, create: str, *args) -> ctypes.c_void_p:
        handle = ctypes.c_void_p()
        self._check(create, *args, ctypes.byref(handle))
        self.handles.append((destroy, handle))
        return handle

    def _check(self, name: str, *args) -> None:
        status = getattr(self.lib, name)(*args)
        if status != 0:
            raise LiteRtError(f"LiteRT C API {name} failed with status {status}")
